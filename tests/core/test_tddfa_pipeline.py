# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The 3DDFA-V3 pipeline, command line and writers.

Fixture tests build a synthetic assets folder from the fixtures' own key lists,
face model and seed (read from the npz files), load it through the same
loader users get, and compare every stage with the reference's recorded
numbers. Fixture-free tests use assets generated in code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is needed for the reconstruction pipeline")

from nv3dmm_face_tools.tddfa_v3 import export  # noqa: E402
from nv3dmm_face_tools.tddfa_v3 import preprocess as P  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.__main__ import main as cli_main  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.errors import Cancelled, FaceBoxError, NoFaceError, ReconstructionError  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.detection import first_faces  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.pipeline import Reconstructor  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.result import PART_NAMES, FaceResult  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.synthetic_face import write_synthetic_assets  # noqa: E402


def _load(folder: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(folder / name) as data:
        return {key: data[key] for key in data.files}


def _close(actual: Any, expected: Any, atol: float) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               atol=atol, rtol=0)


@pytest.fixture(scope="module", autouse=True)
def _threads() -> Any:
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, min(previous, 2)))
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def e2e(tddfa_fixtures: Path) -> dict[str, np.ndarray]:
    return _load(tddfa_fixtures, "e2e.npz")


@pytest.fixture(scope="module")
def fixture_rec(tddfa_fixtures: Path, e2e: dict[str, np.ndarray],
                tmp_path_factory: pytest.TempPathFactory) -> Reconstructor:
    """A CPU Reconstructor on synthetic assets rebuilt from the fixtures (their seed, keys, face model)."""
    folder = tmp_path_factory.mktemp("fixture_assets")
    write_synthetic_assets(folder, seed=int(e2e["seed"]), fixtures_dir=tddfa_fixtures)
    return Reconstructor(folder, device="cpu", cache_dir=tmp_path_factory.mktemp("fixture_cache"))


@pytest.fixture(scope="module")
def free_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("free_assets")
    write_synthetic_assets(folder, seed=7, fixtures_dir=None)
    return folder


