# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""io_nv3dmm read/write: byte-exact round trips, odd-but-valid layouts, edits,
models built in code, and refusals. No bpy, no real files (see test_nvf_samples)."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from nv3dmm_face_tools import io_nv3dmm as nvf
from nv3dmm_face_tools.io_nv3dmm import (
    BlendShapes, Contours, FaceModel, LandmarkSet, LinearModel, NvfError, Partition, Topology,
    UnknownChunk,
)


# --- a hand-made file, written independently of the codec's writer ------------

def chunk(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack("<I", len(payload)) + payload


def u16(values: object) -> bytes:
    return np.asarray(values, dtype="<u2").tobytes()


def f32(values: object) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def string(text: bytes) -> bytes:
    return text + b"\0" * (-len(text) % 4)


V = 6
TRIANGLES = np.array([[0, 1, 2], [0, 2, 3], [3, 2, 4], [2, 5, 4]], dtype=np.uint16)
RNG = np.random.default_rng(7)
MEAN = RNG.normal(size=(V, 3)).astype(np.float32)
MODES = RNG.normal(size=(2, V, 3)).astype(np.float32)
EIGEN = np.array([1.0, 0.25], dtype=np.float32)
COLOR_MEAN = RNG.uniform(size=(V, 3)).astype(np.float32)
COLOR_MODES = RNG.normal(size=(1, V, 3)).astype(np.float32)
UV = RNG.uniform(size=(V, 2)).astype(np.float32)
BLEND = RNG.normal(size=(3, V, 3)).astype(np.float32)


def odd_file(*, toc: str = "odd", header_extra: bytes = b"\x01\x02\x03\x04\x05\x06\x07\x08") -> bytes:
    """Every object, in an order and with details NVIDIA never writes, all valid.

    toc: "odd" (records out of order, one missing, one pointing nowhere),
    "none" (no TOC0), "zero" (a TOC0 but a header TOC offset of 0).
    """
    shap = chunk(b"SHAP", chunk(b"EIVL", f32(EIGEN)) + chunk(b"MEAN", f32(MEAN))
                 + chunk(b"BSIS", struct.pack("<I", 2) + f32(MODES)) + chunk(b"TRNG", u16(TRIANGLES))
                 + chunk(b"XSHP", b"nested unknown"))
    colr = chunk(b"COLR", chunk(b"MEAN", f32(COLOR_MEAN)) + chunk(b"BSIS", struct.pack("<I", 1) + f32(COLOR_MODES))
                 + chunk(b"EIVL", f32([2.0])) + chunk(b"TRNG", b""))
    modl = chunk(b"MODL", chunk(b"TXCO", f32(UV)) + chunk(b"META", b"abc\0") + shap + colr)
    ibug = chunk(b"IBUG", chunk(b"LMRK", u16([[1, 0], [9, 3], [70, 5]])) + chunk(b"RCTR", u16([1, 2, 3])))
    blnd = chunk(b"BLND", struct.pack("<I", 3)
                 + chunk(b"NAME", b"jaw\0") + chunk(b"NAME", b"mouthSmile_L")       # 12 chars: no NUL
                 + chunk(b"SHAP", f32(BLEND[0])) + chunk(b"XBLD", b"")
                 + chunk(b"SHAP", f32(BLEND[1]))
                 + chunk(b"NAME", b"ab\0\0\0\0\0\0")                                # odd padding
                 + chunk(b"SHAP", f32(BLEND[2])))
    mctr = chunk(b"MCTR", chunk(b"LCTR", u16([5, 4, 3])))
    topology = nvf.build_topology(TRIANGLES)
    topo = chunk(b"TOPO", chunk(b"AJVX", u16(topology.edge_vertices)) + chunk(b"AJFC", u16(topology.adjacent_faces)))
    nvlm = chunk(b"NVLM", chunk(b"LCTR", u16([18, 19])) + chunk(b"LMRK", u16([[1, 1], [2, 2], [17, 4], [18, 5], [33, 0]]))
                 + chunk(b"RCTR", u16([1])))
    record = struct.Struct("<IIIIIi")
    prts = chunk(b"PRTS", struct.pack("<I", 4)
                 + chunk(b"PART", record.pack(0, 0, 2, 0, 6, 1) + chunk(b"MTRL", string(b"Skin")))
                 + chunk(b"PART", record.pack(1, 2, 1, 6, 3, 0) + chunk(b"NAME", string(b"Eye")))
                 + chunk(b"XPRT", b"\xff" * 4)
                 + chunk(b"PART", record.pack(2, 3, 1, 9, 3, -1) + chunk(b"MTRL", string(b"Mouth"))
                         + chunk(b"XPAR", b"zz") + chunk(b"NAME", string(b"Lips")))
                 + chunk(b"PART", record.pack(7, 0, 0, 0, 0, 5)))
    unknown_top = chunk(b"ZZZZ", b"top-level unknown payload")
    objects = [(b"IBUG", ibug), (b"MODL", modl), (b"ZZZZ", unknown_top), (b"BLND", blnd), (b"MCTR", mctr),
               (b"TOPO", topo), (b"NVLM", nvlm), (b"PRTS", prts)]
    header_len = 16 + len(header_extra)
    offsets: dict[bytes, int] = {}
    position = header_len
    body = b""
    toc_at = None
    for i, (tag, data) in enumerate(objects):
        if toc != "none" and i == 5:          # the TOC in the middle of the file
            toc_at = position
            toc_size = 8 + 4 + 8 * 7
            position += toc_size
        offsets[tag] = position
        position += len(data)
    records = [(b"PRTS", offsets[b"PRTS"]), (b"MODL", offsets[b"MODL"]), (b"ZZZZ", offsets[b"ZZZZ"]),
               (b"IBUG", offsets[b"IBUG"]), (b"BLND", offsets[b"BLND"]), (b"NVLM", offsets[b"NVLM"]),
               (b"JUNK", 12345)]
    toc_chunk = chunk(b"TOC0", struct.pack("<I", 8) + b"".join(struct.pack("<4sI", t, o) for t, o in records))
    for i, (tag, data) in enumerate(objects):
        if toc != "none" and i == 5:
            body += toc_chunk
        body += data
    toc_loc = 0 if toc in ("none", "zero") else toc_at
    header = b"NFAC" + struct.pack("<I", 8 + len(header_extra)) + b"\xe4\x20\x10\x00" + struct.pack("<I", toc_loc)
    return header + header_extra + body


@pytest.fixture(scope="module")
def demo() -> FaceModel:
    from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model
    return build_demo_model(shape_modes=6, with_color=True)


@pytest.fixture(scope="module")
def demo_bytes(demo: FaceModel) -> bytes:
    return nvf.to_bytes(demo)


# --- reading ---------------------------------------------------------------------

def test_odd_file_reads_every_object() -> None:
    model = nvf.read(odd_file())
    assert model.vertex_count == V and model.triangle_count == 4 and model.mode_count == 2
    np.testing.assert_array_equal(model.shape.mean, MEAN)
    np.testing.assert_array_equal(model.shape.modes, MODES)
    np.testing.assert_array_equal(model.shape.eigenvalues, EIGEN)
    np.testing.assert_array_equal(model.shape.triangles, TRIANGLES)
    assert model.shape.mean.dtype == np.dtype("<f4") and model.shape.triangles.dtype == np.dtype("<u2")
    assert model.color is not None
    np.testing.assert_array_equal(model.color.mean, COLOR_MEAN)
    np.testing.assert_array_equal(model.color.modes, COLOR_MODES)
    assert model.color.triangles.shape == (0, 3)
    np.testing.assert_array_equal(model.texcoords, UV)
    assert model.ibug is not None
    np.testing.assert_array_equal(model.ibug.pairs, [[1, 0], [9, 3], [70, 5]])
    np.testing.assert_array_equal(model.ibug.right_contour, [1, 2, 3])
    assert model.ibug.left_contour is None
    assert model.blend_shapes is not None
    assert model.blend_shapes.names == ["jaw", "mouthSmile_L", "ab"]
    np.testing.assert_array_equal(model.blend_shapes.deltas, BLEND)
    assert model.model_contours is not None and model.model_contours.right is None
    np.testing.assert_array_equal(model.model_contours.left, [5, 4, 3])
    expected = nvf.build_topology(TRIANGLES)
    assert model.topology is not None
    np.testing.assert_array_equal(model.topology.adjacent_faces, expected.adjacent_faces)
    np.testing.assert_array_equal(model.topology.edge_vertices, expected.edge_vertices)
    assert model.nvlm is not None and model.nvlm.pairs.shape == (5, 2)
    np.testing.assert_array_equal(model.nvlm.left_contour, [18, 19])
    parts = model.partitions
    assert parts is not None and len(parts) == 4
    assert [(p.name, p.material) for p in parts] == [(None, "Skin"), ("Eye", None), ("Lips", "Mouth"), (None, None)]
    assert [p.smoothing_group for p in parts] == [1, 0, -1, 5]
    assert [p.index for p in parts] == [0, 1, 2, 7]
    assert (parts[2].face_start, parts[2].face_count, parts[2].vertex_start, parts[2].vertex_count) == (3, 1, 9, 3)
    unknown = {(u.parent, u.tag): u for u in model.unknown_chunks}
    assert set(unknown) == {("", "ZZZZ"), ("MODL", "META"), ("MODL/SHAP", "XSHP"), ("BLND", "XBLD"),
                            ("PRTS", "XPRT"), ("PRTS/PART[2]", "XPAR")}
    assert unknown[("", "ZZZZ")].position == 2 and unknown[("", "ZZZZ")].payload == b"top-level unknown payload"
    assert unknown[("MODL", "META")].position == 1
    assert unknown[("MODL/SHAP", "XSHP")].position == 4
    assert unknown[("BLND", "XBLD")].position == 3
    assert unknown[("PRTS", "XPRT")].position == 2
    assert unknown[("PRTS/PART[2]", "XPAR")].position == 1
    assert model.toc is not None and len(model.toc) == 7 and model.toc[-1] == ("JUNK", 12345)
    assert model.toc[0][0] == "PRTS"


@pytest.mark.parametrize("toc", ["odd", "none", "zero"])
@pytest.mark.parametrize("extra", [b"", b"\xaa" * 4, b"\x01" * 9])
def test_odd_files_round_trip_byte_for_byte(toc: str, extra: bytes) -> None:
    data = odd_file(toc=toc, header_extra=extra)
    model = nvf.read(data)
    assert (model.toc is None) == (toc == "none")
    assert nvf.to_bytes(model, maxine=False) == data


def test_every_source_kind(tmp_path: Path) -> None:
    data = odd_file()
    path = tmp_path / "odd.nvf"
    path.write_bytes(data)
    sources: list[object] = [str(path), path, data, bytearray(data), memoryview(data), io.BytesIO(data)]
    for source in sources:
        model = nvf.read(source)  # type: ignore[arg-type]
        assert nvf.to_bytes(model, maxine=False) == data, type(source)
    with open(path, "rb") as handle:
        assert nvf.to_bytes(nvf.read(handle), maxine=False) == data
    with pytest.raises(TypeError):
        nvf.read(12345)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        nvf.read(io.StringIO("text"))  # type: ignore[arg-type]


def test_read_path_errors_name_the_file(tmp_path: Path) -> None:
    # A path is read without a file object (os.read): its errors still say which file.
    for where in (tmp_path, tmp_path / "missing.nvf"):
        with pytest.raises(OSError) as caught:
            nvf.read(where)
        assert str(where) in str(caught.value)
    empty = tmp_path / "empty.nvf"
    empty.write_bytes(b"")
    with pytest.raises(NvfError, match="empty file"):
        nvf.read(empty)


def test_read_path_reads_to_the_end_past_the_stat_size() -> None:
    # A pipe's stat size is 0 (as is a file that grew after the stat): read to the end anyway.
    from nv3dmm_face_tools.io_nv3dmm import reader

    data = odd_file()
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, data[:60000])   # within the pipe's buffer: no writer thread needed
        os.close(write_end)
        write_end = -1
        assert reader._read_to_end(read_end) == data[:60000]
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_read_is_zero_copy_for_the_big_arrays() -> None:
    data = odd_file()
    model = nvf.read(data)
    for array in (model.shape.mean, model.shape.modes, model.shape.triangles):
        assert not array.flags.writeable and not array.flags.owndata


