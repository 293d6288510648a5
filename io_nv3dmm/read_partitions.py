# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading PRTS, the partitions: partition-heavy models have hundreds of PARTs.

`PartitionReader.partitions` tries two fast paths, then the careful walk:
`partitions_regular` (numpy over PARTs that all have the same size and children),
`partitions_plain` (one lean walk over PARTs of canonical ASCII strings), and the
careful chunk-by-chunk walk that reads anything else or says what is wrong (each
error with its offset). The fast paths change nothing unless they succeed, and
their `Partition` objects are made on first use (`PartitionRows`, `FileFaceModel`).

May import: numpy, the standard library, and io_nv3dmm's read_chunks, errors,
layout, limits and model.
"""

from __future__ import annotations

import dataclasses
import struct
from itertools import starmap
from typing import Any

import numpy as np

from .read_chunks import CHUNK_HEAD, I32, MAX, U32N, U64, Chunk, ChunkReader, overflow, stray_bytes
from .errors import NvfError
from .layout import PART_RECORD
from .limits import CHUNK_COST, MAX_NAME_BYTES, MAX_PARTITIONS, PART_COST, PART_STRING_COST
from .model import FaceModel, Partition

_unpack_chunk = CHUNK_HEAD.unpack_from
_unpack_part = PART_RECORD.unpack_from
# A PART's chunk header and its record in one unpack: "<4sI" then "IIIIIi".
_unpack_part_head = struct.Struct(CHUNK_HEAD.format + PART_RECORD.format.lstrip("<")).unpack_from


class PartitionRows:
    """A PRTS checked by a fast path whose `Partition` objects are not made yet: `build`
    makes them, `payload` gives the PARTs' bytes back to the writer. Only canonical
    layouts take a fast path, so those bytes are what the writer would write for the
    partitions built (against the same triangle count)."""

    __slots__ = ("buf", "start", "end", "count", "cost", "triangles")

    def __init__(self, buf: bytes, start: int, end: int, count: int, cost: int, triangles: int) -> None:
        self.buf = buf              # the file (immutable bytes)
        self.start = start          # the PARTs' span: PRTS's payload after its count
        self.end = end
        self.count = count          # PARTs
        self.cost = cost            # what reading the PARTs charged (io_nv3dmm.limits)
        self.triangles = triangles  # the triangle count the ranges were checked against

    def build(self) -> list[Partition]:
        raise NotImplementedError

    def payload(self) -> memoryview:
        return memoryview(self.buf)[self.start:self.end]


class RegularRows(PartitionRows):
    """PARTs all alike (`partitions_regular`): the records and strings stay in the buffer."""

    __slots__ = ("stride", "subs")

    def __init__(self, buf: bytes, start: int, count: int, stride: int,
                 subs: list[tuple[bytes, int, int]], cost: int, triangles: int) -> None:
        super().__init__(buf, start, start + count * stride, count, cost, triangles)
        self.stride = stride        # each PART's size, header included
        self.subs = subs            # (NAME or MTRL, payload offset in a PART, payload size)

    def build(self) -> list[Partition]:
        buf, start, count, stride = self.buf, self.start, self.count, self.stride
        records = np.ndarray((count, 5), U32N, buf, start + 8, (stride, 4)).T.tolist()
        smoothing = np.ndarray((count,), I32, buf, start + 28, (stride,)).tolist()
        strings: dict[bytes, list[str | None]] = {}
        for stag, at, ssize in self.subs:
            texts: list[bytes] = np.ndarray((count,), f"S{ssize}", buf, start + at, (stride,)).tolist()
            decoded = {text: text.decode("ascii") for text in set(texts)}
            strings[stag] = list(map(decoded.__getitem__, texts))
        none: list[str | None] = [None] * count
        return list(map(Partition, records[0], records[1], records[2], records[3], records[4], smoothing,
                        strings.get(b"NAME", none), strings.get(b"MTRL", none)))


class PlainRows(PartitionRows):
    """PARTs walked by `partitions_plain`: their fields as tuples."""

    __slots__ = ("rows",)

    def __init__(self, buf: bytes, start: int, end: int, rows: list[tuple[Any, ...]], cost: int,
                 triangles: int) -> None:
        super().__init__(buf, start, end, len(rows), cost, triangles)
        self.rows = rows

    def build(self) -> list[Partition]:
        return list(starmap(Partition, self.rows))


class FileFaceModel(FaceModel):
    """`FaceModel` as read from a file; partitions read on a fast path are made into
    `Partition` objects on first use of `partitions`.

    A partition-heavy model's objects cost about as much as checking its PRTS, so
    they are made the first time `partitions` is read (then kept: the same list
    each time), and an unedited model is written from the file's bytes. Assigning
    `partitions` works as for a plain `FaceModel`; pickling and copying give a
    plain `FaceModel`.
    """

    _partitions: list[Partition] | None
    _partition_rows: PartitionRows | None

    @property
    def partitions(self) -> list[Partition] | None:
        rows = self._partition_rows
        if rows is not None:
            self._partitions = rows.build()
            self._partition_rows = None
        return self._partitions

    @partitions.setter
    def partitions(self, value: list[Partition] | None) -> None:
        self._partitions = value
        self._partition_rows = None

    def defer_partitions(self, rows: PartitionRows) -> None:
        """`partitions` becomes `rows` built on first use."""
        self._partitions = None
        self._partition_rows = rows

    def unread_partitions(self) -> PartitionRows | None:
        """The file's partitions while `partitions` was never used, else None."""
        return self._partition_rows

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return (FaceModel, tuple(getattr(self, f.name) for f in dataclasses.fields(FaceModel)))


