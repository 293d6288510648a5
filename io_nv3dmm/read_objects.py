# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Decoders of the small objects: MODL (its SHAP and COLR linear models, TXCO), the
landmark sets (IBUG, NVLM), MCTR and TOPO.

Each reads one container's children through `ChunkReader` (zero-copy views, every
count and index checked against the bytes there). The big objects have their own
modules: read_blend (BLND) and read_partitions (PRTS).

May import: numpy, the standard library, and io_nv3dmm's read_chunks, errors, layout
and model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .read_chunks import F32, U16, Chunk, ChunkReader
from .errors import NvfError
from .layout import CHILD_TAGS
from .model import Contours, LandmarkSet, LinearModel, Topology


def _tags(path: str) -> frozenset[bytes]:
    return frozenset(tag.encode("ascii") for tag in CHILD_TAGS[path])


_LINEAR_TAGS = _tags("MODL/SHAP")
_LANDMARK_TAGS = _tags("IBUG")
_CONTOUR_TAGS = _tags("MCTR")
_TOPO_TAGS = _tags("TOPO")
_MODL_TAGS = _tags("MODL")


class ObjectReader(ChunkReader):
    """The decoders of MODL, IBUG/NVLM, MCTR and TOPO (see the module docstring)."""

    def linear(self, chunk: Chunk, path: str, vertices: int | None) -> LinearModel:
        parts = self.known_children(chunk.start, chunk.end, _LINEAR_TAGS, path)
        mean_chunk = parts.get(b"MEAN")
        if mean_chunk is None:
            raise NvfError(f"{path} has no MEAN chunk", chunk.offset)
        mean = self.array(mean_chunk, F32, 3, f"{path}/MEAN")
        count = mean.shape[0]
        if vertices is not None and count != vertices:
            raise NvfError(
                f"{path}/MEAN has {count} vertices but MODL/SHAP has {vertices} "
                f"(array lengths disagree)", mean_chunk.offset + 4)
        bsis = parts.get(b"BSIS")
        if bsis is None:
            modes = np.zeros((0, count, 3), dtype=F32)
        else:
            if bsis.size < 4:
                raise NvfError(f"{path}/BSIS is {bsis.size} bytes, too short for its mode count",
                               bsis.offset + 4)
            mode_count = self.u32(bsis.start)
            expected = 4 + 12 * count * mode_count
            if bsis.size != expected:
                raise NvfError(
                    f"{path}/BSIS claims {mode_count} modes of {count} vertices "
                    f"({expected} bytes) but its payload is {bsis.size} bytes "
                    f"(count disagrees with size)", bsis.start)
            modes = np.ndarray((mode_count, count, 3), F32, self.buf, bsis.start + 4)
        eivl = parts.get(b"EIVL")
        if eivl is None:
            eigenvalues = np.zeros(0, dtype=F32)
        else:
            eigenvalues = self.array(eivl, F32, 1, f"{path}/EIVL")
        if eigenvalues.shape[0] != modes.shape[0]:
            at = eivl.offset + 4 if eivl is not None else chunk.offset
            raise NvfError(
                f"{path} has {modes.shape[0]} modes but {eigenvalues.shape[0]} eigenvalues "
                f"(array lengths disagree)", at)
        trng = parts.get(b"TRNG")
        if trng is None:
            triangles = np.zeros((0, 3), dtype=U16)
        else:
            triangles = self.array(trng, U16, 3, f"{path}/TRNG")
            self.check_indices(triangles, count, trng, f"{path}/TRNG vertex index")
        return LinearModel(mean=mean, modes=modes, eigenvalues=eigenvalues, triangles=triangles)

    def modl(self, chunk: Chunk) -> tuple[LinearModel, LinearModel | None, np.ndarray[Any, Any] | None]:
        parts = self.known_children(chunk.start, chunk.end, _MODL_TAGS, "MODL")
        shap = parts.get(b"SHAP")
        if shap is None:
            raise NvfError("MODL has no SHAP chunk (the shape model is required)", chunk.offset)
        shape = self.linear(shap, "MODL/SHAP", None)
        self.vertices = shape.mean.shape[0]
        self.triangles = shape.triangles.shape[0]
        colr = parts.get(b"COLR")
        color = self.linear(colr, "MODL/COLR", self.vertices) if colr is not None else None
        txco_chunk = parts.get(b"TXCO")
        texcoords = None
        if txco_chunk is not None:
            texcoords = self.array(txco_chunk, F32, 2, "MODL/TXCO")
            if texcoords.shape[0] != self.vertices:
                raise NvfError(
                    f"MODL/TXCO has {texcoords.shape[0]} (u, v) pairs but the model has "
                    f"{self.vertices} vertices (array lengths disagree)", txco_chunk.offset + 4)
        return shape, color, texcoords

    def landmarks(self, chunk: Chunk, path: str) -> LandmarkSet:
        parts = self.known_children(chunk.start, chunk.end, _LANDMARK_TAGS, path)
        lmrk = parts.get(b"LMRK")
        if lmrk is None:
            pairs = np.zeros((0, 2), dtype=U16)
        else:
            pairs = self.array(lmrk, U16, 2, f"{path}/LMRK")
            self.check_indices(pairs[:, 1], self.vertices, lmrk, f"{path}/LMRK vertex", column=1)
        right = parts.get(b"RCTR")
        left = parts.get(b"LCTR")
        return LandmarkSet(
            pairs=pairs,
            right_contour=self.array(right, U16, 1, f"{path}/RCTR") if right is not None else None,
            left_contour=self.array(left, U16, 1, f"{path}/LCTR") if left is not None else None)

    def contours(self, chunk: Chunk) -> Contours:
        parts = self.known_children(chunk.start, chunk.end, _CONTOUR_TAGS, "MCTR")
        result: list[np.ndarray[Any, Any] | None] = []
        for tag, label in ((b"RCTR", "MCTR/RCTR"), (b"LCTR", "MCTR/LCTR")):
            part = parts.get(tag)
            if part is None:
                result.append(None)
                continue
            values = self.array(part, U16, 1, label)
            self.check_indices(values, self.vertices, part, label + " vertex")
            result.append(values)
        return Contours(right=result[0], left=result[1])

    def topology(self, chunk: Chunk) -> Topology:
        parts = self.known_children(chunk.start, chunk.end, _TOPO_TAGS, "TOPO")
        ajfc, ajvx = parts.get(b"AJFC"), parts.get(b"AJVX")
        if (ajfc is None) != (ajvx is None):
            raise NvfError("TOPO needs both AJFC and AJVX (one is missing)", chunk.offset)
        if ajfc is None or ajvx is None:
            empty = np.zeros((0, 2), dtype=U16)
            return Topology(adjacent_faces=empty, edge_vertices=empty)
        faces = self.array(ajfc, U16, 2, "TOPO/AJFC")
        verts = self.array(ajvx, U16, 2, "TOPO/AJVX")
        if faces.shape != verts.shape:
            raise NvfError(
                f"TOPO/AJFC has {faces.shape[0]} edges but TOPO/AJVX has {verts.shape[0]} "
                f"(array lengths disagree)", ajvx.offset + 4)
        self.check_indices(faces, self.triangles + 1, ajfc, "TOPO/AJFC face number (1-based)")
        self.check_indices(verts, self.vertices + 1, ajvx, "TOPO/AJVX vertex number (1-based)", low=1)
        return Topology(adjacent_faces=faces, edge_vertices=verts)
