# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""`fit_expressions`: the identity held fixed, only the pose and the blend-shape weights,
fast enough to run per video frame.

A target in the model's own topology is taken vertex for vertex; a target in the
topology a `fit_model` correspondence was found on (a reconstruction per video
frame) is resampled to the model's topology in one gather; any other target is
registered by closest points like `fit_model`. The first two solve a bounded
least-squares problem whose matrix is computed once per model, identity and
correspondence (`ExpressionFitter` keeps it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt


from .basis import ModelBasis, model_basis
from .engine import Pose, Problem, Target, final_matches, register
from .errors import FittingError
from .fit import LandmarkInput, make_target, target_landmarks
from .geometry import check_points, similarity
from .result import Correspondence, Fit, FitOptions
from .solve import active_set_quadratic

if TYPE_CHECKING:
    # Only for annotations: the package is imported as `io_nv3dmm` from a clone and as
    # the add-on's subpackage inside Blender; the fits only read the model's arrays.
    from ..io_nv3dmm import FaceModel

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass
class Gram:
    """What ExpressionFitter precomputes per vertex set (K vertices, B blend shapes), so
    that a frame costs one product over its vertices and the Gauss-Newton rounds only
    small dense algebra (3 x 3, B x B)."""

    gram: F64            # (B, B) sum_i b_i' b_i (b_i: the (3, B) blend shapes at vertex i)
    pair: F64            # (9, B, B) sum_i b_i[a]' b_i[c] for the axis pairs (a, c)
    cross_z: F64         # (3, B, B) sum_i b_ij x b_ik
    cross_0: F64         # (3, B) sum_i n_i x b_ik
    neutral_blend: F64   # (3, 3, B) sum_i n_i[a] b_i[c, k]
    neutral_outer: F64   # (3, 3) sum_i n_i n_i'
    neutral_sum: F64     # (3,)
    neutral_flat: F64    # (B,) sum_i n_i' b_i
    blend_sum: F64       # (3, B) sum over the vertices
    frame: F64           # (K, 3B + 4) [b_i flattened | n_i | 1]: target' frame gives every sum
    neutral: F64         # (K, 3)


class ExpressionFitter:
    """Per-frame expression fits of one model with one identity.

    identity: the mode coefficients (M,), or a `Fit` (its coefficients and residual).
    Keep one fitter for a whole clip: the precomputed matrices and the previous frame's
    weights (a warm start) make each frame a few small solves.
    """

    def __init__(self, model: FaceModel, identity: Any, options: FitOptions | None = None) -> None:
        self.options = options or FitOptions()
        self.options.check()
        self.basis: ModelBasis = model_basis(model)
        basis = self.basis
        residual = None
        if isinstance(identity, Fit):
            residual = identity.residual
            identity = identity.coefficients
        coefficients = np.asarray(identity, dtype=np.float64).reshape(-1)
        if coefficients.shape != (basis.mode_count,):
            raise FittingError(f"the identity must hold the model's {basis.mode_count} mode coefficients, "
                               f"got {coefficients.shape[0]}")
        if not np.isfinite(coefficients).all():
            raise FittingError("the identity coefficients contain NaN or infinite values")
        self.coefficients = coefficients
        neutral = basis.mean + basis.modes @ coefficients
        if residual is not None:
            residual = np.asarray(residual, dtype=np.float64)
            if residual.shape != neutral.shape:
                raise FittingError("the identity's residual does not match the model's vertices")
            neutral = neutral + residual
        self.residual = np.zeros_like(neutral) if residual is None else residual
        count = basis.blend_count
        self.problem = Problem(neutral=neutral, columns=basis.blend, precision=np.full(count, self.options.expression_sigma ** -2),
                               lower=np.zeros(count), upper=np.ones(count), triangles=basis.triangles, skin=basis.skin)
        self._flat = np.ascontiguousarray(basis.blend.reshape(-1, count))  # (3V, B), contiguous: faster products
        self._all = self._gram(np.arange(basis.vertex_count))
        self._subset: tuple[Correspondence, I64, Gram, I64, F64, I64] | None = None
        self.previous: F64 | None = None
        self._previous_pose: Pose | None = None

    def _gram(self, vertices: I64) -> Gram:
        """What the vertex-for-vertex solve on `vertices` reuses every frame (see `Gram`)."""
        count = self.basis.blend_count
        blend = np.ascontiguousarray(self.basis.blend[vertices])           # (K, 3, B)
        flat = blend.reshape(-1, count)
        axes = np.ascontiguousarray(blend.transpose(1, 0, 2))               # (3, K, B)
        neutral = np.ascontiguousarray(self.problem.neutral[vertices])
        pair = np.einsum("aik,cij->acjk", axes, axes).reshape(9, count, count)
        p = pair.reshape(3, 3, count, count)
        # sum_i b_ij x b_ik (B x B per axis) and sum_i n_i x b_ik: the rotation rows of the
        # pose-weights block are then C0 + T z, never a pass over the vertices.
        t = np.stack([p[1, 2] - p[2, 1], p[2, 0] - p[0, 2], p[0, 1] - p[1, 0]])
        neutral_blend = np.einsum("ia,cik->ack", neutral, axes)
        c0 = np.stack([neutral_blend[1, 2] - neutral_blend[2, 1], neutral_blend[2, 0] - neutral_blend[0, 2],
                       neutral_blend[0, 1] - neutral_blend[1, 0]])
        frame = np.ascontiguousarray(np.concatenate([blend.reshape(blend.shape[0], -1), neutral,
                                                     np.ones((blend.shape[0], 1))], axis=1))
        return Gram(gram=flat.T @ flat, pair=np.ascontiguousarray(pair), cross_z=t, cross_0=c0,
                    neutral_blend=np.ascontiguousarray(neutral_blend), neutral_outer=np.einsum("ia,ic->ac", neutral, neutral),
                    neutral_sum=neutral.sum(axis=0), neutral_flat=neutral.ravel() @ flat,
                    blend_sum=blend.sum(axis=0), frame=frame, neutral=neutral)

    def fit(self, vertices: Any, triangles: Any = None, landmarks: LandmarkInput = None,
            correspondence: Correspondence | None = None) -> Fit:
        """One frame: see `fit_expressions`."""
        basis = self.basis
        points = check_points("vertices", vertices)
        if correspondence is not None and correspondence.valid.shape[0] != basis.vertex_count:
            raise FittingError("the correspondence was found for another model (vertex count differs)")
        if correspondence is not None and self._same_target_topology(correspondence, points.shape[0], triangles):
            assert self._subset is not None
            _, used, gram, corners, bary, _ = self._subset
            # Correspondence.resample, for the vertices it places only.
            resampled = (bary[:, 0:1] * points[corners[:, 0]] + bary[:, 1:2] * points[corners[:, 1]]
                         + bary[:, 2:3] * points[corners[:, 2]])
            return self._fit_direct(resampled, used, gram)
        target = make_target(basis, points, triangles)
        if target.direct is not None:
            return self._fit_direct(points, np.arange(basis.vertex_count), self._all)
        return self._fit_surface(target, landmarks)

    def _same_target_topology(self, correspondence: Correspondence, vertex_count: int, triangles: Any) -> bool:
        """Whether `triangles` is the topology `correspondence` was found on (then the
        fitter holds what the gather and the solve need, in `_subset`). The first frame
        compares every triangle (`Correspondence.matches`); later frames of the same
        correspondence compare the triangles it places model vertices on, which are all
        the gather reads, so a 70,000-triangle target is not compared whole every frame."""
        if self._subset is not None and self._subset[0] is correspondence:
            if triangles is None:
                return False
            tris = np.asarray(triangles)
            placed = self._subset[5]
            return bool(tris.shape == correspondence.target_triangles.shape
                        and int(self._subset[3].max()) < vertex_count
                        and np.array_equal(tris[placed], self._subset[3]))
        if not correspondence.matches(vertex_count, triangles):
            return False
        used = np.flatnonzero(correspondence.valid)
        if used.size < 3:
            raise FittingError("the correspondence places fewer than 3 model vertices on the target")
        placed = correspondence.triangle[used]
        corners = np.ascontiguousarray(correspondence.target_triangles[placed])
        self._subset = (correspondence, used, self._gram(used), corners,
                        np.ascontiguousarray(correspondence.barycentric[used]), placed)
        return True

    def _fit_direct(self, target: F64, used: I64, gram: Gram) -> Fit:
        """Vertex-for-vertex: Gauss-Newton on the pose (a small rotation, scale and shift
        about the current one) and the weights together, the weights bounded to [0, 1].
        Pose and weights are solved jointly because jaw and mouth shapes look partly like a
        head turn: alternating the two converges slowly. target (K, 3): the point for each
        model vertex in `used`.

        Every sum over the vertices a round needs (x_i = n_i + b_i z the model's shape,
        y_i the target) is linear or quadratic in z and linear in the y_i, so one product
        of the target with `Gram.frame` per frame and the precomputed `Gram` give them:
        the rounds are small dense algebra only."""
        count = self.basis.blend_count
        weight = self.options.dense_sigma ** -2
        precision = self.problem.precision
        k = float(target.shape[0])
        sums = target.T @ gram.frame                                      # (3, 3B + 4)
        moments = sums[:, :3 * count].reshape(3, 3, count)                # sum_i y_ic b_i[a, k]
        moments_flat = moments.reshape(9, count)
        y_n = sums[:, 3 * count:3 * count + 3]                            # sum_i y_ic n_ia
        y_sum = sums[:, -1]
        z = np.zeros(count) if self.previous is None else self.previous.copy()

        def model_sums(z: F64) -> tuple[F64, F64, float, F64]:
            """sum x_i, sum x_i x_i', sum |x_i|^2 and sum x_i y_i' for the weights z."""
            blend_z = gram.blend_sum @ z
            n_b = gram.neutral_blend @ z                                  # sum n_ia (b_i z)_c
            outer = gram.neutral_outer + n_b + n_b.T + (gram.pair @ z @ z).reshape(3, 3)
            x_y = y_n.T + (moments @ z).T                                 # sum x_ia y_ic
            return gram.neutral_sum + blend_z, outer, float(np.trace(outer)), x_y

        # The previous frame's pose is the start when it is still close (a video); else Umeyama.
        pose = self._previous_pose
        sx, outer, sq, x_y = model_sums(z)
        if pose is not None:
            # sum |q_i - x_i|^2 with q_i the target in the model's frame, from the sums.
            s, r, t = pose.scale, pose.rotation, pose.translation
            q_sq = (float(np.einsum("ij,ij->", target, target)) - 2.0 * float(t @ y_sum) + k * float(t @ t)) / (s * s)
            x_q = (x_y - np.outer(sx, t)) @ r / s
            if np.sqrt(max(q_sq - 2.0 * float(np.trace(x_q)) + sq, 0.0) / (3.0 * k)) > 0.6:
                pose = None
        if pose is None:
            shape = gram.neutral + (gram.frame[:, :3 * count].reshape(-1, count) @ z).reshape(-1, 3)
            pose = Pose(*similarity(shape, target))
        hessian = np.zeros((7 + count, 7 + count))
        hessian[7:, 7:] = weight * gram.gram + np.diag(precision)
        rigid = np.zeros((7, 7))
        rigid[4:7, 4:7] = k * np.eye(3)
        gradient = np.empty(7 + count)
        lower = np.concatenate([np.full(7, -np.inf), np.zeros(count)])
        upper = np.concatenate([np.full(7, np.inf), np.ones(count)])
        done = 0
        for done in range(1, self.options.expression_iterations + 1):
            if done > 1:
                sx, outer, sq, x_y = model_sums(z)
            s, r, t = pose.scale, pose.rotation, pose.translation
            x_q = (x_y - np.outer(sx, t)) @ r / s                        # sum x_i q_i'
            q_sum = r.T @ (y_sum - k * t) / s
            rigid[:3, :3] = sq * np.eye(3) - outer
            rigid[:3, 4:7] = _skew(sx)
            rigid[4:7, :3] = rigid[:3, 4:7].T
            rigid[3, 3] = sq
            rigid[3, 4:7] = sx
            rigid[4:7, 3] = sx
            x_b = gram.neutral_flat + gram.gram @ z                      # sum_i x_i' b_i
            hessian[:7, :7] = weight * rigid
            hessian[:3, 7:] = weight * (gram.cross_0 + gram.cross_z @ z)
            hessian[3, 7:] = weight * x_b
            hessian[4:7, 7:] = weight * gram.blend_sum
            hessian[7:, :7] = hessian[:7, 7:].T
            q_b = (r.ravel() @ moments_flat - (t @ r) @ gram.blend_sum) / s   # sum_i q_i' b_i
            gradient[0] = x_q[1, 2] - x_q[2, 1]                             # sum x_i x (q_i - x_i)
            gradient[1] = x_q[2, 0] - x_q[0, 2]
            gradient[2] = x_q[0, 1] - x_q[1, 0]
            gradient[3] = float(np.trace(x_q)) - sq
            gradient[4:7] = q_sum - sx
            gradient[7:] = q_b - x_b
            gradient *= weight
            gradient[7:] -= precision * z
            lower[7:], upper[7:] = -z, 1.0 - z
            step = active_set_quadratic(hessian, gradient, lower, upper)
            z = np.minimum(np.maximum(z + step[7:], 0.0), 1.0)
            pose = Pose(s * (1.0 + step[3]), r @ _rotation(step[:3]), t + s * r @ step[4:7])
            # The weights enter linearly and the shift exactly: only the rotation and scale
            # steps are linearised, the weights' error being a small multiple of their
            # product with the weight step (and of their square). When that product is
            # below 5e-4 another round moves no weight by more than about 2e-3 (the next
            # frame, starting here, corrects it anyway): stop. In a video that is most
            # frames after the first.
            turn = float(np.abs(step[:4]).max())
            if turn < 5e-3 and turn * float(np.abs(step[7:]).max(initial=0.0)) < 5e-4:
                break
        self.previous = z
        self._previous_pose = pose
        full = self.problem.neutral + (self._flat @ z).reshape(-1, 3)
        posed = pose.apply(full)
        dense = np.full(self.basis.vertex_count, np.nan)
        dense[used] = np.linalg.norm(posed[used] - target, axis=1)
        return Fit(scale=pose.scale, rotation=pose.rotation, translation=pose.translation,
                   coefficients=self.coefficients.copy(),
                   expression_weights=dict(zip(self.basis.blend_names, map(float, z))), vertices=posed,
                   residual=self.residual, landmark_errors={}, dense_errors=dense, iterations=done)

    def _fit_surface(self, target: Target, landmarks: LandmarkInput) -> Fit:
        """Any other topology: closest points, as fit_model does, with the identity fixed."""
        lms, notes = target_landmarks(self.basis, landmarks)
        problem = self.problem
        from .engine import initial_pose
        pose, start_notes = initial_pose(problem, target, lms)
        start = np.zeros(self.basis.blend_count) if self.previous is None else self.previous
        reg = register(problem, target, lms, pose, start, self.options, self.options.iterations)
        self.previous = reg.z
        dense, correspondence = final_matches(problem, target, reg.shape, reg.pose, reg.threshold, self.options)
        posed = reg.pose.apply(reg.shape)
        errors: dict[int, float] = {}
        if lms is not None:
            distances = np.linalg.norm(posed[lms.vertices] - lms.points, axis=1)
            errors = {int(n): float(d) for n, d in zip(lms.numbers, distances)}
        return Fit(scale=reg.pose.scale, rotation=reg.pose.rotation, translation=reg.pose.translation,
                   coefficients=self.coefficients.copy(),
                   expression_weights=dict(zip(self.basis.blend_names, map(float, reg.z))), vertices=posed,
                   residual=self.residual, landmark_errors=errors, dense_errors=dense,
                   correspondence=correspondence, iterations=reg.iterations, notes=notes + start_notes)


def _skew(v: F64) -> F64:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def _rotation(omega: F64) -> F64:
    """Rodrigues: the rotation by |omega| radians about omega."""
    angle = float(np.linalg.norm(omega))
    if angle < 1e-12:
        return np.eye(3)
    k = _skew(omega / angle)
    result: F64 = np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)
    return result


