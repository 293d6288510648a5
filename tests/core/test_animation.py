# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Blender-free animation layer: names, Live Link Face CSV, the One Euro filter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nv3dmm_face_tools.animation import (ARKIT_SHAPES, HEAD_EYE_ANGLES, LLF_COLUMNS, CsvError, OneEuroParams, Take,
                       arkit_to_maxine, map_keys, maxine_to_arkit, read_csv, smooth, write_csv)
from nv3dmm_face_tools.animation.live_link import format_timecode, parse_csv, to_text
from nv3dmm_face_tools.animation.names import csv_column, raw_name
from nv3dmm_face_tools.io_nv3dmm import MAXINE_EXPRESSIONS


# --- names -------------------------------------------------------------------

def test_arkit_and_csv_names() -> None:
    assert len(ARKIT_SHAPES) == 52 and len(set(ARKIT_SHAPES)) == 52
    assert len(LLF_COLUMNS) == 63
    assert LLF_COLUMNS[:3] == ("Timecode", "BlendShapeCount", "EyeBlinkLeft")
    assert LLF_COLUMNS[-9:] == HEAD_EYE_ANGLES
    # The recorder's order swaps these pairs against Apple's.
    assert LLF_COLUMNS.index("JawRight") < LLF_COLUMNS.index("JawLeft")
    assert LLF_COLUMNS.index("MouthRight") < LLF_COLUMNS.index("MouthLeft")
    assert csv_column("eyeBlinkLeft") == "EyeBlinkLeft"
    assert raw_name("eyeBlinkLeft") == "eyeBlink_L" and raw_name("jawLeft") == "jawLeft"


def test_maxine_names_map_to_arkit_and_back() -> None:
    weights = {name: np.array([i / 100.0]) for i, name in enumerate(MAXINE_EXPRESSIONS)}
    arkit = maxine_to_arkit(weights)
    assert set(arkit) == set(ARKIT_SHAPES) - {"tongueOut"}
    assert arkit["eyeBlinkLeft"][0] == weights["eyeBlink_L"][0]
    assert arkit["jawLeft"][0] == weights["jawLeft"][0]
    assert arkit["browInnerUp"][0] == pytest.approx((weights["browInnerUp_L"][0] + weights["browInnerUp_R"][0]) / 2)
    assert arkit["cheekPuff"][0] == pytest.approx((weights["cheekPuff_L"][0] + weights["cheekPuff_R"][0]) / 2)
    back = arkit_to_maxine({**arkit, "tongueOut": np.array([0.7])})
    assert set(back) == set(MAXINE_EXPRESSIONS)
    assert back["browInnerUp_L"][0] == back["browInnerUp_R"][0] == arkit["browInnerUp"][0]
    for name in MAXINE_EXPRESSIONS:
        if not name.startswith(("browInnerUp", "cheekPuff")):
            assert back[name][0] == weights[name][0], name


def test_key_map_on_meshes_of_each_naming() -> None:
    maxine = map_keys(["Basis", "PCA.000", *MAXINE_EXPRESSIONS])
    assert maxine.missing == ("tongueOut",)
    assert maxine.keys["browInnerUp"] == ("browInnerUp_L", "browInnerUp_R")
    arkit = map_keys(["Basis", *ARKIT_SHAPES])
    assert arkit.missing == () and arkit.keys["eyeBlinkLeft"] == ("eyeBlinkLeft",)
    upper = map_keys([csv_column(s) for s in ARKIT_SHAPES])
    assert upper.keys["tongueOut"] == ("TongueOut",)
    values = {"browInnerUp": np.array([0.25, 0.5]), "tongueOut": np.array([1.0, 0.0])}
    keys = maxine.key_values(values)
    assert set(keys) == {"browInnerUp_L", "browInnerUp_R"}   # tongueOut only when the mesh has it
    assert np.array_equal(keys["browInnerUp_R"], values["browInnerUp"])
    assert np.array_equal(maxine.shape_values(keys)["browInnerUp"], values["browInnerUp"])


# --- Live Link Face CSV ------------------------------------------------------

def _take(rows: int = 20, seed: int = 0) -> Take:
    rng = np.random.default_rng(seed)
    start = ((17 * 60 + 9) * 60 + 39) * 60 + 24
    timecodes = [format_timecode(start + i + 0.5 * (i % 2), 60) for i in range(rows)]
    shapes = np.round(rng.uniform(0, 1, (rows, 52)), 6)
    angles = np.round(rng.uniform(-0.5, 0.5, (rows, 9)), 6)
    return Take(timecodes=timecodes, shapes=shapes, angles=angles, decimals=6)


