# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Encoders of PRTS, the partitions: partition-heavy models have hundreds of PARTs.

`file_partitions` copies back the PRTS of a model read from a file whose
partitions were never used (`FileFaceModel`); `plain_partitions` packs the usual
PRTS (no unknown chunks, no remembered order) straight into one buffer, each
distinct name or material encoded once; anything else, and any value that fails
a check, goes through `partition`, one `Node` per PART with the precise error.

May import: numpy, the standard library, and io_nv3dmm's write_*, read_partitions
(`FileFaceModel`, copied back unread), errors, layout, limits and model.
"""

from __future__ import annotations

import struct
from typing import Sequence

import numpy as np

from .errors import NvfError
from .layout import PART_CHILD_TAGS, PART_RECORD
from .limits import CHUNK_COST, MAX_PARTITIONS, PART_COST, PART_STRING_COST
from .model import Partition
from .read_partitions import FileFaceModel, PartitionRows
from .write_chunks import PACK_HEADER, U32_MAX, Buffer, Node, chunk_header, container, leaf
from .write_layout import PART_PATH, LayoutWriter

_PART = PART_RECORD


class PartitionWriter(LayoutWriter):
    """PRTS's encoders (see the module docstring)."""

    def partition(self, i: int, part: Partition) -> Node:
        where = f"partitions[{i}]"
        if not isinstance(part, Partition):
            raise NvfError(f"{where} must be a Partition, got {type(part).__name__}")
        fields = (part.index, part.face_start, part.face_count, part.vertex_start, part.vertex_count)
        for label, value in zip(("index", "face_start", "face_count", "vertex_start", "vertex_count"), fields):
            if not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= U32_MAX:
                raise NvfError(f"{where}.{label} must be an integer in 0..{U32_MAX}, got {value!r}")
        smooth = part.smoothing_group
        if not isinstance(smooth, (int, np.integer)) or not -2**31 <= int(smooth) < 2**31:
            raise NvfError(f"{where}.smoothing_group must be an int32, got {smooth!r}")
        if int(part.face_start) + int(part.face_count) > self.triangles:
            raise NvfError(
                f"{where} covers triangles {part.face_start}..{int(part.face_start) + int(part.face_count) - 1} "
                f"but the model has {self.triangles} (partition beyond the triangle list)")
        if int(part.vertex_start) + int(part.vertex_count) > 3 * self.triangles:
            raise NvfError(
                f"{where} covers triangle corners {part.vertex_start}.."
                f"{int(part.vertex_start) + int(part.vertex_count) - 1} but the model has "
                f"{3 * self.triangles} (partition beyond the triangle list)")
        path = f"PRTS/PART[{i}]"
        nodes: dict[str, Node] = {}
        for tag, text in (("NAME", part.name), ("MTRL", part.material)):
            # None: no chunk. "" is an empty chunk (NVIDIA's reader takes it), so it reads back "".
            if text is None:
                continue
            label = "name" if tag == "NAME" else "material"
            nodes[tag] = leaf(tag, self.string(f"{path}/{tag}", text, f"{where}.{label}"),
                               cost=PART_STRING_COST)
        record = _PART.pack(*(int(v) for v in fields), int(smooth))
        tags = self.order(path, PART_CHILD_TAGS, set(nodes))
        return container("PART", self.with_unknown(path, [nodes[t] for t in tags]), record, PART_COST)

    def unread_partitions(self) -> PartitionRows | None:
        """A read model's partitions while they were never used (`FileFaceModel`)."""
        model = self.model
        return model.unread_partitions() if isinstance(model, FileFaceModel) else None

    def has_partitions(self) -> bool:
        """Whether the model has a PRTS, without making a read model's partitions."""
        return self.unread_partitions() is not None or self.model.partitions is not None

    def partitions(self) -> Node:
        rows = self.unread_partitions()
        if rows is not None:
            copied = self.file_partitions(rows)
            if copied is not None:
                return copied
        parts = self.model.partitions
        assert parts is not None
        if len(parts) > MAX_PARTITIONS:
            raise NvfError(f"{len(parts):,} partitions, more than the format's limit of {MAX_PARTITIONS:,}")
        fast = self.plain_partitions(parts)
        if fast is not None:
            return fast
        nodes = [self.partition(i, part) for i, part in enumerate(parts)]
        # Unknown chunks of partitions that no longer exist go with them.
        for path in [p for p in self.unknown if PART_PATH.match(p)]:
            self.unknown.pop(path)
        return container("PRTS", self.with_unknown("PRTS", nodes), struct.pack("<I", len(nodes)))

    def file_partitions(self, rows: PartitionRows) -> Node | None:
        """PRTS copied from the file it was read from, for partitions never used since
        (`FileFaceModel`): the bytes `plain_partitions` would write for them, when the
        triangles they were checked against are the model's and no unknown chunk, order or
        string padding is remembered for PRTS; None otherwise."""
        if rows.triangles != self.triangles or any(p.startswith("PRTS") for p in self.unknown):
            return None
        layout = self.layout
        if layout is not None and (any(k.startswith("PRTS") for k in layout.child_orders)
                                   or any(k.startswith("PRTS") for k in layout.strings)):
            return None
        body = rows.payload()
        cost = CHUNK_COST + rows.cost
        parts: list[Buffer] = [chunk_header("PRTS", 4 + len(body)), struct.pack("<I", rows.count), body]
        return Node("PRTS", parts, 12 + len(body), cost)

    def plain_partitions(self, parts: Sequence[Partition]) -> Node | None:
        """PRTS in one buffer, for the usual case (no unknown chunks in PRTS or its PARTs, no
        remembered MTRL-before-NAME order); None otherwise. Partition-heavy models have
        hundreds of PARTs: each is packed straight into the buffer, each distinct name or
        material encoded once. Anything that fails a check goes through `partition`, which
        raises the error it would raise."""
        if any(p == "PRTS" or PART_PATH.match(p) for p in self.unknown):
            return None
        layout = self.layout
        if layout is not None and any(k.startswith("PRTS/PART[") for k in layout.child_orders):
            return None
        remembered_strings = layout is not None and bool(layout.strings)
        out = bytearray()
        cost = CHUNK_COST
        encoded: dict[str, bytes] = {}
        triangles, corners = self.triangles, 3 * self.triangles
        pack_part, pack_header = _PART.pack, PACK_HEADER
        for i, part in enumerate(parts):
            if type(part) is not Partition:
                self.partition(i, part)         # raises
            try:
                record = pack_part(part.index, part.face_start, part.face_count, part.vertex_start,
                                   part.vertex_count, part.smoothing_group)
            except (struct.error, TypeError):
                self.partition(i, part)         # raises the precise error
                raise
            if (part.face_start + part.face_count > triangles
                    or part.vertex_start + part.vertex_count > corners):
                self.partition(i, part)         # raises
            payloads: list[bytes] = []
            for tag, text, label in ((b"NAME", part.name, "name"), (b"MTRL", part.material, "material")):
                if text is None:
                    continue
                raw = None if remembered_strings or type(text) is not str else encoded.get(text)
                if raw is None:
                    raw = self.string(f"PRTS/PART[{i}]/{tag.decode()}", text, f"partitions[{i}].{label}")
                    if not remembered_strings and type(text) is str:
                        encoded[text] = raw
                payloads.append(pack_header(tag, len(raw)))
                payloads.append(raw)
                cost += PART_STRING_COST
            out += pack_header(b"PART", 24 + sum([len(p) for p in payloads]))
            out += record
            out += b"".join(payloads)
            cost += PART_COST
        body = bytes(out)
        count = struct.pack("<I", len(parts))
        return Node("PRTS", [chunk_header("PRTS", 4 + len(body)), count, body], 12 + len(body), cost)
