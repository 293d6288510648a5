# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The registration loop both fits run: correspondences on the target, a similarity
pose (Umeyama), and a bounded least-squares solve of the free linear columns
(shape modes and/or blend shapes), repeated; then the optional smooth residual.

Everything is solved in the model's frame: the target is brought there with the
inverse of the current pose, so lengths and priors are in model units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .dependencies import require_sparse, require_sparse_linalg
from .errors import FittingError
from .geometry import Surface, similarity, uniform_laplacian, vertex_normals
from .result import Correspondence, FitOptions
from .solve import bounded_quadratic

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


@dataclass
class Problem:
    """x(z) = neutral + columns @ z, z bounded by [lower, upper] with prior precision."""

    neutral: F64          # (V, 3)
    columns: F64          # (V, 3, P)
    precision: F64        # (P,)
    lower: F64
    upper: F64
    triangles: I64        # the model's triangles (for normals and the residual)
    skin: I64             # vertices matched against a surface

    def shape(self, z: F64) -> F64:
        result: F64 = self.neutral + self.columns @ z
        return result


@dataclass
class Landmarks:
    vertices: I64         # model vertices
    points: F64           # (K, 3) target points
    numbers: I64


@dataclass
class Pose:
    scale: float
    rotation: F64
    translation: F64

    def apply(self, points: F64) -> F64:
        result: F64 = self.scale * points @ self.rotation.T + self.translation
        return result

    def inverse(self, points: F64) -> F64:
        result: F64 = (points - self.translation) @ self.rotation / self.scale
        return result


@dataclass
class Matches:
    """Accepted correspondences of model vertices `vertices` to target points (target space)."""

    vertices: I64
    points: F64
    normals: F64 | None       # target normals (None: vertex-for-vertex, point-to-point only)
    triangle: I64 | None
    barycentric: F64 | None
    distance: F64             # target units


class Target:
    """The target of a fit: a surface (closest points), a same-topology mesh (vertex for
    vertex), resampled points (a known correspondence), or nothing (landmarks only)."""

    def __init__(self, surface: Surface | None = None, direct: F64 | None = None,
                 direct_vertices: I64 | None = None) -> None:
        self.surface = surface
        self.direct = direct                   # (V, 3) target point per model vertex
        self.direct_vertices = direct_vertices  # which model vertices have one
        self._normal_sign = 0.0

    @property
    def empty(self) -> bool:
        return self.surface is None and self.direct is None

    def match(self, problem: Problem, shape: F64, pose: Pose, threshold: float,
              options: FitOptions) -> Matches | None:
        if self.direct is not None and self.direct_vertices is not None:
            vertices = self.direct_vertices
            points = self.direct[vertices]
            distance = np.linalg.norm(pose.apply(shape[vertices]) - points, axis=1)
            return Matches(vertices, points, None, None, None, distance)
        if self.surface is None:
            return None
        skin = problem.skin
        posed = pose.apply(shape[skin])
        hits = self.surface.query(posed)
        model_normals = vertex_normals(shape, problem.triangles)[skin] @ pose.rotation.T
        dots = (model_normals * hits.normals).sum(axis=1)
        near = hits.distance <= threshold * pose.scale
        if self._normal_sign == 0.0:
            # A target wound the other way round has inward normals: flip them once.
            self._normal_sign = -1.0 if np.count_nonzero(dots[near] < 0.0) > np.count_nonzero(dots[near] > 0.0) \
                else 1.0
        dots = dots * self._normal_sign
        keep = near & ~hits.on_boundary & (dots >= math.cos(math.radians(options.max_normal_angle)))
        return Matches(skin[keep], hits.points[keep], hits.normals[keep] * self._normal_sign,
                       hits.triangle[keep], hits.barycentric[keep], hits.distance[keep])


def initial_pose(problem: Problem, target: Target, landmarks: Landmarks | None) -> tuple[Pose, list[str]]:
    """The starting similarity: from the landmarks (Umeyama), else from the target's points
    (centroid and size, no rotation)."""
    notes: list[str] = []
    if landmarks is not None and landmarks.vertices.size >= 3:
        try:
            return Pose(*similarity(problem.neutral[landmarks.vertices], landmarks.points)), notes
        except FittingError:
            if target.empty:
                raise
            notes.append("the landmarks are degenerate (collinear): the start pose comes from the surface")
    if target.direct is not None and target.direct_vertices is not None:
        vertices = target.direct_vertices
        return Pose(*similarity(problem.neutral[vertices], target.direct[vertices])), notes
    if target.surface is None:
        raise FittingError("a landmarks-only fit needs at least 3 landmarks the model has (iBUG-68 numbers)")
    # The front of the face (normals towards +Z) against the whole target: a target is
    # usually a face seen from the front, not a whole head.
    normals = vertex_normals(problem.neutral, problem.triangles)[problem.skin]
    front = problem.skin[normals[:, 2] > 0.5]
    source = problem.neutral[front if front.size >= 3 else problem.skin]
    points = target.surface.vertices[np.unique(target.surface.triangles)]
    size_s = float(np.sqrt(((source - source.mean(0)) ** 2).sum(1).mean()))
    size_t = float(np.sqrt(((points - points.mean(0)) ** 2).sum(1).mean()))
    scale = size_t / size_s if size_s > 0 else 1.0
    rotation = np.eye(3)
    notes.append("no landmarks: the start pose assumes the target faces the model's way (+Z) with no rotation")
    return Pose(scale, rotation, points.mean(0) - scale * source.mean(0)), notes