def test_blend_shapes_are_gathered_on_first_use() -> None:
    import copy
    import dataclasses
    import pickle

    from nv3dmm_face_tools.io_nv3dmm.read_blend import FileBlendShapes

    data = odd_file()
    model = nvf.read(data)
    blend = model.blend_shapes
    assert isinstance(blend, FileBlendShapes) and isinstance(blend, BlendShapes)
    assert blend.file_payloads() is not None
    assert nvf.to_bytes(model, maxine=False) == data                    # written from the file's bytes
    deltas = blend.deltas
    assert blend.file_payloads() is None and deltas is blend.deltas
    np.testing.assert_array_equal(deltas, BLEND)
    assert deltas.dtype == np.dtype("<f4") and not deltas.flags.writeable
    assert nvf.to_bytes(model, maxine=False) == data                    # and from the gathered array
    restored = pickle.loads(pickle.dumps(blend))
    assert type(restored) is BlendShapes and restored.names == blend.names
    np.testing.assert_array_equal(restored.deltas, BLEND)
    np.testing.assert_array_equal(copy.deepcopy(nvf.read(data).blend_shapes).deltas, BLEND)  # type: ignore[union-attr]
    fresh = nvf.read(data).blend_shapes
    assert fresh is not None
    fresh.deltas = BLEND * 2                              # assignment replaces the file's shapes
    np.testing.assert_array_equal(fresh.deltas, BLEND * 2)
    replaced = dataclasses.replace(nvf.read(data).blend_shapes, names=["a", "b", "c"])  # type: ignore[type-var]
    assert replaced.names == ["a", "b", "c"]
    np.testing.assert_array_equal(replaced.deltas, BLEND)
    edited = nvf.read(data)
    assert edited.blend_shapes is not None
    edited.blend_shapes.names.append("extra")             # names no longer match the shapes
    with pytest.raises(NvfError, match="shape"):
        nvf.to_bytes(edited, maxine=False)


