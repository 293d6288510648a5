# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The in-memory value of an NVIDIA 3DMM (.nvf) file.

One `FaceModel` holds every object the format has. Arrays are numpy arrays
with the file's dtypes (float32 for geometry, uint16 for indices); the reader
returns read-only views over the file's buffer where it can, so copy an array
before editing it in place.

Conventions (see docs/nvf-format.md in the shared ground truth):
- vertex indices are 0-based (as in the file), landmark numbers are 1-based
  (as in the file), `Topology` entries are 1-based with 0 meaning "none"
  (as in the file);
- shape modes and blend shapes are offsets from the mean, shape (N, V, 3);
- coordinates are NVIDIA model space: centimetres, +Y up, +Z out of the nose.

May import: numpy and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
U16 = npt.NDArray[np.uint16]

#: The 53 expression blend shapes Maxine's tracker drives, in its order.
MAXINE_EXPRESSIONS: tuple[str, ...] = (
    "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R",
    "browOuterUp_L", "browOuterUp_R", "cheekPuff_L", "cheekPuff_R",
    "cheekSquint_L", "cheekSquint_R", "eyeBlink_L", "eyeBlink_R",
    "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L", "eyeLookIn_R",
    "eyeLookOut_L", "eyeLookOut_R", "eyeLookUp_L", "eyeLookUp_R",
    "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R", "jawForward",
    "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimple_L",
    "mouthDimple_R", "mouthFrown_L", "mouthFrown_R", "mouthFunnel",
    "mouthLeft", "mouthLowerDown_L", "mouthLowerDown_R", "mouthPress_L",
    "mouthPress_R", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmile_L",
    "mouthSmile_R", "mouthStretch_L", "mouthStretch_R", "mouthUpperUp_L",
    "mouthUpperUp_R", "noseSneer_L", "noseSneer_R",
)


@dataclass
class LinearModel:
    """A `SHAP` or `COLR` object: mean + modes (offsets) + eigenvalues + triangles.

    mean: (V, 3) float32. modes: (M, V, 3) float32, mode-major as in the file.
    eigenvalues: (M,) float32, kept exactly (never applied when deforming).
    triangles: (T, 3) uint16, 0-based, counter-clockwise seen from outside.
    NVIDIA writes the colour model's TRNG empty: then triangles has shape (0, 3).
    """

    mean: F32
    modes: F32
    eigenvalues: F32
    triangles: U16


@dataclass
class LandmarkSet:
    """`IBUG` (iBUG-68 numbering) or `NVLM` (NVIDIA 126-point numbering).

    pairs: (N, 2) uint16 rows of (1-based landmark number, 0-based vertex).
    right_contour / left_contour: landmark numbers (not vertices) forming the
    face contours, in file order; None when the child chunk is absent.
    """

    pairs: U16
    right_contour: U16 | None = None
    left_contour: U16 | None = None


@dataclass
class BlendShapes:
    """`BLND`: named blend shapes. deltas: (N, V, 3) float32 offsets from the mean."""

    names: list[str]
    deltas: F32


@dataclass
class Contours:
    """`MCTR`: the model's own contours as ordered 0-based vertex indices."""

    right: U16 | None
    left: U16 | None


@dataclass
class Topology:
    """`TOPO`: one record per unique triangle edge, both arrays (E, 2) uint16.

    adjacent_faces: 1-based triangle numbers, 0 = none (boundary edge).
    edge_vertices: 1-based vertex numbers, smaller first.
    """

    adjacent_faces: U16
    edge_vertices: U16


@dataclass
class Partition:
    """One `PART` record: a contiguous run of triangles sharing a material.

    name / material: None when the file has no NAME / MTRL chunk for it.
    smoothing_group: > 0 a group, 0 none, < 0 undefined.
    """

    index: int
    face_start: int
    face_count: int
    vertex_start: int
    vertex_count: int
    smoothing_group: int = -1
    name: str | None = None
    material: str | None = None


@dataclass
class UnknownChunk:
    """A chunk the codec does not interpret, kept raw so it survives a round trip.

    parent: the tag path of the container it was found in ("" for top level,
    e.g. "MODL" or "MODL/SHAP"); position: its index among that container's
    children (top level: among the top-level objects, header excluded).
    """

    tag: str
    payload: bytes
    parent: str = ""
    position: int = 0


@dataclass
class FaceModel:
    """Everything an .nvf file holds.

    Only `shape` is required. Optional objects are None when absent.
    `toc` is the table of contents as read: (tag, absolute offset) records in
    file order, None when the file has none; the writer recomputes offsets.
    `source_layout` is filled by the reader with what it needs to reproduce the
    file byte for byte (object order, TOC records, header extras, string
    paddings); it is opaque to callers. Leave it None for a model built in code:
    the writer then uses NVIDIA's object order and always writes a TOC.
    """

    shape: LinearModel
    color: LinearModel | None = None
    texcoords: F32 | None = None
    ibug: LandmarkSet | None = None
    blend_shapes: BlendShapes | None = None
    model_contours: Contours | None = None
    topology: Topology | None = None
    nvlm: LandmarkSet | None = None
    partitions: list[Partition] | None = None
    unknown_chunks: list[UnknownChunk] = field(default_factory=list)
    toc: list[tuple[str, int]] | None = None
    source_layout: Any = None

    @property
    def vertex_count(self) -> int:
        return int(self.shape.mean.shape[0])

    @property
    def triangle_count(self) -> int:
        return int(self.shape.triangles.shape[0])

    @property
    def mode_count(self) -> int:
        return int(self.shape.modes.shape[0])
