# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""NVIDIA 3DMM (.nvf) face-model format: pure Python + numpy, no bpy, no torch.

    import io_nv3dmm
    model = io_nv3dmm.read("face_model2.nvf")      # FaceModel
    io_nv3dmm.write(model, "copy.nvf")             # atomic, byte-identical, Maxine-readable
    io_nv3dmm.maxine_problems("file.nvf")          # why NVIDIA's reader could not read it ([] = it can)
    data = io_nv3dmm.to_bytes(model)

`NvfError` (a ValueError) is raised for bad data, with `.offset`.
"""

from __future__ import annotations

from .atomic import DestinationError, write_atomic
from .errors import NvfError
from .limits import MAX_BLEND_SHAPES, MAX_NAME_BYTES, MAX_PARTITIONS, MAX_TRIANGLES
from .maxine import maxine_problems
from .model import (
    MAX_VERTICES, MAXINE_EXPRESSIONS, BlendShapes, Contours, FaceModel, LandmarkSet,
    LinearModel, Partition, Topology, UnknownChunk,
)
from .reader import read
from .topology import build_topology
from .writer import to_bytes, write

__all__ = [
    "MAX_BLEND_SHAPES", "MAX_NAME_BYTES", "MAX_PARTITIONS", "MAX_TRIANGLES",
    "MAX_VERTICES", "MAXINE_EXPRESSIONS", "BlendShapes", "Contours", "DestinationError", "FaceModel",
    "LandmarkSet", "LinearModel", "NvfError", "Partition", "Topology", "UnknownChunk",
    "build_topology", "maxine_problems", "read", "to_bytes", "write", "write_atomic",
]
