# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""`fit_model`: an .nvf face model fitted to a target surface of any topology and units."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import numpy.typing as npt


from .basis import ModelBasis, model_basis
from .engine import Landmarks, Pose, Problem, Target, final_matches, initial_pose, register, smooth_residual
from .errors import FittingError
from .geometry import Surface, check_points, check_triangles
from .result import Fit, FitOptions

if TYPE_CHECKING:
    # Only for annotations: the package is imported as `io_nv3dmm` from a clone and as
    # the add-on's subpackage inside Blender; the fits only read the model's arrays.
    from ..io_nv3dmm import FaceModel

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

LandmarkInput = Mapping[int, Any] | None


def target_landmarks(basis: ModelBasis, landmarks: LandmarkInput) -> tuple[Landmarks | None, list[str]]:
    """The given iBUG-68 landmarks the model has, as model vertices and target points."""
    if landmarks is None or len(landmarks) == 0:
        return None, []
    if not isinstance(landmarks, Mapping):
        raise FittingError("landmarks must be a mapping from iBUG-68 number (1..68) to a 3D point")
    numbers, vertices, points, missing = [], [], [], []
    for key, value in landmarks.items():
        try:
            number = int(key)
        except (TypeError, ValueError) as exc:
            raise FittingError(f"landmark key {key!r} is not an iBUG-68 number") from exc
        if number != key and not isinstance(key, (int, np.integer, str)):
            raise FittingError(f"landmark key {key!r} is not an iBUG-68 number")
        if number < 1:
            raise FittingError(f"landmark number {number} is not a 1-based iBUG number")
        point = np.asarray(value, dtype=np.float64).reshape(-1)
        if point.shape != (3,) or not np.isfinite(point).all():
            raise FittingError(f"landmark {number} must be a finite 3D point, got {value!r}")
        vertex = basis.landmark_vertex(number)
        if vertex is None:
            missing.append(number)
            continue
        numbers.append(number)
        vertices.append(vertex)
        points.append(point)
    notes = [f"the model has no vertex for iBUG landmark(s) {sorted(missing)}; ignored"] if missing else []
    if not numbers:
        return None, notes
    return Landmarks(vertices=np.asarray(vertices, dtype=np.int64), points=np.asarray(points),
                     numbers=np.asarray(numbers, dtype=np.int64)), notes


def make_target(basis: ModelBasis, vertices: Any, triangles: Any) -> Target:
    """A surface target, or a vertex-for-vertex one when it has the model's own topology."""
    if vertices is None:
        if triangles is not None:
            raise FittingError("triangles were given without vertices")
        return Target()
    points = check_points("vertices", vertices)
    if triangles is None:
        if points.shape[0] == basis.vertex_count:
            return Target(direct=points, direct_vertices=np.arange(basis.vertex_count))
        raise FittingError("a target surface needs its triangles (T, 3), unless it has the model's own "
                           f"{basis.vertex_count} vertices")
    tris = check_triangles(triangles, points.shape[0])
    if points.shape[0] == basis.vertex_count and tris.shape == basis.triangles.shape \
            and np.array_equal(tris, basis.triangles):
        return Target(direct=points, direct_vertices=np.arange(basis.vertex_count))
    return Target(surface=Surface(points, tris))


def _finish(basis: ModelBasis, problem: Problem, target: Target, landmarks: Landmarks | None,
            pose: Pose, shape: F64, residual: F64, coefficients: F64, weights: F64, threshold: float,
            options: FitOptions, iterations: int, notes: list[str]) -> Fit:
    dense, correspondence = final_matches(problem, target, shape, pose, threshold, options)
    posed = pose.apply(shape)
    errors: dict[int, float] = {}
    if landmarks is not None:
        distances = np.linalg.norm(posed[landmarks.vertices] - landmarks.points, axis=1)
        errors = {int(n): float(d) for n, d in zip(landmarks.numbers, distances)}
    return Fit(scale=pose.scale, rotation=pose.rotation, translation=pose.translation,
               coefficients=coefficients, expression_weights=dict(zip(basis.blend_names, map(float, weights))),
               vertices=posed, residual=residual, landmark_errors=errors, dense_errors=dense,
               correspondence=correspondence, iterations=iterations, notes=notes)


def fit_model(model: FaceModel, vertices: Any, triangles: Any, landmarks: LandmarkInput = None,
              options: FitOptions | None = None) -> Fit:
    """Fit `model` to a target surface (vertices (N, 3), triangles (T, 3), any topology and
    units) and/or iBUG-68 landmarks ({number: (x, y, z)}, any subset).

    A similarity from the landmarks (Umeyama), then rounds of closest points on the target
    (rejected by distance, normal angle and the target's border) with regularised least
    squares on the shape modes (prior from the eigenvalues) and bounded least squares on
    the blend-shape weights, then the optional smooth non-rigid residual. Raises
    FittingError for unusable inputs.
    """
    options = options or FitOptions()
    options.check()
    basis = model_basis(model)
    target = make_target(basis, vertices, triangles)
    lms, notes = target_landmarks(basis, landmarks)
    if target.empty and (lms is None or lms.vertices.size < 3):
        raise FittingError("nothing to fit: give a target surface, or at least 3 iBUG-68 landmarks the "
                           "model has")
    modes, blends = basis.mode_count, basis.blend_count
    solve_blends = options.fit_expressions and blends > 0
    count = modes + (blends if solve_blends else 0)
    eigen = np.maximum(basis.eigenvalues, 1e-12)
    precision = np.concatenate([options.shape_prior / eigen,
                                np.full(count - modes, options.expression_sigma ** -2)])
    problem = Problem(neutral=basis.mean, columns=basis.columns[:, :, :count], precision=precision,
                      lower=np.concatenate([np.full(modes, -np.inf), np.zeros(count - modes)]),
                      upper=np.concatenate([np.full(modes, np.inf), np.ones(count - modes)]),
                      triangles=basis.triangles, skin=basis.skin)
    pose, start_notes = initial_pose(problem, target, lms)
    notes += start_notes
    free_scale = lms is not None and lms.vertices.size >= 3
    if not free_scale and target.surface is not None:
        # No landmarks to hold the pose: a few rigid rounds first, so the first shape solve
        # does not chase correspondences from a rough start; and the scale stays the one
        # from the target's size (closest points alone trade it for the modes, and drift).
        pose = register(problem, target, lms, pose, np.zeros(count), options, 5, solve_shape=False,
                        fix_scale=True).pose
        notes.append("no landmarks: the scale is fixed from the target's size; the modes fit the rest")
    reg = register(problem, target, lms, pose, np.zeros(count), options, options.iterations,
                   fix_scale=not free_scale and target.surface is not None)
    residual = np.zeros_like(basis.mean)
    if options.residual and target.surface is not None:
        residual = smooth_residual(problem, target, lms, reg, options)
    weights = np.zeros(blends)
    weights[:count - modes] = reg.z[modes:]
    return _finish(basis, problem, target, lms, reg.pose, reg.shape + residual, residual,
                   reg.z[:modes].copy(), weights, reg.threshold, options, reg.iterations, notes)
