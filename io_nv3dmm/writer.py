# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writing .nvf files: validate everything first, then emit the bytes once.

Container sizes are always computed from their children's bytes (never
NVIDIA's COLR size bug). A model read from a file carries a `SourceLayout`
that makes the output byte-identical to that file; whatever an edit made
inapplicable falls back to NVIDIA's canonical layout.
"""

from __future__ import annotations

import os
import re
import struct
from typing import IO, Any, Callable, Sequence, Union

import numpy as np

from .atomic import write_atomic
from .errors import NvfError
from .layout import (
    CANONICAL_HEADER_FLAGS, CANONICAL_TOP_ORDER, SourceLayout, TocEntry, TocKnown, TocUnknown,
)
from .limits import (
    BLEND_CHUNK_COST, CHUNK_COST, CHUNK_SLACK, MAX_BLEND_SHAPES, MAX_FILE_BYTES, MAX_NAME_BYTES, MAX_PARTITIONS,
    MAX_TRIANGLES, MAX_VERTICES, PART_COST, PART_STRING_COST, chunk_budget,
)
from .maxine import maxine_problems
from .model import (
    FaceModel, LandmarkSet, LinearModel, Partition, Topology, UnknownChunk,
)
from .reader import FileBlendShapes
from .topology import build_topology

Destination = Union[str, "os.PathLike[str]", IO[bytes]]
Buffer = Union[bytes, memoryview]

_F32 = np.dtype("<f4")
_U16 = np.dtype("<u2")
_U32_MAX = 0xFFFFFFFF
_PART = struct.Struct("<IIIIIi")
_PART_PATH = re.compile(r"^PRTS/PART\[(\d+)\]$")

_CHILD_TAGS: dict[str, frozenset[str]] = {
    "": frozenset(CANONICAL_TOP_ORDER),
    "MODL": frozenset({"SHAP", "COLR", "TXCO"}),
    "MODL/SHAP": frozenset({"MEAN", "BSIS", "EIVL", "TRNG"}),
    "MODL/COLR": frozenset({"MEAN", "BSIS", "EIVL", "TRNG"}),
    "IBUG": frozenset({"LMRK", "RCTR", "LCTR"}),
    "NVLM": frozenset({"LMRK", "RCTR", "LCTR"}),
    "BLND": frozenset({"NAME", "SHAP"}),
    "MCTR": frozenset({"RCTR", "LCTR"}),
    "TOPO": frozenset({"AJFC", "AJVX"}),
    "PRTS": frozenset({"PART"}),
}
_PART_TAGS = frozenset({"NAME", "MTRL"})


class _Node:
    """A chunk ready to emit: its buffers (header included) and total length."""

    __slots__ = ("tag", "parts", "length", "cost")

    def __init__(self, tag: str, parts: list[Buffer], length: int, cost: int = CHUNK_COST) -> None:
        self.tag = tag
        self.parts = parts
        self.length = length
        # What reading this chunk and every chunk inside it charges (io_nv3dmm.limits).
        self.cost = cost


_PACK_HEADER = struct.Struct("<4sI").pack


def _header(tag: str, size: int) -> bytes:
    if size > _U32_MAX:
        raise NvfError(f"a {tag} chunk would be {size:,} bytes, more than a uint32 chunk size can hold")
    return _PACK_HEADER(tag.encode("latin-1"), size)


def _leaf(tag: str, payload: Buffer, prefix: bytes = b"", cost: int = CHUNK_COST) -> _Node:
    """A chunk holding `prefix` then `payload` (bytes or a 1-D byte memoryview)."""
    size = len(prefix) + len(payload)
    parts: list[Buffer] = [_header(tag, size), prefix, payload] if prefix else [_header(tag, size), payload]
    return _Node(tag, parts, 8 + size, cost)


def _container(tag: str, children: Sequence[_Node], prefix: bytes = b"", cost: int = CHUNK_COST) -> _Node:
    size = len(prefix) + sum([c.length for c in children])
    parts: list[Buffer] = [_header(tag, size)]
    if prefix:
        parts.append(prefix)
    for child in children:
        parts.extend(child.parts)
    return _Node(tag, parts, 8 + size, cost + sum([c.cost for c in children]))


def _raw(array: np.ndarray[Any, Any]) -> memoryview:
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return memoryview(flat)  # type: ignore[arg-type]


# --- validation of arrays ---------------------------------------------------

def _floats(value: Any, name: str, shape: tuple[int | None, ...]) -> np.ndarray[Any, Any]:
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise NvfError(f"{name} must be a float array, got dtype {array.dtype}")
    _check_shape(array, name, shape)
    return array.astype(_F32, copy=False)


def _indices(value: Any, name: str, shape: tuple[int | None, ...], limit: int,
             low: int = 0) -> np.ndarray[Any, Any]:
    """An integer array checked to lie in [low, limit) and stored as uint16."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise NvfError(f"{name} must be an integer array, got dtype {array.dtype}")
    _check_shape(array, name, shape)
    if array.size:
        lo, hi = int(array.min()), int(array.max())
        if lo < low or hi >= limit:
            bad = int(np.flatnonzero((array.reshape(-1) < low) | (array.reshape(-1) >= limit))[0])
            raise NvfError(
                f"{name} entry {bad} is {int(array.reshape(-1)[bad])}, outside {low}..{limit - 1}")
    return array.astype(_U16, copy=False)


