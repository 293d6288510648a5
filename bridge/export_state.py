# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""What one export reads once and every component shares: `ExportState`.

The mesh as it is now (positions, shape keys, triangles, vertex groups sorted
by the naming convention), the original file kept on it if it was imported
(`original.Original`), the coordinate conversion in use, and the export's log
(warnings, and whether every component so far is still the original one). The
component modules (`export_shape`, `export_landmarks`, `export_partitions`,
`export_surface`) each read it and return their part of the model. May import
bpy types, numpy, the format's limits and the bridge modules below it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..io_nv3dmm import MAX_VERTICES, FaceModel
from ..io_nv3dmm.limits import MAX_TRIANGLES
from . import mesh as mesh_reader
from .errors import NvfBridgeError
from .import_plan import ImportPlan
from .naming import CONTOUR_GROUP_PATTERN, LANDMARK_GROUP_PATTERN, PARTITION_GROUP_PATTERN
from .options import ExportOptions, ImportOptions
from .original import original_of

if TYPE_CHECKING:
    from bpy.types import Mesh, Object

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

#: Vertex groups of one kind by name ("IBUG", "NVLM", "MCTR", "PART" -> name -> members).
GroupsByKind = dict[str, dict[str, I64]]


class ExportState:
    """The mesh, its kept original and the export's log, read once per export.

    Reading checks the format's size limits (vertices, triangles) and that the
    mesh has faces, raising NvfBridgeError with what to do.
    """

    def __init__(self, obj: Object, mesh: Mesh, options: ExportOptions) -> None:
        self.obj = obj
        self.mesh = mesh
        self.options = options
        self.warnings: list[str] = []
        self.unchanged = True          # every component still the original one
        kept = original_of(mesh)
        self.source: bytes | None = None
        self.original: FaceModel | None = None
        self.import_options = ImportOptions()
        self.plan: ImportPlan | None = None
        if kept is not None:
            self.source, self.original = kept.data, kept.model
            self.import_options, self.plan = kept.options, kept.plan
        else:
            self.unchanged = False
        if self.original is not None and options.use_import_settings:
            self.scale, self.axes = self.import_options.scale, self.import_options.convert_axes
        else:
            self.scale, self.axes = options.scale, options.convert_axes
        if not self.scale > 0.0:
            raise NvfBridgeError(f"the export scale must be positive, got {self.scale}")
        self._read_geometry()
        self._read_groups()

    def changed(self) -> None:
        """Some component differs from the original file: the bytes are encoded anew."""
        self.unchanged = False

    def _read_geometry(self) -> None:
        mesh = self.mesh
        v_count = len(mesh.vertices)
        if v_count > MAX_VERTICES:
            raise NvfBridgeError(
                f"'{self.obj.name}' has {v_count:,} vertices, over the .nvf limit of {MAX_VERTICES:,} "
                f"vertices (the format's vertex indices are 16-bit). Reduce it, e.g. with a Decimate "
                f"modifier (applied), or split the mesh")
        if len(mesh.polygons) == 0 and not (self.original is not None and self.original.triangle_count == 0):
            raise NvfBridgeError(f"'{self.obj.name}' has no faces: an .nvf model is a triangle mesh")
        self.v_count = v_count
        names, blocks, relative = mesh_reader.read_shape_keys(mesh)
        self.key_names, self.key_blocks, self.key_relative = names, blocks, relative
        basis = blocks[0] if len(names) else mesh_reader.read_positions(mesh)
        matrix = np.array(self.obj.matrix_world, dtype=np.float64)
        if self.options.apply_transform and not np.array_equal(matrix, np.eye(4)):
            linear, offset = matrix[:3, :3], matrix[:3, 3]
            basis = (basis.astype(np.float64) @ linear.T + offset).astype(np.float32)
            if len(names):
                self.key_blocks = (blocks.astype(np.float64) @ linear.T + offset).astype(np.float32)
                basis = self.key_blocks[0]
        self.basis: F32 = basis
        self.tris, self.tri_poly = mesh_reader.read_triangles(mesh)
        if self.tris.shape[0] > MAX_TRIANGLES:
            raise NvfBridgeError(
                f"'{self.obj.name}' has {self.tris.shape[0]:,} triangles (after triangulating its "
                f"faces), over the .nvf limit of {MAX_TRIANGLES:,} triangles (the format's edge table "
                f"numbers faces with 16 bits). Reduce it, e.g. with a Decimate modifier (applied), "
                f"or split the mesh")
        self.same_vertices = self.plan is not None and self.plan.basis.shape[0] == v_count
        if self.original is not None and not self.same_vertices:
            self.changed()
        # Positions can only be compared with the import's when they are converted
        # the same way (the user may export with other settings on purpose).
        imported = self.import_options
        self.same_conversion = (self.same_vertices and float(np.float32(self.scale)) == float(
            np.float32(imported.scale)) and self.axes == imported.convert_axes)
        if self.original is not None and not self.same_conversion:
            self.changed()

    def _read_groups(self) -> None:
        names, members = mesh_reader.read_vertex_groups(self.obj, self.mesh)
        planned = self.plan.groups if (self.plan is not None and self.same_vertices) else []
        self.mine_by_kind = groups_by_kind(list(zip(names, members)))
        self.planned_by_kind = groups_by_kind(planned)

    def same_groups(self, kind: str) -> bool:
        """Whether the groups of one kind ("IBUG", "NVLM", "MCTR", "PART") are
        exactly the ones the import made (in any order)."""
        mine = self.mine_by_kind.get(kind, {})
        theirs = self.planned_by_kind.get(kind, {})
        if mine.keys() != theirs.keys():
            return False
        if not mine:
            return True
        order = list(theirs)
        if [mine[n].size for n in order] != [theirs[n].size for n in order]:
            return False
        # One comparison of all members instead of one per group.
        return np.array_equal(np.concatenate([mine[n] for n in order]),
                              np.concatenate([theirs[n] for n in order]))


def groups_by_kind(groups: list[tuple[str, I64]]) -> GroupsByKind:
    """Vertex groups sorted by the convention: "IBUG", "NVLM", "MCTR", "PART" (others dropped)."""
    result: GroupsByKind = {}
    for name, members in groups:
        landmark = LANDMARK_GROUP_PATTERN.match(name)
        if landmark:
            kind = landmark.group(1)
        elif CONTOUR_GROUP_PATTERN.match(name):
            kind = "MCTR"
        elif PARTITION_GROUP_PATTERN.match(name):
            kind = "PART"
        else:
            continue
        result.setdefault(kind, {})[name] = members
    return result