# --- writing ---------------------------------------------------------------------

def test_write_path_and_file_object(tmp_path: Path, demo: FaceModel, demo_bytes: bytes) -> None:
    target = tmp_path / "demo.nvf"
    nvf.write(demo, target)
    assert target.read_bytes() == demo_bytes
    nvf.write(demo, str(target))            # overwrite in place, atomically
    assert target.read_bytes() == demo_bytes
    stream = io.BytesIO()
    stream.write(b"prefix")
    nvf.write(demo, stream)
    assert stream.getvalue() == b"prefix" + demo_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.nvf"]   # no temporary left


def _toc_points_at_tags(data: bytes) -> list[tuple[bytes, int]]:
    toc_loc = struct.unpack_from("<I", data, 12)[0]
    assert data[toc_loc:toc_loc + 4] == b"TOC0"
    size = struct.unpack_from("<I", data, toc_loc + 4)[0]
    records = list(struct.iter_unpack("<4sI", data[toc_loc + 12:toc_loc + 8 + size]))
    for tag, offset in records:
        # odd_file's JUNK record points at nothing on purpose (kept while offsets are unchanged).
        assert data[offset:offset + 4] == tag or (tag == b"JUNK" and offset == 12345)
    return records


def _container_sizes_consistent(data: bytes, start: int, end: int) -> None:
    pos = start
    while end - pos >= 8:
        tag, size = struct.unpack_from("<4sI", data, pos)
        assert pos + 8 + size <= end, tag
        pos += 8 + size
    assert pos == end


