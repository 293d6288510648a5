# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The `python -m io_nv3dmm` command line."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from nv3dmm_face_tools import io_nv3dmm as nvf
from nv3dmm_face_tools.io_nv3dmm.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model

    path = tmp_path_factory.mktemp("cli") / "demo.nvf"
    nvf.write(build_demo_model(shape_modes=4, with_color=True), path)
    return path


def test_info(demo_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(demo_file)]) == 0
    out = capsys.readouterr().out
    assert "4 modes" in out and "blend shapes (53)" in out and "jawOpen" in out
    assert "IBUG: 68 landmark pairs" in out and "Sclera_L" in out and "colour model" in out


def test_validate(demo_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(demo_file)]) == 0
    assert "valid" in capsys.readouterr().out
    broken = tmp_path / "broken.nvf"
    broken.write_bytes(demo_file.read_bytes()[:5000])
    assert main(["validate", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "invalid" in err and "byte offset" in err
    assert main(["validate", str(tmp_path / "missing.nvf")]) == 1
    assert "No such file" in capsys.readouterr().err


def test_roundtrip(demo_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "again.nvf"
    assert main(["roundtrip", str(demo_file), "--output", str(out_file)]) == 0
    assert "identical" in capsys.readouterr().out
    assert out_file.read_bytes() == demo_file.read_bytes()


def test_roundtrip_reports_where_bytes_differ(demo_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import nv3dmm_face_tools.io_nv3dmm.cli as cli

    data = demo_file.read_bytes()
    blnd = data.index(b"BLND")
    where = blnd + 40

    def faulty_encoder(model: nvf.FaceModel, maxine: bool = True) -> bytes:   # stands in for a writer bug
        return data[:where] + bytes([data[where] ^ 0xFF]) + data[where + 1:]

    monkeypatch.setattr(cli, "to_bytes", faulty_encoder)
    assert main(["roundtrip", str(demo_file)]) == 1
    out = capsys.readouterr().out
    assert "DIFFERENT" in out and f"first difference at byte {where}" in out and f"BLND@{blnd}" in out
    # A file whose header TOC offset is 0 (allowed) still round-trips exactly.
    monkeypatch.undo()
    zero = tmp_path / "zero.nvf"
    zero.write_bytes(data[:12] + b"\0\0\0\0" + data[16:])
    assert main(["roundtrip", str(zero)]) == 0


def test_dump(demo_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dump", str(demo_file)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["file_size"] == demo_file.stat().st_size
    assert [c["tag"] for c in doc["chunks"]] == ["MODL", "IBUG", "BLND", "MCTR", "TOPO", "NVLM", "PRTS", "TOC0"]
    modl = doc["chunks"][0]
    assert [c["tag"] for c in modl["children"]] == ["SHAP", "COLR", "TXCO"]
    assert doc["model"]["shape"]["modes"] == 4
    assert doc["model"]["blend_shapes"]["count"] == 53
    assert doc["model"]["shape"]["mean"]["shape"] == [doc["model"]["shape"]["vertices"], 3]
    assert [p["name"] for p in doc["model"]["partitions"]][0] == "Face"
    assert main(["dump", "--arrays", "--indent", "0", str(demo_file)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc["model"]["shape"]["mean"], list) and len(doc["model"]["ibug"]["pairs"]) == 68


def test_demo_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "d.nvf"
    assert main(["demo", str(target), "--modes", "2", "--true-variances"]) == 0
    model = nvf.read(target)
    assert model.mode_count == 2 and model.shape.eigenvalues[0] != 1.0


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "roundtrip" in capsys.readouterr().out


def test_python_dash_m(demo_file: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "io_nv3dmm", "validate", str(demo_file)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_real_file(nvf_samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = nvf_samples / "face_model2.nvf"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    assert main(["roundtrip", str(path)]) == 0
    assert "identical" in capsys.readouterr().out
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2,056 vertices" in out and "MouthSocket" in out


def _zero_mode_file_as_old_writers_made_it(path: Path) -> Path:
    """A 0-mode model with a BSIS of count 0 (what io_nv3dmm wrote before issue 9)."""
    from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model

    data = nvf.to_bytes(build_demo_model(shape_modes=0, resolution=(21, 21)), maxine=False)
    shap = data.index(b"SHAP")
    assert data.find(b"BSIS" + struct.pack("<I", 4) + struct.pack("<I", 0), shap) > 0
    path.write_bytes(data)
    return path


def test_validate_fails_with_status_3_on_what_nvidia_cannot_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zero = _zero_mode_file_as_old_writers_made_it(tmp_path / "zero.nvf")
    assert main(["validate", str(zero)]) == 3
    err = capsys.readouterr().err
    assert "NVIDIA's reader" in err and "BSIS chunk with 0 modes" in err and "SIGFPE" in err
    assert nvf.maxine_problems(zero) and nvf.maxine_problems(zero.read_bytes())
    # Reading and writing it again (the default, maxine=True) fixes it.
    fixed = tmp_path / "fixed.nvf"
    nvf.write(nvf.read(zero), fixed)
    assert b"BSIS" not in fixed.read_bytes()
    assert main(["validate", str(fixed)]) == 0
    assert "NVIDIA's reader reads it" in capsys.readouterr().out
    # roundtrip stays the codec's faithful check: the file comes back byte for byte.
    assert main(["roundtrip", str(zero)]) == 0

    top = tmp_path / "top.nvf"
    model = nvf.read(fixed)
    model.unknown_chunks.append(nvf.UnknownChunk(tag="ZZZZ", payload=b"1234", parent="", position=9))
    top.write_bytes(nvf.to_bytes(model, maxine=False))
    assert main(["validate", str(top)]) == 3
    assert "syntax error" in capsys.readouterr().err


def test_demo_without_modes_is_maxine_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo0.nvf"
    assert main(["demo", str(out), "--modes", "0"]) == 0
    assert b"BSIS" not in out.read_bytes() and nvf.read(out).mode_count == 0
    assert main(["validate", str(out)]) == 0


def test_exit_statuses_are_documented() -> None:
    import nv3dmm_face_tools.io_nv3dmm.cli as cli

    assert (cli.EXIT_OK, cli.EXIT_INVALID, cli.EXIT_USAGE, cli.EXIT_NOT_MAXINE) == (0, 1, 2, 3)
    text = (REPO_ROOT / "docs" / "nvf-codec.md").read_text()
    assert "exit status" in text.lower() and "| 3 |" in text
