# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The reader's fast paths (numpy over regular layouts) read exactly what the careful
chunk-by-chunk walk reads, and leave every odd or hostile case to it.

Each test reads the same bytes twice, once as is and once with the fast paths
switched off, and compares the results (or the errors, message and offset).
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import struct
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from nv3dmm_face_tools import io_nv3dmm as nvf
from nv3dmm_face_tools.io_nv3dmm import NvfError, reader
from nv3dmm_face_tools.io_nv3dmm.limits import PART_COST
from nv3dmm_face_tools.io_nv3dmm.read_partitions import FileFaceModel, PlainRows, RegularRows
from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model

_FAST_PATHS = ("partitions_regular", "partitions_plain", "blend_pairs")


@pytest.fixture
def careful(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A read() with every fast path switched off."""

    def read(data: bytes) -> nvf.FaceModel:
        with monkeypatch.context() as patch:
            for name in _FAST_PATHS:
                patch.setattr(reader._Reader, name, lambda *args: None)
            return nvf.read(data)

    yield read


def _calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[bool]:
    """Records whether each call of the fast path `name` succeeded."""
    seen: list[bool] = []
    original = getattr(reader._Reader, name)

    def spy(self: Any, *args: Any) -> Any:
        result = original(self, *args)
        seen.append(result is not None)
        return result

    monkeypatch.setattr(reader._Reader, name, spy)
    return seen


def _partitioned(count: int = 40, *, names: bool = True, materials: bool = True) -> bytes:
    base = build_demo_model(shape_modes=2)
    triangles = base.triangle_count
    step = max(triangles // count, 1)
    parts = [nvf.Partition(index=i, face_start=i * step, face_count=step, vertex_start=3 * i * step,
                           vertex_count=3 * step, smoothing_group=i % 3 - 1,
                           name=f"part{i:04d}" if names else None,       # 8 bytes: no NUL
                           material=f"Mat{i % 5}" if materials else None)  # 4 bytes: no NUL
             for i in range(count)]
    model = dataclasses.replace(base, partitions=parts, source_layout=None, toc=None)
    return nvf.to_bytes(model)


def _same(fast: nvf.FaceModel, slow: nvf.FaceModel) -> None:
    assert fast.partitions == slow.partitions
    assert fast.unknown_chunks == slow.unknown_chunks
    assert fast.source_layout is not None and slow.source_layout is not None
    assert fast.source_layout.child_orders == slow.source_layout.child_orders
    assert fast.source_layout.strings == slow.source_layout.strings
    assert nvf.to_bytes(fast) == nvf.to_bytes(slow)


def _careful_or_same_error(careful: Any, data: bytes, label: str) -> nvf.FaceModel | None:
    """The careful walk's model of `data`; None when the careful walk refuses it and the
    fast paths refuse it with the same message at the same offset."""
    try:
        model: nvf.FaceModel = careful(data)
    except NvfError as exc:
        with pytest.raises(NvfError) as caught:
            nvf.read(data)
        assert (str(caught.value), caught.value.offset) == (str(exc), exc.offset), label
        return None
    return model


def _budget_short_at_prts(monkeypatch: pytest.MonkeyPatch, data: bytes, parts: int) -> None:
    """Makes the chunk budget run out inside PRTS: what is left on reaching it pays for
    `parts` PARTs only."""
    seen: list[int] = []
    original = reader._Reader.partitions

    def spy(self: Any, chunk: Any) -> Any:
        seen.append(self.budget_left)
        return original(self, chunk)

    with monkeypatch.context() as patch:
        patch.setattr(reader._Reader, "partitions", spy)
        nvf.read(data)
    full = reader.chunk_budget(len(data))
    monkeypatch.setattr(reader, "chunk_budget", lambda size: full - seen[0] + parts * PART_COST)


@pytest.mark.parametrize("names,materials", [(True, True), (True, False), (False, True), (False, False)])
def test_regular_partitions_take_the_fast_path_and_read_the_same(
        monkeypatch: pytest.MonkeyPatch, careful: Any, names: bool, materials: bool) -> None:
    data = _partitioned(names=names, materials=materials)
    slow = careful(data)
    seen = _calls(monkeypatch, "partitions_regular")
    assert nvf.to_bytes(nvf.read(data)) == data     # partitions never used: copied from the file
    fast = nvf.read(data)
    assert seen == [True, True]
    _same(fast, slow)
    assert nvf.to_bytes(fast) == data
    parts = fast.partitions
    assert parts is not None and len(parts) == 40
    assert parts[7].name == ("part0007" if names else None)
    assert parts[7].material == ("Mat2" if materials else None)
    assert parts[7].smoothing_group == 0 and parts[5].smoothing_group == 1 and parts[3].smoothing_group == -1
    assert all(type(v) is int for p in parts for v in dataclasses.astuple(p)[:6])


def _prts(data: bytes) -> tuple[int, int]:
    """Offset of PRTS's first PART and the PART stride (all PARTs are the same size here)."""
    at = data.index(b"PRTS")
    first = at + 12
    size = struct.unpack_from("<I", data, first + 4)[0]
    return first, 8 + size


def _patched(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new):]