def rigid_columns(points: F64) -> F64:
    """(K, 3, 7) derivatives of (1 + sigma)(I + [omega]x) p + tau by (omega, sigma, tau) at 0."""
    k = points.shape[0]
    columns = np.zeros((k, 3, 7))
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    # omega x p = -[p]x omega
    columns[:, 0, 1], columns[:, 0, 2] = z, -y
    columns[:, 1, 0], columns[:, 1, 2] = -z, x
    columns[:, 2, 0], columns[:, 2, 1] = y, -x
    columns[:, :, 3] = points
    columns[:, 0, 4] = columns[:, 1, 5] = columns[:, 2, 6] = 1.0
    return columns


def rotation_from(omega: F64) -> F64:
    """Rodrigues: the rotation by |omega| radians about omega."""
    angle = float(np.linalg.norm(omega))
    if angle < 1e-12:
        return np.eye(3)
    kx, ky, kz = omega / angle
    k = np.array([[0.0, -kz, ky], [kz, 0.0, -kx], [-ky, kx, 0.0]])
    result: F64 = np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)
    return result


def updated_pose(pose: Pose, step: F64) -> Pose:
    """The pose after a Gauss-Newton step (omega, sigma, tau) taken in the model's frame."""
    return Pose(pose.scale * (1.0 + float(step[3])), pose.rotation @ rotation_from(step[:3]),
                pose.translation + pose.scale * pose.rotation @ step[4:7])


def _normal_equations(problem: Problem, z: F64, shape: F64, matches: Matches | None,
                      landmarks: Landmarks | None, pose: Pose, options: FitOptions,
                      solve_shape: bool) -> tuple[F64, F64]:
    """H, g of the linearised problem in (pose step (7), z step (P)): the pose about the
    current one and the columns together, point-to-plane for surface matches."""
    count = problem.columns.shape[2] if solve_shape else 0
    size = 7 + count
    hessian = np.zeros((size, size))
    gradient = np.zeros(size)
    hessian[7:, 7:] = np.diag(problem.precision[:count])
    gradient[7:] = -problem.precision[:count] * z[:count]

    def columns(vertices: I64) -> F64:
        rigid = rigid_columns(shape[vertices])
        if not count:
            return rigid
        return np.concatenate([rigid, problem.columns[vertices]], axis=2)

    if landmarks is not None and landmarks.vertices.size:
        weight = options.landmark_sigma ** -2
        jac = columns(landmarks.vertices).reshape(-1, size)
        rest = (pose.inverse(landmarks.points) - shape[landmarks.vertices]).ravel()
        hessian += weight * (jac.T @ jac)
        gradient += weight * (jac.T @ rest)
    if matches is not None and matches.vertices.size:
        weight = options.dense_sigma ** -2
        jac3 = columns(matches.vertices)                                # (K, 3, 7 + P)
        rest3 = pose.inverse(matches.points) - shape[matches.vertices]
        if matches.normals is None:
            jac = jac3.reshape(-1, size)
            hessian += weight * (jac.T @ jac)
            gradient += weight * (jac.T @ rest3.ravel())
        else:
            normals = matches.normals @ pose.rotation                  # into the model frame
            jac_n = np.einsum("kd,kdp->kp", normals, jac3)
            rest_n = (normals * rest3).sum(axis=1)
            hessian += weight * (jac_n.T @ jac_n)
            gradient += weight * (jac_n.T @ rest_n)
            if options.point_to_point > 0.0:
                jac = jac3.reshape(-1, size)
                hessian += weight * options.point_to_point * (jac.T @ jac)
                gradient += weight * options.point_to_point * (jac.T @ rest3.ravel())
    # A pose needs 3 points; keep the step well posed when there are fewer.
    hessian[:7, :7] += 1e-9 * np.eye(7) * max(1.0, float(np.trace(hessian[:7, :7])))
    return hessian, gradient


def _next_threshold(matches: Matches | None, pose: Pose, options: FitOptions, current: float) -> float:
    if matches is None or matches.distance.size < 10:
        return current
    typical = float(np.median(matches.distance)) / pose.scale
    return float(min(options.max_distance, max(options.min_distance, 4.0 * typical)))


@dataclass
class Registration:
    pose: Pose
    z: F64
    shape: F64
    threshold: float
    iterations: int


