# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading .nvf files: one pass over one buffer, arrays as zero-copy views.

Every size and count is checked against the bytes that are really there
before anything is allocated, so a hostile file either reads or raises
`NvfError`; it never makes the reader allocate more than the input's size.
"""

from __future__ import annotations

import operator
import os
import struct
from itertools import repeat
from typing import IO, Any, Union

import numpy as np

from .errors import NvfError
from .limits import (
    BLEND_CHUNK_COST, CHUNK_COST, CHUNK_SLACK, MAX_BLEND_SHAPES, MAX_NAME_BYTES, MAX_PARTITIONS,
    PART_COST, PART_STRING_COST, chunk_budget,
)
from .layout import (
    CANONICAL_HEADER_FLAGS, SourceLayout, TocEntry, TocKnown, TocRaw, TocUnknown,
)
from .model import (
    BlendShapes, Contours, FaceModel, LandmarkSet, LinearModel, Partition,
    Topology, UnknownChunk,
)

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]
F32Array = np.ndarray[Any, np.dtype[np.float32]]

_CHUNK = struct.Struct("<4sI")
_U32 = struct.Struct("<I")
_PART = struct.Struct("<IIIIIi")
_PART_HEAD = struct.Struct("<4sIIIIIIi")      # a PART's chunk header and record
_PLAIN_PART_KINDS = frozenset({b"NAME", b"MTRL", b"NAMEMTRL"})
_F32 = np.dtype("<f4")
_U16 = np.dtype("<u2")
_U32N = np.dtype("<u4")
_I32 = np.dtype("<i4")
_U64 = np.dtype("<u8")
_MAX = np.maximum.reduce     # the ufuncs directly: ndarray.max() adds a Python-level wrapper
_MIN = np.minimum.reduce
_ADD = operator.add
_SUB = operator.sub
_AND = operator.and_
_STRIP_NUL = operator.methodcaller("rstrip", b"\0")

MAGIC = b"NFAC"
HEADER_SIZE = 16

TOP_TAGS = frozenset({b"MODL", b"IBUG", b"BLND", b"MCTR", b"TOPO", b"NVLM", b"PRTS", b"TOC0"})
_LINEAR_TAGS = frozenset({b"MEAN", b"BSIS", b"EIVL", b"TRNG"})
_LANDMARK_TAGS = frozenset({b"LMRK", b"RCTR", b"LCTR"})
_CONTOUR_TAGS = frozenset({b"RCTR", b"LCTR"})
_TOPO_TAGS = frozenset({b"AJFC", b"AJVX"})
_MODL_TAGS = frozenset({b"SHAP", b"COLR", b"TXCO"})


def tag_text(tag: bytes) -> str:
    """A tag as text for messages: plain when printable ASCII, else escaped."""
    if all(0x20 <= b < 0x7F for b in tag):
        return tag.decode("ascii")
    return repr(tag)


def _load(source: Source) -> bytes | bytearray | memoryview:
    if isinstance(source, (bytes, bytearray)):
        return source
    if isinstance(source, memoryview):
        if not source.c_contiguous:
            raise TypeError("a memoryview source must be C-contiguous")
        if source.format != "B" or source.ndim != 1:
            return source.cast("B")
        return source
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            return handle.read()
    read = getattr(source, "read", None)
    if read is None:
        raise TypeError(
            f"read() takes a path, bytes-like object or binary file object, not {type(source).__name__}")
    data = read()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("the file object must be opened in binary mode (its read() returned text)")
    return data


def _canonical_ascii(raw: bytes) -> str | None:
    """The text of a canonically padded ASCII string payload, else None (the slow path
    then handles odd padding and UTF-8)."""
    text = raw.rstrip(b"\0")
    if len(raw) == (len(text) + 3) & ~3 and text.isascii() and text.find(0) < 0:
        return text.decode("ascii")
    return None


class FileBlendShapes(BlendShapes):
    """`BlendShapes` as read from a file; `deltas` is gathered on first use.

    A file's SHAP payloads sit between NAME chunks, so one (N, V, 3) array
    needs a copy of them (the only copy the reader makes). It is made the first
    time `deltas` is read, so callers that never look at the blend shapes (info,
    validate) do not pay for it, and an unedited model is written straight from
    the file's bytes. Assigning `deltas` works as for a plain `BlendShapes`;
    pickling and copying give a plain `BlendShapes`.
    """

    _deltas: F32Array | None
    _source: tuple[Any, list[int], int] | None

    @classmethod
    def from_file(cls, names: list[str], buf: Any, starts: list[int], vertices: int) -> "FileBlendShapes":
        """Blend shapes whose deltas are the `3 * vertices` floats at each offset in `starts`."""
        shapes = cls.__new__(cls)
        shapes.names = names
        shapes._deltas = None
        shapes._source = (buf, starts, vertices)
        return shapes

    @property
    def deltas(self) -> F32Array:
        """(N, V, 3) float32 offsets from the mean (read-only when read from bytes)."""
        if self._deltas is None:
            assert self._source is not None
            buf, starts, vertices = self._source
            view = memoryview(buf)
            size = 12 * vertices
            joined = b"".join([view[start:start + size] for start in starts])
            self._deltas = np.frombuffer(joined, dtype=_F32).reshape(len(starts), vertices, 3)
            self._source = None
        return self._deltas

    @deltas.setter
    def deltas(self, value: F32Array) -> None:
        self._deltas = value
        self._source = None

    def file_payloads(self) -> tuple[list[memoryview], int] | None:
        """The SHAP payloads in the source buffer while `deltas` was never used, else None."""
        if self._source is None:
            return None
        buf, starts, vertices = self._source
        view = memoryview(buf)
        size = 12 * vertices
        return [view[start:start + size] for start in starts], vertices

    def __reduce__(self) -> tuple[type, tuple[list[str], F32Array]]:
        return (BlendShapes, (self.names, self.deltas))


class _Chunk:
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


class _Reader:
    def __init__(self, buf: bytes | bytearray | memoryview) -> None:
        # bytes, bytearray or a byte memoryview; slices of bytes are bytes (no copy of the whole).
        self.buf: Any = buf
        self.is_bytes = isinstance(buf, bytes)
        self.length = len(buf)
        self.layout = SourceLayout()
        self.unknown: list[UnknownChunk] = []
        self.vertices = 0
        self.triangles = 0
        self.budget_left = chunk_budget(self.length)     # bytes of reader memory, see limits

    @staticmethod
    def part_overflow(tag: bytes, size: int, remain: int, index: int, offset: int) -> NvfError:
        return NvfError(
            f"{tag_text(tag)} chunk claims {size} payload bytes but only {remain} remain in "
            f"PART #{index} (truncated or overflowing chunk)", offset + 4)

    def too_many_chunks(self, offset: int) -> NvfError:
        """The error for a file with more chunks than its size pays for (see io_nv3dmm.limits)."""
        return NvfError(
            f"too many chunks in a file of {self.length:,} bytes: far more structure than a face "
            f"model has (a flood of tiny chunks; each chunk is charged {PART_STRING_COST}-"
            f"{CHUNK_COST} bytes against the file's size plus {CHUNK_SLACK >> 20} MiB, so that "
            f"reading cannot use many times the file's size in memory)",
            offset)


    # --- primitives -------------------------------------------------------

    def children(self, start: int, end: int, where: str) -> list[_Chunk]:
        """The chunks laid back to back in [start, end); each must fit exactly.

        Each is charged CHUNK_COST against the budget (io_nv3dmm.limits).
        """
        found: list[_Chunk] = []
        pos = start
        unpack = _CHUNK.unpack_from
        buf = self.buf
        left = self.budget_left
        while end - pos >= 8:
            left -= CHUNK_COST
            if left < 0:
                raise self.too_many_chunks(pos)
            tag, size = unpack(buf, pos)
            if size > end - pos - 8:
                raise NvfError(
                    f"{tag_text(tag)} chunk claims {size} payload bytes but only {end - pos - 8} "
                    f"remain in {where} (truncated or overflowing chunk)", pos + 4)
            found.append(_Chunk(tag, pos, size))
            pos += 8 + size
        self.budget_left = left
        if pos != end:
            raise NvfError(
                f"{end - pos} stray byte(s) at the end of {where}: too few for a chunk header "
                f"(truncated file or wrong size field)", pos)
        return found

    def u32(self, offset: int) -> int:
        value: int = _U32.unpack_from(self.buf, offset)[0]
        return value

    def array(self, chunk: _Chunk, dtype: np.dtype[Any], columns: int, what: str,
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

    def unknown_chunk(self, chunk: _Chunk, parent: str, position: int) -> UnknownChunk:
        item = UnknownChunk(
            tag=chunk.tag.decode("latin-1"),
            payload=bytes(self.buf[chunk.start:chunk.end]),
            parent=parent, position=position)
        self.unknown.append(item)
        return item

    def known_children(self, start: int, end: int, known: frozenset[bytes], path: str) -> dict[bytes, _Chunk]:
        """A container's known children by tag (duplicates refused); unknown ones kept raw.

        Also remembers the known children's order for the writer.
        """
        found: dict[bytes, _Chunk] = {}
        order: list[str] = []
        for position, child in enumerate(self.children(start, end, path)):
            tag = child.tag
            if tag in known:
                if tag in found:
                    raise NvfError(
                        f"second {tag_text(tag)} chunk in {path} (the first is at offset "
                        f"{found[tag].offset})", child.offset)
                found[tag] = child
                order.append(tag.decode("ascii"))
            else:
                self.unknown_chunk(child, path, position)
        self.layout.child_orders[path] = tuple(order)
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

    def check_indices(self, values: np.ndarray[Any, Any], limit: int, chunk: _Chunk,
                      what: str, low: int = 0, column: int | None = None) -> None:
        """Refuses entries outside [low, limit) and says where the first one is.

        `column`: values is that column of (N, 2) pairs (for the byte offset).
        """
        if values.size == 0:
            return
        # Unsigned values are never negative: the minimum only matters for low > 0.
        if int(_MAX(values, None)) < limit and (low == 0 or int(_MIN(values, None)) >= low):
            return
        flat = values.reshape(-1)
        bad = int(np.flatnonzero((flat >= limit) | (flat < low))[0])
        item = flat.dtype.itemsize
        offset = chunk.start + (bad * 2 * item + column * item if column is not None else bad * item)
        raise NvfError(f"{what} entry {bad} is {int(flat[bad])}, outside {low}..{limit - 1}", offset)

    # --- objects ----------------------------------------------------------

    def header(self) -> tuple[int, int]:
        head = bytes(self.buf[0:4])
        if self.length == 0:
            raise NvfError("empty file (0 bytes): not an NVIDIA 3DMM file (bad magic b'', expected b'NFAC')", 0)
        if self.length < 8 and MAGIC.startswith(head):
            if head == MAGIC:
                have = ("the magic NFAC and nothing after it" if self.length == 4 else
                        f"the magic NFAC then {self.length - 4} of the 4 bytes of the header size")
            else:
                have = f"only {head!r} of the magic NFAC"
            raise NvfError(
                f"truncated file: it ends at byte offset {self.length} after {have}; an .nvf "
                f"header needs at least {HEADER_SIZE} bytes", self.length)
        if head != MAGIC:
            raise NvfError(f"bad magic {head!r}: not an NVIDIA 3DMM file (expected b'NFAC')", 0)
        header_size = self.u32(4)
        if header_size < 8:
            raise NvfError(f"unsupported header: payload of {header_size} bytes, at least 8 expected", 4)
        if header_size > self.length - 8:
            raise NvfError(
                f"truncated header: it claims {header_size} payload bytes but the file has "
                f"{self.length - 8} after the magic", 4)
        flags = bytes(self.buf[8:12])
        if flags[0] == 0x1B:
            raise NvfError("unsupported header: big-endian file (endian marker 0x1B)", 8)
        if flags[0] != 0xE4:
            raise NvfError(f"unsupported header: endian marker 0x{flags[0]:02X}, expected 0xE4", 8)
        if flags[1] != 32:
            raise NvfError(f"unsupported header: sizeBits {flags[1]}, only 32 is supported", 9)
        if flags[2] != 16:
            raise NvfError(f"unsupported header: indexBits {flags[2]}, only 16 is supported", 10)
        self.layout.header_flags = flags if flags != CANONICAL_HEADER_FLAGS else CANONICAL_HEADER_FLAGS
        self.layout.header_extra = bytes(self.buf[HEADER_SIZE:8 + header_size])
        return 8 + header_size, self.u32(12)

    def linear(self, chunk: _Chunk, path: str, vertices: int | None) -> LinearModel:
        parts = self.known_children(chunk.start, chunk.end, _LINEAR_TAGS, path)
        mean_chunk = parts.get(b"MEAN")
        if mean_chunk is None:
            raise NvfError(f"{path} has no MEAN chunk", chunk.offset)
        mean = self.array(mean_chunk, _F32, 3, f"{path}/MEAN")
        count = mean.shape[0]
        if vertices is not None and count != vertices:
            raise NvfError(
                f"{path}/MEAN has {count} vertices but MODL/SHAP has {vertices} "
                f"(array lengths disagree)", mean_chunk.offset + 4)
        bsis = parts.get(b"BSIS")
        if bsis is None:
            modes = np.zeros((0, count, 3), dtype=_F32)
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
            modes = np.ndarray((mode_count, count, 3), _F32, self.buf, bsis.start + 4)
        eivl = parts.get(b"EIVL")
        if eivl is None:
            eigenvalues = np.zeros(0, dtype=_F32)
        else:
            eigenvalues = self.array(eivl, _F32, 1, f"{path}/EIVL")
        if eigenvalues.shape[0] != modes.shape[0]:
            at = eivl.offset + 4 if eivl is not None else chunk.offset
            raise NvfError(
                f"{path} has {modes.shape[0]} modes but {eigenvalues.shape[0]} eigenvalues "
                f"(array lengths disagree)", at)
        trng = parts.get(b"TRNG")
        if trng is None:
            triangles = np.zeros((0, 3), dtype=_U16)
        else:
            triangles = self.array(trng, _U16, 3, f"{path}/TRNG")
            self.check_indices(triangles, count, trng, f"{path}/TRNG vertex index")
        return LinearModel(mean=mean, modes=modes, eigenvalues=eigenvalues, triangles=triangles)

    def modl(self, chunk: _Chunk) -> tuple[LinearModel, LinearModel | None, np.ndarray[Any, Any] | None]:
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
            texcoords = self.array(txco_chunk, _F32, 2, "MODL/TXCO")
            if texcoords.shape[0] != self.vertices:
                raise NvfError(
                    f"MODL/TXCO has {texcoords.shape[0]} (u, v) pairs but the model has "
                    f"{self.vertices} vertices (array lengths disagree)", txco_chunk.offset + 4)
        return shape, color, texcoords

    def landmarks(self, chunk: _Chunk, path: str) -> LandmarkSet:
        parts = self.known_children(chunk.start, chunk.end, _LANDMARK_TAGS, path)
        lmrk = parts.get(b"LMRK")
        if lmrk is None:
            pairs = np.zeros((0, 2), dtype=_U16)
        else:
            pairs = self.array(lmrk, _U16, 2, f"{path}/LMRK")
            self.check_indices(pairs[:, 1], self.vertices, lmrk, f"{path}/LMRK vertex", column=1)
        right = parts.get(b"RCTR")
        left = parts.get(b"LCTR")
        return LandmarkSet(
            pairs=pairs,
            right_contour=self.array(right, _U16, 1, f"{path}/RCTR") if right is not None else None,
            left_contour=self.array(left, _U16, 1, f"{path}/LCTR") if left is not None else None)

    def contours(self, chunk: _Chunk) -> Contours:
        parts = self.known_children(chunk.start, chunk.end, _CONTOUR_TAGS, "MCTR")
        result: list[np.ndarray[Any, Any] | None] = []
        for tag, label in ((b"RCTR", "MCTR/RCTR"), (b"LCTR", "MCTR/LCTR")):
            part = parts.get(tag)
            if part is None:
                result.append(None)
                continue
            values = self.array(part, _U16, 1, label)
            self.check_indices(values, self.vertices, part, label + " vertex")
            result.append(values)
        return Contours(right=result[0], left=result[1])

    def topology(self, chunk: _Chunk) -> Topology:
        parts = self.known_children(chunk.start, chunk.end, _TOPO_TAGS, "TOPO")
        ajfc, ajvx = parts.get(b"AJFC"), parts.get(b"AJVX")
        if (ajfc is None) != (ajvx is None):
            raise NvfError("TOPO needs both AJFC and AJVX (one is missing)", chunk.offset)
        if ajfc is None or ajvx is None:
            empty = np.zeros((0, 2), dtype=_U16)
            return Topology(adjacent_faces=empty, edge_vertices=empty)
        faces = self.array(ajfc, _U16, 2, "TOPO/AJFC")
        verts = self.array(ajvx, _U16, 2, "TOPO/AJVX")
        if faces.shape != verts.shape:
            raise NvfError(
                f"TOPO/AJFC has {faces.shape[0]} edges but TOPO/AJVX has {verts.shape[0]} "
                f"(array lengths disagree)", ajvx.offset + 4)
        self.check_indices(faces, self.triangles + 1, ajfc, "TOPO/AJFC face number (1-based)")
        self.check_indices(verts, self.vertices + 1, ajvx, "TOPO/AJVX vertex number (1-based)", low=1)
        return Topology(adjacent_faces=faces, edge_vertices=verts)

    def blend_shapes(self, chunk: _Chunk) -> BlendShapes:
        if chunk.size < 4:
            raise NvfError(f"BLND is {chunk.size} bytes, too short for its shape count", chunk.offset + 4)
        declared = self.u32(chunk.start)
        if declared > MAX_BLEND_SHAPES:
            raise NvfError(f"BLND declares {declared:,} blend shapes, more than the format's limit of "
                           f"{MAX_BLEND_SHAPES:,}", chunk.start)
        fast = self.blend_pairs(chunk, declared)
        if fast is not None:
            return fast
        # BLND holds most of a file's chunks: walked here in one tight loop, names decoded after.
        # The usual NAME, SHAP pairs take one step (one budget charge) each; anything else is
        # walked chunk by chunk with the same checks.
        name_at: list[int] = []
        name_end: list[int] = []
        shapes: list[int] = []
        unknown = 0
        irregular = False
        shape_bytes = 12 * self.vertices
        pair_cost = 2 * BLEND_CHUNK_COST
        buf, unpack = self.buf, _CHUNK.unpack_from
        pos, end = chunk.start + 4, chunk.end
        left = self.budget_left
        while end - pos >= 8:
            tag, size = unpack(buf, pos)
            after = pos + 8 + size
            if tag == b"NAME" and end - after >= 8:
                tag2, size2 = unpack(buf, after)
                if tag2 == b"SHAP" and size2 == shape_bytes and after + 8 + size2 <= end:
                    left -= pair_cost
                    if left < 0:
                        raise self.too_many_chunks(pos)
                    name_at.append(pos + 8)
                    name_end.append(after)
                    shapes.append(after + 8)
                    pos = after + 8 + size2
                    continue
            left -= BLEND_CHUNK_COST
            if left < 0:
                raise self.too_many_chunks(pos)
            if after > end:
                raise NvfError(
                    f"{tag_text(tag)} chunk claims {size} payload bytes but only {end - pos - 8} "
                    f"remain in BLND (truncated or overflowing chunk)", pos + 4)
            if tag == b"SHAP":
                if size != shape_bytes:
                    raise NvfError(
                        f"BLND/SHAP #{len(shapes)} is {size} bytes but {self.vertices} vertices "
                        f"need {shape_bytes} (array lengths disagree)", pos + 4)
                shapes.append(pos + 8)
                irregular = True
            elif tag == b"NAME":
                name_at.append(pos + 8)
                name_end.append(after)
                irregular = True
            else:
                left -= CHUNK_COST - BLEND_CHUNK_COST
                if left < 0:
                    raise self.too_many_chunks(pos)
                self.unknown_chunk(_Chunk(tag, pos, size), "BLND", len(name_at) + len(shapes) + unknown)
                unknown += 1
            pos = after
        self.budget_left = left
        if pos != end:
            raise NvfError(
                f"{end - pos} stray byte(s) at the end of BLND: too few for a chunk header "
                f"(truncated file or wrong size field)", pos)
        if not (declared == len(name_at) == len(shapes)):
            raise NvfError(
                f"BLND declares {declared} shapes but holds {len(name_at)} NAME and {len(shapes)} "
                f"SHAP chunks (counts disagree)", chunk.start)
        if irregular:
            # Not strictly NAME, SHAP, NAME, SHAP, ...: remember the order for the writer.
            merged = sorted([(at, "NAME") for at in name_at] + [(at, "SHAP") for at in shapes])
            order = tuple(kind for _, kind in merged)
            if order != ("NAME", "SHAP") * declared:
                self.layout.child_orders["BLND"] = order
        return FileBlendShapes.from_file(self.names(name_at, name_end), buf, shapes, self.vertices)

    def blend_pairs(self, chunk: _Chunk, declared: int) -> BlendShapes | None:
        """BLND read when it is exactly `declared` NAME, SHAP pairs, each SHAP the model's
        size, from a bytes buffer: the walk only notes where each NAME ends (one test of
        the next 8 bytes for the SHAP header, no objects per chunk), and the budget is
        charged once. None for anything else (the careful walk in blend_shapes() then
        reads the file or says what is wrong); nothing is changed before it succeeds."""
        buf = self.buf
        if not self.is_bytes:
            return None
        shape_bytes = 12 * self.vertices
        cost = declared * 2 * BLEND_CHUNK_COST
        if cost > self.budget_left:
            return None
        shap = b"SHAP" + _U32.pack(shape_bytes)
        is_shap = buf.startswith
        unpack = _CHUNK.unpack_from
        step = 8 + shape_bytes
        pos, end = chunk.start + 4, chunk.end
        last = end - 16 - shape_bytes       # the last offset where a NAME, SHAP pair still fits
        ends: list[int] = []                # where each NAME's payload ends (its SHAP header)
        note = ends.append
        while pos <= last:
            tag, size = unpack(buf, pos)
            after = pos + 8 + size
            if tag != b"NAME" or after > last + 8 or not is_shap(shap, after):
                return None
            note(after)
            pos = after + step
        if pos != end or len(ends) != declared:
            return None
        starts = [chunk.start + 12] + [at + step + 8 for at in ends[:-1]] if ends else []
        names = self.names(starts, ends)
        self.budget_left -= cost
        return FileBlendShapes.from_file(names, buf, [at + 8 for at in ends], self.vertices)

    def names(self, starts: list[int], ends: list[int]) -> list[str]:
        """BLND names; all canonically padded valid UTF-8 ones are decoded in one go."""
        buf = self.buf
        if not starts:
            return []
        lengths = list(map(_SUB, ends, starts))
        if max(lengths) > MAX_NAME_BYTES:
            # Some name may be over the limit: the slow path checks each one.
            return [self.text(a, b, b"NAME", "BLND/NAME", i) for i, (a, b) in enumerate(zip(starts, ends))]
        raws = [buf[a:b] for a, b in zip(starts, ends)] if self.is_bytes else [
            bytes(buf[a:b]) for a, b in zip(starts, ends)]
        stripped = list(map(_STRIP_NUL, raws))
        joined = b"\0".join(stripped)
        # Canonical padding: each payload a multiple of 4 bytes, at most 3 of them NULs after
        # the name, none inside it (then the NULs in `joined` are only the separators).
        if (max(map(_AND, lengths, repeat(3, len(lengths)))) == 0
                and max(map(_SUB, lengths, map(len, stripped))) < 4
                and joined.count(0) == len(raws) - 1):
            try:
                return joined.decode().split("\0")
            except UnicodeDecodeError:
                pass      # the slow path below finds the offending name
        return [self.text(a, b, b"NAME", "BLND/NAME", i) for i, (a, b) in enumerate(zip(starts, ends))]

    def partitions(self, chunk: _Chunk) -> list[Partition]:
        if chunk.size < 4:
            raise NvfError(f"PRTS is {chunk.size} bytes, too short for its partition count",
                           chunk.offset + 4)
        declared = self.u32(chunk.start)
        if declared > MAX_PARTITIONS:
            raise NvfError(f"PRTS declares {declared:,} partitions, more than the format's limit of "
                           f"{MAX_PARTITIONS:,}", chunk.start)
        fast = self.partitions_regular(chunk, declared)
        if fast is None:
            fast = self.partitions_plain(chunk, declared)
        if fast is not None:
            return fast
        # Partition-heavy files have hundreds of PARTs: one tight walk (like BLND's) with the
        # same checks and charges as children(), and each distinct NAME/MTRL payload decoded once.
        result: list[Partition] = []
        canonical = True
        buf, unpack, unpack_part = self.buf, _CHUNK.unpack_from, _PART.unpack_from
        cache: dict[bytes, str] | None = {} if self.is_bytes else None
        triangles = self.triangles
        corners = 3 * triangles
        left = self.budget_left
        pos, end = chunk.start + 4, chunk.end
        unknown = 0
        while end - pos >= 8:
            tag, size = unpack(buf, pos)
            after = pos + 8 + size
            left -= PART_COST if tag == b"PART" else CHUNK_COST
            if left < 0:
                raise self.too_many_chunks(pos)
            if after > end:
                raise NvfError(
                    f"{tag_text(tag)} chunk claims {size} payload bytes but only {end - pos - 8} "
                    f"remain in PRTS (truncated or overflowing chunk)", pos + 4)
            if tag != b"PART":
                self.unknown_chunk(_Chunk(tag, pos, size), "PRTS", len(result) + unknown)
                unknown += 1
                canonical = False
                pos = after
                continue
            index = len(result)
            if size < 24:
                raise NvfError(f"PART #{index} is {size} bytes, shorter than its 24-byte record", pos + 4)
            start = pos + 8
            pidx, fstart, fcount, vstart, vcount, smooth = unpack_part(buf, start)
            if fstart + fcount > triangles or vstart + vcount > corners:
                if fstart + fcount > triangles:
                    raise NvfError(
                        f"PART #{index} covers triangles {fstart}..{fstart + fcount - 1} but the model "
                        f"has {triangles} (partition beyond the triangle list)", start + 4)
                raise NvfError(
                    f"PART #{index} covers triangle corners {vstart}..{vstart + vcount - 1} but the "
                    f"model has {corners} (partition beyond the triangle list)", start + 12)
            name = material = None
            kinds = ""
            sub = start + 24
            while after - sub >= 8:
                stag, ssize = unpack(buf, sub)
                safter = sub + 8 + ssize
                if stag == b"MTRL" or stag == b"NAME":
                    left -= PART_STRING_COST
                    if left < 0:
                        raise self.too_many_chunks(sub)
                    if safter > after:
                        raise self.part_overflow(stag, ssize, after - sub - 8, index, sub)
                    value = None
                    if cache is not None:
                        raw = buf[sub + 8:safter]
                        value = cache.get(raw)
                        if value is None and ssize <= MAX_NAME_BYTES:
                            value = _canonical_ascii(raw)
                            if value is not None:
                                cache[raw] = value
                    if value is None:   # odd padding, UTF-8, over the limit: remembered or refused
                        suffix = "/NAME" if stag == b"NAME" else "/MTRL"
                        value = self.text(sub + 8, safter, stag, "PRTS/PART", index, suffix)
                    if stag == b"MTRL":
                        if material is not None:
                            raise NvfError(f"second MTRL chunk in PART #{index}", sub)
                        material = value
                        kinds += "M"
                    else:
                        if name is not None:
                            raise NvfError(f"second NAME chunk in PART #{index}", sub)
                        name = value
                        kinds += "N"
                else:
                    left -= CHUNK_COST
                    if left < 0:
                        raise self.too_many_chunks(sub)
                    if safter > after:
                        raise self.part_overflow(stag, ssize, after - sub - 8, index, sub)
                    self.unknown_chunk(_Chunk(stag, sub, ssize), f"PRTS/PART[{index}]", len(kinds))
                    kinds += "?"
                sub = safter
            if sub != after:
                raise NvfError(
                    f"{after - sub} stray byte(s) at the end of PART #{index}: too few for a chunk "
                    f"header (truncated file or wrong size field)", sub)
            if kinds == "MN" or ("?" in kinds and kinds.replace("?", "") == "MN"):
                # Any other order is the canonical one for the chunks present.
                self.layout.child_orders[f"PRTS/PART[{index}]"] = ("MTRL", "NAME")
            result.append(Partition(pidx, fstart, fcount, vstart, vcount, smooth, name, material))
            pos = after
        self.budget_left = left
        if pos != end:
            raise NvfError(
                f"{end - pos} stray byte(s) at the end of PRTS: too few for a chunk header "
                f"(truncated file or wrong size field)", pos)
        if declared != len(result):
            raise NvfError(
                f"PRTS declares {declared} partitions but holds {len(result)} PART chunks "
                f"(counts disagree)", chunk.start)
        if not canonical:
            self.layout.child_orders["PRTS"] = ("PART",) * len(result)
        return result

    def partitions_regular(self, chunk: _Chunk, declared: int) -> list[Partition] | None:
        """PRTS read with numpy when every PART has the same size and the same children
        (the PART record, then the same NAME and/or MTRL chunk sizes): partition-heavy
        models written by a tool usually are. None when the layout is anything else, or
        anything is out of place (the careful walk in partitions() then reads the file or
        says what is wrong); nothing is changed before it succeeds."""
        buf = self.buf
        if not self.is_bytes or declared == 0 or chunk.size < 12:
            return None
        start = chunk.start + 4
        tag, size = _CHUNK.unpack_from(buf, start)
        stride = 8 + size
        if tag != b"PART" or size < 24 or chunk.size != 4 + declared * stride:
            return None
        # The first PART's children make the template every PART must repeat byte for byte.
        subs: list[tuple[bytes, int, int]] = []    # (tag, payload offset in the PART, payload size)
        sub = 32
        while sub < stride:
            if stride - sub < 8 or len(subs) == 2:
                return None
            stag, ssize = _CHUNK.unpack_from(buf, start + sub)
            if ssize > stride - sub - 8 or ssize > MAX_NAME_BYTES or stag not in (b"NAME", b"MTRL"):
                return None
            subs.append((stag, sub + 8, ssize))
            sub += 8 + ssize
        if len(subs) == 2 and subs[0][0] != b"NAME" or len(subs) == 2 and subs[1][0] != b"MTRL":
            return None        # MTRL before NAME, or two of a kind: the careful walk
        cost = declared * (PART_COST + PART_STRING_COST * len(subs))
        if cost > self.budget_left:
            return None
        # Headers (PART's and its children's) equal the first PART's in every row.
        for at in [0] + [at - 8 for _, at, _ in subs]:
            heads: np.ndarray[Any, Any] = np.ndarray((declared,), _U64, buf, start + at, (stride,))
            if _MIN(heads, None) != _MAX(heads, None):
                return None
        columns = np.ndarray((declared, 5), _U32N, buf, start + 8, (stride, 4)).T.tolist()
        if (max(map(_ADD, columns[1], columns[2])) > self.triangles
                or max(map(_ADD, columns[3], columns[4])) > 3 * self.triangles):
            return None        # the careful walk says which PART
        smooth = np.ndarray((declared,), _I32, buf, start + 28, (stride,)).tolist()
        strings: dict[bytes, list[str | None]] = {}
        for stag, at, ssize in subs:
            # Fixed-width numpy strings drop trailing NULs: the text of a canonically padded
            # payload (its length then rounds up to the payload's size).
            texts: list[bytes] = np.ndarray((declared,), f"S{ssize}", buf, start + at, (stride,)).tolist()
            decoded: dict[bytes, str] = {}
            for text in set(texts):
                if (len(text) + 3) & ~3 != ssize or not text.isascii() or text.find(0) >= 0:
                    return None    # odd padding or UTF-8: the careful walk remembers or refuses it
                decoded[text] = text.decode("ascii")
            strings[stag] = list(map(decoded.__getitem__, texts))
        none: list[str | None] = [None] * declared
        self.budget_left -= cost
        return list(map(Partition, columns[0], columns[1], columns[2], columns[3], columns[4],
                        smooth, strings.get(b"NAME", none), strings.get(b"MTRL", none)))

    def partitions_plain(self, chunk: _Chunk, declared: int) -> list[Partition] | None:
        """PRTS read in one lean walk when it holds only PARTs, each its record then a
        NAME and/or MTRL (in that order) of canonically padded ASCII, all within range:
        the usual file whose PARTs differ in size. None for anything else (the careful
        walk in partitions() then reads the file or says what is wrong); the budget is
        charged as the walk goes, and nothing is changed before it succeeds."""
        buf = self.buf
        if not self.is_bytes:
            return None
        head, unpack = _PART_HEAD.unpack_from, _CHUNK.unpack_from
        triangles = self.triangles
        corners = 3 * triangles
        cache: dict[bytes, str] = {}
        result: list[Partition] = []
        left = self.budget_left
        pos, end = chunk.start + 4, chunk.end
        while pos < end:
            left -= PART_COST
            if end - pos < 32 or left < 0:
                return None
            tag, size, pidx, fstart, fcount, vstart, vcount, smooth = head(buf, pos)
            after = pos + 8 + size
            if (tag != b"PART" or size < 24 or after > end or fstart + fcount > triangles
                    or vstart + vcount > corners):
                return None
            sub = pos + 32
            name = material = None
            kinds = b""
            while sub < after:
                left -= PART_STRING_COST
                if after - sub < 8 or left < 0:
                    return None
                stag, ssize = unpack(buf, sub)
                safter = sub + 8 + ssize
                if safter > after or ssize > MAX_NAME_BYTES:
                    return None
                raw = buf[sub + 8:safter]
                value = cache.get(raw)
                if value is None:
                    value = _canonical_ascii(raw)
                    if value is None:
                        return None
                    cache[raw] = value
                kinds += stag
                if stag == b"NAME":
                    name = value
                else:
                    material = value
                sub = safter
            if kinds and kinds not in _PLAIN_PART_KINDS:
                return None
            result.append(Partition(pidx, fstart, fcount, vstart, vcount, smooth, name, material))
            pos = after
        if len(result) != declared:
            return None
        self.budget_left = left
        return result

    def toc(self, chunk: _Chunk, objects: list[tuple[_Chunk, Any]]) -> list[tuple[str, int]]:
        if chunk.size < 4:
            raise NvfError(f"TOC0 is {chunk.size} bytes, too short for its record size", chunk.offset + 4)
        record_size = self.u32(chunk.start)
        if record_size != 8:
            raise NvfError(f"unsupported TOC0 record size {record_size}, only 8 is supported", chunk.start)
        if (chunk.size - 4) % 8:
            raise NvfError(f"TOC0 payload of {chunk.size} bytes is not 4 + a multiple of 8",
                           chunk.offset + 4)
        self.budget_left -= (chunk.size - 4) // 8 * CHUNK_COST   # each record becomes a few objects
        if self.budget_left < 0:
            raise self.too_many_chunks(chunk.start + 4)
        data = bytes(self.buf[chunk.start + 4:chunk.end])
        records = [(tag.decode("latin-1"), offset) for tag, offset in struct.iter_unpack("<4sI", data)]
        listed = [(kid.tag.decode("latin-1"), kid.offset) for kid, _ in objects if kid is not chunk]
        if records == listed:
            # NVIDIA's rule (every other top-level object, in file order): recomputed when written.
            self.layout.toc_entries = []
            self.layout.toc_lists_all = True
            return records
        by_offset = {kid.offset: (kid, target) for kid, target in objects}
        entries: list[TocEntry] = []
        for (_, offset), (tag, _) in zip(records, struct.iter_unpack("<4sI", data)):
            hit = by_offset.get(offset)
            if hit is None or hit[0].tag != tag or hit[0] is chunk:
                entries.append(TocRaw(tag, offset))
            elif isinstance(hit[1], UnknownChunk):
                entries.append(TocUnknown(hit[1], offset))
            else:
                entries.append(TocKnown(hit[0].tag.decode("ascii"), offset))
        self.layout.toc_entries = entries
        self.layout.toc_lists_all = False
        return records

    def model(self) -> FaceModel:
        body, toc_loc = self.header()
        top = self.children(body, self.length, "the file")
        known: dict[bytes, _Chunk] = {}
        objects: list[tuple[_Chunk, Any]] = []
        order: list[str] = []
        for position, chunk in enumerate(top):
            if chunk.tag in TOP_TAGS:
                if chunk.tag in known:
                    raise NvfError(
                        f"second top-level {chunk.name} object (the first is at offset "
                        f"{known[chunk.tag].offset})", chunk.offset)
                known[chunk.tag] = chunk
                key = chunk.tag.decode("ascii")
                order.append(key)
                objects.append((chunk, key))
            else:
                objects.append((chunk, self.unknown_chunk(chunk, "", position)))
        self.layout.child_orders[""] = tuple(order)
        modl = known.get(b"MODL")
        if modl is None:
            raise NvfError("no MODL object: the file holds no face model", body)
        shape, color, texcoords = self.modl(modl)
        self.layout.triangles_ref = shape.triangles

        def get(tag: bytes) -> _Chunk | None:
            return known.get(tag)

        ibug = self.landmarks(c, "IBUG") if (c := get(b"IBUG")) is not None else None
        blend = self.blend_shapes(c) if (c := get(b"BLND")) is not None else None
        contours = self.contours(c) if (c := get(b"MCTR")) is not None else None
        topology = self.topology(c) if (c := get(b"TOPO")) is not None else None
        nvlm = self.landmarks(c, "NVLM") if (c := get(b"NVLM")) is not None else None
        partitions = self.partitions(c) if (c := get(b"PRTS")) is not None else None
        self.layout.topology_ref = (
            (topology, topology.adjacent_faces, topology.edge_vertices) if topology is not None else None)

        toc_chunk = get(b"TOC0")
        toc = self.toc(toc_chunk, objects) if toc_chunk is not None else None
        if toc_loc != 0 and (toc_chunk is None or toc_loc != toc_chunk.offset):
            where = f"the TOC0 object is at {toc_chunk.offset}" if toc_chunk else "the file has no TOC0 object"
            raise NvfError(f"header says the TOC is at offset {toc_loc} but {where}", 12)
        self.layout.toc_loc_zero = toc_chunk is not None and toc_loc == 0

        return FaceModel(
            shape=shape, color=color, texcoords=texcoords, ibug=ibug, blend_shapes=blend,
            model_contours=contours, topology=topology, nvlm=nvlm, partitions=partitions,
            unknown_chunks=self.unknown, toc=toc, source_layout=self.layout)


def read(source: Source) -> FaceModel:
    """Reads one .nvf face model.

    `source` is a path (str or os.PathLike), a bytes-like object (bytes,
    bytearray, memoryview) or a binary file object (read to its end). The
    file is read once; arrays are little-endian views over its bytes (read-only
    for bytes and paths; views over a bytearray/memoryview share its memory).

    Raises NvfError (with `.offset`) for anything that is not a valid file;
    OSError for a path that cannot be read; TypeError for a wrong source type.
    """
    buf = _load(source)
    reader = _Reader(buf)
    try:
        return reader.model()
    except NvfError:
        raise
    except (struct.error, ValueError, IndexError, OverflowError, MemoryError) as exc:
        # Safety net: the checks above should make this unreachable.
        raise NvfError(f"malformed data ({type(exc).__name__}: {exc})", None) from exc
