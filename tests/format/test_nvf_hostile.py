# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile input: thousands of seeded mutations of valid files.

Each mutated byte string must either read (and then write back byte for byte)
or raise NvfError with an offset: never another exception type, never a hang,
never an allocation beyond the input's own size.
"""

from __future__ import annotations

import struct
import time
import tracemalloc
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from nv3dmm_face_tools import io_nv3dmm as nvf
from nv3dmm_face_tools.io_nv3dmm import NvfError, UnknownChunk
from nv3dmm_face_tools.io_nv3dmm.limits import CHUNK_SLACK

_CONTAINERS = {b"MODL": 0, b"IBUG": 0, b"MCTR": 0, b"TOPO": 0, b"NVLM": 0, b"BLND": 4, b"PRTS": 4, b"PART": 24}
_MODEL_PARTS = {b"SHAP", b"COLR"}
_COUNTED = {b"BSIS", b"BLND", b"PRTS", b"TOC0"}

# A read slower than this is treated as a hang (reads take well under 10 ms here).
_HANG_SECONDS = 5.0


def _chunks(data: bytes) -> list[tuple[int, bytes, int, int]]:
    """(offset, tag, size, depth) of every chunk header, walking the known containers."""
    found: list[tuple[int, bytes, int, int]] = []

    def walk(start: int, end: int, depth: int, parent: bytes) -> None:
        pos = start
        while end - pos >= 8:
            tag, size = struct.unpack_from("<4sI", data, pos)
            if size > end - pos - 8:
                return
            found.append((pos, tag, size, depth))
            skip = _CONTAINERS.get(tag)
            if tag in _MODEL_PARTS and parent == b"MODL":
                skip = 0
            if skip is not None and size >= skip:
                walk(pos + 8 + skip, pos + 8 + size, depth + 1, tag)
            pos += 8 + size

    header = struct.unpack_from("<I", data, 4)[0]
    walk(8 + header, len(data), 0, b"")
    return found


def _synthetic() -> bytes:
    """A small model with every object, a colour model and nested unknown chunks."""
    from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model

    model = build_demo_model(shape_modes=3, with_color=True, color_modes=2, resolution=(23, 21),
                             blend_shape_names=["jawOpen", "eyeBlink_L", "mouthSmile_L", "browInnerUp_R"])
    model.unknown_chunks = [
        UnknownChunk(tag="XTOP", payload=b"top", parent="", position=3),
        UnknownChunk(tag="XSHP", payload=b"shape-level", parent="MODL/SHAP", position=1),
        UnknownChunk(tag="XPRT", payload=b"", parent="PRTS/PART[1]", position=0),
        UnknownChunk(tag="XBLD", payload=b"1234", parent="BLND", position=2),
    ]
    return nvf.to_bytes(model, maxine=False)


def _mutations(data: bytes, seed: int, count: int) -> Iterator[tuple[str, bytes]]:
    """Seeded mutations: truncations, size and count fields, index arrays, byte flips."""
    rng = np.random.default_rng(seed)
    chunks = _chunks(data)
    length = len(data)
    specials = [0, 1, 2, 3, 4, 7, 8, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFF8, length, length - 8]

    def put_u32(buf: bytearray, at: int, value: int) -> None:
        struct.pack_into("<I", buf, at, value & 0xFFFFFFFF)

    for i in range(count):
        kind = i % 8
        buf = bytearray(data)
        if kind == 0:                                   # truncation
            cut = int(rng.integers(0, length)) if rng.random() < 0.7 else int(rng.integers(0, 64))
            yield f"truncate to {cut}", bytes(buf[:cut])
            continue
        if kind in (1, 2):                              # a chunk's size field
            offset, tag, size, _ = chunks[int(rng.integers(len(chunks)))]
            choice = rng.random()
            if choice < 0.4:
                value = int(rng.choice(specials))
            elif choice < 0.8:
                value = size + int(rng.choice([-12, -8, -4, -2, -1, 1, 2, 4, 8, 12]))
            else:
                value = int(rng.integers(0, 2**32))
            put_u32(buf, offset + 4, value)
            yield f"{tag!r}@{offset} size {size} -> {value & 0xFFFFFFFF}", bytes(buf)
            continue
        if kind == 3:                                   # a count field
            counted = [c for c in chunks if c[1] in _COUNTED and c[2] >= 4]
            offset, tag, size, _ = counted[int(rng.integers(len(counted)))]
            old = struct.unpack_from("<I", data, offset + 8)[0]
            value = int(rng.choice([0, 1, old - 1, old + 1, old * 2, 0xFFFFFFFF, 0x10000000, int(rng.integers(0, 2**32))]))
            put_u32(buf, offset + 8, value)
            yield f"{tag!r}@{offset} count {old} -> {value & 0xFFFFFFFF}", bytes(buf)
            continue
        if kind == 4:                                   # an index entry set out of range
            arrays = [c for c in chunks if c[1] in (b"TRNG", b"LMRK", b"RCTR", b"LCTR", b"AJFC", b"AJVX") and c[2] >= 2]
            offset, tag, size, _ = arrays[int(rng.integers(len(arrays)))]
            at = offset + 8 + 2 * int(rng.integers(size // 2))
            value = int(rng.choice([0, 0xFFFF, 0x8000, int(rng.integers(0, 0x10000))]))
            struct.pack_into("<H", buf, at, value)
            yield f"{tag!r}@{offset} entry at {at} -> {value}", bytes(buf)
            continue
        if kind == 5:                                   # a tag or header byte
            if rng.random() < 0.3:
                at = int(rng.integers(0, 16))
            else:
                at = chunks[int(rng.integers(len(chunks)))][0] + int(rng.integers(0, 4))
            buf[at] = int(rng.integers(0, 256))
            yield f"byte {at} -> {buf[at]}", bytes(buf)
            continue
        if kind == 6:                                   # remove or duplicate a whole chunk
            offset, tag, size, _ = chunks[int(rng.integers(len(chunks)))]
            piece = data[offset:offset + 8 + size]
            if rng.random() < 0.5:
                yield f"remove {tag!r}@{offset}", data[:offset] + data[offset + 8 + size:]
            else:
                yield f"duplicate {tag!r}@{offset}", data[:offset] + piece + data[offset:]
            continue
        flips = int(rng.integers(1, 17))                # random byte flips anywhere
        where = rng.integers(0, length, size=flips)
        for at in where:
            buf[int(at)] = int(rng.integers(0, 256))
        yield f"{flips} random bytes at {sorted(int(w) for w in where)[:4]}...", bytes(buf)


def _check(label: str, data: bytes) -> bool:
    """Reads `data`: True if it read (and round-tripped), False if NvfError. Fails otherwise."""
    started = time.perf_counter()
    try:
        model = nvf.read(data)
    except NvfError as error:
        assert error.offset is not None and 0 <= error.offset <= len(data), (label, error)
        assert str(error), label
        return False
    except Exception as error:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{label}: {type(error).__name__}: {error}")
    finally:
        elapsed = time.perf_counter() - started
        assert elapsed < _HANG_SECONDS, f"{label}: read took {elapsed:.1f} s"
    try:
        # Written once straight from the file's bytes, once from the gathered blend shapes.
        direct = nvf.to_bytes(model, maxine=False)
        if model.blend_shapes is not None:
            assert model.blend_shapes.deltas.shape[0] == len(model.blend_shapes.names), label
        again = nvf.to_bytes(model, maxine=False)
        assert direct == again, f"{label}: writing before and after gathering the blend shapes differs"
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"{label}: read, but writing it back raised {type(error).__name__}: {error}")
    assert again == data, f"{label}: read, but did not write back byte for byte"
    return True


def _run(data: bytes, seed: int, count: int) -> tuple[int, int]:
    ok = bad = 0
    for label, mutated in _mutations(data, seed, count):
        if _check(label, mutated):
            ok += 1
        else:
            bad += 1
    return ok, bad


def _peak_read_bytes(data: bytes) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            model = nvf.read(data)
            del model
        except NvfError:
            pass
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_synthetic_mutations_read_or_raise_nvferror() -> None:
    data = _synthetic()
    assert _check("unmutated", data)
    ok, bad = _run(data, seed=1234, count=3000)
    assert ok + bad == 3000 and bad > 1500        # most mutations break something


def _odd_variants(data: bytes) -> list[bytes]:
    """The synthetic file without a TOC and with extra header bytes; and with a TOC offset of 0."""
    model = nvf.read(data)
    model.toc = None
    model.source_layout.header_extra = b"\x07" * 12     # reaching into the opaque layout: test only
    without_toc = nvf.to_bytes(model, maxine=False)
    zero_toc_offset = data[:12] + b"\0\0\0\0" + data[16:]
    return [without_toc, zero_toc_offset]


def test_odd_layout_mutations_read_or_raise_nvferror() -> None:
    for i, variant in enumerate(_odd_variants(_synthetic())):
        assert _check(f"variant {i}", variant)
        ok, bad = _run(variant, seed=500 + i, count=800)
        assert ok + bad == 800 and bad > 300


def test_real_file_mutations_read_or_raise_nvferror(nvf_samples: Path) -> None:
    path = nvf_samples / "face_model2.nvf"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    data = path.read_bytes()
    ok, bad = _run(data, seed=99, count=1200)
    assert ok + bad == 1200 and bad > 600


def test_tiny_inputs() -> None:
    for length in range(0, 40):
        for fill in (0x00, 0xFF, 0x41):
            _check(f"{length} x {fill:#x}", bytes([fill]) * length)
    header = b"NFAC" + struct.pack("<I", 8) + b"\xe4\x20\x10\x00" + struct.pack("<I", 0)
    for tail in (b"", b"MODL", b"MODL\x00\x00\x00\x00", b"MODL\x08\x00\x00\x00SHAP\x00\x00\x00\x00"):
        with pytest.raises(NvfError):
            nvf.read(header + tail)


def test_counts_cannot_make_the_reader_allocate() -> None:
    header = b"NFAC" + struct.pack("<I", 8) + b"\xe4\x20\x10\x00" + struct.pack("<I", 0)
    mean = b"MEAN" + struct.pack("<I", 12) + b"\0" * 12
    huge = [
        b"BSIS" + struct.pack("<I", 4) + struct.pack("<I", 0xFFFFFFFF),
        b"BSIS" + struct.pack("<I", 16) + struct.pack("<I", 0x40000000) + b"\0" * 12,
    ]
    for bsis in huge:
        shap = b"SHAP" + struct.pack("<I", len(mean) + len(bsis)) + mean + bsis
        data = header + b"MODL" + struct.pack("<I", len(shap)) + shap
        assert _peak_read_bytes(data) < 64 * 1024
        with pytest.raises(NvfError, match="count disagrees with size"):
            nvf.read(data)
    blnd = b"BLND" + struct.pack("<I", 4) + struct.pack("<I", 0xFFFFFFFF)
    shap = b"SHAP" + struct.pack("<I", len(mean)) + mean
    data = header + b"MODL" + struct.pack("<I", len(shap)) + shap + blnd
    with pytest.raises(NvfError, match="more than the format's limit of 65,535"):
        nvf.read(data)
    blnd = b"BLND" + struct.pack("<I", 4) + struct.pack("<I", 3)
    data = header + b"MODL" + struct.pack("<I", len(shap)) + shap + blnd
    with pytest.raises(NvfError, match="counts disagree"):
        nvf.read(data)


def _samples(data: bytes, seed: int, count: int) -> list[tuple[str, bytes]]:
    return list(_mutations(data, seed, count))


def test_peak_memory_stays_within_the_input_size() -> None:
    data = _synthetic()
    for label, mutated in _samples(data, seed=77, count=120):
        peak = _peak_read_bytes(mutated)
        assert peak <= len(mutated) + 256 * 1024, f"{label}: peak {peak} for {len(mutated)} input bytes"


def test_peak_memory_real_file(nvf_samples: Path) -> None:
    path = nvf_samples / "face_model2.nvf"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    data = path.read_bytes()
    for label, mutated in _samples(data, seed=5, count=24) + [("unmutated", data)]:
        peak = _peak_read_bytes(mutated)
        assert peak <= len(mutated) + 256 * 1024, f"{label}: peak {peak}"


def _flood_files(count: int) -> dict[str, bytes]:
    """Files made of `count` tiny chunks in each place the reader walks chunk lists."""
    def chunk(tag: bytes, payload: bytes) -> bytes:
        return tag + struct.pack("<I", len(payload)) + payload
    header = b"NFAC" + struct.pack("<I", 8) + b"\xe4\x20\x10\x00" + struct.pack("<I", 0)
    shap = chunk(b"SHAP", chunk(b"MEAN", b"\0" * 36) + chunk(b"TRNG", struct.pack("<3H", 0, 1, 2)))
    modl = chunk(b"MODL", shap)
    part = chunk(b"PART", struct.pack("<IIIIIi", 0, 0, 1, 0, 3, 0))
    empty_shap = chunk(b"SHAP", chunk(b"MEAN", b""))
    return {
        "top level": header + modl + chunk(b"XXXX", b"") * count,
        "MODL": header + chunk(b"MODL", shap + chunk(b"XXXX", b"") * count),
        "BLND": header + chunk(b"MODL", empty_shap)
        + chunk(b"BLND", struct.pack("<I", count) + (chunk(b"NAME", b"") + chunk(b"SHAP", b"")) * count),
        "PRTS": header + modl + chunk(b"PRTS", struct.pack("<I", count) + part * count),
        "PART": header + modl + chunk(b"PRTS", struct.pack("<I", 1) + chunk(
            b"PART", struct.pack("<IIIIIi", 0, 0, 1, 0, 3, 0) + chunk(b"XXXX", b"") * count)),
        "TOC0": header + modl + chunk(b"TOC0", struct.pack("<I", 8) + struct.pack("<4sI", b"ABCD", 7) * count),
    }


@pytest.mark.parametrize("count", [60_000, 100_000])
def test_floods_of_tiny_chunks_are_refused_within_the_input_size(count: int) -> None:
    """Every chunk costs the reader a few hundred bytes of Python objects, so millions of
    empty 8-byte chunks would need ~60x the file's size: refused, quickly, within it
    (60,000 blend shapes or partitions are within the count limits: the budget refuses them)."""
    for where, data in _flood_files(count).items():
        started = time.perf_counter()
        peak = _peak_read_bytes(data)
        assert time.perf_counter() - started < _HANG_SECONDS, where
        assert peak <= len(data) + CHUNK_SLACK + 512 * 1024, f"{where}: peak {peak} for {len(data)}"
        # BLND and PRTS declare more than the format's limit and are refused at once.
        with pytest.raises(NvfError, match="chunks in a file of|more than the format's limit"):
            nvf.read(data)


def test_files_with_many_small_chunks_still_read() -> None:
    for where, data in _flood_files(1_000).items():
        model = nvf.read(data)
        assert nvf.to_bytes(model, maxine=False) == data, where


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 6, 7])
def test_truncated_magic_says_truncated_and_where(length: int) -> None:
    """Issue 10 item 6: a 1-7 byte file starting like NFAC is truncated, not 'bad magic
    b'NFAC' (expected b'NFAC')'."""
    data = (b"NFAC" + struct.pack("<I", 8))[:length]
    with pytest.raises(NvfError) as info:
        nvf.read(data)
    message = str(info.value)
    assert "truncated" in message and f"offset {length}" in message, message
    assert "bad magic" not in message
    assert info.value.offset == length
    if length > 4:
        assert f"{length - 4} of the 4 bytes of the header size" in message, message


def test_not_nfac_and_empty_still_say_bad_magic() -> None:
    for data in (b"", b"NFAX", b"NFAX1234", b"xyz", b"\0" * 16):
        with pytest.raises(NvfError, match="bad magic"):
            nvf.read(data)
