# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Targets whose answer is known, for checking a fit (tests, benchmarks, and anyone
measuring how well a model fits): a face model posed with random mode coefficients
and expression weights, re-sampled to another topology (a regular grid cast onto
the face from the front, so no target vertex is a model vertex), cropped to the
front of the face, with noise and outliers, moved by a random similarity."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt


from .basis import ModelBasis, model_basis
from .dependencies import require_spatial
from .geometry import Surface, closest_on_triangles

if TYPE_CHECKING:
    # Only for annotations: the package is imported as `io_nv3dmm` from a clone and as
    # the add-on's subpackage inside Blender; the fits only read the model's arrays.
    from ..io_nv3dmm import FaceModel

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


@dataclass
class GroundTruth:
    """A target and the answer: target = scale * rotation @ truth + translation (+ noise)."""

    coefficients: F64          # (M,)
    weights: F64               # (B,)
    truth: F64                 # (V, 3) the posed model in its own frame (no noise)
    scale: float
    rotation: F64
    translation: F64
    vertices: F64              # (N, 3) the target, in its own space
    triangles: I64             # (T, 3)
    landmarks: dict[int, F64]  # iBUG number -> target-space point
    covered: Bool              # (V,) model vertices the target surface covers
    embedding: tuple[I64, F64] | None = None   # model triangle and barycentrics of each target vertex

    def same_topology(self, model: FaceModel, weights: F64, seed: int, noise: float = 0.03) -> "GroundTruth":
        """Another frame of this target: the same target vertices and triangles (each at the same
        place on the model's surface), the same identity and pose, other expression weights."""
        basis = model_basis(model)
        rng = np.random.default_rng(seed)
        truth = basis.shape(self.coefficients, weights)
        if self.embedding is None:
            points = truth.copy()
        else:
            triangle, bary = self.embedding
            points = np.einsum("nk,nkd->nd", bary, truth[basis.triangles[triangle]])
        points = points + rng.normal(scale=noise, size=points.shape)
        return dataclasses.replace(self, weights=weights, truth=truth,
                                   vertices=self.scale * points @ self.rotation.T + self.translation)

    def to_model(self, points: F64) -> F64:
        """Target-space points back in the model's frame, with the true similarity."""
        result: F64 = (points - self.translation) @ self.rotation / self.scale
        return result


def random_rotation(rng: np.random.Generator, max_degrees: tuple[float, float, float]) -> F64:
    """A rotation of up to (pitch, yaw, roll) degrees about x, y, z."""
    angles = np.radians([rng.uniform(-m, m) for m in max_degrees])
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    result: F64 = rz @ ry @ rx
    return result


def random_face(basis: ModelBasis, rng: np.random.Generator, coefficient_scale: float = 1.0,
                expressions: int = 6, coefficients: F64 | None = None) -> tuple[F64, F64, F64]:
    """(coefficients, weights, shape): coefficients ~ N(0, eigenvalue) * scale, a few
    blend shapes at weights in [0.1, 0.9], the rest 0."""
    if coefficients is None:
        coefficients = rng.normal(size=basis.mode_count) * np.sqrt(np.maximum(basis.eigenvalues, 0.0)) \
            * coefficient_scale
    weights = np.zeros(basis.blend_count)
    if basis.blend_count and expressions:
        chosen = rng.choice(basis.blend_count, size=min(expressions, basis.blend_count), replace=False)
        weights[chosen] = rng.uniform(0.1, 0.9, size=chosen.size)
    return coefficients, weights, basis.shape(coefficients, weights)


def front_grid(shape: F64, triangles: I64, spacing: float, crop: float,
               rng: np.random.Generator) -> tuple[F64, I64, I64, F64]:
    """A regular grid (spacing in model units, turned by a random angle) cast along -Z onto
    the front-facing triangles; cells with 4 hits become 2 triangles. Points beyond `crop`
    of the face's half width / height (an ellipse) are left out. Returns (points, faces,
    the index into `triangles` and the barycentric coordinates each point was cast onto)."""
    a, b, c = (shape[triangles[:, k]] for k in range(3))
    normal = np.cross(b - a, c - a)
    front = normal[:, 2] > 1e-3 * np.linalg.norm(normal, axis=1).clip(1e-300)
    tris = triangles[front]
    a, b, c = a[front], b[front], c[front]
    used = shape[np.unique(tris)]
    centre = 0.5 * (used[:, :2].min(0) + used[:, :2].max(0))
    half = 0.5 * (used[:, :2].max(0) - used[:, :2].min(0)) * crop
    angle = rng.uniform(0, np.pi / 2)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    reach = float(np.hypot(*half)) + spacing
    steps = np.arange(-reach, reach + spacing, spacing) + rng.uniform(0, spacing)
    gu, gv = np.meshgrid(steps, steps, indexing="ij")
    grid = np.stack([gu.ravel(), gv.ravel()], axis=1) @ turn.T + centre
    inside = (((grid - centre) / half) ** 2).sum(1) <= 1.0
    # Ray cast: for each grid point, the candidate triangles with the nearest centroids.
    centroids = (a + b + c)[:, :2] / 3.0
    k = min(32, tris.shape[0])
    _, near = require_spatial().cKDTree(centroids).query(grid, k=k)
    near = np.asarray(near).reshape(grid.shape[0], k)
    pa, pb, pc = a[near][..., :2], b[near][..., :2], c[near][..., :2]
    p = grid[:, None, :]
    v0, v1, v2 = pb - pa, pc - pa, p - pa
    den = v0[..., 0] * v1[..., 1] - v1[..., 0] * v0[..., 1]
    safe = np.where(np.abs(den) > 1e-12, den, 1.0)
    bv = (v2[..., 0] * v1[..., 1] - v1[..., 0] * v2[..., 1]) / safe
    bw = (v0[..., 0] * v2[..., 1] - v2[..., 0] * v0[..., 1]) / safe
    bu = 1.0 - bv - bw
    hit = (np.abs(den) > 1e-12) & (bu >= 0) & (bv >= 0) & (bw >= 0)
    z = bu * a[near][..., 2] + bv * b[near][..., 2] + bw * c[near][..., 2]
    z = np.where(hit, z, -np.inf)
    best = np.argmax(z, axis=1)
    rows = np.arange(grid.shape[0])
    depth = z[rows, best]
    hit_triangle = np.flatnonzero(front)[near[rows, best]]
    hit_bary = np.stack([bu[rows, best], bv[rows, best], bw[rows, best]], axis=1)
    valid = inside & np.isfinite(depth)
    points = np.column_stack([grid, np.where(valid, depth, 0.0)])
    n = steps.size
    index = np.arange(n * n).reshape(n, n)
    quads = np.stack([index[:-1, :-1].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel(),
                      index[:-1, 1:].ravel()], axis=1)
    quads = quads[valid[quads].all(axis=1)]
    # The grid is (u, v) turned: keep the triangles counter-clockwise seen from +Z.
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    pa3, pb3, pc3 = points[faces[:, 0]], points[faces[:, 1]], points[faces[:, 2]]
    flip = np.cross(pb3 - pa3, pc3 - pa3)[:, 2] < 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    keep = np.unique(faces)
    remap = np.full(points.shape[0], -1, dtype=np.int64)
    remap[keep] = np.arange(keep.size)
    return points[keep], remap[faces], hit_triangle[keep], hit_bary[keep]