def _variants() -> Iterator[tuple[str, bytes]]:
    data = _partitioned()
    first, stride = _prts(data)
    row = first + 5 * stride
    # PART layout: header 8, record 24 (index, face start, face count, vertex start, vertex
    # count, smoothing), NAME header 8 + 8 bytes, MTRL header 8 + 4 bytes.
    yield "faces beyond the triangle list", _patched(data, row + 12, struct.pack("<I", 10**6))
    yield "corners beyond the triangle list", _patched(data, row + 20, struct.pack("<I", 10**6))
    yield "face start + count overflow", _patched(data, row + 12, struct.pack("<II", 2**32 - 1, 2**32 - 1))
    yield "odd padding", _patched(data, row + 40, b"part\0\0\0\0")
    yield "UTF-8 name", _patched(data, row + 40, "pärt05".encode() + b"\0")
    yield "invalid UTF-8", _patched(data, row + 40, b"\xff\xfeart05")
    yield "NUL inside", _patched(data, row + 40, b"pa\0t0005")
    yield "unknown child", _patched(data, row + 48, b"XTRL")
    yield "MTRL before NAME", _patched(_patched(data, row + 32, b"MTRL"), row + 48, b"NAME")
    yield "two NAMEs", _patched(data, row + 48, b"NAME")
    yield "unknown chunk instead of PART", _patched(data, row, b"XART")
    yield "PART size disagrees", _patched(data, row + 4, struct.pack("<I", stride - 12))
    yield "NAME size disagrees", _patched(data, row + 36, struct.pack("<I", 4))
    yield "declared count too high", _patched(data, first - 4, struct.pack("<I", 41))
    yield "declared count too low", _patched(data, first - 4, struct.pack("<I", 39))
    yield "declared count beyond the limit", _patched(data, first - 4, struct.pack("<I", 70000))
    yield "first PART short", _patched(data, first + 4, struct.pack("<I", 20))


