# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Geometry the fits share: similarity transforms, normals, closest points on a
triangle surface, mesh boundaries and the graph Laplacian. numpy (+ SciPy's
KD-tree and sparse matrices, imported lazily)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .dependencies import require_sparse, require_spatial
from .errors import FittingError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


def similarity(source: F64, target: F64, weights: F64 | None = None,
               with_scale: bool = True) -> tuple[float, F64, F64]:
    """Umeyama's least-squares similarity: target ~ scale * rotation @ source + translation.

    source, target: (K, 3); weights: (K,) >= 0 or None. Returns (scale, rotation (3, 3)
    proper, translation (3,)). Raises FittingError when the points are degenerate.
    """
    w = np.ones(source.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if source.shape[0] < 3 or total <= 0.0:
        raise FittingError("at least 3 corresponding points are needed to place the model")
    w = w / total
    mu_s = w @ source
    mu_t = w @ target
    s0 = source - mu_s
    t0 = target - mu_t
    cov = (t0 * w[:, None]).T @ s0
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0.0:
        sign[2] = -1.0
    rotation = (u * sign) @ vt
    var_s = float(w @ (s0 * s0).sum(axis=1))
    if var_s <= 1e-300 or d[1] <= 1e-12 * max(d[0], 1e-300):
        raise FittingError("the corresponding points are (nearly) collinear; the model cannot be placed")
    scale = float((d * sign).sum() / var_s) if with_scale else 1.0
    translation = mu_t - scale * rotation @ mu_s
    return scale, rotation, translation


def vertex_normals(vertices: F64, triangles: I64) -> F64:
    """Area-weighted unit vertex normals (zero for unused vertices)."""
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    face = np.cross(b - a, c - a)
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0.0)