def make_target(model: FaceModel, seed: int = 0, *, coefficient_scale: float = 1.0, expressions: int = 6,
                noise: float = 0.03, outliers: float = 0.02, spacing: float = 0.3, crop: float = 0.85,
                own_topology: bool = False, landmark_noise: float = 0.03, scale_range: tuple[float, float] = (0.5, 20.0),
                coefficients: F64 | None = None) -> GroundTruth:
    """A target with a known answer (see the module docstring). Lengths in model units.

    own_topology: the target is the model's own mesh (every vertex, the model's triangles),
    posed and noisy, instead of a front grid. outliers: the share of target vertices moved
    1-3 units off the surface.
    """
    rng = np.random.default_rng(seed)
    basis = model_basis(model)
    coefficients, weights, truth = random_face(basis, rng, coefficient_scale, expressions, coefficients)
    embedding = None
    if own_topology:
        points, triangles = truth.copy(), basis.triangles.copy()
    else:
        skin_faces = np.flatnonzero(np.isin(basis.triangles, basis.skin).all(axis=1))
        points, triangles, hit, bary = front_grid(truth, basis.triangles[skin_faces], spacing, crop, rng)
        embedding = (skin_faces[hit], bary)
    covered = _covered(truth, basis, points, triangles, spacing)
    points = points + rng.normal(scale=noise, size=points.shape)
    if outliers > 0:
        moved = rng.random(points.shape[0]) < outliers
        direction = rng.normal(size=(int(moved.sum()), 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        points[moved] += direction * rng.uniform(1.0, 3.0, size=(direction.shape[0], 1))
    scale = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
    rotation = random_rotation(rng, (15.0, 30.0, 15.0))
    translation = rng.uniform(-20, 20, size=3) * scale
    landmarks = {int(n): scale * rotation @ (truth[v] + rng.normal(scale=landmark_noise, size=3)) + translation
                 for n, v in zip(basis.landmark_numbers, basis.landmark_vertices)}
    return GroundTruth(coefficients=coefficients, weights=weights, truth=truth, scale=scale, rotation=rotation,
                       translation=translation, vertices=scale * points @ rotation.T + translation,
                       triangles=triangles, landmarks=landmarks, covered=covered, embedding=embedding)


def _covered(truth: F64, basis: ModelBasis, points: F64, triangles: I64, spacing: float) -> Bool:
    surface = Surface(points, triangles)
    hits = surface.query(truth[basis.skin])
    covered = np.zeros(truth.shape[0], dtype=bool)
    covered[basis.skin[(hits.distance <= 0.5 * spacing) & ~hits.on_boundary]] = True
    return covered


def surface_distance(points: F64, vertices: F64, triangles: I64) -> F64:
    """Distance from each point to a triangle surface (the nearest of its closest points over
    the triangles near it)."""
    surface = Surface(vertices, triangles)
    hits = surface.query(points)
    # The fan of the nearest vertex can miss the closest triangle on coarse meshes: also try
    # the nearest of a brute-force pass over the triangles whose centroid is close.
    centroids = vertices[triangles].mean(axis=1)
    k = min(8, triangles.shape[0])
    _, near = require_spatial().cKDTree(centroids).query(points, k=k)
    near = np.asarray(near).reshape(points.shape[0], k)
    corners = vertices[triangles[near.ravel()]]
    repeated = np.repeat(points, k, axis=0)
    bary = closest_on_triangles(repeated, corners[:, 0], corners[:, 1], corners[:, 2])
    closest = np.einsum("nk,nkd->nd", bary, corners)
    brute = np.linalg.norm(closest - repeated, axis=1).reshape(-1, k).min(axis=1)
    result: F64 = np.minimum(hits.distance, brute)
    return result
