# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The chunk walk under the reader: chunks' places in the buffer and the checked primitives.

`ChunkReader` holds a read's state (the buffer, the chunk budget of
io_nv3dmm.limits, the `SourceLayout` being remembered, the unknown chunks kept)
and the primitives every decoder uses: the children of a container, zero-copy
array views, strings, index checks, and the errors for overflowing chunks, stray
bytes and a spent budget (one wording each). The decoders of the objects
(read_objects, read_blend, read_partitions) extend it; io_nv3dmm.reader puts
them together and walks the file.

May import: numpy, the standard library, and io_nv3dmm's errors, limits, layout
and model.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from .errors import NvfError
from .layout import SourceLayout
from .limits import CHUNK_COST, CHUNK_SLACK, MAX_NAME_BYTES, PART_STRING_COST
from .model import UnknownChunk

CHUNK_HEAD = struct.Struct("<4sI")
U32 = struct.Struct("<I")
F32 = np.dtype("<f4")
U16 = np.dtype("<u2")
U32N = np.dtype("<u4")
I32 = np.dtype("<i4")
U64 = np.dtype("<u8")
MAX = np.maximum.reduce     # the ufuncs directly: ndarray.max() adds a Python-level wrapper
MIN = np.minimum.reduce

_unpack_chunk = CHUNK_HEAD.unpack_from
# Known children's tag orders as text, by their tags (a few dozen at most: the tags are known).
_ORDERS: dict[tuple[bytes, ...], tuple[str, ...]] = {}


def tag_text(tag: bytes) -> str:
    """A tag as text for messages: plain when printable ASCII, else escaped."""
    if all(0x20 <= b < 0x7F for b in tag):
        return tag.decode("ascii")
    return repr(tag)


def overflow(tag: bytes, size: int, remain: int, where: str, offset: int) -> NvfError:
    """The error for the chunk at `offset` whose size runs past the end of `where`."""
    return NvfError(
        f"{tag_text(tag)} chunk claims {size} payload bytes but only {remain} remain in "
        f"{where} (truncated or overflowing chunk)", offset + 4)


def stray_bytes(count: int, where: str, offset: int) -> NvfError:
    """The error for `count` bytes at `offset`, the end of `where`, too few for a chunk."""
    return NvfError(
        f"{count} stray byte(s) at the end of {where}: too few for a chunk header "
        f"(truncated file or wrong size field)", offset)


class Chunk:
    """A chunk's place in the buffer: tag, offset of its tag, payload bounds."""

    __slots__ = ("tag", "offset", "size", "start", "end")

    def __init__(self, tag: bytes, offset: int, size: int) -> None:
        self.tag = tag
        self.offset = offset
        self.size = size
        self.start = offset + 8
        self.end = offset + 8 + size

    @property
    def name(self) -> str:
        return tag_text(self.tag)