def test_model_built_in_code_uses_nvidia_layout(demo: FaceModel, demo_bytes: bytes) -> None:
    data = demo_bytes
    assert data[:16] == b"NFAC" + struct.pack("<I", 8) + b"\xe4\x20\x10\x00" + data[12:16]
    records = _toc_points_at_tags(data)
    assert [t for t, _ in records] == [b"MODL", b"IBUG", b"BLND", b"MCTR", b"TOPO", b"NVLM", b"PRTS"]
    assert records[0][1] == 16
    toc_loc = struct.unpack_from("<I", data, 12)[0]
    assert toc_loc + 8 + struct.unpack_from("<I", data, toc_loc + 4)[0] == len(data)   # TOC last
    # MODL's size comes from its children (NVIDIA's writer is 4 bytes short with a colour model).
    modl_size = struct.unpack_from("<I", data, 20)[0]
    _container_sizes_consistent(data, 24, 24 + modl_size)
    back = nvf.read(data)
    assert back.topology is not None
    expected = nvf.build_topology(demo.shape.triangles)
    np.testing.assert_array_equal(back.topology.adjacent_faces, expected.adjacent_faces)
    np.testing.assert_array_equal(back.topology.edge_vertices, expected.edge_vertices)
    assert back.color is not None and back.color.triangles.shape == (0, 3)
    assert back.blend_shapes is not None and back.blend_shapes.names == demo.blend_shapes.names  # type: ignore[union-attr]
    np.testing.assert_array_equal(back.shape.mean, demo.shape.mean)
    assert [p.name for p in back.partitions or []] == [p.name for p in demo.partitions or []]
    assert nvf.to_bytes(back) == data


def test_minimal_model_from_scratch() -> None:
    mean = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float64)   # float64 is narrowed
    model = FaceModel(shape=LinearModel(mean=mean, modes=np.zeros((0, 3, 3), np.float32),
                                        eigenvalues=np.zeros(0, np.float32),
                                        triangles=np.array([[0, 1, 2]], dtype=np.int64)))
    data = nvf.to_bytes(model, maxine=False)
    back = nvf.read(data)
    np.testing.assert_array_equal(back.shape.mean, mean.astype(np.float32))
    assert back.topology is not None and back.topology.adjacent_faces.tolist() == [[0, 1], [0, 1], [0, 1]]
    assert [t for t, _ in back.toc or []] == ["MODL", "TOPO"]
    assert back.ibug is None and back.blend_shapes is None and back.partitions is None


def test_names_whose_length_is_a_multiple_of_four_have_no_nul(demo: FaceModel) -> None:
    model = FaceModel(shape=demo.shape, blend_shapes=BlendShapes(
        names=["mouthSmile_L", "abc", "", "abcdefgh"], deltas=np.zeros((4, demo.vertex_count, 3), np.float32)))
    data = nvf.to_bytes(model, maxine=False)
    assert chunk(b"NAME", b"mouthSmile_L") in data
    assert chunk(b"NAME", b"abc\0") in data
    assert chunk(b"NAME", b"abcdefgh") in data
    assert nvf.read(data).blend_shapes.names == ["mouthSmile_L", "abc", "", "abcdefgh"]  # type: ignore[union-attr]


