# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading BLND, the blend shapes: the object that holds most of a file's chunks.

`FileBlendShapes` keeps the SHAP payloads in the file's buffer until `deltas` is
first used (and lets the writer copy them straight back). `BlendReader` reads
BLND: a fast path for the usual NAME, SHAP, NAME, SHAP, ... layout from bytes
(`blend_pairs`), the careful walk for anything else (same checks, every error
with its offset), and all names decoded in one go.

May import: numpy, the standard library, and io_nv3dmm's read_chunks, errors, limits
and model.
"""

from __future__ import annotations

import operator
import re
from itertools import repeat
from typing import Any

import numpy as np

from .read_chunks import CHUNK_HEAD, F32, U32, Chunk, ChunkReader, overflow, stray_bytes
from .errors import NvfError
from .limits import BLEND_CHUNK_COST, CHUNK_COST, MAX_BLEND_SHAPES, MAX_NAME_BYTES
from .model import BlendShapes

F32Array = np.ndarray[Any, np.dtype[np.float32]]

_unpack_chunk = CHUNK_HEAD.unpack_from
_SUB = operator.sub
_AND = operator.and_
_STRIP_NUL = operator.methodcaller("rstrip", b"\0")


# A NUL before a name's last byte (0xFF: the separator), or padding of 4 NULs or more.
_ODD_NUL = re.compile(rb"\0(?:[^\0\xff]|\0\0\0)")
_SEPARATOR_TO_NUL = bytes.maketrans(b"\xff", b"\0")


def _canonical_names(raws: list[bytes]) -> list[str] | None:
    """The names of NAME payloads that are each a multiple of 4 bytes (the caller checks
    that), canonically padded (at most 3 NULs, all at the end) UTF-8 within the size limit;
    None when any is not (the careful walk then remembers or refuses it). One pass each
    over the joined payloads: 0xFF separates them, as it is never in UTF-8 (one inside a
    name would split it: the count of names tells)."""
    if not raws:
        return []
    joined = b"\xff".join(raws)
    if (_ODD_NUL.search(joined) is not None
            or (len(joined) > MAX_NAME_BYTES and max(map(len, raws)) > MAX_NAME_BYTES)):
        return None
    try:
        names = joined.translate(_SEPARATOR_TO_NUL, b"\0").decode().split("\0")
    except UnicodeDecodeError:
        return None
    return names if len(names) == len(raws) else None


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
            self._deltas = np.frombuffer(joined, dtype=F32).reshape(len(starts), vertices, 3)
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


class BlendReader(ChunkReader):
    """BLND's decoder (see the module docstring)."""

    def blend_shapes(self, chunk: Chunk) -> BlendShapes:
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
        buf, unpack = self.buf, _unpack_chunk
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
                raise overflow(tag, size, end - pos - 8, "BLND", pos)
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
                self.unknown_chunk(Chunk(tag, pos, size), "BLND", len(name_at) + len(shapes) + unknown)
                unknown += 1
            pos = after
        self.budget_left = left
        if pos != end:
            raise stray_bytes(end - pos, "BLND", pos)
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

    def blend_pairs(self, chunk: Chunk, declared: int) -> BlendShapes | None:
        """BLND read when it is exactly `declared` NAME, SHAP pairs, each SHAP the model's
        size and each NAME a canonically padded UTF-8 string, from a bytes buffer: the walk
        takes each NAME's payload and where its SHAP starts (one test of the next 8 bytes
        for the SHAP header, no objects per chunk), the names are checked and decoded in
        one go, and the budget is charged once. None for anything else (the careful walk
        in blend_shapes() then reads the file or says what is wrong); nothing is changed
        before it succeeds."""
        buf = self.buf
        if not self.is_bytes:
            return None
        shape_bytes = 12 * self.vertices
        cost = declared * 2 * BLEND_CHUNK_COST
        if cost > self.budget_left:
            return None
        shap = b"SHAP" + U32.pack(shape_bytes)
        is_shap = buf.startswith
        unpack = _unpack_chunk
        step = 8 + shape_bytes
        pos, end = chunk.start + 4, chunk.end
        last = end - 16 - shape_bytes       # the last offset where a NAME, SHAP pair still fits
        raws: list[bytes] = []              # each NAME's payload
        starts: list[int] = []              # where each SHAP's payload starts
        take, note = raws.append, starts.append
        while pos <= last:
            tag, size = unpack(buf, pos)
            after = pos + 8 + size
            # (A SHAP that runs past the end leaves pos beyond it: refused below.)
            if tag != b"NAME" or size & 3 or not is_shap(shap, after):
                return None
            take(buf[pos + 8:after])
            note(after + 8)
            pos = after + step
        if pos != end or len(raws) != declared:
            return None
        names = _canonical_names(raws)
        if names is None:
            return None
        self.budget_left -= cost
        return FileBlendShapes.from_file(names, buf, starts, self.vertices)

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
