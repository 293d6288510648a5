# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The writer's chunks: a chunk ready to emit (`Node`, its buffers and its reading cost),
built as a leaf or a container of other chunks, never joining array bytes.

May import: numpy, the standard library, and io_nv3dmm's errors and limits.
"""

from __future__ import annotations

import struct
from typing import Any, Sequence, Union

import numpy as np

from .errors import NvfError
from .limits import CHUNK_COST

Buffer = Union[bytes, memoryview]

U32_MAX = 0xFFFFFFFF
PACK_HEADER = struct.Struct("<4sI").pack


class Node:
    """A chunk ready to emit: its buffers (header included) and total length."""

    __slots__ = ("tag", "parts", "length", "cost")

    def __init__(self, tag: str, parts: list[Buffer], length: int, cost: int = CHUNK_COST) -> None:
        self.tag = tag
        self.parts = parts
        self.length = length
        # What reading this chunk and every chunk inside it charges (io_nv3dmm.limits).
        self.cost = cost


def chunk_header(tag: str, size: int) -> bytes:
    """A chunk's 8-byte header; a size beyond uint32 is refused."""
    if size > U32_MAX:
        raise NvfError(f"a {tag} chunk would be {size:,} bytes, more than a uint32 chunk size can hold")
    return PACK_HEADER(tag.encode("latin-1"), size)


def leaf(tag: str, payload: Buffer, prefix: bytes = b"", cost: int = CHUNK_COST) -> Node:
    """A chunk holding `prefix` then `payload` (bytes or a 1-D byte memoryview)."""
    size = len(prefix) + len(payload)
    parts: list[Buffer] = [chunk_header(tag, size), prefix, payload] if prefix else [chunk_header(tag, size), payload]
    return Node(tag, parts, 8 + size, cost)


def container(tag: str, children: Sequence[Node], prefix: bytes = b"", cost: int = CHUNK_COST) -> Node:
    """A chunk holding `prefix` then its children's buffers (not joined); its cost includes theirs."""
    size = len(prefix) + sum([c.length for c in children])
    parts: list[Buffer] = [chunk_header(tag, size)]
    if prefix:
        parts.append(prefix)
    for child in children:
        parts.extend(child.parts)
    return Node(tag, parts, 8 + size, cost + sum([c.cost for c in children]))


def array_bytes(array: np.ndarray[Any, Any]) -> memoryview:
    """An array's bytes as a 1-D byte view (a copy only when it is not contiguous)."""
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return memoryview(flat)  # type: ignore[arg-type]