def _blend_variants() -> Iterator[tuple[str, bytes]]:
    data = nvf.to_bytes(build_demo_model(shape_modes=2))
    at = data.index(b"BLND")
    first = at + 12                       # the first NAME header
    size = struct.unpack_from("<I", data, first + 4)[0]
    shap = first + 8 + size               # its SHAP header
    shape_bytes = struct.unpack_from("<I", data, shap + 4)[0]
    second = shap + 8 + shape_bytes       # the second NAME header
    yield "as written", data
    yield "odd padding", _patched(data, first + 8 + size - 4, b"\0\0\0\0")
    yield "UTF-8 name", _patched(data, first + 8, "é".encode())
    yield "invalid UTF-8", _patched(data, first + 8, b"\xff")
    yield "NUL inside", _patched(data, first + 9, b"\0")
    yield "SHAP size disagrees", _patched(data, shap + 4, struct.pack("<I", shape_bytes - 12))
    yield "unknown chunk instead of SHAP", _patched(data, shap, b"XHAP")
    yield "unknown chunk instead of NAME", _patched(data, second, b"XAME")
    yield "SHAP before NAME", _patched(_patched(data, second, b"SHAP"), second, b"NAME")
    yield "NAME size overflows", _patched(data, first + 4, struct.pack("<I", 2**32 - 1))
    yield "declared count too high", _patched(data, first - 4, struct.pack("<I", 10**4))
    yield "declared count too low", _patched(data, first - 4, struct.pack("<I", 1))
    yield "declared count beyond the limit", _patched(data, first - 4, struct.pack("<I", 2**20))


@pytest.mark.parametrize("label,data", list(_blend_variants()), ids=[label for label, _ in _blend_variants()])
def test_odd_or_hostile_blend_shapes_read_exactly_as_the_careful_walk_reads_them(
        careful: Any, label: str, data: bytes) -> None:
    slow = _careful_or_same_error(careful, data, label)
    if slow is None:
        return
    fast = nvf.read(data)
    assert fast.blend_shapes is not None and slow.blend_shapes is not None
    assert fast.blend_shapes.names == slow.blend_shapes.names
    assert (fast.blend_shapes.deltas == slow.blend_shapes.deltas).all()
    assert fast.unknown_chunks == slow.unknown_chunks
    assert fast.source_layout is not None and slow.source_layout is not None
    assert fast.source_layout.child_orders == slow.source_layout.child_orders
    assert fast.source_layout.strings == slow.source_layout.strings
    assert nvf.to_bytes(fast) == nvf.to_bytes(slow) == data, label


def test_name_shap_pairs_take_the_fast_path(monkeypatch: pytest.MonkeyPatch, careful: Any) -> None:
    data = nvf.to_bytes(build_demo_model(shape_modes=2))
    slow = careful(data)
    seen = _calls(monkeypatch, "blend_pairs")
    fast = nvf.read(data)
    assert seen == [True]
    assert fast.blend_shapes is not None and slow.blend_shapes is not None
    assert fast.blend_shapes.names == slow.blend_shapes.names and len(fast.blend_shapes.names) > 10
    assert (fast.blend_shapes.deltas == slow.blend_shapes.deltas).all()


def test_every_canonical_name_length_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch, careful: Any) -> None:
    """Empty names, names filling whole 4-byte words (no NUL) and names padded with 1-3 NULs,
    ASCII and UTF-8: all read on the fast path, as the careful walk reads them."""
    base = build_demo_model(shape_modes=2)
    assert base.blend_shapes is not None
    names = ["", "abcd", "abc", "ab", "a", "\u00e9\u00e9", "\u00e9", "abcdefgh", "x" * 253]
    count = len(names)
    shapes = nvf.BlendShapes(names=names, deltas=np.asarray(base.blend_shapes.deltas)[:1].repeat(count, axis=0))
    data = nvf.to_bytes(dataclasses.replace(base, blend_shapes=shapes, source_layout=None, toc=None))
    slow = careful(data)
    seen = _calls(monkeypatch, "blend_pairs")
    fast = nvf.read(data)
    assert seen == [True]
    assert fast.blend_shapes is not None and slow.blend_shapes is not None
    assert fast.blend_shapes.names == slow.blend_shapes.names == names
    assert fast.source_layout is not None and fast.source_layout.strings == {}
    assert nvf.to_bytes(fast) == data