# --- edits of a read model ---------------------------------------------------------

def _read_back(model: FaceModel) -> tuple[bytes, FaceModel]:
    data = nvf.to_bytes(model, maxine=False)
    _toc_points_at_tags(data) if struct.unpack_from("<I", data, 12)[0] else None
    _container_sizes_consistent(data, 8 + struct.unpack_from("<I", data, 4)[0], len(data))
    return data, nvf.read(data)


def test_edit_blend_shapes_keeps_file_consistent() -> None:
    model = nvf.read(odd_file())
    assert model.blend_shapes is not None
    model.blend_shapes = BlendShapes(names=model.blend_shapes.names[:2] + ["new_one"],
                                     deltas=np.concatenate([model.blend_shapes.deltas[:2], BLEND[:1] * 2]))
    _, back = _read_back(model)
    assert back.blend_shapes is not None and back.blend_shapes.names == ["jaw", "mouthSmile_L", "new_one"]
    np.testing.assert_array_equal(back.blend_shapes.deltas[2], BLEND[0] * 2)
    model.blend_shapes = BlendShapes(names=["only"], deltas=BLEND[:1])
    _, back = _read_back(model)
    assert back.blend_shapes.names == ["only"]  # type: ignore[union-attr]
    model.blend_shapes = None
    data, back = _read_back(model)
    assert back.blend_shapes is None and b"XBLD" not in data   # its unknown child went with it


def test_edit_triangles_rebuilds_stale_topology() -> None:
    model = nvf.read(odd_file())
    new_triangles = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.uint16)
    model.shape = LinearModel(mean=model.shape.mean, modes=model.shape.modes,
                              eigenvalues=model.shape.eigenvalues, triangles=new_triangles)
    model.partitions = [Partition(index=0, face_start=0, face_count=2, vertex_start=0, vertex_count=6,
                                  name="All", material="Skin")]
    _, back = _read_back(model)
    expected = nvf.build_topology(new_triangles)
    assert back.topology is not None
    np.testing.assert_array_equal(back.topology.adjacent_faces, expected.adjacent_faces)
    assert back.partitions is not None and back.partitions[0].name == "All"
    assert not any(u.parent.startswith("PRTS/PART") for u in back.unknown_chunks)


def test_edit_arrays_and_remove_objects() -> None:
    model = nvf.read(odd_file())
    model.shape = LinearModel(mean=np.asarray(model.shape.mean, dtype=np.float64) + 1.0,
                              modes=model.shape.modes[:1], eigenvalues=model.shape.eigenvalues[:1],
                              triangles=model.shape.triangles)
    model.color = None                     # its nested unknown chunks (none here) would go too
    model.texcoords = None
    model.nvlm = None
    model.unknown_chunks = [u for u in model.unknown_chunks if u.tag != "ZZZZ"]
    data, back = _read_back(model)
    np.testing.assert_allclose(back.shape.mean, MEAN + 1.0, rtol=1e-6)
    assert back.mode_count == 1 and back.color is None and back.texcoords is None and back.nvlm is None
    assert b"ZZZZ" not in data
    # The TOC kept its odd record order, minus what is gone; the record that pointed
    # at nothing is dropped once the file changes.
    assert back.toc is not None
    assert [t for t, _ in back.toc] == ["PRTS", "MODL", "IBUG", "BLND"]


def test_toc_none_drops_the_toc_and_new_objects_get_canonical_places() -> None:
    model = nvf.read(odd_file(toc="none"))
    model.toc = None
    assert nvf.to_bytes(model, maxine=False) == odd_file(toc="none")
    model.toc = []
    data, back = _read_back(model)
    assert back.toc is not None and len(back.toc) == 8        # every top-level object
    model = nvf.read(odd_file(toc="none"))
    model.nvlm = None
    data_no_nvlm = nvf.to_bytes(model, maxine=False)
    model.nvlm = LandmarkSet(pairs=np.array([[1, 2]], np.uint16))
    data, back = _read_back(model)
    assert back.nvlm is not None and back.nvlm.pairs.tolist() == [[1, 2]]
    assert len(data) > len(data_no_nvlm)


def test_unknown_chunks_added_in_code() -> None:
    model = nvf.read(odd_file())
    model.unknown_chunks.append(UnknownChunk(tag="MINE", payload=b"12345", parent="MCTR", position=0))
    model.unknown_chunks.append(UnknownChunk(tag="GONE", payload=b"", parent="MODL/COLR", position=0))
    model.color = None
    data, back = _read_back(model)
    mine = [u for u in back.unknown_chunks if u.tag == "MINE"]
    assert len(mine) == 1 and mine[0].parent == "MCTR" and mine[0].payload == b"12345"
    assert b"GONE" not in data


