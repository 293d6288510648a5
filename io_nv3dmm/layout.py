# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The file's layout: its fixed parts (magic, header, the PART record, which children
each container has, NVIDIA's orders) and what the reader remembers so that the
writer can reproduce a file byte for byte.

A `SourceLayout` lives in `FaceModel.source_layout`. It is opaque to callers
and never required: the writer uses each remembered detail only while it still
matches the model (an edited model simply loses the details that no longer
apply and gets NVIDIA's canonical layout for those parts).

May import: the standard library and io_nv3dmm.model.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Union

from .model import UnknownChunk

#: A file's first four bytes.
MAGIC = b"NFAC"

#: The header NVIDIA writes: magic, payload size (8), flags, TOC offset.
HEADER_SIZE = 16

#: Header bytes 8..11 that NVIDIA writes: little-endian marker, sizeBits 32, indexBits 16, 0.
CANONICAL_HEADER_FLAGS = b"\xe4\x20\x10\x00"

#: NVIDIA's top-level object order.
CANONICAL_TOP_ORDER: tuple[str, ...] = ("MODL", "IBUG", "BLND", "MCTR", "TOPO", "NVLM", "PRTS", "TOC0")

_LINEAR_CHILDREN = ("MEAN", "BSIS", "EIVL", "TRNG")
_LANDMARK_CHILDREN = ("LMRK", "RCTR", "LCTR")

#: The known children of each container, in NVIDIA's order ("" = the top level; keys as
#: in `SourceLayout.child_orders`). Any other chunk in a container is an unknown chunk.
CHILD_TAGS: dict[str, tuple[str, ...]] = {
    "": CANONICAL_TOP_ORDER,
    "MODL": ("SHAP", "COLR", "TXCO"),
    "MODL/SHAP": _LINEAR_CHILDREN,
    "MODL/COLR": _LINEAR_CHILDREN,
    "IBUG": _LANDMARK_CHILDREN,
    "NVLM": _LANDMARK_CHILDREN,
    "BLND": ("NAME", "SHAP"),
    "MCTR": ("RCTR", "LCTR"),
    "TOPO": ("AJFC", "AJVX"),
    "PRTS": ("PART",),
}

#: The known children of every PART in PRTS ("PRTS/PART[i]"), in NVIDIA's order.
PART_CHILD_TAGS: tuple[str, ...] = ("NAME", "MTRL")

#: A PART's record before its children: index, first triangle, triangle count,
#: first triangle corner, corner count (uint32), smoothing group (int32).
PART_RECORD = struct.Struct("<IIIIIi")


@dataclass(frozen=True)
class TocKnown:
    """A TOC record that points at a known top-level object (by its tag)."""

    key: str
    offset: int


@dataclass(frozen=True)
class TocUnknown:
    """A TOC record that points at an unknown top-level chunk (by identity)."""

    chunk: UnknownChunk
    offset: int


@dataclass(frozen=True)
class TocRaw:
    """A TOC record that points at no object: kept verbatim while the file is unchanged."""

    tag: bytes
    offset: int


TocEntry = Union[TocKnown, TocUnknown, TocRaw]


@dataclass
class SourceLayout:
    """Layout details of a file as read (see the module docstring).

    header_flags: header bytes 8..11. header_extra: header payload beyond 8 bytes.
    toc_loc_zero: the header's TOC offset was 0 although the file has a TOC.
    child_orders: known child tags per container path, in file order
    ("" = top level, e.g. "MODL/SHAP", "BLND", "PRTS/PART[3]").
    strings: raw payloads of strings whose padding is not the canonical one,
    keyed by location ("BLND/NAME[4]", "PRTS/PART[0]/MTRL").
    toc_entries / toc_lists_all: the TOC records as read, and whether they
    were exactly every top-level object in file order (NVIDIA's rule, then
    simply recomputed for whatever the model holds when written).
    triangles_ref / topology_ref: the arrays as read, to notice edits that
    make a stored TOPO stale.
    """

    header_flags: bytes = CANONICAL_HEADER_FLAGS
    header_extra: bytes = b""
    toc_loc_zero: bool = False
    child_orders: dict[str, tuple[str, ...]] = field(default_factory=dict)
    strings: dict[str, bytes] = field(default_factory=dict)
    toc_entries: list[TocEntry] | None = None
    toc_lists_all: bool = True
    triangles_ref: Any = None
    topology_ref: Any = None