def boundary_vertices(triangles: I64, vertex_count: int) -> Bool:
    """Vertices on an edge that only one triangle uses (the border of an open surface)."""
    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    keys = edges[:, 0].astype(np.int64) * vertex_count + edges[:, 1]
    unique, counts = np.unique(keys, return_counts=True)
    single = unique[counts == 1]
    mask = np.zeros(vertex_count, dtype=bool)
    mask[single // vertex_count] = True
    mask[single % vertex_count] = True
    return mask


def closest_on_triangles(points: F64, a: F64, b: F64, c: F64) -> F64:
    """Barycentric coordinates (K, 3) of the closest point of each triangle (a, b, c) to each
    point (all (K, 3)); the point-triangle regions of Ericson's test, vectorised."""
    ab, ac = b - a, c - a
    ap, bp, cp = points - a, points - b, points - c
    d1 = (ab * ap).sum(1)
    d2 = (ac * ap).sum(1)
    d3 = (ab * bp).sum(1)
    d4 = (ac * bp).sum(1)
    d5 = (ab * cp).sum(1)
    d6 = (ac * cp).sum(1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2

    def ratio(num: F64, den: F64) -> F64:
        return np.divide(num, den, out=np.zeros_like(num), where=np.abs(den) > 1e-300)

    denom = va + vb + vc
    v = ratio(vb, denom)
    w = ratio(vc, denom)
    bary = np.stack([1.0 - v - w, v, w], axis=1)
    # Regions from the least to the most specific test (later ones win).
    e1, e2 = d4 - d3, d5 - d6
    on_bc = (va <= 0.0) & (e1 >= 0.0) & (e2 >= 0.0)
    t = ratio(e1, e1 + e2)
    bary[on_bc] = np.stack([np.zeros_like(t), 1.0 - t, t], axis=1)[on_bc]
    on_ac = (vb <= 0.0) & (d2 >= 0.0) & (d6 <= 0.0)
    t = ratio(d2, d2 - d6)
    bary[on_ac] = np.stack([1.0 - t, np.zeros_like(t), t], axis=1)[on_ac]
    bary[(d6 >= 0.0) & (d5 <= d6)] = (0.0, 0.0, 1.0)
    on_ab = (vc <= 0.0) & (d1 >= 0.0) & (d3 <= 0.0)
    t = ratio(d1, d1 - d3)
    bary[on_ab] = np.stack([1.0 - t, t, np.zeros_like(t)], axis=1)[on_ab]
    bary[(d3 >= 0.0) & (d4 <= d3)] = (0.0, 1.0, 0.0)
    bary[(d1 <= 0.0) & (d2 <= 0.0)] = (1.0, 0.0, 0.0)
    return bary


@dataclass
class SurfaceHits:
    """Closest points on a target surface for a batch of query points."""

    points: F64          # (K, 3) the closest points
    normals: F64         # (K, 3) unit normals of the triangles hit
    triangle: I64        # (K,) target triangle index
    barycentric: F64     # (K, 3)
    distance: F64        # (K,)
    on_boundary: Bool    # (K,) the nearest target vertex is on the surface's border


class Surface:
    """A target triangle surface prepared for closest-point queries (KD-tree over its
    vertices, each vertex's triangle fan, its border)."""

    #: Triangles kept per vertex fan (vertices of higher valence keep their first ones).
    MAX_FAN = 16

    def __init__(self, vertices: F64, triangles: I64) -> None:
        self.vertices = vertices
        self.triangles = triangles
        count = vertices.shape[0]
        used = np.zeros(count, dtype=bool)
        used[triangles.ravel()] = True
        self._used = np.flatnonzero(used)
        if self._used.size < 3:
            raise FittingError("the target surface has fewer than 3 vertices in triangles")
        self._tree: Any = require_spatial().cKDTree(vertices[self._used])
        a, b, c = (vertices[triangles[:, k]] for k in range(3))
        normal = np.cross(b - a, c - a)
        length = np.linalg.norm(normal, axis=1, keepdims=True)
        self.triangle_normals = np.divide(normal, length, out=np.zeros_like(normal), where=length > 0.0)
        self.border = boundary_vertices(triangles, count)
        self.fans = _fans(triangles, count, self.MAX_FAN)

    def query(self, points: F64) -> SurfaceHits:
        """The closest point on the surface to each point, searched over the triangle fan of
        the nearest target vertex."""
        _, nearest = self._tree.query(points, k=1)
        vertex = self._used[np.asarray(nearest, dtype=np.int64)]
        fan = self.fans[vertex]                                    # (K, F), -1 padded
        valid = fan >= 0
        tri = np.where(valid, fan, 0)
        k, f = fan.shape
        corners = self.vertices[self.triangles[tri.ravel()]]        # (K*F, 3, 3)
        repeated = np.repeat(points, f, axis=0)
        bary = closest_on_triangles(repeated, corners[:, 0], corners[:, 1], corners[:, 2])
        closest = np.einsum("nk,nkd->nd", bary, corners)
        dist = np.linalg.norm(closest - repeated, axis=1).reshape(k, f)
        dist[~valid] = np.inf
        best = np.argmin(dist, axis=1)
        rows = np.arange(k)
        pick = rows * f + best
        triangle = tri[rows, best]
        return SurfaceHits(points=closest[pick], normals=self.triangle_normals[triangle], triangle=triangle,
                           barycentric=bary[pick], distance=dist[rows, best], on_boundary=self.border[vertex])


def _fans(triangles: I64, count: int, width: int) -> I64:
    """(count, width) triangle indices around each vertex, -1 padded."""
    flat = triangles.ravel()
    order = np.argsort(flat, kind="stable")
    owner = flat[order]
    starts = np.searchsorted(owner, np.arange(count))
    rank = np.arange(flat.size) - starts[owner]
    width = int(min(width, rank.max(initial=0) + 1))      # the widest fan, at most `width`
    keep = rank < width
    fans = np.full((count, width), -1, dtype=np.int64)
    fans[owner[keep], rank[keep]] = order[keep] // 3
    return fans


def uniform_laplacian(triangles: I64, count: int) -> Any:
    """The graph Laplacian L = D - A of the mesh edges, a (count, count) CSR matrix."""
    sparse = require_sparse()
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    adjacency = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(count, count))
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    return sparse.diags(degree) - adjacency


def check_points(name: str, values: Any, columns: int = 3) -> F64:
    """`values` as a finite float64 (N, columns) array, or FittingError naming `name`."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FittingError(f"{name} must be numbers, shape (N, {columns})") from exc
    if array.ndim != 2 or array.shape[1] != columns:
        raise FittingError(f"{name} must have shape (N, {columns}), got {array.shape}")
    if not np.isfinite(array).all():
        raise FittingError(f"{name} contains NaN or infinite values")
    return array


def check_triangles(values: Any, vertex_count: int) -> I64:
    """`values` as an int64 (T, 3) array of vertex indices below `vertex_count`."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise FittingError("triangles must be integers, shape (T, 3)") from exc
    if array.ndim != 2 or array.shape[1] != 3 or array.shape[0] == 0:
        raise FittingError(f"triangles must have shape (T, 3) with T > 0, got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(np.mod(array, 1) == 0):
            raise FittingError("triangles must hold integer vertex indices")
    array = array.astype(np.int64)
    if array.min() < 0 or array.max() >= vertex_count:
        raise FittingError(f"triangles index vertices outside 0..{vertex_count - 1}")
    return array