@pytest.fixture(scope="module")
def free_rec(free_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Reconstructor:
    return Reconstructor(free_assets, device="cpu", cache_dir=tmp_path_factory.mktemp("free_cache"))


def _photo(seed: int = 0, size: tuple[int, int] = (160, 200)) -> np.ndarray:
    """A smooth synthetic RGB photo."""
    rng = np.random.default_rng(seed)
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    phase = rng.uniform(0, 6, 3)
    image = np.stack([128 + 90 * np.sin(xx / 17 + phase[0]) * np.cos(yy / 23),
                      128 + 80 * np.cos(xx / 29 + phase[1]),
                      128 + 70 * np.sin((xx + yy) / 31 + phase[2])], axis=2)
    return np.clip(image, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- stages against the fixtures

def test_landmark_net_points_and_two_pass(fixture_rec: Reconstructor, tddfa_fixtures: Path) -> None:
    fx = _load(tddfa_fixtures, "landmark106.npz")
    points = fixture_rec.landmark_points(fx["crops_uint8"])
    _close(points, fx["points"], 5e-3)
    image = fx["full_image_uint8"]
    boxes = [fx["given_box"].astype(np.float64), fx["edge_given_box"].astype(np.float64)]
    found = fixture_rec.landmarks106([image, image], boxes)
    _close(found[0], fx["landmarks_img"], 1e-2)
    _close(found[1], fx["edge_landmarks_img"], 1e-2)


def test_detection_glue_on_recorded_heads(tddfa_fixtures: Path) -> None:
    from nv3dmm_face_tools.tddfa_v3.detection import prior_boxes

    fx = _load(tddfa_fixtures, "retinaface.npz")
    height, width = fx["image_uint8"].shape[:2]
    found = first_faces(torch.from_numpy(fx["loc"]), torch.from_numpy(fx["conf"]), torch.from_numpy(fx["landm"]),
                        prior_boxes(512), [fx["pads"]], [(height, width)])
    assert found[0] is not None
    box, score = found[0]
    np.testing.assert_array_equal(box, fx["det_bboxes"][0])
    assert score == pytest.approx(float(fx["det_scores"][0]), abs=1e-6)
    for top_k in (1, fx["loc"].shape[1]):
        again = first_faces(torch.from_numpy(fx["loc"]), torch.from_numpy(fx["conf"]),
                            torch.from_numpy(fx["landm"]), prior_boxes(512), [fx["pads"]], [(height, width)],
                            top_k=top_k)[0]
        assert again is not None
        np.testing.assert_array_equal(again[0], fx["det_bboxes"][0])
    # Nothing above a threshold no softmax score can pass: no face.
    assert first_faces(torch.from_numpy(fx["loc"]), torch.from_numpy(fx["conf"]), torch.from_numpy(fx["landm"]),
                       prior_boxes(512), [fx["pads"]], [(height, width)], threshold=1.0) == [None]


def test_first_face_among_tied_top_scores_is_the_reference_one() -> None:
    """More than 16 anchors tied at the top score: the reference's unstable sort over all
    anchors decides which comes first, so the top-k shortcut must not decide it."""
    from nv3dmm_face_tools.tddfa_v3.detection import postprocess, prior_boxes

    size = 128
    count = prior_boxes(size).shape[0]
    conf = torch.zeros(1, count, 2)
    conf[0, :, 0] = 20.0
    chosen = [(row * 16 + col) * 2 for row in range(0, 10, 2) for col in range(0, 16, 2)]
    conf[0, chosen, 0] = 0.0
    conf[0, chosen, 1] = float(np.log(0.9 / 0.1))
    loc, landm = torch.zeros(1, count, 4), torch.zeros(1, count, 10)
    reference = postprocess(loc, conf, landm, (0, 0, 0, 0), (size, size), image_size=size)
    found = first_faces(loc, conf, landm, prior_boxes(size), [np.zeros(4, np.int64)], [(size, size)])[0]
    assert found is not None
    np.testing.assert_array_equal(found[0], reference.boxes[0])


def test_detector_input_on_the_device(fixture_rec: Reconstructor, tddfa_fixtures: Path) -> None:
    fx = _load(tddfa_fixtures, "retinaface.npz")
    photos = [fx["image_uint8"], _photo(11, (300, 101))]
    canvases = [P.detector_canvas(photo) for photo in photos]
    batch = fixture_rec.detector_batch(np.stack([c[0] for c in canvases]), np.stack([c[1] for c in canvases]))
    _close(batch[:1].cpu().numpy(), fx["input"], 1e-5)
    for row, photo in enumerate(photos):
        np.testing.assert_array_equal(batch[row].cpu().numpy(), P.detector_input(photo).tensor)


def test_detection_on_the_photo(fixture_rec: Reconstructor, tddfa_fixtures: Path) -> None:
    fx = _load(tddfa_fixtures, "retinaface.npz")
    found = fixture_rec.detect_faces([fx["image_uint8"]])[0]
    assert found is not None
    box, score = found
    # Own head outputs: float noise may move a truncated integer by one, or swap
    # near-tied top scores, so any recorded face scoring within noise of the top one will do.
    top = float(fx["det_scores"][0])
    assert score == pytest.approx(top, abs=1e-4)
    tied = fx["det_bboxes"][fx["det_scores"] >= top - 1e-4]
    assert np.any(np.all(np.abs(tied - box) <= 1, axis=1)), (box, tied)


def test_alignment_and_regression_stages(fixture_rec: Reconstructor, e2e: dict[str, np.ndarray]) -> None:
    aligned = P.align_photo(e2e["image_uint8"], e2e["lm5_flipped"], fixture_rec.template5)
    np.testing.assert_allclose(aligned.trans_params, e2e["trans_params"], rtol=1e-6)
    tensor = fixture_rec.crops_to_tensor(aligned.crop[None])
    np.testing.assert_array_equal(tensor.cpu().numpy(), e2e["crop_tensor"])
    alpha = fixture_rec.regress(torch.from_numpy(e2e["crop_tensor"]))
    _close(alpha.numpy(), e2e["alpha"], 1e-4)
    out = fixture_rec.face_model_outputs(torch.from_numpy(e2e["alpha"]), e2e["trans_params"][None])
    _close(out.vertices_camera.numpy(), e2e["v3d"], 1e-4)
    _close(out.projection_crop.numpy(), e2e["v2d"], 1e-2)
    _close(out.colors.numpy(), e2e["face_texture"], 1e-4)
    for name in ("68", "106", "106_2d", "134"):
        _close(out.landmarks_crop[name].numpy(), e2e[f"ldm{name}"], 1e-2)
        _close(out.landmarks_photo[name].numpy()[0], e2e[f"ldm{name}_img"], 5e-2)


def test_end_to_end_with_a_given_box(fixture_rec: Reconstructor, e2e: dict[str, np.ndarray]) -> None:
    result = fixture_rec.reconstruct(e2e["image_uint8"], face_box=e2e["given_box"])
    _close(result.landmarks106_detected, e2e["landmarks106_img"], 1e-2)
    np.testing.assert_allclose(result.trans_params, e2e["trans_params"], rtol=1e-5)
    _close(result.coefficients.raw[None], e2e["alpha"], 1e-3)
    _close(result.vertices_camera[None], e2e["v3d"], 1e-3)
    _close(result.projection_crop[None], e2e["v2d"], 5e-2)
    for name in ("68", "106", "106_2d", "134"):
        _close(result.landmarks_photo[name], e2e[f"ldm{name}_img"], 5e-2)
    _check_result_layout(result, e2e["image_uint8"])
    assert result.face_score == 1.0
    np.testing.assert_array_equal(result.face_box, e2e["given_box"])


def _check_result_layout(result: FaceResult, image: np.ndarray) -> None:
    count = result.vertex_count
    assert result.photo_size == (image.shape[1], image.shape[0])
    for name in ("vertices_model", "vertices_camera", "normals", "normals_rotated", "albedo", "colors"):
        value = getattr(result, name)
        assert value.shape == (count, 3) and value.dtype == np.float32, name
    for name in ("projection_crop", "projection_photo", "photo_uv"):
        value = getattr(result, name)
        assert value.shape == (count, 2) and value.dtype == np.float32, name
    assert result.visible.shape == (count,) and result.visible.dtype == bool
    assert result.triangles.dtype == np.int64 and result.triangles.max() < count
    assert result.trans_params.dtype == np.float64 and result.trans_params.shape == (5,)
    assert result.coefficients.raw.shape == (257,)
    np.testing.assert_array_equal(result.coefficients.angles, result.coefficients.raw[224:227])
    assert len(result.part_vertices) == len(result.part_visible) == len(PART_NAMES)
    for part, seen in zip(result.part_vertices, result.part_visible):
        assert np.isin(seen, part).all() and result.visible[seen].all()
    # UVs are the photo position of each vertex; the camera reproduces the photo projection.
    width, height = result.photo_size
    _close(result.photo_uv[:, 0], (result.projection_photo[:, 0] + 0.5) / width, 1e-5)
    cam = result.camera
    x, y, z = result.vertices_camera.T.astype(np.float64)
    _close(cam.fx * x / z + cam.cx, result.projection_photo[:, 0], 2e-2)
    _close(cam.fy * -y / z + cam.cy, result.projection_photo[:, 1], 2e-2)


# ---------------------------------------------------------------- behaviour (fixture-free)

def test_no_face_raises_with_advice(free_assets: Path, tmp_path: Path) -> None:
    # Threshold 1.0: no softmax score can exceed it, so the detector deterministically finds nothing.
    rec = Reconstructor(free_assets, device="cpu", cache_dir=tmp_path, detection_threshold=1.0)
    with pytest.raises(NoFaceError, match=r"No face found in photo0.*face box"):
        rec.reconstruct(_photo(1))
    outcomes = rec.try_reconstruct_batch([_photo(1), _photo(2)], face_boxes=[None, (40, 30, 150, 140)])
    assert isinstance(outcomes[0], NoFaceError)
    assert isinstance(outcomes[1], FaceResult)


def test_batch_equals_single(free_rec: Reconstructor) -> None:
    photos = [_photo(3), _photo(4, (180, 150))]
    boxes = [(50, 30, 150, 130), (20, 40, 120, 150)]
    batch = free_rec.reconstruct_batch(photos, boxes)
    for photo, box, together in zip(photos, boxes, batch):
        alone = free_rec.reconstruct(photo, face_box=box)
        _close(together.landmarks106_detected, alone.landmarks106_detected, 1e-3)
        np.testing.assert_allclose(together.trans_params, alone.trans_params, rtol=1e-6)
        _close(together.coefficients.raw, alone.coefficients.raw, 1e-4)
        _close(together.vertices_camera, alone.vertices_camera, 1e-4)
        _close(together.projection_photo, alone.projection_photo, 1e-2)


def test_given_five_points_skip_detection_and_landmarks(free_rec: Reconstructor) -> None:
    photo = _photo(5)
    points = np.array([[80, 70], [120, 70], [100, 95], [85, 120], [115, 120]], dtype=np.float32)
    result = free_rec.reconstruct(photo, landmarks5=points)
    assert np.isnan(result.landmarks106_detected).all()
    expected = P.align_photo(photo, np.column_stack([points[:, 0], photo.shape[0] - 1 - points[:, 1]]),
                             free_rec.template5)
    np.testing.assert_allclose(result.trans_params, expected.trans_params, rtol=1e-12)
    with pytest.raises(FaceBoxError):
        free_rec.reconstruct(photo, landmarks5=points[:4])


def test_progress_and_cancel(free_rec: Reconstructor) -> None:
    seen: list[tuple[str, float]] = []
    free_rec.reconstruct(_photo(6), face_box=(40, 30, 150, 140), progress=lambda s, f: seen.append((s, f)))
    stages = [stage for stage, _ in seen]
    assert stages[0] == "load" and stages[-1] == "done" and "regress" in stages
    fractions = [fraction for _, fraction in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    calls = {"n": 0}

    def cancel_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(Cancelled):
        free_rec.reconstruct(_photo(6), face_box=(40, 30, 150, 140), cancel=cancel_after_two)


def test_bad_inputs(free_rec: Reconstructor, tmp_path: Path) -> None:
    with pytest.raises(FaceBoxError):
        free_rec.reconstruct(_photo(7), face_box=(500, 500, 600, 600))
    with pytest.raises(ReconstructionError, match="not found"):
        free_rec.reconstruct(tmp_path / "nothing.jpg")
    with pytest.raises(ValueError, match="backbone"):
        Reconstructor(tmp_path, backbone="vgg")


def test_reconstructor_shares_loaded_models(free_assets: Path, free_rec: Reconstructor, tmp_path: Path) -> None:
    again = Reconstructor(free_assets, device="cpu", cache_dir=tmp_path)
    assert again.parametric_model is free_rec.parametric_model


def test_missing_assets_are_reported(tmp_path: Path) -> None:
    from nv3dmm_face_tools.tddfa_v3.errors import AssetError

    with pytest.raises(AssetError, match="face_model.npy"):
        Reconstructor(tmp_path, device="cpu")


# ---------------------------------------------------------------- command line

def _parse_obj(path: Path) -> dict[str, int]:
    counts = {"v": 0, "vt": 0, "f": 0}
    max_index = 0
    for line in path.read_text().splitlines():
        head, _, rest = line.partition(" ")
        if head in counts:
            counts[head] += 1
        if head == "f":
            corners = [c.split("/") for c in rest.split()]
            assert len(corners) == 3 and all(len(c) == 2 and c[0] == c[1] for c in corners)
            max_index = max(max_index, *(int(c[0]) for c in corners))
    counts["max_index"] = max_index
    return counts


def test_cli_writes_npz_obj_mtl_landmarks(free_assets: Path, free_rec: Reconstructor, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(_photo(8)).save(photos / "face.png")
    out = tmp_path / "out"
    status = cli_main([str(photos / "face.png"), "--assets", str(free_assets), "--out", str(out),
                       "--device", "cpu", "--box", "40,30,150,140", "--cache-dir", str(tmp_path / "c")])
    assert status == 0, capsys.readouterr().err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["face.mtl", "face.npz", "face.obj", "face_landmarks.json", "face_photo.png"]
    counts = _parse_obj(out / "face.obj")
    with np.load(out / "face.npz") as data:
        vertex_count = data["vertices_model"].shape[0]
        assert counts["v"] == counts["vt"] == vertex_count
        assert counts["f"] == data["triangles"].shape[0] and counts["max_index"] <= vertex_count
        assert data["alpha"].shape == (257,) and data["visible"].dtype == bool
        for key in ("landmarks_photo_68", "landmarks_crop_106_2d", "landmark_indices_134",
                    "part_vertices_skin", "camera_intrinsics", "trans_params", "photo_uv"):
            assert key in data.files, key
        uv = data["photo_uv"]
    vt = np.array([[float(x) for x in line.split()[1:]] for line in (out / "face.obj").read_text().splitlines()
                   if line.startswith("vt ")])
    _close(vt, uv, 1e-5)
    assert "map_Kd face_photo.png" in (out / "face.mtl").read_text()
    assert "mtllib face.mtl" in (out / "face.obj").read_text()
    doc = json.loads((out / "face_landmarks.json").read_text())
    assert len(doc["landmarks106_detected"]) == 106 and len(doc["model_landmarks"]["68"]) == 68


def test_cli_errors_are_messages_not_tracebacks(free_assets: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    status = cli_main([str(tmp_path / "missing.jpg"), "--assets", str(free_assets), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 1 and "not found" in err and "Traceback" not in err
    (tmp_path / "p.png").write_bytes(b"\x89PNG broken")
    status = cli_main([str(tmp_path / "p.png"), "--assets", str(tmp_path / "no_assets"), "--out",
                       str(tmp_path / "o"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert status == 3 and "face_model.npy" in err
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["x.jpg", "--assets", "a", "--out", "o", "--box", "1,2,3"])
    assert exit_info.value.code == 2


def test_cli_check_assets(free_assets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["check-assets", str(free_assets)]) == 0
    assert "All 3DDFA-V3 assets" in capsys.readouterr().out
    assert cli_main(["check-assets", str(tmp_path)]) == 3
    assert "Missing" in capsys.readouterr().out + capsys.readouterr().err


def test_writers_are_atomic_on_failure(free_rec: Reconstructor, tmp_path: Path) -> None:
    result = free_rec.reconstruct(_photo(9), face_box=(40, 30, 150, 140))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(export.ExportError):
        export.save_npz(result, blocker / "sub" / "a.npz")
    written = export.save_obj(result, tmp_path / "m.obj", space="model", vertex_colors=False)
    assert [p.name for p in written] == ["m.obj"]
    counts = _parse_obj(tmp_path / "m.obj")
    assert counts["v"] == result.vertex_count
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_bad_box_fails_only_its_photo(free_rec: Reconstructor) -> None:
    outcomes = free_rec.try_reconstruct_batch([_photo(12), _photo(13)],
                                              face_boxes=[(900, 900, 990, 990), (40, 30, 150, 140)])
    assert isinstance(outcomes[0], FaceBoxError) and "photo0" in str(outcomes[0])
    assert isinstance(outcomes[1], FaceResult)
    # results own their arrays: editing one leaves the model and other results alone
    first = outcomes[1]
    second = free_rec.reconstruct(_photo(13), face_box=(40, 30, 150, 140))
    first.triangles[:] = 0
    first.part_vertices[0][:] = -1
    first.coefficients.raw[:] = 0
    assert second.triangles.any() and (second.part_vertices[0] >= 0).all()
    third = free_rec.reconstruct(_photo(13), face_box=(40, 30, 150, 140))
    np.testing.assert_array_equal(third.triangles, second.triangles)
    np.testing.assert_array_equal(third.part_vertices[0], second.part_vertices[0])


def test_gpu_failure_falls_back_or_says_so(free_assets: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from nv3dmm_face_tools.tddfa_v3.errors import DeviceError

    def pretend_on_cuda(rec: Reconstructor) -> list[str]:
        calls: list[str] = []

        def run(*args: Any) -> list[Any]:
            calls.append(rec.device.type)
            if rec.device.type == "cuda":
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return ["done on the CPU"]

        monkeypatch.setattr(rec, "_run", run)
        rec._models = dataclasses.replace(rec._models, device=torch.device("cuda"))
        return calls

    auto = Reconstructor(free_assets, device="auto", cache_dir=tmp_path)
    calls = pretend_on_cuda(auto)
    assert auto.try_reconstruct_batch([_photo(14)]) == ["done on the CPU"]
    assert calls == ["cuda", "cpu"] and auto.fell_back_to_cpu and auto.device.type == "cpu"

    strict = Reconstructor(free_assets, device="cpu", cache_dir=tmp_path)
    strict.requested_device = "cuda"
    pretend_on_cuda(strict)
    with pytest.raises(DeviceError, match="GPU failed.*out of memory"):
        strict.reconstruct(_photo(14))


def test_regress_batch_is_regression_plus_face_model(free_rec: Reconstructor) -> None:
    crops = torch.rand((3, 3, 224, 224), generator=torch.Generator().manual_seed(0))
    out = free_rec.regress_batch(crops)
    alpha = free_rec.regress(crops)
    _close(out.coefficients.numpy(), alpha.numpy(), 1e-5)
    assert out.vertices_camera.shape == (3, free_rec.face_model.vertex_count, 3)
    single = free_rec.face_model_outputs(alpha[1:2])
    _close(out.projection_crop[1].numpy(), single.projection_crop[0].numpy(), 1e-3)


def test_landmarks_of_a_box_off_the_photo_fail_alone(free_rec: Reconstructor) -> None:
    photo = _photo(15)
    found = free_rec._landmarks106([photo, photo], [np.array([900.0, 900, 990, 990]),
                                                    np.array([40.0, 30, 150, 140])], None)
    assert isinstance(found[0], FaceBoxError)
    assert isinstance(found[1], np.ndarray) and found[1].shape == (106, 2)
    np.testing.assert_array_equal(found[1], free_rec.landmarks106([photo], [np.array([40.0, 30, 150, 140])])[0])
    with pytest.raises(FaceBoxError):
        free_rec.landmarks106([photo], [np.array([900.0, 900, 990, 990])])