class ChunkReader:
    """A read's state and the primitives over its buffer (see the module docstring)."""

    def __init__(self, buf: bytes | bytearray | memoryview, budget: int) -> None:
        # bytes, bytearray or a byte memoryview; slices of bytes are bytes (no copy of the whole).
        self.buf: Any = buf
        self.is_bytes = isinstance(buf, bytes)
        self.length = len(buf)
        self.layout = SourceLayout()
        self.unknown: list[UnknownChunk] = []
        self.vertices = 0
        self.triangles = 0
        self.budget_left = budget     # bytes of reader memory, see io_nv3dmm.limits

    def too_many_chunks(self, offset: int) -> NvfError:
        """The error for a file with more chunks than its size pays for (see io_nv3dmm.limits)."""
        return NvfError(
            f"too many chunks in a file of {self.length:,} bytes: far more structure than a face "
            f"model has (a flood of tiny chunks; each chunk is charged {PART_STRING_COST}-"
            f"{CHUNK_COST} bytes against the file's size plus {CHUNK_SLACK >> 20} MiB, so that "
            f"reading cannot use many times the file's size in memory)",
            offset)

    def children(self, start: int, end: int, where: str) -> list[Chunk]:
        """The chunks laid back to back in [start, end); each must fit exactly.

        Each is charged CHUNK_COST against the budget (io_nv3dmm.limits).
        """
        found: list[Chunk] = []
        pos = start
        unpack = _unpack_chunk
        buf = self.buf
        left = self.budget_left
        while end - pos >= 8:
            left -= CHUNK_COST
            if left < 0:
                raise self.too_many_chunks(pos)
            tag, size = unpack(buf, pos)
            if size > end - pos - 8:
                raise overflow(tag, size, end - pos - 8, where, pos)
            found.append(Chunk(tag, pos, size))
            pos += 8 + size
        self.budget_left = left
        if pos != end:
            raise stray_bytes(end - pos, where, pos)
        return found

    def u32(self, offset: int) -> int:
        value: int = U32.unpack_from(self.buf, offset)[0]
        return value

    def array(self, chunk: Chunk, dtype: np.dtype[Any], columns: int, what: str,
              skip: int = 0) -> np.ndarray[Any, Any]:
        """A zero-copy view of a chunk's payload as rows of `columns` values."""
        nbytes = chunk.size - skip
        row = dtype.itemsize * columns
        if nbytes % row:
            raise NvfError(
                f"{what} payload is {nbytes} bytes, not a multiple of {row} "
                f"({columns} x {dtype.itemsize}-byte values per entry)", chunk.offset + 4)
        count = nbytes // row
        # ndarray(buffer=...) is a zero-copy view, like frombuffer, in one call.
        return np.ndarray((count, columns) if columns > 1 else (count,), dtype, self.buf, chunk.start + skip)

    def unknown_chunk(self, chunk: Chunk, parent: str, position: int) -> UnknownChunk:
        item = UnknownChunk(
            tag=chunk.tag.decode("latin-1"),
            payload=bytes(self.buf[chunk.start:chunk.end]),
            parent=parent, position=position)
        self.unknown.append(item)
        return item

    def known_children(self, start: int, end: int, known: frozenset[bytes], path: str) -> dict[bytes, Chunk]:
        """A container's known children by tag (duplicates refused); unknown ones kept raw.

        The walk of `children` (the same checks, charges and errors), and the known
        children's order remembered for the writer.
        """
        found: dict[bytes, Chunk] = {}
        pos = start
        unpack = _unpack_chunk
        buf = self.buf
        left = self.budget_left
        position = 0
        while end - pos >= 8:
            left -= CHUNK_COST
            if left < 0:
                raise self.too_many_chunks(pos)
            tag, size = unpack(buf, pos)
            if size > end - pos - 8:
                raise overflow(tag, size, end - pos - 8, path, pos)
            if tag in known:
                if tag in found:
                    raise NvfError(
                        f"second {tag_text(tag)} chunk in {path} (the first is at offset "
                        f"{found[tag].offset})", pos)
                found[tag] = Chunk(tag, pos, size)
            else:
                self.unknown_chunk(Chunk(tag, pos, size), path, position)
            position += 1
            pos += 8 + size
        self.budget_left = left
        if pos != end:
            raise stray_bytes(end - pos, path, pos)
        tags = tuple(found)
        order = _ORDERS.get(tags)
        if order is None:
            order = _ORDERS[tags] = tuple(tag.decode("ascii") for tag in tags)
        self.layout.child_orders[path] = order
        return found

    def text(self, start: int, end: int, tag: bytes, key: str, index: int, suffix: str = "") -> str:
        """A NAME/MTRL string: up to its first NUL. An odd padding is remembered
        under the key `key[index]suffix` (just `key` when index < 0)."""
        raw = self.buf[start:end]
        if not self.is_bytes:
            raw = bytes(raw)
        nul = raw.find(0)
        if nul < 0:
            text, canonical = raw, len(raw) % 4 == 0
        else:
            text = raw[:nul]
            pad = len(raw) - nul
            canonical = pad == -nul % 4 and (pad == 1 or raw.count(0, nul) == pad)
        try:
            value: str = text.decode()
        except UnicodeDecodeError as exc:
            raise NvfError(f"{tag_text(tag)} string is not valid UTF-8 ({exc.reason})",
                           start + exc.start) from None
        if len(text) > MAX_NAME_BYTES:
            raise NvfError(f"{tag_text(tag)} string of {len(text):,} bytes, more than the format's "
                           f"limit of {MAX_NAME_BYTES:,}", start)
        if not canonical:
            self.layout.strings[key if index < 0 else f"{key}[{index}]{suffix}"] = raw
        return value

    def check_indices(self, values: np.ndarray[Any, Any], limit: int, chunk: Chunk,
                      what: str, low: int = 0, column: int | None = None) -> None:
        """Refuses entries outside [low, limit) and says where the first one is.

        `column`: values is that column of (N, 2) pairs (for the byte offset).
        """
        if values.size == 0:
            return
        # Unsigned values are never negative: the minimum only matters for low > 0.
        if int(MAX(values, None)) < limit and (low == 0 or int(MIN(values, None)) >= low):
            return
        flat = values.reshape(-1)
        bad = int(np.flatnonzero((flat >= limit) | (flat < low))[0])
        item = flat.dtype.itemsize
        offset = chunk.start + (bad * 2 * item + column * item if column is not None else bad * item)
        raise NvfError(f"{what} entry {bad} is {int(flat[bad])}, outside {low}..{limit - 1}", offset)