def test_empty_partition_names_read_on_the_fast_path(monkeypatch: pytest.MonkeyPatch, careful: Any) -> None:
    """A 0-byte NAME payload (the empty name) in every PART: numpy's 0-width strings."""
    base = build_demo_model(shape_modes=2)
    parts = [nvf.Partition(index=i, face_start=i, face_count=1, vertex_start=3 * i, vertex_count=3,
                           smoothing_group=0, name="", material="Mat0") for i in range(5)]
    data = nvf.to_bytes(dataclasses.replace(base, partitions=parts, source_layout=None, toc=None))
    first, stride = _prts(data)
    assert data[first + 32:first + 40] == b"NAME\0\0\0\0"       # the empty name: no payload
    slow = careful(data)
    seen = _calls(monkeypatch, "partitions_regular")
    fast = nvf.read(data)
    assert seen == [True]
    _same(fast, slow)
    assert fast.partitions == parts


def test_padded_names_all_alike_take_the_regular_path(monkeypatch: pytest.MonkeyPatch, careful: Any) -> None:
    """PARTs all alike whose names and materials are padded with 1-3 NULs (texts of 5-7
    bytes in 8-byte payloads): read on the regular path, as the careful walk reads them."""
    base = build_demo_model(shape_modes=2)
    parts = [nvf.Partition(index=i, face_start=i, face_count=1, vertex_start=3 * i, vertex_count=3,
                           smoothing_group=0, name="n" * (5 + i % 3), material=f"Mat{i % 4}x")
             for i in range(12)]
    data = nvf.to_bytes(dataclasses.replace(base, partitions=parts, source_layout=None, toc=None))
    first, stride = _prts(data)
    assert data[first + 32:first + 48] == b"NAME\x08\0\0\0nnnnn\0\0\0" and stride == 8 + 24 + 16 + 16
    slow = careful(data)
    seen = _calls(monkeypatch, "partitions_regular")
    fast = nvf.read(data)
    assert seen == [True]
    _same(fast, slow)
    assert fast.partitions == parts and nvf.to_bytes(nvf.read(data)) == data


def _varied() -> bytes:
    """PARTs of different sizes (names of 1-12 bytes, materials of 4 and 8)."""
    base = build_demo_model(shape_modes=2)
    parts = [nvf.Partition(index=i, face_start=i, face_count=1, vertex_start=3 * i, vertex_count=3,
                           smoothing_group=i % 3 - 1, name="n" * (i % 12 + 1),
                           material="Mat" if i % 2 else "Material") for i in range(30)]
    return nvf.to_bytes(dataclasses.replace(base, partitions=parts, source_layout=None, toc=None))


def _part_offsets(data: bytes) -> list[int]:
    at = data.index(b"PRTS")
    end = at + 8 + struct.unpack_from("<I", data, at + 4)[0]
    pos, found = at + 12, []
    while pos < end:
        found.append(pos)
        pos += 8 + struct.unpack_from("<I", data, pos + 4)[0]
    return found


def test_parts_of_different_sizes_take_the_plain_path_and_read_the_same(
        monkeypatch: pytest.MonkeyPatch, careful: Any) -> None:
    data = _varied()
    slow = careful(data)
    regular = _calls(monkeypatch, "partitions_regular")
    plain = _calls(monkeypatch, "partitions_plain")
    fast = nvf.read(data)
    assert regular == [False] and plain == [True]
    _same(fast, slow)
    assert nvf.to_bytes(fast) == data
    assert fast.partitions is not None and fast.partitions[4].name == "nnnnn"
    assert fast.partitions[4].material == "Material" and fast.partitions[4].smoothing_group == 0