# --- refusals: nothing touched ---------------------------------------------------

def _bad_models(demo: FaceModel) -> list[tuple[str, FaceModel]]:
    v = demo.vertex_count
    shape = demo.shape

    def with_shape(**changes: object) -> FaceModel:
        fields = dict(mean=shape.mean, modes=shape.modes, eigenvalues=shape.eigenvalues, triangles=shape.triangles)
        fields.update(changes)
        return FaceModel(shape=LinearModel(**fields))  # type: ignore[arg-type]

    big = np.zeros((70000, 3), np.float32)
    return [
        ("65,535", FaceModel(shape=LinearModel(mean=big, modes=np.zeros((0, 70000, 3), np.float32),
                                                eigenvalues=np.zeros(0, np.float32),
                                                triangles=np.zeros((0, 3), np.uint16)))),
        ("outside", with_shape(triangles=np.array([[0, 1, v]]))),
        ("outside", with_shape(triangles=np.array([[0, -1, 2]]))),
        ("integer", with_shape(triangles=shape.triangles.astype(np.float32))),
        ("float", with_shape(mean=np.zeros((v, 3), np.int32))),
        ("shape", with_shape(modes=np.zeros((2, v + 1, 3), np.float32), eigenvalues=np.ones(2, np.float32))),
        ("shape", with_shape(eigenvalues=np.ones(shape.modes.shape[0] + 1, np.float32))),
        ("shape", FaceModel(shape=shape, texcoords=np.zeros((v - 1, 2), np.float32))),
        ("shape", FaceModel(shape=shape, color=LinearModel(
            mean=np.zeros((v - 1, 3), np.float32), modes=np.zeros((0, v - 1, 3), np.float32),
            eigenvalues=np.zeros(0, np.float32), triangles=np.zeros((0, 3), np.uint16)))),
        ("shape", FaceModel(shape=shape, blend_shapes=BlendShapes(names=["a", "b"],
                                                                  deltas=np.zeros((1, v, 3), np.float32)))),
        ("NUL", FaceModel(shape=shape, blend_shapes=BlendShapes(names=["a\0b"], deltas=np.zeros((1, v, 3), np.float32)))),
        ("UTF-8", FaceModel(shape=shape, blend_shapes=BlendShapes(names=["\udcff\ud800"],
                                                                  deltas=np.zeros((1, v, 3), np.float32)))),
        ("outside", FaceModel(shape=shape, ibug=LandmarkSet(pairs=np.array([[1, v]])))),
        ("outside", FaceModel(shape=shape, model_contours=Contours(right=np.array([v]), left=None))),
        ("outside", FaceModel(shape=shape, topology=Topology(adjacent_faces=np.array([[0, demo.triangle_count + 1]]),
                                                             edge_vertices=np.array([[1, 2]])))),
        ("outside", FaceModel(shape=shape, topology=Topology(adjacent_faces=np.array([[0, 1]]),
                                                             edge_vertices=np.array([[0, 2]])))),
        ("beyond the triangle list", FaceModel(shape=shape, partitions=[
            Partition(index=0, face_start=demo.triangle_count - 1, face_count=2, vertex_start=0, vertex_count=3)])),
        ("int32", FaceModel(shape=shape, partitions=[
            Partition(index=0, face_start=0, face_count=1, vertex_start=0, vertex_count=3, smoothing_group=2**31)])),
        ("4-character", FaceModel(shape=shape, unknown_chunks=[UnknownChunk(tag="TOOLONG", payload=b"")])),
        ("already uses", FaceModel(shape=shape, unknown_chunks=[UnknownChunk(tag="MEAN", payload=b"", parent="MODL/SHAP")])),
        ("container", FaceModel(shape=shape, unknown_chunks=[UnknownChunk(tag="ABCD", payload=b"", parent="NOPE")])),
    ]


def test_write_refuses_what_the_format_cannot_hold(tmp_path: Path, demo: FaceModel) -> None:
    existing = tmp_path / "existing.nvf"
    existing.write_bytes(b"keep me")
    for i, (words, model) in enumerate(_bad_models(demo)):
        target = tmp_path / f"new{i}.nvf"
        with pytest.raises(NvfError, match=words) as info:
            nvf.write(model, target)
        assert isinstance(info.value, ValueError) and info.value.offset is None
        assert not target.exists()
        with pytest.raises(NvfError):
            nvf.write(model, existing)
        assert existing.read_bytes() == b"keep me"
        stream = io.BytesIO()
        with pytest.raises(NvfError):
            nvf.write(model, stream)
        assert stream.getvalue() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.nvf"]


