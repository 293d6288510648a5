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
