# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""io_nv3dmm: the .nvf face-model format (read, write, check) and the one atomic file writer.
May import: numpy and the standard library only (never bpy or torch); core and bridge import it.

    import io_nv3dmm
    model = io_nv3dmm.read("face_model2.nvf")      # FaceModel
    io_nv3dmm.write(model, "copy.nvf")             # atomic, byte-identical, Maxine-readable
    io_nv3dmm.maxine_problems("file.nvf")          # why NVIDIA's reader could not read it ([] = it can)
    data = io_nv3dmm.to_bytes(model)

`NvfError` (a ValueError) is raised for bad data, with `.offset`.

What lives where (each module's docstring says more and what it may import):
- model: `FaceModel` and its parts; errors: `NvfError`; limits: the format's limits;
  layout: the fixed layout and what a read remembers for a byte-identical write;
  topology: TOPO rebuilt; maxine: what NVIDIA's own reader cannot take;
  atomic: `write_atomic`.
- reading: reader (`read`: source, header, top level, TOC) over read_chunks (the
  chunk walk, its checks and errors), read_objects (MODL, IBUG/NVLM, MCTR, TOPO),
  read_blend (BLND, `FileBlendShapes`) and read_partitions (PRTS, fast paths,
  `FileFaceModel`).
- writing: writer (`write`, `to_bytes`: the file, TOC) over write_layout (the
  layout plan, unknown chunks), write_objects (MODL, IBUG/NVLM, BLND, MCTR, TOPO),
  write_partitions (PRTS), write_chunks (chunk assembly) and write_values (checks).
- dev-only, left out of the add-on's zip: cli and __main__ (`python -m io_nv3dmm`),
  demo_model with demo_geometry and demo_deformations (the synthetic demo face).
"""

from __future__ import annotations

from .atomic import DestinationError, write_atomic
from .errors import NvfError
from .limits import MAX_BLEND_SHAPES, MAX_NAME_BYTES, MAX_PARTITIONS, MAX_TRIANGLES, MAX_VERTICES
from .maxine import maxine_problems
from .model import (
    MAXINE_EXPRESSIONS, BlendShapes, Contours, FaceModel, LandmarkSet,
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