def register(problem: Problem, target: Target, landmarks: Landmarks | None, pose: Pose, z: F64,
             options: FitOptions, iterations: int, solve_shape: bool = True,
             fix_scale: bool = False) -> Registration:
    """Rounds of correspondences, then one Gauss-Newton step on the pose and the columns
    together (bounded), `iterations` times (fewer for a vertex-for-vertex target once it
    has converged)."""
    threshold = options.max_distance
    shape = problem.shape(z)
    count = problem.columns.shape[2] if solve_shape else 0
    lower = np.concatenate([np.full(7, -np.inf), problem.lower[:count]])
    upper = np.concatenate([np.full(7, np.inf), problem.upper[:count]])
    if fix_scale:
        # Closest points alone pull a free scale down (a smaller face fits inside the target).
        lower[3] = upper[3] = 0.0
    done = 0
    for done in range(1, iterations + 1):
        matches = target.match(problem, shape, pose, threshold, options)
        if matches is not None and matches.vertices.size == 0 and (landmarks is None or landmarks.vertices.size < 3):
            raise FittingError("no model vertex found a place on the target surface: the target does not "
                               "overlap the model (give landmarks to place the model first)")
        hessian, gradient = _normal_equations(problem, z, shape, matches, landmarks, pose, options, solve_shape)
        step = bounded_quadratic(hessian, gradient, np.concatenate([lower[:7], lower[7:] - z[:count]]),
                                 np.concatenate([upper[:7], upper[7:] - z[:count]]))
        pose = updated_pose(pose, step)
        if count:
            z = z.copy()
            z[:count] = np.clip(z[:count] + step[7:], problem.lower[:count], problem.upper[:count])
            shape = problem.shape(z)
        threshold = _next_threshold(matches, pose, options, threshold)
        if target.direct is not None and float(np.abs(step).max()) < 1e-7:
            break
    return Registration(pose=pose, z=z, shape=shape, threshold=threshold, iterations=done)


def smooth_residual(problem: Problem, target: Target, landmarks: Landmarks | None, reg: Registration,
                    options: FitOptions) -> F64:
    """Per-vertex offsets d (model frame) that bring the fitted shape onto the target where it
    is matched and stay smooth elsewhere: minimises the distances of shape + d to the matched
    target points plus smoothness * sum over mesh edges |d_i - d_j|^2 (the stiffness term
    of optimal-step non-rigid ICP, Amberg et al. 2007, with translations per vertex) and a
    small pull of d towards zero that anchors the parts no target point reaches. One sparse
    factorisation per round, x/y/z solved together."""
    sparse = require_sparse()
    splinalg = require_sparse_linalg()
    count = problem.neutral.shape[0]
    laplacian = uniform_laplacian(problem.triangles, count)
    stiffness = (options.residual_smoothness * laplacian + 1e-3 * sparse.identity(count, format="csr")).tocsr()
    offsets = np.zeros((count, 3))
    landmark_weight = (options.dense_sigma / options.landmark_sigma) ** 2
    for _ in range(options.residual_iterations):
        weight = np.zeros(count)
        rhs = np.zeros((count, 3))
        matches = target.match(problem, reg.shape + offsets, reg.pose, reg.threshold, options)
        if matches is not None and matches.vertices.size:
            weight[matches.vertices] += 1.0
            rhs[matches.vertices] += reg.pose.inverse(matches.points) - reg.shape[matches.vertices]
        if landmarks is not None and landmarks.vertices.size:
            np.add.at(weight, landmarks.vertices, landmark_weight)
            np.add.at(rhs, landmarks.vertices,
                      landmark_weight * (reg.pose.inverse(landmarks.points) - reg.shape[landmarks.vertices]))
        if not weight.any():
            break
        system = (sparse.diags(weight) + stiffness).tocsc()
        offsets = np.asarray(splinalg.splu(system).solve(rhs), dtype=np.float64).reshape(count, 3)
    return offsets


def final_matches(problem: Problem, target: Target, shape: F64, pose: Pose, threshold: float,
                  options: FitOptions) -> tuple[F64, Correspondence | None]:
    """Per-vertex distance to the target (NaN where unmatched) and the correspondence found."""
    count = shape.shape[0]
    errors = np.full(count, np.nan)
    matches = target.match(problem, shape, pose, threshold, options)
    if matches is None:
        return errors, None
    errors[matches.vertices] = matches.distance
    if matches.triangle is None or matches.barycentric is None or target.surface is None:
        return errors, None
    triangle = np.zeros(count, dtype=np.int64)
    bary = np.zeros((count, 3))
    valid = np.zeros(count, dtype=bool)
    triangle[matches.vertices] = matches.triangle
    bary[matches.vertices] = matches.barycentric
    valid[matches.vertices] = True
    return errors, Correspondence(triangle=triangle, barycentric=bary, valid=valid,
                                  target_triangles=target.surface.triangles)
