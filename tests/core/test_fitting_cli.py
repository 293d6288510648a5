# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""`python -m fitting`: a saved reconstruction (.npz) or a photo (3DDFA-V3 on the synthetic
assets) + an .nvf model -> a personal .nvf and a JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("scipy", reason="the fitting layer needs SciPy")

from nv3dmm_face_tools import io_nv3dmm  # noqa: E402
from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model  # noqa: E402

from nv3dmm_face_tools.fitting import cli  # noqa: E402
from nv3dmm_face_tools.fitting.ground_truth import make_target  # noqa: E402
from tests import helpers  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return helpers.demo_nvf(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def reconstruction_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reconstruction as `python -m tddfa_v3` saves it: vertices_model, triangles and the 68
    landmark vertex indices (here a known target, in decimetres like the real model)."""
    model = build_demo_model()
    truth = make_target(model, 7, scale_range=(0.1, 0.1))
    vertices = truth.vertices
    numbers = sorted(truth.landmarks)
    assert numbers == list(range(1, 69))
    nearest = [int(np.argmin(np.linalg.norm(vertices - truth.landmarks[n], axis=1))) for n in numbers]
    path = tmp_path_factory.mktemp("recon") / "face.npz"
    np.savez(path, vertices_model=vertices.astype(np.float32), triangles=truth.triangles,
             landmark_indices_68=np.asarray(nearest, dtype=np.int64))
    return path


def test_npz_to_personal_model(demo_file: Path, reconstruction_npz: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "me.nvf"
    report_path = tmp_path / "fit.json"
    status = cli.main([str(reconstruction_npz), "--model", str(demo_file), "--out", str(out),
                       "--report", str(report_path)])
    printed = capsys.readouterr()
    assert status == cli.EXIT_OK, printed.err
    report = json.loads(printed.out)
    assert report == json.loads(report_path.read_text())
    fit = report["fit"]
    assert fit["mean_landmark_error"] < 0.05          # decimetres: under half a centimetre
    assert fit["mean_dense_error"] < 0.02
    assert fit["dense_matched_vertices"] > 500
    assert len(fit["expression_weights"]) == 53
    personal = io_nv3dmm.read(out)
    assert personal.vertex_count == build_demo_model().vertex_count
    assert personal.blend_shapes is not None and len(personal.blend_shapes.names) == 53


def test_bad_arguments_write_nothing(demo_file: Path, reconstruction_npz: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "me.nvf"
    cases = [
        ([str(tmp_path / "missing.jpg"), "--model", str(demo_file), "--out", str(out)], "does not exist"),
        ([str(reconstruction_npz), "--model", str(tmp_path / "none.nvf"), "--out", str(out)], "does not exist"),
        ([str(reconstruction_npz), "--model", str(demo_file), "--out", str(tmp_path / "no" / "me.nvf")],
         "does not exist"),
    ]
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"not really a photo")
    cases.append(([str(photo), "--model", str(demo_file), "--out", str(out)], "needs --assets"))
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    cases.append(([str(bad), "--model", str(demo_file), "--out", str(out)], "not a 3DDFA-V3 result"))
    for argv, message in cases:
        assert cli.main(argv) == cli.EXIT_USAGE
        assert message in capsys.readouterr().err
    assert not out.exists()
    out.write_bytes(b"keep me")
    assert cli.main([str(reconstruction_npz), "--model", str(demo_file), "--out", str(out)]) == cli.EXIT_USAGE
    assert "--force" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    not_nvf = tmp_path / "model.nvf"
    not_nvf.write_bytes(b"NOPE" * 10)
    assert cli.main([str(reconstruction_npz), "--model", str(not_nvf), "--out", str(tmp_path / "x.nvf")]) \
        == cli.EXIT_FAILED
    assert "model.nvf" in capsys.readouterr().err and not (tmp_path / "x.nvf").exists()


def test_module_runs_from_a_clone(demo_file: Path, reconstruction_npz: Path, tmp_path: Path) -> None:
    out = tmp_path / "me.nvf"
    done = subprocess.run([sys.executable, "-m", "fitting", str(reconstruction_npz), "--model", str(demo_file),
                           "--out", str(out), "--no-residual"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["fit"]["max_residual"] == 0.0
    assert out.is_file()


# ----------------------------------------------------------------------------- photo, end to end

FACE_BOX = "96,52,224,196"


@pytest.fixture(scope="module")
def synthetic_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch", reason="PyTorch is needed to reconstruct a photo")
    return helpers.synthetic_assets(tmp_path_factory.mktemp("tddfa_assets"))


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return helpers.portrait(tmp_path_factory.mktemp("photos") / "portrait.png", features=False)


def test_photo_to_personal_model_end_to_end(synthetic_assets: Path, photo: Path, demo_file: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str], nvidia_faceio: Any) -> None:
    """A reconstruction made with the synthetic assets (random networks, a synthetic face
    model) fits end to end, and NVIDIA's reader takes the personal model."""
    out = tmp_path / "me.nvf"
    status = cli.main([str(photo), "--model", str(demo_file), "--assets", str(synthetic_assets), "--out", str(out),
                       "--device", "cpu", "--box", FACE_BOX, "--cache-dir", str(tmp_path / "cache")])
    printed = capsys.readouterr()
    assert status == cli.EXIT_OK, printed.err
    report = json.loads(printed.out)
    fit = report["fit"]
    assert report["target_vertices"] > 0 and fit["dense_matched_vertices"] > 0
    assert np.isfinite(fit["mean_landmark_error"]) and np.isfinite(fit["mean_dense_error"])
    nvidia_faceio.check(out)
    assert len(io_nv3dmm.read(out).blend_shapes.names) == 53  # type: ignore[union-attr]