_FITTERS: dict[tuple[int, bytes, int], ExpressionFitter] = {}


def fit_expressions(model: FaceModel, identity: Any, vertices: Any, triangles: Any = None,
                    landmarks: LandmarkInput = None, correspondence: Correspondence | None = None,
                    options: FitOptions | None = None) -> Fit:
    """Fit only the pose and the blend-shape weights of `model` with `identity` (the mode
    coefficients (M,), or a Fit) held fixed.

    vertices (N, 3) / triangles (T, 3): the target. The model's own topology (N = V, its
    triangles or None) is taken vertex for vertex; with `correspondence` (a Fit's, found on
    this target topology) the target is resampled in one gather; otherwise closest points.
    Fitters are cached per (model, identity, options), so calling this per frame reuses
    the precomputed matrices; `ExpressionFitter` does the same explicitly.
    """
    coefficients = identity.coefficients if isinstance(identity, Fit) else np.asarray(identity, dtype=np.float64)
    residual_key = identity.residual.tobytes() if isinstance(identity, Fit) else b""
    key = (id(model), np.asarray(coefficients, dtype=np.float64).tobytes() + residual_key, id(options))
    fitter = _FITTERS.get(key)
    if fitter is None or fitter.basis is not model_basis(model):
        if len(_FITTERS) > 8:
            _FITTERS.clear()
        fitter = ExpressionFitter(model, identity, options)
        _FITTERS[key] = fitter
    return fitter.fit(vertices, triangles, landmarks, correspondence)
