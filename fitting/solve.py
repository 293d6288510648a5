# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Box-bounded least squares in normal-equation form, small and fast.

The fits reduce every frame to  min 1/2 x'Hx - g'x  with lo <= x <= hi
(H symmetric positive definite, at most a few hundred unknowns: shape-mode
coefficients unbounded, blend-shape weights in [0, 1]). A projected Newton
method (Bertsekas 1982): Newton steps on the variables not held at a bound,
projected back onto the box with a backtracking line search. It usually
ends in a handful of steps, far faster than a general solver on a matrix this
size, and a warm start (the previous frame's weights) makes it faster still.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def bounded_quadratic(hessian: F64, gradient_at_zero: F64, lower: F64, upper: F64,
                      start: F64 | None = None, max_steps: int = 60) -> F64:
    """argmin over lower <= x <= upper of 1/2 x'Hx - g'x (g = `gradient_at_zero` negated)."""
    h = hessian
    g = gradient_at_zero
    n = g.shape[0]
    if n == 0:
        return np.zeros(0)
    x = np.clip(np.zeros(n) if start is None else np.asarray(start, dtype=np.float64), lower, upper)
    scale = 1.0 + float(np.abs(g).max())

    def value(point: F64) -> float:
        return float(0.5 * point @ (h @ point) - g @ point)

    f: float | None = None
    for _ in range(max_steps):
        grad = h @ x - g
        projected = x - np.clip(x - grad, lower, upper)
        if float(np.abs(projected).max()) <= 1e-10 * scale:
            break
        held = ((x <= lower) & (grad > 0.0)) | ((x >= upper) & (grad < 0.0))
        free = ~held
        step = np.zeros(n)
        if free.any():
            hf = h[np.ix_(free, free)]
            rhs = -grad[free]
            try:
                step[free] = np.linalg.solve(hf, rhs)
            except np.linalg.LinAlgError:
                step[free] = np.linalg.lstsq(hf, rhs, rcond=None)[0]
        full = x + step
        candidate = np.clip(full, lower, upper)
        if np.array_equal(candidate, full):
            # The exact minimiser on this face of the box, inside the box: always a descent.
            x, f = candidate, None
            continue
        if f is None:
            f = value(x)
        alpha = 1.0
        while True:
            f_new = value(candidate)
            if f_new <= f + 1e-4 * float(grad @ (candidate - x)) or alpha < 1e-6:
                break
            alpha *= 0.5
            candidate = np.clip(x + alpha * step, lower, upper)
        if f_new > f:
            # No descent along the Newton path (only possible near round-off): a projected
            # gradient step instead.
            curvature = float(np.trace(h)) or 1.0
            candidate = np.clip(x - grad / curvature, lower, upper)
            f_new = value(candidate)
            if f_new >= f:
                break
        x, f = candidate, f_new
    return x


def active_set_quadratic(hessian: F64, gradient_at_zero: F64, lower: F64, upper: F64,
                         start: F64 | None = None, max_steps: int = 40) -> F64:
    """The same minimiser as `bounded_quadratic`, by a primal active-set method, for the
    per-frame solves where the set of variables at a bound barely changes from one call
    to the next (video: the weights that were 0 stay 0).

    The working set starts as the variables at a bound whose gradient points out of the
    box (at `start`, or at 0 clipped to the box: with bounds relative to the previous
    frame's weights that is the previous frame's active set). Each step minimises exactly
    over the free variables (one Cholesky-sized solve); a step that would leave the box
    stops at the first bound and fixes the variables it reaches; a feasible minimiser whose
    fixed variables all have the right multiplier sign is the answer, else those with the
    wrong sign are freed. Usually one or two solves; should it not settle within
    `max_steps`, the projected Newton method finishes from where it got to."""
    h = hessian
    g = gradient_at_zero
    n = g.shape[0]
    if n == 0:
        return np.zeros(0)
    x = np.zeros(n) if start is None else np.array(start, dtype=np.float64)
    np.maximum(x, lower, out=x)
    np.minimum(x, upper, out=x)
    tolerance = 1e-12 * (1.0 + float(np.abs(g).max()))
    grad = h @ x - g
    at_lower = (x <= lower) & (grad > 0.0)
    at_upper = (x >= upper) & (grad < 0.0)
    # Block pivoting first (primal-dual active set): fix at once every variable whose free
    # minimiser leaves the box and free every fixed one whose multiplier has the wrong
    # sign. When the sets stop changing the point satisfies the optimality conditions;
    # this usually takes two or three solves even when several weights change side.
    for _ in range(8):
        fixed = at_lower | at_upper
        free = np.flatnonzero(~fixed)
        x[at_lower] = lower[at_lower]
        x[at_upper] = upper[at_upper]
        if free.size:
            rest = g[free] - h[free[:, None], np.flatnonzero(fixed)] @ x[fixed]
            try:
                x[free] = np.linalg.solve(h[free[:, None], free], rest)
            except np.linalg.LinAlgError:
                break
        grad = h @ x - g
        new_lower = (at_lower & (grad > -tolerance)) | (~fixed & (x < lower))
        new_upper = (at_upper & (grad < tolerance)) | (~fixed & (x > upper))
        if np.array_equal(new_lower, at_lower) and np.array_equal(new_upper, at_upper):
            return x
        at_lower, at_upper = new_lower, new_upper
    np.maximum(x, lower, out=x)
    np.minimum(x, upper, out=x)
    grad = h @ x - g
    fixed = ((x <= lower) & (grad > 0.0)) | ((x >= upper) & (grad < 0.0))
    for _ in range(max_steps):
        free = np.flatnonzero(~fixed)
        if free.size:
            try:
                step = np.linalg.solve(h[free[:, None], free], -grad[free])
            except np.linalg.LinAlgError:
                break
            now = x[free]
            moved = now + step
            lo, hi = lower[free], upper[free]
            below, above = moved < lo, moved > hi
            if below.any() or above.any():
                # As far towards the free minimiser as the box allows; fix what it reaches.
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.where(below, (lo - now) / step, np.where(above, (hi - now) / step, np.inf))
                alpha = min(max(float(ratio.min()), 0.0), 1.0)
                x[free] = np.minimum(np.maximum(now + alpha * step, lo), hi)
                reached = ratio <= alpha + 1e-12
                x[free[reached & below]] = lo[reached & below]
                x[free[reached & above]] = hi[reached & above]
                fixed[free[reached]] = True
                grad = h @ x - g
                continue
            x[free] = moved
        grad = h @ x - g
        wrong = fixed & (((x <= lower) & (grad < -tolerance)) | ((x >= upper) & (grad > tolerance)))
        if not wrong.any():
            return x
        fixed &= ~wrong
    return bounded_quadratic(h, g, lower, upper, start=x)
