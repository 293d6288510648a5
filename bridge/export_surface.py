# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The surface part of an export: texture coordinates and the colour model.

Read from the UV map and the colour attribute (`naming`); the original file's
arrays are given back unchanged where nothing was edited. May import bpy
types, numpy, the format and the bridge modules below it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..io_nv3dmm import LinearModel
from . import mesh as mesh_reader
from .bpy_typed import lookup
from .export_compare import rows_equal
from .export_state import ExportState
from .naming import COLOR_ATTRIBUTE, UV_MAP_NAME

F32 = npt.NDArray[np.float32]


def export_texcoords(state: ExportState) -> F32 | None:
    """One UV per vertex from the UV map (the original ones where unedited)."""
    original = state.original.texcoords if state.original is not None else None
    mesh = state.mesh
    layer = lookup(mesh.uv_layers, UV_MAP_NAME) or mesh.uv_layers.active
    uv = mesh_reader.read_uv_map(mesh, layer.name) if layer is not None else None
    if layer is None or uv is None:
        if original is not None:
            state.changed()
        return None
    corners = mesh_reader.read_corner_vertices(mesh)
    if original is not None and state.same_vertices and np.array_equal(
            uv, np.asarray(original, np.float32)[corners]):
        return original
    state.changed()
    per_vertex = (np.array(original, dtype=np.float32) if original is not None and state.same_vertices
                  else np.zeros((state.v_count, 2), np.float32))
    unique, first = np.unique(corners, return_index=True)
    per_vertex[unique] = uv[first]
    if not np.array_equal(per_vertex[corners], uv):
        state.warnings.append(
            f"UV map '{layer.name}' "
            f"has seams (a vertex with different UVs on different faces); .nvf stores one UV per "
            f"vertex, so each vertex got the UV of its first face corner")
    return per_vertex


def export_color(state: ExportState) -> LinearModel | None:
    """The colour model from the colour attribute (its mean; the original modes where the vertices are the same)."""
    original = state.original.color if state.original is not None else None
    colors = mesh_reader.read_point_colors(state.mesh, COLOR_ATTRIBUTE)
    if colors is None:
        if original is not None:
            state.changed()
            state.warnings.append(f"the colour attribute '{COLOR_ATTRIBUTE}' was removed, so the "
                                 f"file's colour model was left out")
        return None
    rgb = np.ascontiguousarray(colors[:, :3])
    if original is not None and state.same_vertices:
        same = rows_equal(rgb, original.mean)
        if bool(same.all()):
            return original
        state.changed()
        mean = np.where(same[:, None], original.mean, rgb).astype(np.float32)
        return LinearModel(mean=mean, modes=original.modes, eigenvalues=original.eigenvalues,
                           triangles=original.triangles)
    state.changed()
    if original is not None and original.modes.shape[0]:
        state.warnings.append("the vertex count changed, so the colour model's modes were left out "
                             "(only its mean, from the colour attribute, is written)")
    return LinearModel(mean=rgb.astype(np.float32), modes=np.zeros((0, state.v_count, 3), np.float32),
                       eigenvalues=np.zeros(0, np.float32), triangles=np.zeros((0, 3), np.uint16))