def _varied_variants() -> Iterator[tuple[str, bytes]]:
    data = _varied()
    row = _part_offsets(data)[5]          # name "nnnnnn" (8-byte payload), material "Mat" (4)
    assert data[row + 32:row + 36] == b"NAME" and data[row + 48:row + 52] == b"MTRL"
    yield "faces beyond the triangle list", _patched(data, row + 12, struct.pack("<I", 10**6))
    yield "corners beyond the triangle list", _patched(data, row + 20, struct.pack("<I", 10**6))
    yield "odd padding", _patched(data, row + 40, b"nnn\0\0\0\0\0")
    yield "UTF-8 name", _patched(data, row + 40, "nné".encode() + b"\0\0\0\0")
    yield "invalid UTF-8", _patched(data, row + 40, b"\xff")
    yield "NUL inside", _patched(data, row + 41, b"\0")
    yield "unknown child", _patched(data, row + 48, b"XTRL")
    yield "MTRL before NAME", _patched(_patched(data, row + 32, b"MTRL"), row + 48, b"NAME")
    yield "two MTRLs", _patched(data, row + 32, b"MTRL")
    yield "unknown chunk instead of PART", _patched(data, row, b"XART")
    yield "PART size short", _patched(data, row + 4, struct.pack("<I", 20))
    yield "NAME size overflows", _patched(data, row + 36, struct.pack("<I", 10**6))
    yield "declared count too high", _patched(data, _part_offsets(data)[0] - 4, struct.pack("<I", 31))
    yield "declared count too low", _patched(data, _part_offsets(data)[0] - 4, struct.pack("<I", 29))


def _all_variants() -> list[tuple[str, bytes]]:
    """The hostile variants of both fast paths: PARTs all alike (the numpy path) and
    varied ones (the plain walk)."""
    return ([(f"alike: {label}", data) for label, data in _variants()]
            + [(f"varied: {label}", data) for label, data in _varied_variants()])


@pytest.mark.parametrize("label,data", _all_variants(), ids=[label for label, _ in _all_variants()])
def test_odd_or_hostile_partitions_read_exactly_as_the_careful_walk_reads_them(
        careful: Any, label: str, data: bytes) -> None:
    slow = _careful_or_same_error(careful, data, label)
    if slow is None:
        return
    assert nvf.to_bytes(nvf.read(data)) == data, label     # partitions never used
    fast = nvf.read(data)
    _same(fast, slow)
    assert nvf.to_bytes(fast) == data, label


@pytest.mark.parametrize("build", [lambda: _partitioned(), lambda: _varied()], ids=["alike", "varied"])
def test_fast_paths_charge_the_chunk_budget(monkeypatch: pytest.MonkeyPatch, careful: Any,
                                             build: Callable[[], bytes]) -> None:
    """With a budget too small for the partitions, both fast paths refuse with the careful
    walk's error."""
    data = build()
    _budget_short_at_prts(monkeypatch, data, 10)
    with pytest.raises(NvfError) as slow:
        careful(data)
    with pytest.raises(NvfError) as fast:
        nvf.read(data)
    assert "too many chunks" in str(fast.value)
    assert (str(fast.value), fast.value.offset) == (str(slow.value), slow.value.offset)
    assert slow.value.offset is not None and slow.value.offset > data.index(b"PRTS")


