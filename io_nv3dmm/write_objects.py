# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Encoders of the objects but the partitions: MODL (its SHAP and COLR linear models,
TXCO), the landmark sets (IBUG, NVLM), BLND, MCTR and TOPO (rebuilt from the
triangles when the model has none, or when an edit made the stored one stale).

Each checks its values (write_values) and returns a `Node` (write_chunks) whose
buffers are the arrays' own bytes; the children's order comes from the layout
plan (write_layout).

May import: numpy, the standard library, and io_nv3dmm's write_*, read_blend
(FileBlendShapes, copied back unread), errors, layout, limits, model and topology.
"""

from __future__ import annotations

import struct
from typing import Callable, Sequence

import numpy as np

from .errors import NvfError
from .layout import CHILD_TAGS
from .limits import BLEND_CHUNK_COST, MAX_BLEND_SHAPES, MAX_TRIANGLES, MAX_VERTICES
from .model import LandmarkSet, LinearModel, Topology
from .read_blend import FileBlendShapes
from .topology import build_topology
from .write_chunks import Buffer, Node, array_bytes, container, leaf
from .write_layout import LayoutWriter
from .write_values import U16, check_shape, float_array, index_array

_LINEAR_ORDER = CHILD_TAGS["MODL/SHAP"]
_MODL_ORDER = CHILD_TAGS["MODL"]
_LANDMARK_ORDER = CHILD_TAGS["IBUG"]
_MCTR_ORDER = CHILD_TAGS["MCTR"]
_TOPO_ORDER = CHILD_TAGS["TOPO"]


class ObjectWriter(LayoutWriter):
    """The encoders of MODL, IBUG/NVLM, BLND, MCTR and TOPO (see the module docstring)."""

    def linear(self, model: LinearModel, path: str, vertices: int | None) -> Node:
        if not isinstance(model, LinearModel):
            raise NvfError(f"{path} must be a LinearModel, got {type(model).__name__}")
        mean = float_array(model.mean, f"{path} mean", (vertices, 3))
        count = mean.shape[0]
        if count > MAX_VERTICES:
            raise NvfError(
                f"{path} has {count} vertices; uint16 indices address at most {MAX_VERTICES:,}")
        modes = float_array(model.modes, f"{path} modes", (None, count, 3))
        eigenvalues = float_array(model.eigenvalues, f"{path} eigenvalues", (modes.shape[0],))
        triangles = index_array(model.triangles, f"{path} triangles", (None, 3), count)
        present = {"MEAN"}
        # No BSIS for zero modes: NVIDIA's reader divides by the mode count (SIGFPE).
        if modes.shape[0] or (not self.maxine and self.had(path, "BSIS")):
            present.add("BSIS")
        if self.had(path, "EIVL") or eigenvalues.shape[0]:
            present.add("EIVL")
        if self.had(path, "TRNG") or triangles.shape[0]:
            present.add("TRNG")
        builders: dict[str, Callable[[], Node]] = {
            "MEAN": lambda: leaf("MEAN", array_bytes(mean)),
            "BSIS": lambda: leaf("BSIS", array_bytes(modes), struct.pack("<I", modes.shape[0])),
            "EIVL": lambda: leaf("EIVL", array_bytes(eigenvalues)),
            "TRNG": lambda: leaf("TRNG", array_bytes(triangles)),
        }
        if path == "MODL/SHAP":
            self.vertices = count
            self.triangles = triangles.shape[0]
            self.shape_triangles = triangles
        tags = self.order(path, _LINEAR_ORDER, present)
        return container(path[-4:], self.with_unknown(path, [builders[t]() for t in tags]))

    def modl(self) -> Node:
        model = self.model
        nodes: dict[str, Node] = {"SHAP": self.linear(model.shape, "MODL/SHAP", None)}
        if model.color is not None:
            nodes["COLR"] = self.linear(model.color, "MODL/COLR", self.vertices)
        if model.texcoords is not None:
            uv = float_array(model.texcoords, "texcoords", (self.vertices, 2))
            nodes["TXCO"] = leaf("TXCO", array_bytes(uv))
        tags = self.order("MODL", _MODL_ORDER, set(nodes))
        return container("MODL", self.with_unknown("MODL", [nodes[t] for t in tags]))

    def landmarks(self, marks: LandmarkSet, path: str) -> Node:
        if not isinstance(marks, LandmarkSet):
            raise NvfError(f"{path} must be a LandmarkSet, got {type(marks).__name__}")
        pairs = np.asarray(marks.pairs)
        if pairs.size == 0 and pairs.ndim != 2:
            pairs = pairs.reshape(0, 2)
        check_shape(pairs, f"{path} pairs", (None, 2))
        numbers = index_array(pairs[:, 0], f"{path} landmark numbers", (None,), 0x10000)
        verts = index_array(pairs[:, 1], f"{path} landmark vertices", (None,), self.vertices)
        table = np.empty((pairs.shape[0], 2), dtype=U16)
        table[:, 0] = numbers
        table[:, 1] = verts
        nodes: dict[str, Node] = {}
        if self.had(path, "LMRK") or table.shape[0]:
            nodes["LMRK"] = leaf("LMRK", array_bytes(table))
        for tag, values in (("RCTR", marks.right_contour), ("LCTR", marks.left_contour)):
            if values is not None:
                numbers = index_array(values, f"{path} {tag} landmark numbers", (None,), 0x10000)
                nodes[tag] = leaf(tag, array_bytes(numbers))
        tags = self.order(path, _LANDMARK_ORDER, set(nodes))
        return container(path, self.with_unknown(path, [nodes[t] for t in tags]))

    def blend_shapes(self) -> Node:
        blend = self.model.blend_shapes
        assert blend is not None
        names = list(blend.names)
        if len(names) > MAX_BLEND_SHAPES:
            raise NvfError(f"{len(names):,} blend shapes, more than the format's limit of {MAX_BLEND_SHAPES:,}")
        from_file = blend.file_payloads() if isinstance(blend, FileBlendShapes) else None
        if from_file is not None and from_file[1] == self.vertices and len(from_file[0]) == len(names):
            # Never touched since read: the file's own bytes, without gathering them first.
            payloads: list[Buffer] = list(from_file[0])
        else:
            deltas = float_array(blend.deltas, "blend_shapes.deltas", (len(names), self.vertices, 3))
            payloads = [array_bytes(deltas[i]) for i in range(len(names))]
        name_nodes = [leaf("NAME", self.string("BLND/NAME", name, "blend shape name", i), cost=BLEND_CHUNK_COST)
                      for i, name in enumerate(names)]
        shape_nodes = [leaf("SHAP", payload, cost=BLEND_CHUNK_COST) for payload in payloads]
        remembered = self.remembered("BLND")
        if remembered is not None and remembered.count("NAME") == len(names) == remembered.count("SHAP"):
            tokens: Sequence[str] = remembered
        else:
            tokens = ("NAME", "SHAP") * len(names)
        known: list[Node] = []
        next_name = next_shape = 0
        for token in tokens:
            if token == "NAME":
                known.append(name_nodes[next_name])
                next_name += 1
            else:
                known.append(shape_nodes[next_shape])
                next_shape += 1
        return container("BLND", self.with_unknown("BLND", known), struct.pack("<I", len(names)))

    def contours(self) -> Node:
        contours = self.model.model_contours
        assert contours is not None
        nodes: dict[str, Node] = {}
        for tag, values in (("RCTR", contours.right), ("LCTR", contours.left)):
            if values is not None:
                checked = index_array(values, f"model_contours {tag} vertices", (None,), self.vertices)
                nodes[tag] = leaf(tag, array_bytes(checked))
        tags = self.order("MCTR", _MCTR_ORDER, set(nodes))
        return container("MCTR", self.with_unknown("MCTR", [nodes[t] for t in tags]))

    def topology_value(self) -> Topology:
        topology = self.model.topology
        layout = self.layout
        if topology is None:
            return build_topology(self.shape_triangles)
        if not isinstance(topology, Topology):
            raise NvfError(f"topology must be a Topology, got {type(topology).__name__}")
        if layout is not None and layout.topology_ref is not None:
            ref, faces, verts = layout.topology_ref
            unchanged_topology = (topology is ref and topology.adjacent_faces is faces
                                  and topology.edge_vertices is verts)
            read_tris = layout.triangles_ref
            tris = self.model.shape.triangles
            triangles_edited = tris is not read_tris and not (
                read_tris is not None and np.array_equal(np.asarray(tris), read_tris))
            if unchanged_topology and triangles_edited:
                # The stored TOPO describes the old triangles: rebuild it.
                return build_topology(self.shape_triangles)
        return topology

    def topology(self) -> Node:
        if self.triangles > MAX_TRIANGLES:
            raise NvfError(
                f"{self.triangles:,} triangles: a TOPO numbers triangles in uint16, so at most "
                f"{MAX_TRIANGLES:,} (split the mesh or decimate it)")
        topology = self.topology_value()
        faces = index_array(topology.adjacent_faces, "topology.adjacent_faces", (None, 2), self.triangles + 1)
        verts = index_array(topology.edge_vertices, "topology.edge_vertices",
                         (faces.shape[0], 2), self.vertices + 1, low=1)
        nodes: dict[str, Node] = {}
        if self.had("TOPO", "AJFC") or faces.shape[0]:
            nodes["AJFC"] = leaf("AJFC", array_bytes(faces))
            nodes["AJVX"] = leaf("AJVX", array_bytes(verts))
        tags = self.order("TOPO", _TOPO_ORDER, set(nodes))
        return container("TOPO", self.with_unknown("TOPO", [nodes[t] for t in tags]))
