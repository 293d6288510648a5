# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writing .nvf files: validate everything first, then emit the bytes once.

Container sizes are always computed from their children's bytes (never
NVIDIA's COLR size bug). A model read from a file carries a `SourceLayout`
that makes the output byte-identical to that file; whatever an edit made
inapplicable falls back to NVIDIA's canonical layout.

Here: `write` and `to_bytes`, the file's header, the top-level objects placed
and the TOC. The objects' encoders live in write_objects and write_partitions,
over the layout plan of write_layout, the chunks of write_chunks and the
checks of write_values; `_Writer` puts them together.

May import: numpy, the standard library, and io_nv3dmm's write_* modules,
atomic, errors, limits, layout, maxine and model.
"""

from __future__ import annotations

import os
import struct
from typing import IO, Union

from .atomic import write_atomic
from .errors import NvfError
from .layout import (
    CANONICAL_HEADER_FLAGS, CANONICAL_TOP_ORDER, HEADER_SIZE, MAGIC, TocEntry, TocKnown, TocUnknown,
)
from .limits import CHUNK_COST, CHUNK_SLACK, MAX_FILE_BYTES, chunk_budget
from .maxine import maxine_problems
from .model import FaceModel
from .write_chunks import Buffer, Node, chunk_header
from .write_objects import ObjectWriter
from .write_partitions import PartitionWriter

Destination = Union[str, "os.PathLike[str]", IO[bytes]]


class _Writer(ObjectWriter, PartitionWriter):
    """One write of one model: the objects encoded, placed, and the TOC."""

    def build(self) -> list[Buffer]:
        model = self.model
        layout = self.layout
        self.collect_unknown()
        objects: dict[str, Node] = {"MODL": self.modl()}
        if model.ibug is not None:
            objects["IBUG"] = self.landmarks(model.ibug, "IBUG")
        if model.blend_shapes is not None:
            objects["BLND"] = self.blend_shapes()
        if model.model_contours is not None:
            objects["MCTR"] = self.contours()
        if model.topology is not None or self.had("", "TOPO"):
            objects["TOPO"] = self.topology()
        if model.nvlm is not None:
            objects["NVLM"] = self.landmarks(model.nvlm, "NVLM")
        if self.has_partitions():
            objects["PRTS"] = self.partitions()
        write_toc = layout is None or model.toc is not None
        tags = self.order("", CANONICAL_TOP_ORDER, set(objects) | ({"TOC0"} if write_toc else set()))
        placeholder = Node("TOC0", [], 0)
        top = self.with_unknown("", [objects[t] if t != "TOC0" else placeholder for t in tags])
        # Whatever is left belongs to containers this model no longer has.
        self.unknown.clear()

        extra = layout.header_extra if layout is not None else b""
        header_size = HEADER_SIZE + len(extra)
        records: list[tuple[bytes, Node | int]] = []
        offsets: dict[int, int] = {}
        if write_toc:
            records, unchanged = self.toc_records(top, placeholder)
            offsets = self.place(top, placeholder, header_size, len(records))
            if any(isinstance(target, int) for _, target in records) and not all(
                    offsets[id(target)] == original for (_, target), original in zip(records, unchanged)
                    if not isinstance(target, int)):
                # Records that pointed at nothing are only kept in an unchanged file.
                records = [(tag, target) for tag, target in records if not isinstance(target, int)]
                offsets = self.place(top, placeholder, header_size, len(records))
        else:
            offsets = self.place(top, placeholder, header_size, 0)
        position = header_size + sum(node.length for node in top)
        toc_loc = 0
        if write_toc:
            table = bytearray(struct.pack("<I", 8))
            for tag, target in records:
                where = target if isinstance(target, int) else offsets[id(target)]
                table += struct.pack("<4sI", tag, where)
            placeholder.parts = [chunk_header("TOC0", len(table)), bytes(table)]
            if layout is None or not layout.toc_loc_zero:
                toc_loc = offsets[id(placeholder)]
        if position > MAX_FILE_BYTES:
            raise NvfError(f"the file would be {position:,} bytes; sizes and TOC offsets are uint32 "
                           f"(at most {MAX_FILE_BYTES:,})")
        cost = sum([node.cost for node in top]) + CHUNK_COST * len(records)
        if cost > chunk_budget(position):
            raise NvfError(
                f"the file would be {position:,} bytes with chunks charged {cost:,} bytes, more "
                f"than the file's size plus {CHUNK_SLACK >> 20} MiB (io_nv3dmm.limits: reading "
                f"costs memory per chunk): too many blend shapes, partitions or unknown chunks "
                f"for so small a mesh")
        flags = layout.header_flags if layout is not None else CANONICAL_HEADER_FLAGS
        header = MAGIC + struct.pack("<I", 8 + len(extra)) + flags + struct.pack("<I", toc_loc) + extra
        out: list[Buffer] = [header]
        for node in top:
            out.extend(node.parts)
        return out

    @staticmethod
    def place(top: list[Node], placeholder: Node, header_size: int, records: int) -> dict[int, int]:
        """Absolute offsets of the top-level objects (by node id) for a TOC of `records`."""
        placeholder.length = 12 + 8 * records
        offsets: dict[int, int] = {}
        position = header_size
        for node in top:
            offsets[id(node)] = position
            position += node.length
        return offsets

    def toc_records(self, top: list[Node], placeholder: Node) -> tuple[list[tuple[bytes, Node | int]], list[int]]:
        """The TOC records (tag, object or raw offset) and, per record, the offset it had when read."""
        layout = self.layout
        listed = [node for node in top if node is not placeholder]
        if layout is None or layout.toc_entries is None or layout.toc_lists_all:
            return [(node.tag.encode("latin-1"), node) for node in listed], [-1] * len(listed)
        by_tag = {node.tag: node for node in listed if id(node) not in self.top_unknown}
        by_chunk = {id(self.top_unknown[id(node)][1]): node for node in listed if id(node) in self.top_unknown}
        records: list[tuple[bytes, Node | int]] = []
        originals: list[int] = []
        dropped = False
        entry: TocEntry
        for entry in layout.toc_entries:
            node: Node | None = None
            if isinstance(entry, TocKnown):
                node = by_tag.get(entry.key)
                tag = entry.key.encode("latin-1")
            elif isinstance(entry, TocUnknown):
                node = by_chunk.get(id(entry.chunk))
                tag = entry.chunk.tag.encode("latin-1")
            else:
                records.append((entry.tag, entry.offset))
                originals.append(entry.offset)
                continue
            if node is None:
                dropped = True
            else:
                records.append((tag, node))
                originals.append(entry.offset)
        if dropped:
            originals = [-1] * len(records)     # something is gone: the file has changed
        return records, originals


def _serialize(model: FaceModel, maxine: bool = True) -> list[Buffer]:
    try:
        parts = _Writer(model, maxine).build()
        if maxine:
            problems = maxine_problems(model)
            if problems:
                raise NvfError(
                    "NVIDIA's Maxine reader could not read this model: " + "; ".join(problems)
                    + " (write(..., maxine=False) writes it anyway, for io_nv3dmm only)")
        return parts
    except NvfError:
        raise
    except (ValueError, TypeError, OverflowError, struct.error) as exc:
        if isinstance(exc, TypeError) and "FaceModel" in str(exc):
            raise
        raise NvfError(f"the model cannot be written: {exc}") from exc


def to_bytes(model: FaceModel, *, maxine: bool = True) -> bytes:
    """The .nvf bytes of `model` (see `write`)."""
    return b"".join(_serialize(model, maxine))


def write(model: FaceModel, destination: Destination, *, fsync: bool = True,
          maxine: bool = True) -> None:
    """Writes `model` as an .nvf file.

    `destination` is a path or a binary file object (written at its current
    position). A path is written by `write_atomic` (io_nv3dmm.atomic): a
    temporary file in the same folder, flushed to disk unless `fsync` is False,
    renamed over the destination, folder flushed; a symbolic link is written
    through (the link is kept); a directory, FIFO, socket or device node is
    refused with DestinationError (an OSError). No partial file is ever left,
    whatever interrupts the write.
    Everything is validated before the destination is touched; a model the
    format cannot hold raises NvfError (a ValueError). A model read from a file
    is written back byte for byte unless it was edited; a model built in code
    gets NVIDIA's object order, a TOC, and a TOPO rebuilt from its triangles
    when `topology` is None.

    maxine (default True): the file is one NVIDIA's own reader (Maxine's
    FaceIO.cpp) reads with the same data: a model it could not read
    (`maxine_problems`) raises NvfError, and a shape or colour model without
    modes gets no BSIS chunk (NVIDIA's reader divides by its count). With
    False, such details of a file as read are kept byte for byte, for io_nv3dmm
    only. Limits (io_nv3dmm.limits) apply either way, so `read` takes the file.
    """
    parts = _serialize(model, maxine)
    if isinstance(destination, (str, os.PathLike)):
        write_atomic(destination, parts, fsync=fsync)
        return
    writer = getattr(destination, "write", None)
    if writer is None:
        raise TypeError(
            f"write() takes a path or a binary file object, not {type(destination).__name__}")
    for part in parts:
        writer(part)