def _check_shape(array: np.ndarray[Any, Any], name: str, shape: tuple[int | None, ...]) -> None:
    if array.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(array.shape, shape)):
        want_text = "(" + ", ".join("N" if w is None else str(w) for w in shape) + ")"
        raise NvfError(f"{name} has shape {array.shape}, expected {want_text}")


def _encode_string(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise NvfError(f"{where} must be a str, got {type(text).__name__}")
    if "\0" in text:
        raise NvfError(f"{where} {text!r} contains a NUL character, which the format cannot store")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NvfError(f"{where} {text!r} cannot be encoded as UTF-8 ({exc.reason})") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise NvfError(f"{where} {text[:20]!r}... is {len(encoded):,} bytes of UTF-8, more than the "
                       f"format's limit of {MAX_NAME_BYTES:,}")
    return encoded


def _decode_string(raw: bytes) -> str | None:
    try:
        return raw.split(b"\0", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        return None


class _Writer:
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

    # --- layout helpers -----------------------------------------------------

    def remembered(self, path: str) -> tuple[str, ...] | None:
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
            encoded = _encode_string(text, f"{where} #{index}" if index >= 0 else where)
        if self.layout is not None and self.layout.strings:
            raw = self.layout.strings.get(key if index < 0 else f"{key}[{index}]")
            if raw is not None and _decode_string(raw) == text:
                return raw
        return encoded + b"\0" * (-len(encoded) % 4)

    def with_unknown(self, path: str, known: list[_Node]) -> list[_Node]:
        extra = self.unknown.pop(path, None)
        if not extra:
            return known
        result = list(known)
        for item in sorted(extra, key=lambda u: u.position):
            node = _leaf(item.tag, bytes(item.payload))
            result.insert(min(item.position, len(result)), node)
            if path == "":
                self.top_unknown[id(node)] = (node, item)   # the node stays alive: ids stay unique
        return result

    # --- validation of unknown chunks ---------------------------------------

    def collect_unknown(self) -> None:
        self.top_unknown: dict[int, tuple[_Node, UnknownChunk]] = {}
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
                if not isinstance(parent, str) or _PART_PATH.match(parent) is None:
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

    # --- objects ------------------------------------------------------------

    def linear(self, model: LinearModel, path: str, vertices: int | None) -> _Node:
        if not isinstance(model, LinearModel):
            raise NvfError(f"{path} must be a LinearModel, got {type(model).__name__}")
        mean = _floats(model.mean, f"{path} mean", (vertices, 3))
        count = mean.shape[0]
        if count > MAX_VERTICES:
            raise NvfError(
                f"{path} has {count} vertices; uint16 indices address at most {MAX_VERTICES:,}")
        modes = _floats(model.modes, f"{path} modes", (None, count, 3))
        eigenvalues = _floats(model.eigenvalues, f"{path} eigenvalues", (modes.shape[0],))
        triangles = _indices(model.triangles, f"{path} triangles", (None, 3), count)
        present = {"MEAN"}
        # No BSIS for zero modes: NVIDIA's reader divides by the mode count (SIGFPE).
        if modes.shape[0] or (not self.maxine and self.had(path, "BSIS")):
            present.add("BSIS")
        if self.had(path, "EIVL") or eigenvalues.shape[0]:
            present.add("EIVL")
        if self.had(path, "TRNG") or triangles.shape[0]:
            present.add("TRNG")
        builders: dict[str, Callable[[], _Node]] = {
            "MEAN": lambda: _leaf("MEAN", _raw(mean)),
            "BSIS": lambda: _leaf("BSIS", _raw(modes), struct.pack("<I", modes.shape[0])),
            "EIVL": lambda: _leaf("EIVL", _raw(eigenvalues)),
            "TRNG": lambda: _leaf("TRNG", _raw(triangles)),
        }
        if path == "MODL/SHAP":
            self.vertices = count
            self.triangles = triangles.shape[0]
            self.shape_triangles = triangles
        tags = self.order(path, ("MEAN", "BSIS", "EIVL", "TRNG"), present)
        return _container(path[-4:], self.with_unknown(path, [builders[t]() for t in tags]))

    def modl(self) -> _Node:
        model = self.model
        nodes: dict[str, _Node] = {"SHAP": self.linear(model.shape, "MODL/SHAP", None)}
        if model.color is not None:
            nodes["COLR"] = self.linear(model.color, "MODL/COLR", self.vertices)
        if model.texcoords is not None:
            uv = _floats(model.texcoords, "texcoords", (self.vertices, 2))
            nodes["TXCO"] = _leaf("TXCO", _raw(uv))
        tags = self.order("MODL", ("SHAP", "COLR", "TXCO"), set(nodes))
        return _container("MODL", self.with_unknown("MODL", [nodes[t] for t in tags]))

    def landmarks(self, marks: LandmarkSet, path: str) -> _Node:
        if not isinstance(marks, LandmarkSet):
            raise NvfError(f"{path} must be a LandmarkSet, got {type(marks).__name__}")
        pairs = np.asarray(marks.pairs)
        if pairs.size == 0 and pairs.ndim != 2:
            pairs = pairs.reshape(0, 2)
        _check_shape(pairs, f"{path} pairs", (None, 2))
        numbers = _indices(pairs[:, 0], f"{path} landmark numbers", (None,), 0x10000)
        verts = _indices(pairs[:, 1], f"{path} landmark vertices", (None,), self.vertices)
        table = np.empty((pairs.shape[0], 2), dtype=_U16)
        table[:, 0] = numbers
        table[:, 1] = verts
        nodes: dict[str, _Node] = {}
        if self.had(path, "LMRK") or table.shape[0]:
            nodes["LMRK"] = _leaf("LMRK", _raw(table))
        for tag, values in (("RCTR", marks.right_contour), ("LCTR", marks.left_contour)):
            if values is not None:
                numbers = _indices(values, f"{path} {tag} landmark numbers", (None,), 0x10000)
                nodes[tag] = _leaf(tag, _raw(numbers))
        tags = self.order(path, ("LMRK", "RCTR", "LCTR"), set(nodes))
        return _container(path, self.with_unknown(path, [nodes[t] for t in tags]))

    def blend_shapes(self) -> _Node:
        blend = self.model.blend_shapes
        assert blend is not None
        names = list(blend.names)
        if len(names) > MAX_BLEND_SHAPES:
            raise NvfError(f"{len(names):,} blend shapes, more than the format's limit of {MAX_BLEND_SHAPES:,}")
        from_file = blend.file_payloads() if isinstance(blend, FileBlendShapes) else None
        if from_file is not None and from_file[1] == self.vertices and len(from_file[0]) == len(names):
            # Never touched since read: the file's own bytes, without gathering them first.
            payloads: list[Buffer] = list(from_file[0])
        else:
            deltas = _floats(blend.deltas, "blend_shapes.deltas", (len(names), self.vertices, 3))
            payloads = [_raw(deltas[i]) for i in range(len(names))]
        name_nodes = [_leaf("NAME", self.string("BLND/NAME", name, "blend shape name", i), cost=BLEND_CHUNK_COST)
                      for i, name in enumerate(names)]
        shape_nodes = [_leaf("SHAP", payload, cost=BLEND_CHUNK_COST) for payload in payloads]
        remembered = self.remembered("BLND")
        if remembered is not None and remembered.count("NAME") == len(names) == remembered.count("SHAP"):
            tokens: Sequence[str] = remembered
        else:
            tokens = ("NAME", "SHAP") * len(names)
        known: list[_Node] = []
        next_name = next_shape = 0
        for token in tokens:
            if token == "NAME":
                known.append(name_nodes[next_name])
                next_name += 1
            else:
                known.append(shape_nodes[next_shape])
                next_shape += 1
        return _container("BLND", self.with_unknown("BLND", known), struct.pack("<I", len(names)))

    def contours(self) -> _Node:
        contours = self.model.model_contours
        assert contours is not None
        nodes: dict[str, _Node] = {}
        for tag, values in (("RCTR", contours.right), ("LCTR", contours.left)):
            if values is not None:
                checked = _indices(values, f"model_contours {tag} vertices", (None,), self.vertices)
                nodes[tag] = _leaf(tag, _raw(checked))
        tags = self.order("MCTR", ("RCTR", "LCTR"), set(nodes))
        return _container("MCTR", self.with_unknown("MCTR", [nodes[t] for t in tags]))

    def topology_value(self) -> Topology:
        topology = self.model.topology
        layout = self.layout
        if topology is None:
            return build_topology(self.shape_triangles)
        if not isinstance(topology, Topology):
            raise NvfError(f"topology must be a Topology, got {type(topology).__name__}")
        if layout is not None and layout.topology_ref is not None:
            ref, faces, verts = layout.topology_ref
            unchanged_topology = (topology is ref and topology.adjacent_faces is faces
                                  and topology.edge_vertices is verts)
            read_tris = layout.triangles_ref
            tris = self.model.shape.triangles
            triangles_edited = tris is not read_tris and not (
                read_tris is not None and np.array_equal(np.asarray(tris), read_tris))
            if unchanged_topology and triangles_edited:
                # The stored TOPO describes the old triangles: rebuild it.
                return build_topology(self.shape_triangles)
        return topology

    def topology(self) -> _Node:
        if self.triangles > MAX_TRIANGLES:
            raise NvfError(
                f"{self.triangles:,} triangles: a TOPO numbers triangles in uint16, so at most "
                f"{MAX_TRIANGLES:,} (split the mesh or decimate it)")
        topology = self.topology_value()
        faces = _indices(topology.adjacent_faces, "topology.adjacent_faces", (None, 2), self.triangles + 1)
        verts = _indices(topology.edge_vertices, "topology.edge_vertices",
                         (faces.shape[0], 2), self.vertices + 1, low=1)
        nodes: dict[str, _Node] = {}
        if self.had("TOPO", "AJFC") or faces.shape[0]:
            nodes["AJFC"] = _leaf("AJFC", _raw(faces))
            nodes["AJVX"] = _leaf("AJVX", _raw(verts))
        tags = self.order("TOPO", ("AJFC", "AJVX"), set(nodes))
        return _container("TOPO", self.with_unknown("TOPO", [nodes[t] for t in tags]))

    def partition(self, i: int, part: Partition) -> _Node:
        where = f"partitions[{i}]"
        if not isinstance(part, Partition):
            raise NvfError(f"{where} must be a Partition, got {type(part).__name__}")
        fields = (part.index, part.face_start, part.face_count, part.vertex_start, part.vertex_count)
        for label, value in zip(("index", "face_start", "face_count", "vertex_start", "vertex_count"), fields):
            if not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= _U32_MAX:
                raise NvfError(f"{where}.{label} must be an integer in 0..{_U32_MAX}, got {value!r}")
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
        nodes: dict[str, _Node] = {}
        for tag, text in (("NAME", part.name), ("MTRL", part.material)):
            # None: no chunk. "" is an empty chunk (NVIDIA's reader takes it), so it reads back "".
            if text is None:
                continue
            label = "name" if tag == "NAME" else "material"
            nodes[tag] = _leaf(tag, self.string(f"{path}/{tag}", text, f"{where}.{label}"),
                               cost=PART_STRING_COST)
        record = _PART.pack(*(int(v) for v in fields), int(smooth))
        tags = self.order(path, ("NAME", "MTRL"), set(nodes))
        return _container("PART", self.with_unknown(path, [nodes[t] for t in tags]), record, PART_COST)

    def partitions(self) -> _Node:
        parts = self.model.partitions
        assert parts is not None
        if len(parts) > MAX_PARTITIONS:
            raise NvfError(f"{len(parts):,} partitions, more than the format's limit of {MAX_PARTITIONS:,}")
        fast = self.plain_partitions(parts)
        if fast is not None:
            return fast
        nodes = [self.partition(i, part) for i, part in enumerate(parts)]
        # Unknown chunks of partitions that no longer exist go with them.
        for path in [p for p in self.unknown if _PART_PATH.match(p)]:
            self.unknown.pop(path)
        return _container("PRTS", self.with_unknown("PRTS", nodes), struct.pack("<I", len(nodes)))

    def plain_partitions(self, parts: Sequence[Partition]) -> _Node | None:
        """PRTS in one buffer, for the usual case (no unknown chunks in PRTS or its PARTs, no
        remembered MTRL-before-NAME order); None otherwise. Partition-heavy models have
        hundreds of PARTs: each is packed straight into the buffer, each distinct name or
        material encoded once. Anything that fails a check goes through `partition`, which
        raises the error it would raise."""
        if any(p == "PRTS" or _PART_PATH.match(p) for p in self.unknown):
            return None
        layout = self.layout
        if layout is not None and any(k.startswith("PRTS/PART[") for k in layout.child_orders):
            return None
        remembered_strings = layout is not None and bool(layout.strings)
        out = bytearray()
        cost = CHUNK_COST
        encoded: dict[str, bytes] = {}
        triangles, corners = self.triangles, 3 * self.triangles
        pack_part, pack_header = _PART.pack, _PACK_HEADER
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
        return _Node("PRTS", [_header("PRTS", 4 + len(body)), count, body], 12 + len(body), cost)

    # --- the file -------------------------------------------------------------

    def build(self) -> list[Buffer]:
        model = self.model
        layout = self.layout
        self.collect_unknown()
        objects: dict[str, _Node] = {"MODL": self.modl()}
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
        if model.partitions is not None:
            objects["PRTS"] = self.partitions()
        write_toc = layout is None or model.toc is not None
        tags = self.order("", CANONICAL_TOP_ORDER, set(objects) | ({"TOC0"} if write_toc else set()))
        placeholder = _Node("TOC0", [], 0)
        top = self.with_unknown("", [objects[t] if t != "TOC0" else placeholder for t in tags])
        # Whatever is left belongs to containers this model no longer has.
        self.unknown.clear()

        extra = layout.header_extra if layout is not None else b""
        header_size = 16 + len(extra)
        records: list[tuple[bytes, _Node | int]] = []
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
            placeholder.parts = [_header("TOC0", len(table)), bytes(table)]
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
        header = b"NFAC" + struct.pack("<I", 8 + len(extra)) + flags + struct.pack("<I", toc_loc) + extra
        out: list[Buffer] = [header]
        for node in top:
            out.extend(node.parts)
        return out

    @staticmethod
    def place(top: list[_Node], placeholder: _Node, header_size: int, records: int) -> dict[int, int]:
        """Absolute offsets of the top-level objects (by node id) for a TOC of `records`."""
        placeholder.length = 12 + 8 * records
        offsets: dict[int, int] = {}
        position = header_size
        for node in top:
            offsets[id(node)] = position
            position += node.length
        return offsets

    def toc_records(self, top: list[_Node], placeholder: _Node) -> tuple[list[tuple[bytes, _Node | int]], list[int]]:
        """The TOC records (tag, object or raw offset) and, per record, the offset it had when read."""
        layout = self.layout
        listed = [node for node in top if node is not placeholder]
        if layout is None or layout.toc_entries is None or layout.toc_lists_all:
            return [(node.tag.encode("latin-1"), node) for node in listed], [-1] * len(listed)
        by_tag = {node.tag: node for node in listed if id(node) not in self.top_unknown}
        by_chunk = {id(self.top_unknown[id(node)][1]): node for node in listed if id(node) in self.top_unknown}
        records: list[tuple[bytes, _Node | int]] = []
        originals: list[int] = []
        dropped = False
        entry: TocEntry
        for entry in layout.toc_entries:
            node: _Node | None = None
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
