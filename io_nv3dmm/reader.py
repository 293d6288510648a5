# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading .nvf files: one pass over one buffer, arrays as zero-copy views.

Every size and count is checked against the bytes that are really there
before anything is allocated, so a hostile file either reads or raises
`NvfError`; it never makes the reader allocate more than the input's size.

Here: `read` (the source loaded once), the header, the top-level walk and the
TOC. The objects' decoders live in read_objects (MODL, landmarks, MCTR, TOPO),
read_blend (BLND) and read_partitions (PRTS), over the chunk walk of read_chunks;
`_Reader` puts them together.

May import: numpy, the standard library, and io_nv3dmm's read_* modules,
errors, limits, layout and model.
"""

from __future__ import annotations

import os
import struct
from typing import IO, Any, Union

from .read_chunks import Chunk
from .errors import NvfError
from .layout import (
    CANONICAL_HEADER_FLAGS, CHILD_TAGS, HEADER_SIZE, MAGIC, TocEntry, TocKnown, TocRaw, TocUnknown,
)
from .limits import CHUNK_COST, chunk_budget
from .model import FaceModel, UnknownChunk
from .read_blend import BlendReader
from .read_objects import ObjectReader
from .read_partitions import FileFaceModel, PartitionReader, PartitionRows

# Names other modules take from here; the tests' budget checks replace chunk_budget here.
__all__ = ["Source", "chunk_budget", "read"]

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]

TOP_TAGS = frozenset(tag.encode("ascii") for tag in CHILD_TAGS[""])


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)     # O_BINARY: Windows' untranslated mode


def _read_file(path: str | os.PathLike[str]) -> bytes:
    """The whole file, read with one system call in the usual case.

    The same bytes as `open(path, "rb").read()` (to the end of the file, even one
    that grows or shrinks meanwhile), without the buffered file object around it:
    the file object is a few percent of a `read(path)`. OSError as open() gives it,
    naming the file (IsADirectoryError, ...).
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        return _read_to_end(fd)
    except OSError as exc:          # os.read's errors name no file (a folder: "Is a directory")
        raise type(exc)(exc.errno, exc.strerror, os.fspath(path)) from None
    finally:
        os.close(fd)


def _read_to_end(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    data = os.read(fd, size) if size > 0 else b""
    more = os.read(fd, 1 << 16)     # b"": the end (the usual case); else a short read,
    if not more:                    # or a file that grew since fstat: read to the end
        return data
    pieces = [data, more]
    while chunk := os.read(fd, 1 << 20):
        pieces.append(chunk)
    return b"".join(pieces)


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
        return _read_file(source)
    read = getattr(source, "read", None)
    if read is None:
        raise TypeError(
            f"read() takes a path, bytes-like object or binary file object, not {type(source).__name__}")
    data = read()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("the file object must be opened in binary mode (its read() returned text)")
    return data


class _Reader(ObjectReader, BlendReader, PartitionReader):
    """One read of one buffer: the header, the top-level objects, the TOC.

    `_Reader(buf, budget)`: see `ChunkReader`; `read` gives it the file's chunk budget.
    """

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

    def toc(self, chunk: Chunk, objects: list[tuple[Chunk, Any]]) -> list[tuple[str, int]]:
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
        known: dict[bytes, Chunk] = {}
        objects: list[tuple[Chunk, Any]] = []
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

        def get(tag: bytes) -> Chunk | None:
            return known.get(tag)

        ibug = self.landmarks(c, "IBUG") if (c := get(b"IBUG")) is not None else None
        blend = self.blend_shapes(c) if (c := get(b"BLND")) is not None else None
        contours = self.contours(c) if (c := get(b"MCTR")) is not None else None
        topology = self.topology(c) if (c := get(b"TOPO")) is not None else None
        nvlm = self.landmarks(c, "NVLM") if (c := get(b"NVLM")) is not None else None
        found = self.partitions(c) if (c := get(b"PRTS")) is not None else None
        rows = found if isinstance(found, PartitionRows) else None   # made on first use
        partitions = found if isinstance(found, list) else None
        self.layout.topology_ref = (
            (topology, topology.adjacent_faces, topology.edge_vertices) if topology is not None else None)

        toc_chunk = get(b"TOC0")
        toc = self.toc(toc_chunk, objects) if toc_chunk is not None else None
        if toc_loc != 0 and (toc_chunk is None or toc_loc != toc_chunk.offset):
            where = f"the TOC0 object is at {toc_chunk.offset}" if toc_chunk else "the file has no TOC0 object"
            raise NvfError(f"header says the TOC is at offset {toc_loc} but {where}", 12)
        self.layout.toc_loc_zero = toc_chunk is not None and toc_loc == 0

        model = FileFaceModel(
            shape=shape, color=color, texcoords=texcoords, ibug=ibug, blend_shapes=blend,
            model_contours=contours, topology=topology, nvlm=nvlm, partitions=partitions,
            unknown_chunks=self.unknown, toc=toc, source_layout=self.layout)
        if rows is not None:
            model.defer_partitions(rows)
        return model


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
    reader = _Reader(buf, chunk_budget(len(buf)))     # the budget: see io_nv3dmm.limits
    try:
        return reader.model()
    except NvfError:
        raise
    except (struct.error, ValueError, IndexError, OverflowError, MemoryError) as exc:
        # Safety net: the checks above should make this unreachable.
        raise NvfError(f"malformed data ({type(exc).__name__}: {exc})", None) from exc