def test_csv_round_trip_is_exact(tmp_path: Path) -> None:
    take = _take()
    path = tmp_path / "take.csv"
    write_csv(take, path)
    text = path.read_text()
    header, first = text.splitlines()[:2]
    assert header.split(",") == list(LLF_COLUMNS)
    assert first.split(",")[1] == "61" and first.startswith("17:09:39:24.000,")
    back = read_csv(path)
    assert back.timecodes == take.timecodes and back.decimals == 6
    assert np.array_equal(back.shapes, take.shapes) and np.array_equal(back.angles, take.angles)
    write_csv(back, tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_text() == text
    # Through float32 (what Blender's keyframes hold) the text still comes back.
    narrowed = Take(back.timecodes, back.shapes.astype(np.float32).astype(np.float64),
                    back.angles.astype(np.float32).astype(np.float64), back.decimals)
    assert to_text(narrowed) == text


def test_csv_columns_are_matched_by_name() -> None:
    take = _take(rows=3)
    text = to_text(take)
    rows = [line.split(",") for line in text.splitlines()]
    order = list(range(63))
    order[2], order[40] = order[40], order[2]          # move EyeBlinkLeft elsewhere
    shuffled = "\n".join(",".join(row[i] for i in order) for row in rows) + "\n"
    back = parse_csv(shuffled)
    assert np.array_equal(back.shapes, take.shapes) and back.timecodes == take.timecodes


def test_timecode_to_frames() -> None:
    take = Take(["00:00:01:00.000", "00:00:01:00.500", "00:00:01:01.000"], np.zeros((3, 52)), np.zeros((3, 9)))
    assert take.frames(30).tolist() == [30.0, 30.5, 31.0]
    assert take.frames(60).tolist() == [60.0, 60.5, 61.0]
    high = Take(["00:00:00:45.000"], np.zeros((1, 52)), np.zeros((1, 9)))
    with pytest.raises(CsvError, match="higher rate"):
        high.frames(30)
    assert format_timecode(3600 * 30 + 61.25, 30) == "01:00:02:01.250"


def _bad(text: str, match: str) -> None:
    with pytest.raises(CsvError, match=match):
        parse_csv(text)


def test_bad_csvs_are_refused_clearly(tmp_path: Path) -> None:
    good = to_text(_take(rows=3))
    lines = good.splitlines()
    _bad("", "empty")
    _bad(lines[0] + "\n", "no rows")
    _bad(good.replace("EyeBlinkLeft", "EyeBlinkLft"), "lacks the column.*EyeBlinkLeft")
    _bad(lines[0] + "\n" + lines[1].rsplit(",", 1)[0] + "\n", "line 2: 62 values for 63 columns")
    _bad(lines[0] + "\n" + lines[1].replace(",61,", ",52,", 1) + "\n", "BlendShapeCount is 52")
    cells = lines[1].split(",")
    for bad, why in (("abc", "not a number"), ("nan", "not a finite"), ("inf", "not a finite")):
        row = cells[:5] + [bad] + cells[6:]
        _bad(lines[0] + "\n" + ",".join(row) + "\n", f"line 2, column {LLF_COLUMNS[5]}: .*{why}")
    _bad(lines[0] + "\n" + "12:00," + ",".join(cells[1:]) + "\n", "line 2: timecode '12:00'")
    _bad(lines[0] + "," + LLF_COLUMNS[4] + "\n", "twice")
    with pytest.raises(CsvError, match="cannot read"):
        read_csv(tmp_path / "missing.csv")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(CsvError):
        read_csv(tmp_path / "binary.csv")


def test_write_refuses_nan_and_leaves_no_file(tmp_path: Path) -> None:
    take = _take(rows=2)
    take.shapes[1, 3] = np.nan
    with pytest.raises(CsvError, match="NaN"):
        write_csv(take, tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


# --- One Euro filter -----------------------------------------------------------

@pytest.mark.parametrize("fps", [24.0, 30.0, 60.0])
def test_one_euro_defaults_still_face_and_fast_jaw(fps: float) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(240) / fps
    still = 0.3 + rng.normal(0, 0.01, (240, 1))
    jitter = smooth(still, t)[30:].std() / still[30:].std()
    assert jitter < 0.5, f"a still face keeps {jitter:.0%} of its jitter"
    jaw = np.zeros(240)
    jaw[60:63] = [1 / 3, 2 / 3, 1]
    jaw[63:] = 1
    filtered = smooth(jaw[:, None] + rng.normal(0, 0.01, (240, 1)), t)[:, 0]
    for level in (0.5, 0.9):
        lag = np.argmax(filtered >= level) - np.argmax(jaw >= level)
        assert lag <= 1, f"jaw open lagged {lag} frames at {level:.0%}"


def test_one_euro_without_speed_term_lags() -> None:
    # The test above is not vacuous: a plain low-pass (beta 0) lags the jaw by several frames.
    t = np.arange(120) / 30.0
    jaw = np.clip((np.arange(120) - 59) / 3, 0, 1)
    filtered = smooth(jaw[:, None], t, OneEuroParams(beta=0.0))[:, 0]
    assert np.argmax(filtered >= 0.9) - np.argmax(jaw >= 0.9) > 3


def test_one_euro_ramp_and_step() -> None:
    t = np.arange(150) / 30.0
    ramp = np.clip((np.arange(150) - 30) / 60, 0, 1)
    assert np.abs(smooth(ramp[:, None], t)[:, 0] - ramp).max() < 0.03
    step = (np.arange(150) >= 50).astype(float)
    out = smooth(step[:, None], t)[:, 0]
    assert out[:50].max() == 0.0 and out[-1] == pytest.approx(1.0, abs=1e-3)
    assert np.all(np.diff(out) >= 0) and out.max() <= 1.0   # no overshoot


def test_one_euro_channels_are_independent_and_irregular_times() -> None:
    rng = np.random.default_rng(2)
    t = np.cumsum(rng.uniform(0.02, 0.06, 100))           # frames skipped now and then
    x = rng.normal(0, 1, (100, 3))
    both = smooth(x, t)
    for c in range(3):
        assert np.allclose(both[:, c], smooth(x[:, c:c + 1], t)[:, 0])
    with pytest.raises(ValueError, match="increase"):
        smooth(x[:2], np.array([1.0, 1.0]))
    with pytest.raises(ValueError):
        OneEuroParams(min_cutoff=0)
