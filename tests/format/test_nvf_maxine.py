# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every .nvf the codec writes is read by NVIDIA's own reader (Maxine's FaceIO.cpp)
with the same data, and by io_nv3dmm back equal (issue 9).

The `nvidia_faceio` fixture (tests/conftest.py) builds NVIDIA's unmodified reader
from ../shared/tools/nvidia-faceio; `.check(path)` reads a file through both of its
adapters and compares counts and checksums of every array, name, landmark and
partition with io_nv3dmm's. Those tests skip, saying why, without the harness or
a C++ compiler. The refusal and limit tests at the end need neither.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nv3dmm_face_tools import io_nv3dmm as nvf
from nv3dmm_face_tools.io_nv3dmm import (
    BlendShapes, Contours, FaceModel, LandmarkSet, LinearModel, NvfError, Partition, UnknownChunk,
)
from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model
from nv3dmm_face_tools.io_nv3dmm.limits import MAX_BLEND_SHAPES, MAX_IBUG_CONTOUR, MAX_NAME_BYTES, MAX_PARTITIONS

REPO_ROOT = Path(__file__).resolve().parents[2]

# --- comparing models ---------------------------------------------------------------


def _same_array(a: Any, b: Any, dtype: str) -> bool:
    if a is None or b is None:
        return a is None and b is None
    x = np.ascontiguousarray(np.asarray(a), dtype=dtype)
    y = np.ascontiguousarray(np.asarray(b), dtype=dtype)
    return x.shape == y.shape and x.tobytes() == y.tobytes()     # bit for bit (signed zeros too)


def assert_models_equal(a: FaceModel, b: FaceModel) -> None:
    """Every field of the FaceModel API (not the layout), floats bit for bit."""
    for label, x, y in (("shape", a.shape, b.shape), ("color", a.color, b.color)):
        assert (x is None) == (y is None), label
        if x is None or y is None:
            continue
        assert _same_array(x.mean, y.mean, "<f4"), f"{label}.mean"
        assert _same_array(x.modes, y.modes, "<f4"), f"{label}.modes"
        assert _same_array(x.eigenvalues, y.eigenvalues, "<f4"), f"{label}.eigenvalues"
        assert _same_array(x.triangles, y.triangles, "<u2"), f"{label}.triangles"
    assert _same_array(a.texcoords, b.texcoords, "<f4"), "texcoords"
    for label, m, n in (("ibug", a.ibug, b.ibug), ("nvlm", a.nvlm, b.nvlm)):
        assert (m is None) == (n is None), label
        if m is None or n is None:
            continue
        assert _same_array(np.asarray(m.pairs).reshape(-1, 2), n.pairs, "<u2"), f"{label}.pairs"
        assert _same_array(m.right_contour, n.right_contour, "<u2"), f"{label}.right_contour"
        assert _same_array(m.left_contour, n.left_contour, "<u2"), f"{label}.left_contour"
    assert (a.blend_shapes is None) == (b.blend_shapes is None)
    if a.blend_shapes is not None and b.blend_shapes is not None:
        assert list(a.blend_shapes.names) == list(b.blend_shapes.names)
        count = len(a.blend_shapes.names)
        assert _same_array(np.asarray(a.blend_shapes.deltas).reshape(count, a.vertex_count, 3),
                           b.blend_shapes.deltas, "<f4"), "blend_shapes.deltas"
    assert (a.model_contours is None) == (b.model_contours is None)
    if a.model_contours is not None and b.model_contours is not None:
        assert _same_array(a.model_contours.right, b.model_contours.right, "<u2")
        assert _same_array(a.model_contours.left, b.model_contours.left, "<u2")
    if a.topology is not None:
        assert b.topology is not None
        assert _same_array(a.topology.adjacent_faces, b.topology.adjacent_faces, "<u2")
        assert _same_array(a.topology.edge_vertices, b.topology.edge_vertices, "<u2")
    assert a.partitions == b.partitions
    assert sorted((u.parent, u.tag, bytes(u.payload)) for u in a.unknown_chunks) == sorted(
        (u.parent, u.tag, bytes(u.payload)) for u in b.unknown_chunks)


