# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""TOPO (edge adjacency) rebuilt from triangles by NVIDIA's rule: `build_topology`.

May import: numpy, the standard library, and io_nv3dmm's errors, limits and model.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .errors import NvfError
from .limits import MAX_VERTICES
from .model import Topology


def build_topology(triangles: npt.ArrayLike) -> Topology:
    """Edge adjacency of a triangle list, exactly as NVIDIA's files store it.

    One record per unique undirected edge, in the order the edges are first met
    walking the triangles and, within triangle (a, b, c), the edges (a, b),
    (b, c), (c, a). `edge_vertices` holds the edge's vertices, smaller first;
    `adjacent_faces` holds the triangle in which the edge runs from the larger
    to the smaller vertex, then the one in which it runs from the smaller to
    the larger. A boundary edge stores 0 then its one triangle. All entries are
    1-based (0 = none), as in the file.

    Edges shared by more than two triangles (non-manifold) keep the first two
    triangles met; if both run the edge the same way (inconsistent winding) they
    are stored in the order met.
    """
    tris = np.asarray(triangles)
    if tris.ndim != 2 or tris.shape[1] != 3:
        raise NvfError(f"triangles must have shape (T, 3), got {tris.shape}")
    if tris.dtype.kind not in "iu":
        raise NvfError(f"triangles must be integers, got dtype {tris.dtype}")
    if tris.size and (int(tris.min()) < 0 or int(tris.max()) >= MAX_VERTICES):
        raise NvfError("triangle vertex indices must lie in 0..65534 (at most 65,535 vertices)")
    t_count = tris.shape[0]
    if t_count > 0xFFFF:
        raise NvfError(f"{t_count} triangles: TOPO face numbers are uint16, at most 65,535 triangles")
    if t_count == 0:
        empty = np.zeros((0, 2), dtype=np.uint16)
        return Topology(adjacent_faces=empty, edge_vertices=empty.copy())

    t = tris.astype(np.int64, copy=False)
    start = t.ravel()                       # a, b, c of every triangle
    end = t[:, [1, 2, 0]].ravel()           # b, c, a
    lo = np.minimum(start, end)
    hi = np.maximum(start, end)
    runs_down = start > end                 # edge runs larger -> smaller
    key = (lo << 16) | hi

    # A stable sort groups each edge's directed copies in the order met.
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    group_start = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    group_size = np.diff(np.r_[group_start, sorted_key.size])

    first = order[group_start]              # position of the first copy met
    has_second = group_size >= 2
    second = order[np.minimum(group_start + 1, sorted_key.size - 1)]

    face_first = first // 3 + 1             # 1-based triangle numbers
    face_second = second // 3 + 1
    # Interior edge: the "down" triangle goes first; if the first met runs up
    # and the second runs down, swap them.
    swap = has_second & ~runs_down[first] & runs_down[second]
    slot0 = np.where(has_second, np.where(swap, face_second, face_first), 0)
    slot1 = np.where(has_second, np.where(swap, face_first, face_second), face_first)

    records = np.argsort(first, kind="stable")   # file order = first met
    faces = np.empty((records.size, 2), dtype=np.uint16)
    faces[:, 0] = slot0[records]
    faces[:, 1] = slot1[records]
    verts = np.empty((records.size, 2), dtype=np.uint16)
    edge_pos = first[records]
    verts[:, 0] = lo[edge_pos] + 1
    verts[:, 1] = hi[edge_pos] + 1
    return Topology(adjacent_faces=faces, edge_vertices=verts)