def _builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records how many `Partition` objects each build of deferred partitions made."""
    made: list[int] = []
    for kind in (RegularRows, PlainRows):
        def spy(self: Any, original: Any = kind.build) -> list[nvf.Partition]:
            parts: list[nvf.Partition] = original(self)
            made.append(len(parts))
            return parts

        monkeypatch.setattr(kind, "build", spy)
    return made


@pytest.mark.parametrize("layout", ["regular", "plain"])
def test_partitions_are_made_on_first_use(monkeypatch: pytest.MonkeyPatch, careful: Any, layout: str) -> None:
    """The fast paths' Partition objects are made once, when `partitions` is first read;
    the model behaves as a plain FaceModel: the same list each time, edits and assignments
    kept and written, copies and pickles plain FaceModels."""
    data = _partitioned() if layout == "regular" else _varied()
    count = 40 if layout == "regular" else 30
    expected = careful(data).partitions
    made = _builds(monkeypatch)
    model = nvf.read(data)
    assert isinstance(model, FileFaceModel) and isinstance(model, nvf.FaceModel)
    rows = model.unread_partitions()
    assert isinstance(rows, RegularRows if layout == "regular" else PlainRows) and made == []
    assert nvf.to_bytes(model) == data and made == []          # written from the file's bytes
    parts = model.partitions
    assert made == [count] and parts == expected and model.partitions is parts
    assert model.unread_partitions() is None
    parts[3].material = "Edited"
    assert nvf.read(nvf.to_bytes(model)).partitions[3].material == "Edited"  # type: ignore[index]
    assert model.partitions is parts and made[0] == count       # still the first build
    model.partitions = parts[:5]
    assert len(nvf.read(nvf.to_bytes(model)).partitions or []) == 5
    model.partitions = None
    assert nvf.read(nvf.to_bytes(model)).partitions is None

    for copied in (pickle.loads(pickle.dumps(nvf.read(data))), copy.copy(nvf.read(data)),
                   copy.deepcopy(nvf.read(data))):
        assert type(copied) is nvf.FaceModel and copied.partitions == expected
        assert nvf.to_bytes(copied) == data
    replaced = dataclasses.replace(nvf.read(data), unknown_chunks=[])
    assert replaced.partitions == expected and nvf.to_bytes(replaced) == data


@pytest.mark.parametrize("layout", ["regular", "plain"])
def test_unused_partitions_are_written_as_built_ones_would_be(careful: Any, layout: str) -> None:
    """An unread PRTS is copied from the file only while it is what the encoder would write:
    with fewer triangles the partitions are refused as built ones are, an unknown chunk
    added to a PART is written in its place."""
    data = _partitioned() if layout == "regular" else _varied()

    def fewer_triangles(model: nvf.FaceModel) -> nvf.FaceModel:
        model.shape = dataclasses.replace(model.shape, triangles=model.shape.triangles[:20])
        return model

    with pytest.raises(NvfError) as built:
        nvf.to_bytes(fewer_triangles(careful(data)))
    with pytest.raises(NvfError) as unread:
        nvf.to_bytes(fewer_triangles(nvf.read(data)))
    assert "partition beyond the triangle list" in str(unread.value)
    assert str(unread.value) == str(built.value)

    def with_unknown(model: nvf.FaceModel) -> nvf.FaceModel:
        model.unknown_chunks.append(nvf.UnknownChunk("XTRA", b"1234", "PRTS/PART[2]", 1))
        return model

    written = nvf.to_bytes(with_unknown(nvf.read(data)))
    assert written == nvf.to_bytes(with_unknown(careful(data))) and written != data
    assert nvf.read(written).unknown_chunks == [nvf.UnknownChunk("XTRA", b"1234", "PRTS/PART[2]", 1)]


def test_names_of_a_size_off_the_4_byte_grid_leave_the_regular_path(
        monkeypatch: pytest.MonkeyPatch, careful: Any) -> None:
    """PARTs all alike whose NAME payloads are 5 bytes (no padding): not canonical, so the
    careful walk remembers them and the file is written back byte for byte."""
    base = build_demo_model(shape_modes=2)
    parts = [nvf.Partition(index=i, face_start=i, face_count=1, vertex_start=3 * i, vertex_count=3,
                           smoothing_group=0, name=f"part{i}", material="Mat0") for i in range(8)]
    model = careful(nvf.to_bytes(dataclasses.replace(base, partitions=parts, source_layout=None, toc=None)))
    for i in range(8):
        model.source_layout.strings[f"PRTS/PART[{i}]/NAME"] = f"part{i}".encode()   # 5 bytes
    data = nvf.to_bytes(model)
    first, stride = _prts(data)
    assert data[first + 32:first + 45] == b"NAME\5\0\0\0part0" and stride == 8 + 24 + 13 + 12
    regular = _calls(monkeypatch, "partitions_regular")
    fast = nvf.read(data)
    assert regular == [False]
    _same(fast, careful(data))
    assert fast.partitions == parts and nvf.to_bytes(fast) == data