# --- generated models -------------------------------------------------------------------

_FLOATS = st.floats(-1e4, 1e4, allow_nan=False, width=32)
_CHARS = st.characters(exclude_characters="\0", exclude_categories=("Cs",))
_NAMES = st.one_of(
    st.text(_CHARS, max_size=12),
    st.sampled_from(["a", "x" * 255, "é" * 100, "jawOpen", "ab\u4e2dc", "abcd"]),
)
_MATERIALS = [f"Material{i}" for i in range(12)]
_UNKNOWN_PARENTS = ["MODL", "MODL/SHAP", "IBUG", "BLND", "MCTR", "TOPO", "NVLM"]


def _f32(draw: Any, shape: tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape))
    values = draw(st.lists(_FLOATS, min_size=count, max_size=count))
    return np.asarray(values, dtype=np.float32).reshape(shape)


def _u16(draw: Any, count: int, low: int, high: int) -> np.ndarray:
    if high < low:
        return np.zeros(0, np.uint16)
    return np.asarray(draw(st.lists(st.integers(low, high), min_size=count, max_size=count)), dtype=np.uint16)


@st.composite
def face_models(draw: Any) -> FaceModel:
    """Small models across the cases of issue 9: zero or some modes, blend shapes or none
    (or zero), landmarks or none, empty contours, colour models with zero or some modes,
    texture coordinates, odd names, many partitions, unknown chunks where NVIDIA skips them."""
    v = draw(st.integers(0, 8))
    t = draw(st.integers(0, 6)) if v else 0
    modes = draw(st.integers(0, 3))
    shape = LinearModel(mean=_f32(draw, (v, 3)), modes=_f32(draw, (modes, v, 3)),
                        eigenvalues=_f32(draw, (modes,)),
                        triangles=_u16(draw, 3 * t, 0, v - 1).reshape(t, 3))
    model = FaceModel(shape=shape)
    if draw(st.booleans()):
        color_modes = draw(st.integers(0, 2))
        model.color = LinearModel(mean=_f32(draw, (v, 3)), modes=_f32(draw, (color_modes, v, 3)),
                                  eigenvalues=_f32(draw, (color_modes,)),
                                  triangles=np.zeros((0, 3), np.uint16))
    if draw(st.booleans()):
        model.texcoords = _f32(draw, (v, 2))
    if draw(st.booleans()):
        n = draw(st.integers(0, 6))
        model.blend_shapes = BlendShapes(names=draw(st.lists(_NAMES, min_size=n, max_size=n)),
                                         deltas=_f32(draw, (n, v, 3)))
    for field in ("ibug", "nvlm"):
        if draw(st.booleans()):
            n = draw(st.integers(0, 5)) if v else 0
            pairs = np.stack([_u16(draw, n, 1, 68), _u16(draw, n, 0, v - 1)], axis=1) if n else np.zeros((0, 2), np.uint16)
            longest = MAX_IBUG_CONTOUR if field == "ibug" else 20
            shortest = 1 if field == "ibug" else 0     # NVIDIA's adapter cannot read an empty IBUG contour
            contours = [None if draw(st.booleans()) else _u16(draw, draw(st.integers(shortest, longest)), 1, 68)
                        for _ in range(2)]
            setattr(model, field, LandmarkSet(pairs=pairs, right_contour=contours[0], left_contour=contours[1]))
    if draw(st.booleans()) and v:
        model.model_contours = Contours(
            *[None if draw(st.booleans()) else _u16(draw, draw(st.integers(0, 6)), 0, v - 1) for _ in range(2)])
    if draw(st.booleans()):
        count = draw(st.sampled_from([0, 1, 3, 140]))
        parts = []
        for i in range(count):
            start = draw(st.integers(0, t))
            faces = draw(st.integers(0, t - start))
            name = draw(st.one_of(st.none(), st.just(""), _NAMES)) if count < 20 else f"part{i}"
            material = draw(st.one_of(st.none(), st.sampled_from(_MATERIALS)))
            parts.append(Partition(index=i, face_start=start, face_count=faces, vertex_start=3 * start,
                                   vertex_count=3 * faces, smoothing_group=draw(st.integers(-1, 3)),
                                   name=name, material=material))
        model.partitions = parts
    for _ in range(draw(st.integers(0, 2))):
        parent = draw(st.sampled_from(_UNKNOWN_PARENTS))
        present = {"MODL": True, "MODL/SHAP": True, "IBUG": model.ibug is not None,
                   "BLND": model.blend_shapes is not None, "MCTR": model.model_contours is not None,
                   "TOPO": True, "NVLM": model.nvlm is not None}[parent]
        if present:
            payload = draw(st.binary(max_size=9))
            model.unknown_chunks.append(UnknownChunk(tag="XUNK", payload=payload, parent=parent, position=0))
    return model


_SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                            HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(model=face_models())
def test_generated_models_read_in_nvidia_and_back_equal(model: FaceModel, nvidia_faceio: Any,
                                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("maxine") / "generated.nvf"
    nvf.write(model, path)
    assert nvf.to_bytes(model) == path.read_bytes()
    assert nvf.maxine_problems(path) == []
    summary = nvidia_faceio.check(path)
    assert summary["vertices"] == model.vertex_count and summary["modes"] == model.mode_count
    assert_models_equal(model, nvf.read(path))


# --- every writer path of the codec -----------------------------------------------------

@pytest.mark.parametrize("options", [
    {"shape_modes": 0}, {"shape_modes": 3, "with_color": True, "color_modes": 0},
    {"shape_modes": 2, "with_color": True, "color_modes": 2}, {"shape_modes": 0, "blend_shape_names": []},
], ids=["no-modes", "colour-no-modes", "colour-modes", "no-blend-shapes"])
def test_demo_model_variants(options: dict[str, Any], nvidia_faceio: Any, tmp_path: Path) -> None:
    model = build_demo_model(resolution=(21, 21), **options)
    path = tmp_path / "demo.nvf"
    nvf.write(model, path, fsync=False)
    nvidia_faceio.check(path)
    assert_models_equal(model, nvf.read(path))
    stream = tmp_path / "stream.nvf"
    with open(stream, "wb") as handle:          # the file-object path of write()
        nvf.write(model, handle)
    assert stream.read_bytes() == path.read_bytes() == nvf.to_bytes(model)


@pytest.mark.parametrize("args", [["--modes", "0"], ["--modes", "4", "--color"]], ids=["modes-0", "color"])
def test_cli_demo(args: list[str], nvidia_faceio: Any, tmp_path: Path) -> None:
    out = tmp_path / "demo.nvf"
    run = subprocess.run([sys.executable, "-m", "io_nv3dmm", "demo", str(out), *args],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    nvidia_faceio.check(out)
    assert subprocess.run([sys.executable, "-m", "io_nv3dmm", "validate", str(out)],
                          cwd=REPO_ROOT, capture_output=True, timeout=120).returncode == 0


def test_face_model2_round_trip_and_edits(nvidia_faceio: Any, nvf_samples: Path, tmp_path: Path) -> None:
    source = nvf_samples / "face_model2.nvf"
    model = nvf.read(source)
    copy = tmp_path / "copy.nvf"
    nvf.write(model, copy)
    assert copy.read_bytes() == source.read_bytes()
    nvidia_faceio.check(copy)
    # Edited: no modes, no blend shapes, a colour model, texture coordinates, more partitions.
    v = model.vertex_count
    model.shape = LinearModel(mean=np.asarray(model.shape.mean) + np.float32(0.5),
                              modes=np.zeros((0, v, 3), np.float32), eigenvalues=np.zeros(0, np.float32),
                              triangles=model.shape.triangles)
    model.blend_shapes = BlendShapes(names=[], deltas=np.zeros((0, v, 3), np.float32))
    model.color = LinearModel(mean=np.full((v, 3), 0.5, np.float32), modes=np.zeros((0, v, 3), np.float32),
                              eigenvalues=np.zeros(0, np.float32), triangles=np.zeros((0, 3), np.uint16))
    model.texcoords = np.zeros((v, 2), np.float32)
    assert model.partitions is not None
    model.partitions = model.partitions + [
        Partition(index=len(model.partitions) + i, face_start=0, face_count=1, vertex_start=0, vertex_count=3,
                  name=f"extra{i}", material=_MATERIALS[i % 12]) for i in range(130)]
    edited = tmp_path / "edited.nvf"
    nvf.write(model, edited)
    nvidia_faceio.check(edited)
    assert_models_equal(model, nvf.read(edited))


def test_files_of_the_old_writer_crashed_nvidia(nvidia_faceio: Any, tmp_path: Path) -> None:
    """The regression itself: a zero-count BSIS kills NVIDIA's reader (SIGFPE); our
    default write leaves it out, and validate/maxine_problems say why the old file fails."""
    model = build_demo_model(shape_modes=0, resolution=(21, 21))
    old = tmp_path / "old.nvf"
    old.write_bytes(nvf.to_bytes(model, maxine=False))      # what the writer did before issue 9
    with pytest.raises(AssertionError, match="SIGFPE"):
        nvidia_faceio.read(old)
    assert any("SIGFPE" in p for p in nvf.maxine_problems(old))
    new = tmp_path / "new.nvf"
    nvf.write(nvf.read(old), new)
    nvidia_faceio.check(new)


# --- refusals: nothing written ------------------------------------------------------------

def _small() -> FaceModel:
    return build_demo_model(shape_modes=1, resolution=(21, 21))


def _refusals() -> list[tuple[str, FaceModel, str]]:
    cases = []
    m = _small()
    m.unknown_chunks = [UnknownChunk(tag="ZZZZ", payload=b"x", parent="", position=1)]
    cases.append(("top-level unknown", m, "syntax error"))
    m = _small()
    m.unknown_chunks = [UnknownChunk(tag="ZZZZ", payload=b"x", parent="PRTS", position=0)]
    cases.append(("unknown before a PART", m, "before a PART"))
    for label, contour, words in (("empty", [], "empty"), ("nine", list(range(1, 10)), "9 entries")):
        m = _small()
        assert m.ibug is not None
        m.ibug = LandmarkSet(pairs=m.ibug.pairs, right_contour=np.asarray(contour, np.uint16),
                             left_contour=m.ibug.left_contour)
        cases.append((f"IBUG contour {label}", m, words))
    return cases


@pytest.mark.parametrize("label,model,words", _refusals(), ids=[c[0] for c in _refusals()])
def test_what_nvidia_cannot_read_is_refused_before_writing(label: str, model: FaceModel, words: str,
                                                           tmp_path: Path) -> None:
    target = tmp_path / "out.nvf"
    with pytest.raises(NvfError, match=words) as info:
        nvf.write(model, target)
    assert "NVIDIA" in str(info.value) and "maxine=False" in str(info.value)
    assert list(tmp_path.iterdir()) == []
    assert any(words in p for p in nvf.maxine_problems(model))
    # maxine=False writes it for io_nv3dmm, which reads it back equal.
    nvf.write(model, target, maxine=False)
    assert_models_equal(model, nvf.read(target))


def test_unknown_chunk_after_the_last_part_is_fine(tmp_path: Path) -> None:
    model = _small()
    assert model.partitions is not None
    model.unknown_chunks = [UnknownChunk(tag="ZZZZ", payload=b"x", parent="PRTS", position=len(model.partitions))]
    assert nvf.maxine_problems(model) == []
    assert_models_equal(model, nvf.read(nvf.to_bytes(model)))


# --- one table of limits: what write accepts, read accepts --------------------------------

def _tiny(blend: int = 0, parts: int = 0) -> FaceModel:
    mean = np.arange(12, dtype=np.float32).reshape(4, 3)
    tris = np.array([[0, 1, 2], [0, 2, 3]], np.uint16)
    model = FaceModel(shape=LinearModel(mean, np.zeros((0, 4, 3), np.float32), np.zeros(0, np.float32), tris))
    if blend:
        model.blend_shapes = BlendShapes([f"b{i}" for i in range(blend)], np.ones((blend, 4, 3), np.float32))
    if parts:
        model.partitions = [Partition(i, 0, 1, 0, 3, 0, f"p{i}", _MATERIALS[i % 12]) for i in range(parts)]
    return model


def test_issue_examples_now_read_back() -> None:
    """5,000 blend shapes or 2,000 partitions on a small mesh were written, then refused by
    our own reader ('flood of tiny chunks')."""
    for model in (_tiny(blend=5000), _tiny(parts=2000)):
        assert_models_equal(model, nvf.read(nvf.to_bytes(model)))


@settings(max_examples=10, deadline=None, derandomize=True)
@given(blend=st.integers(0, 9000), parts=st.integers(0, 5000))
def test_whatever_write_accepts_read_accepts(blend: int, parts: int) -> None:
    model = _tiny(blend, parts)
    try:
        data = nvf.to_bytes(model)
    except NvfError as error:
        assert "too many" in str(error)
        return
    assert_models_equal(model, nvf.read(data))


def test_count_and_name_limits_are_refused_by_both() -> None:
    too_many = BlendShapes([""] * (MAX_BLEND_SHAPES + 1), np.zeros((MAX_BLEND_SHAPES + 1, 0, 3), np.float32))
    empty = FaceModel(shape=LinearModel(np.zeros((0, 3), np.float32), np.zeros((0, 0, 3), np.float32),
                                        np.zeros(0, np.float32), np.zeros((0, 3), np.uint16)))
    empty.blend_shapes = too_many
    with pytest.raises(NvfError, match="65,535"):
        nvf.to_bytes(empty)
    empty.blend_shapes = None
    empty.partitions = [Partition(0, 0, 0, 0, 0)] * (MAX_PARTITIONS + 1)
    with pytest.raises(NvfError, match="65,535"):
        nvf.to_bytes(empty)
    model = _tiny(blend=1)
    assert model.blend_shapes is not None
    model.blend_shapes.names = ["n" * MAX_NAME_BYTES]
    assert nvf.read(nvf.to_bytes(model)).blend_shapes.names == ["n" * MAX_NAME_BYTES]  # type: ignore[union-attr]
    model.blend_shapes.names = ["n" * (MAX_NAME_BYTES + 1)]
    with pytest.raises(NvfError, match="limit of 65,535"):
        nvf.to_bytes(model)
    # A file with such a name (written by hand) is refused by the reader too.
    data = nvf.to_bytes(_tiny(blend=1))
    name_at = data.index(b"NAME")
    long_name = b"n" * (MAX_NAME_BYTES + 1) + b"\0" * 3
    blnd = data.rindex(b"BLND", 0, name_at)
    size = struct.unpack_from("<I", data, blnd + 4)[0]
    old_name = struct.unpack_from("<I", data, name_at + 4)[0]
    grown = len(long_name) - old_name
    patched = (data[:blnd + 4] + struct.pack("<I", size + grown) + data[blnd + 8:name_at + 4]
               + struct.pack("<I", len(long_name)) + long_name + data[name_at + 8 + old_name:])
    patched = patched[:12] + b"\0\0\0\0" + patched[16:]     # the TOC offsets moved: point at no TOC
    toc = patched.rfind(b"TOC0")
    patched = patched[:toc]
    with pytest.raises(NvfError, match="limit of 65,535"):
        nvf.read(patched)