def _canonical_ascii(raw: bytes) -> str | None:
    """The text of a canonically padded ASCII string payload, else None (the slow path
    then handles odd padding and UTF-8)."""
    text = raw.rstrip(b"\0")
    if len(raw) == (len(text) + 3) & ~3 and text.isascii() and text.find(0) < 0:
        return text.decode("ascii")
    return None


class PartitionReader(ChunkReader):
    """PRTS's decoder (see the module docstring)."""

    def partitions(self, chunk: Chunk) -> list[Partition] | PartitionRows:
        if chunk.size < 4:
            raise NvfError(f"PRTS is {chunk.size} bytes, too short for its partition count",
                           chunk.offset + 4)
        declared = self.u32(chunk.start)
        if declared > MAX_PARTITIONS:
            raise NvfError(f"PRTS declares {declared:,} partitions, more than the format's limit of "
                           f"{MAX_PARTITIONS:,}", chunk.start)
        rows = self.partitions_regular(chunk, declared)
        if rows is not None:
            return rows
        fast = self.partitions_plain(chunk, declared)
        if fast is not None:
            return fast
        # Partition-heavy files have hundreds of PARTs: one tight walk (like BLND's) with the
        # same checks and charges as children(), and each distinct NAME/MTRL payload decoded once.
        result: list[Partition] = []
        canonical = True
        buf, unpack, unpack_part = self.buf, _unpack_chunk, _unpack_part
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
                raise overflow(tag, size, end - pos - 8, "PRTS", pos)
            if tag != b"PART":
                self.unknown_chunk(Chunk(tag, pos, size), "PRTS", len(result) + unknown)
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
                        raise overflow(stag, ssize, after - sub - 8, f"PART #{index}", sub)
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
                        raise overflow(stag, ssize, after - sub - 8, f"PART #{index}", sub)
                    self.unknown_chunk(Chunk(stag, sub, ssize), f"PRTS/PART[{index}]", len(kinds))
                    kinds += "?"
                sub = safter
            if sub != after:
                raise stray_bytes(after - sub, f"PART #{index}", sub)
            if kinds == "MN" or ("?" in kinds and kinds.replace("?", "") == "MN"):
                # Any other order is the canonical one for the chunks present.
                self.layout.child_orders[f"PRTS/PART[{index}]"] = ("MTRL", "NAME")
            result.append(Partition(pidx, fstart, fcount, vstart, vcount, smooth, name, material))
            pos = after
        self.budget_left = left
        if pos != end:
            raise stray_bytes(end - pos, "PRTS", pos)
        if declared != len(result):
            raise NvfError(
                f"PRTS declares {declared} partitions but holds {len(result)} PART chunks "
                f"(counts disagree)", chunk.start)
        if not canonical:
            self.layout.child_orders["PRTS"] = ("PART",) * len(result)
        return result

    def partitions_regular(self, chunk: Chunk, declared: int) -> RegularRows | None:
        """PRTS checked with numpy when every PART has the same size and the same children
        (the PART record, then the same NAME and/or MTRL chunk sizes): partition-heavy
        models written by a tool usually are. Its `Partition` objects are made on first
        use (`RegularRows`). None when the layout is anything else, or anything is out
        of place (the careful walk in partitions() then reads the file or says what is
        wrong); nothing is changed before it succeeds."""
        buf = self.buf
        if not self.is_bytes or declared == 0 or chunk.size < 12:
            return None
        start = chunk.start + 4
        tag, size = _unpack_chunk(buf, start)
        stride = 8 + size
        if tag != b"PART" or size < 24 or chunk.size != 4 + declared * stride:
            return None
        # The first PART's children make the template every PART must repeat byte for byte.
        subs: list[tuple[bytes, int, int]] = []    # (tag, payload offset in the PART, payload size)
        sub = 32
        while sub < stride:
            if stride - sub < 8 or len(subs) == 2:
                return None
            stag, ssize = _unpack_chunk(buf, start + sub)
            if (ssize > stride - sub - 8 or ssize > MAX_NAME_BYTES or ssize & 3
                    or stag not in (b"NAME", b"MTRL")):
                return None
            subs.append((stag, sub + 8, ssize))
            sub += 8 + ssize
        if len(subs) == 2 and subs[0][0] != b"NAME" or len(subs) == 2 and subs[1][0] != b"MTRL":
            return None        # MTRL before NAME, or two of a kind: the careful walk
        cost = declared * (PART_COST + PART_STRING_COST * len(subs))
        if cost > self.budget_left:
            return None
        # Headers (PART's and its children's) equal the first PART's in every row: each
        # column of 8-byte headers, gathered, is the first one repeated.
        for at in [0] + [at - 8 for _, at, _ in subs]:
            heads = np.ndarray((declared,), U64, buf, start + at, (stride,)).tobytes()
            if heads != heads[:8] * declared:
                return None
        # The ranges on int64 columns (no uint32 overflow in the sums).
        records = np.ndarray((declared, 4), U32N, buf, start + 12, (stride, 4)).astype(np.int64)
        if (MAX(records[:, 0] + records[:, 1], None) > self.triangles
                or MAX(records[:, 2] + records[:, 3], None) > 3 * self.triangles):
            return None        # the careful walk says which PART
        for _, at, ssize in subs:
            column: np.ndarray[Any, Any] = np.ndarray((declared,), f"S{ssize}", buf, start + at, (stride,))
            payloads = column.tobytes()
            if not payloads.isascii():
                return None    # UTF-8: the careful walk reads or refuses it
            if payloads.find(0) < 0:
                continue       # no NUL: every text fills its payload (a multiple of 4 bytes)
            # Fixed-width numpy strings drop trailing NULs: canonical padding is each text's
            # length rounding up to the payload's size, and no NUL left inside any of them.
            texts = set(column.tolist())
            if min(map(len, texts)) <= ssize - 4 or b"\0".join(texts).count(0) != len(texts) - 1:
                return None    # odd padding: the careful walk remembers it
        self.budget_left -= cost
        return RegularRows(buf, start, declared, stride, subs, cost, self.triangles)

    def partitions_plain(self, chunk: Chunk, declared: int) -> PlainRows | None:
        """PRTS read in one lean walk when it holds only PARTs, each its record then a
        NAME and/or MTRL (in that order) of canonically padded ASCII, all within range:
        the usual file whose PARTs differ in size. Its `Partition` objects are made on
        first use (`PlainRows`). None for anything else (the careful walk in partitions()
        then reads the file or says what is wrong); the budget is charged as the walk
        goes, and nothing is changed before it succeeds."""
        buf = self.buf
        if not self.is_bytes:
            return None
        head, unpack = _unpack_part_head, _unpack_chunk
        triangles = self.triangles
        corners = 3 * triangles
        cache: dict[bytes, str] = {}
        rows: list[tuple[Any, ...]] = []
        take = rows.append
        left = budget = self.budget_left
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
                # At most one NAME then at most one MTRL (the strings are never None).
                if stag == b"NAME" and name is None and material is None:
                    name = value
                elif stag == b"MTRL" and material is None:
                    material = value
                else:
                    return None
                sub = safter
            take((pidx, fstart, fcount, vstart, vcount, smooth, name, material))
            pos = after
        if len(rows) != declared:
            return None
        self.budget_left = left
        return PlainRows(buf, chunk.start + 4, end, rows, budget - left, triangles)