def test_failed_replace_leaves_no_partial_file(tmp_path: Path, demo: FaceModel,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.nvf"
    target.write_bytes(b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        nvf.write(demo, target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nvf"]


def test_write_into_missing_folder_raises_oserror(tmp_path: Path, demo: FaceModel) -> None:
    with pytest.raises(OSError):
        nvf.write(demo, tmp_path / "no" / "such" / "folder.nvf")


# --- errors name the offset and the problem ------------------------------------------

def _set(data: bytes, offset: int, packed: bytes) -> bytes:
    return data[:offset] + packed + data[offset + len(packed):]


def _find(data: bytes, tag: bytes, start: int = 0) -> int:
    at = data.find(tag, start)
    assert at >= 0, tag
    return at


def _specific_errors() -> list[tuple[str, bytes, str]]:
    good = odd_file()
    shap = _find(good, b"SHAP")
    mean = _find(good, b"MEAN", shap)
    bsis = _find(good, b"BSIS", shap)
    trng = _find(good, b"TRNG", shap)
    lmrk = _find(good, b"LMRK")
    mctr = _find(good, b"MCTR")
    ajfc = _find(good, b"AJFC")
    ajvx = _find(good, b"AJVX")
    blnd = _find(good, b"BLND")
    prts = [i for i in range(len(good)) if good.startswith(b"PRTS", i) and good[i + 8:i + 12] == struct.pack("<I", 4)][0]
    part = _find(good, b"PART", prts)
    txco = _find(good, b"TXCO")
    colr_mean = _find(good, b"MEAN", _find(good, b"COLR"))
    second_shap = _find(good, b"SHAP", blnd)
    return [
        ("bad magic", b"NFAX" + good[4:], "bad magic"),
        ("empty", b"", "bad magic"),
        ("big endian", _set(good, 8, b"\x1b"), "big-endian"),
        ("size bits", _set(good, 9, b"\x40"), "sizeBits"),
        ("index bits", _set(good, 10, b"\x20"), "indexBits"),
        ("short header", _set(good, 4, struct.pack("<I", 4)), "unsupported header"),
        ("huge header", _set(good, 4, struct.pack("<I", 0xFFFFFFF0)), "truncated header"),
        ("trailing bytes", good + b"\0\0\0", "stray byte"),
        ("truncated chunk", good[:len(good) - 20], "claims"),
        ("overflowing chunk", _set(good, mean + 4, struct.pack("<I", 0xFFFFFFFF)), "claims"),
        ("mode count", _set(good, bsis + 8, struct.pack("<I", 0x7FFFFFFF)), "count disagrees with size"),
        ("triangle", _set(good, trng + 8, u16([V])), "TRNG vertex index"),
        ("landmark", _set(good, lmrk + 10, u16([V])), "LMRK vertex"),
        ("mctr", _set(good, mctr + 16, u16([V + 10])), "MCTR/LCTR vertex"),
        ("topo face", _set(good, ajfc + 8, u16([5])), "AJFC face number"),
        ("topo vertex", _set(good, ajvx + 8, u16([0])), "AJVX vertex number"),
        ("blend count", _set(good, blnd + 8, struct.pack("<I", 4)), "counts disagree"),
        ("blend size", _set(good, second_shap + 4, struct.pack("<I", 12 * V - 4)), "stray byte|array lengths|claims"),
        ("partition beyond", _set(good, part + 12, struct.pack("<I", 1000)), "beyond the triangle list"),
        ("partition count", _set(good, prts + 8, struct.pack("<I", 9)), "counts disagree"),
        ("txco", _set(good, txco, b"TXCX"), "no-error"),
        ("colour vertices", _set(good, colr_mean, b"MEAX"), "no MEAN"),
        ("toc loc", _set(good, 12, struct.pack("<I", 16)), "header says the TOC"),
    ]


@pytest.mark.parametrize("label,data,words", _specific_errors(), ids=[e[0] for e in _specific_errors()])
def test_specific_errors_name_offset_and_reason(label: str, data: bytes, words: str) -> None:
    if words == "no-error":        # an unknown tag in place of TXCO is legal: kept raw
        model = nvf.read(data)
        assert model.texcoords is None and nvf.to_bytes(model, maxine=False) == data
        return
    with pytest.raises(NvfError, match=words) as info:
        nvf.read(data)
    error = info.value
    assert error.offset is not None and 0 <= error.offset <= max(len(data), 16)
    assert f"byte offset {error.offset}" in str(error)


def test_mismatched_colour_and_texcoord_lengths() -> None:
    good = odd_file()
    # Shrink COLR/MEAN by one vertex: the colour model then disagrees with SHAP.
    colr = _find(good, b"COLR")
    model = nvf.read(good)
    model.color = LinearModel(mean=COLOR_MEAN[:-1], modes=COLOR_MODES[:, :-1], eigenvalues=np.ones(1, np.float32),
                              triangles=np.zeros((0, 3), np.uint16))
    with pytest.raises(NvfError, match="shape"):
        nvf.to_bytes(model)
    assert colr > 0
    # A hand-made file with a short TXCO.
    data = chunk(b"MODL", chunk(b"SHAP", chunk(b"MEAN", f32(MEAN))) + chunk(b"TXCO", f32(UV[:-1])))
    header = b"NFAC" + struct.pack("<I", 8) + b"\xe4\x20\x10\x00" + struct.pack("<I", 0)
    with pytest.raises(NvfError, match="TXCO") as info:
        nvf.read(header + data)
    assert info.value.offset is not None
    data = chunk(b"MODL", chunk(b"SHAP", chunk(b"MEAN", f32(MEAN)))
                 + chunk(b"COLR", chunk(b"MEAN", f32(COLOR_MEAN[:-1]))))
    with pytest.raises(NvfError, match="COLR/MEAN has 5 vertices"):
        nvf.read(header + data)


def test_error_pickles() -> None:
    import pickle
    error = NvfError("something", 42)
    copy = pickle.loads(pickle.dumps(error))
    assert copy.offset == 42 and str(copy) == str(error)


# --- partition-heavy models (the reader's and writer's one-buffer PRTS paths) ----------

def _prts_file(parts: list[bytes]) -> bytes:
    """A minimal file around a hand-made PRTS (no TOC)."""
    mean = chunk(b"MEAN", f32(MEAN))
    shap = chunk(b"SHAP", mean + chunk(b"TRNG", u16(TRIANGLES)))
    prts = chunk(b"PRTS", struct.pack("<I", len(parts)) + b"".join(parts))
    header = b"NFAC" + struct.pack("<I", 8) + b"\xe4\x20\x10\x00" + struct.pack("<I", 0)
    return header + chunk(b"MODL", shap) + prts


def test_partition_orders_and_paddings_round_trip_byte_for_byte() -> None:
    record = struct.Struct("<IIIIIi")
    parts = [
        chunk(b"PART", record.pack(0, 0, 1, 0, 3, 0) + chunk(b"MTRL", string(b"Skin")) + chunk(b"NAME", string(b"A"))),
        chunk(b"PART", record.pack(1, 1, 1, 3, 3, 0) + chunk(b"NAME", b"Bb\0\0\0\0\0\0") + chunk(b"MTRL", b"Skin")),
        chunk(b"PART", record.pack(2, 2, 1, 6, 3, 0) + chunk(b"MTRL", b"Skin")),
        chunk(b"PART", record.pack(3, 3, 1, 9, 3, 0) + chunk(b"NAME", string("é".encode()))),
        chunk(b"PART", record.pack(4, 0, 0, 0, 0, 0) + chunk(b"NAME", b"") + chunk(b"MTRL", b"")),
    ]
    data = _prts_file(parts)
    model = nvf.read(data)
    assert model.partitions is not None
    assert [(p.name, p.material) for p in model.partitions] == [
        ("A", "Skin"), ("Bb", "Skin"), (None, "Skin"), ("é", None), ("", "")]
    assert nvf.to_bytes(model) == data
    assert model.source_layout.child_orders["PRTS/PART[0]"] == ("MTRL", "NAME")
    assert "PRTS/PART[1]" not in model.source_layout.child_orders     # canonical for what it holds


def test_many_partitions_sharing_materials_round_trip() -> None:
    v = 6
    model = nvf.read(_prts_file([]))
    model.partitions = [Partition(index=i, face_start=i % 4, face_count=1, vertex_start=3 * (i % 4),
                                  vertex_count=3, smoothing_group=i % 3 - 1, name=None if i % 2 else f"p{i:03d}",
                                  material=f"Material{i % 12:04d}") for i in range(150)]
    data = nvf.to_bytes(model)
    back = nvf.read(data)
    assert back.partitions == model.partitions and back.vertex_count == v
    assert nvf.to_bytes(back) == data
    # Bad fields are refused with the same messages as before, by index.
    for field, value, words in (("face_count", 9, "beyond the triangle list"), ("index", -1, "index must be"),
                                ("smoothing_group", 2**31, "int32"), ("material", "a\0b", "NUL"),
                                ("vertex_start", 1.5, "vertex_start must be")):
        bad = nvf.read(data)
        assert bad.partitions is not None
        setattr(bad.partitions[77], field, value)
        with pytest.raises(NvfError, match=words) as info:
            nvf.to_bytes(bad)
        assert "partitions[77]" in str(info.value)
