"""The `python -m io_nv3dmm` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import io_nv3dmm as nvf
from io_nv3dmm.cli import main

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from io_nv3dmm.demo_model import build_demo_model

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
    import io_nv3dmm.cli as cli

    data = demo_file.read_bytes()
    blnd = data.index(b"BLND")
    where = blnd + 40

    def faulty_encoder(model: nvf.FaceModel) -> bytes:   # stands in for a writer bug
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
