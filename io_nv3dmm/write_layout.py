# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The writer's plan of a file's layout, and the state every encoder shares.

`LayoutWriter` decides, from the model's `SourceLayout` (when it was read from a
file), which children a container gets and in which order, the padding of each
string, and where the model's unknown chunks go (checked first, by
`collect_unknown`). What an edit made inapplicable falls back to NVIDIA's
canonical layout. The encoders of the objects (write_objects, write_partitions)
extend it; io_nv3dmm.writer puts them together and lays out the file.

May import: numpy, the standard library, and io_nv3dmm's write_chunks,
write_values, errors, limits, layout and model.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from .errors import NvfError
from .layout import CHILD_TAGS, PART_CHILD_TAGS, SourceLayout
from .limits import MAX_NAME_BYTES
from .model import FaceModel, UnknownChunk
from .write_chunks import Node, leaf
from .write_values import decode_string, encode_string

PART_PATH = re.compile(r"^PRTS/PART\[(\d+)\]$")

_CHILD_TAGS = {path: frozenset(tags) for path, tags in CHILD_TAGS.items()}
_PART_TAGS = frozenset(PART_CHILD_TAGS)


class LayoutWriter:
    """The model being written and its layout plan (see the module docstring)."""

    def __init__(self, model: FaceModel, maxine: bool = True) -> None:
        if not isinstance(model, FaceModel):
            raise TypeError(f"write() takes a FaceModel, not {type(model).__name__}")
        self.model = model
        self.maxine = maxine
        layout = model.source_layout
        self.layout: SourceLayout | None = layout if isinstance(layout, SourceLayout) else None
        self.unknown: dict[str, list[UnknownChunk]] = {}
        self.vertices = 0
        self.triangles = 0
        self.shape_triangles: Any = None     # MODL/SHAP's checked triangles, once encoded
        # Top-level unknown chunks by node id, for the TOC (the node kept alive: ids stay unique).
        self.top_unknown: dict[int, tuple[Node, UnknownChunk]] = {}

    def remembered(self, path: str) -> tuple[str, ...] | None:
        """The known child tags of container `path` in the source file's order, if it was read."""
        if self.layout is None:
            return None
        return self.layout.child_orders.get(path)

    def had(self, path: str, tag: str) -> bool:
        """Whether the source file had this child (True for a model built in code)."""
        order = self.remembered(path)
        return order is None or tag in order

    def order(self, path: str, canonical: Sequence[str], present: set[str]) -> list[str]:
        """Present child tags in the remembered order; new ones where NVIDIA puts them."""
        order = self.remembered(path)
        result = [t for t in (order or ()) if t in present]
        for i, tag in enumerate(canonical):
            if tag not in present or tag in result:
                continue
            before = [t for t in canonical[:i] if t in result]
            at = result.index(before[-1]) + 1 if before else 0
            result.insert(at, tag)
        return result

    def string(self, key: str, text: str, where: str, index: int = -1) -> bytes:
        """A string payload: the file's own padding when the text is unchanged, else canonical.

        `key` (with `[index]` appended when index >= 0) names the string's place for the
        layout; `where` describes it in errors.
        """
        if isinstance(text, str) and text.isascii() and "\0" not in text and len(text) <= MAX_NAME_BYTES:
            encoded = text.encode("ascii")
        else:
            encoded = encode_string(text, f"{where} #{index}" if index >= 0 else where)
        if self.layout is not None and self.layout.strings:
            raw = self.layout.strings.get(key if index < 0 else f"{key}[{index}]")
            if raw is not None and decode_string(raw) == text:
                return raw
        return encoded + b"\0" * (-len(encoded) % 4)

    def with_unknown(self, path: str, known: list[Node]) -> list[Node]:
        """`known` with the unknown chunks of container `path` back at their positions."""
        extra = self.unknown.pop(path, None)
        if not extra:
            return known
        result = list(known)
        for item in sorted(extra, key=lambda u: u.position):
            node = leaf(item.tag, bytes(item.payload))
            result.insert(min(item.position, len(result)), node)
            if path == "":
                self.top_unknown[id(node)] = (node, item)   # the node stays alive: ids stay unique
        return result

    def collect_unknown(self) -> None:
        """Checks the model's unknown chunks and files them by container for `with_unknown`."""
        for i, item in enumerate(self.model.unknown_chunks):
            where = f"unknown_chunks[{i}]"
            if not isinstance(item, UnknownChunk):
                raise NvfError(f"{where} must be an UnknownChunk, got {type(item).__name__}")
            if not isinstance(item.tag, str) or len(item.tag) != 4:
                raise NvfError(f"{where}.tag must be a 4-character str, got {item.tag!r}")
            try:
                item.tag.encode("latin-1")
            except UnicodeEncodeError:
                raise NvfError(f"{where}.tag {item.tag!r} must be 4 single-byte characters") from None
            if not isinstance(item.payload, (bytes, bytearray, memoryview)):
                raise NvfError(f"{where}.payload must be bytes, got {type(item.payload).__name__}")
            if not isinstance(item.position, int) or item.position < 0:
                raise NvfError(f"{where}.position must be an int >= 0, got {item.position!r}")
            parent = item.parent
            known = _CHILD_TAGS.get(parent)
            if known is None:
                if not isinstance(parent, str) or PART_PATH.match(parent) is None:
                    raise NvfError(
                        f"{where}.parent {parent!r} is not a container of the format (use '', 'MODL', "
                        f"'MODL/SHAP', 'MODL/COLR', 'IBUG', 'BLND', 'MCTR', 'TOPO', 'NVLM', 'PRTS' "
                        f"or 'PRTS/PART[i]')")
                known = _PART_TAGS
            if item.tag in known:
                raise NvfError(
                    f"{where} has tag {item.tag!r}, which {parent or 'the top level'} already uses "
                    f"for a known object; the file would not read back")
            self.unknown.setdefault(parent, []).append(item)
