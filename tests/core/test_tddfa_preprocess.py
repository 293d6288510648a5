# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The image-side steps of 3DDFA-V3 against the reference fixtures, plus photo loading.

Inputs are read from the fixture files, never hard-coded, so the same tests
hold on another fixture set of the same format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nv3dmm_face_tools.tddfa_v3 import preprocess as P
from nv3dmm_face_tools.tddfa_v3.errors import FaceBoxError, PhotoError


def _load(folder: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(folder / name) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def align_fx(tddfa_fixtures: Path) -> dict[str, np.ndarray]:
    return _load(tddfa_fixtures, "align.npz")


@pytest.fixture(scope="module")
def landmark_fx(tddfa_fixtures: Path) -> dict[str, np.ndarray]:
    return _load(tddfa_fixtures, "landmark106.npz")


# ---------------------------------------------------------------- alignment

def test_pos_fit_and_trans_params(align_fx: dict[str, np.ndarray]) -> None:
    t, s = P.pos_fit(align_fx["lm5_flipped"], align_fx["lm3d"])
    np.testing.assert_allclose(t, align_fx["pos_t"], rtol=1e-9)
    np.testing.assert_allclose(s, align_fx["pos_s"], rtol=1e-9)
    aligned = P.align_photo(align_fx["image_uint8"], align_fx["lm5_flipped"], align_fx["lm3d"])
    np.testing.assert_allclose(aligned.trans_params, align_fx["trans_params"], rtol=1e-9)
    assert aligned.resized_wh == tuple(int(v) for v in align_fx["resized_wh"])
    assert aligned.left_up == tuple(int(v) for v in align_fx["left_up"])
    np.testing.assert_allclose(aligned.lm_new, align_fx["lm_new"], atol=1e-6)


def test_aligned_crop_is_exact(align_fx: dict[str, np.ndarray]) -> None:
    aligned = P.align_photo(align_fx["image_uint8"], align_fx["lm5_flipped"], align_fx["lm3d"])
    np.testing.assert_array_equal(aligned.crop, align_fx["crop_uint8"])
    tensor = aligned.tensor()
    assert tensor.dtype == np.float32 and tensor.shape == (1, 3, 224, 224)
    np.testing.assert_array_equal(tensor, align_fx["crop_tensor"])


def test_window_resampling_for_huge_resizes() -> None:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    image = np.asarray(np.cumsum(image, axis=1) % 256, dtype=np.uint8)
    template = np.array([[-0.31, 0.29, 0.13], [0.31, 0.29, 0.13], [0.0, -0.05, 0.55],
                         [-0.25, -0.38, 0.22], [0.25, -0.38, 0.22]])
    for points in ([[60, 70], [70, 70], [65, 64], [61, 58], [69, 58]],      # tiny face: big upscale
                   [[5, 110], [25, 110], [15, 100], [8, 92], [22, 92]]):    # at the corner: black border
        flipped = np.asarray(points, dtype=np.float32)
        exact = P.align_photo(image, flipped, template)
        windowed = P.align_photo(image, flipped, template, full_resize_limit=0)
        assert exact.left_up == windowed.left_up
        assert np.abs(exact.crop.astype(int) - windowed.crop).max() <= 2
        # Too big to resize whole, small enough to resize only across: still exact.
        width = exact.resized_wh[0]
        assert width * exact.resized_wh[1] > width * image.shape[0]
        by_passes = P.align_photo(image, flipped, template, full_resize_limit=width * image.shape[0])
        np.testing.assert_array_equal(by_passes.crop, exact.crop)


def test_crop_geometry_from_trans_params(align_fx: dict[str, np.ndarray]) -> None:
    w, h, left, up = P.crop_geometry(align_fx["trans_params"])
    assert (w, h) == tuple(int(v) for v in align_fx["resized_wh"])
    assert (left, up) == tuple(int(v) for v in align_fx["left_up"])


def test_back_mapping_to_photo(align_fx: dict[str, np.ndarray]) -> None:
    from_rowdown = P.rowdown_crop_to_photo(align_fx["pts_crop_rowdown"], align_fx["trans_params"])
    np.testing.assert_allclose(from_rowdown, align_fx["pts_image"], atol=1e-9, rtol=0)
    from_yup = P.crop_to_photo(align_fx["pts_crop_yup"], align_fx["trans_params"])
    np.testing.assert_allclose(from_yup, align_fx["pts_image"], atol=1e-9, rtol=0)
    # float32 in -> float32 arithmetic out, as the reference's landmark export
    single = P.crop_to_photo(align_fx["pts_crop_yup"].astype(np.float32), align_fx["trans_params"])
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, align_fx["pts_image"], atol=1e-3)


def test_paste_back_is_exact(align_fx: dict[str, np.ndarray]) -> None:
    black = np.zeros_like(align_fx["image_uint8"])
    pasted = P.paste_crop_back(align_fx["crop_uint8"], align_fx["trans_params"], black)
    np.testing.assert_array_equal(pasted, align_fx["pasteback_uint8"])


def test_degenerate_points_raise() -> None:
    image = np.zeros((100, 120, 3), np.uint8)
    same = np.full((5, 2), 50.0, np.float32)
    template = np.array([[-0.3, 0.3, 0.1], [0.3, 0.3, 0.1], [0, 0, 0.5], [-0.25, -0.4, 0.2], [0.25, -0.4, 0.2]])
    with pytest.raises(Exception, match="degenerate|unusable"):
        P.align_photo(image, same, template)


# ---------------------------------------------------------------- landmark crops

@pytest.mark.parametrize("prefix", ["", "edge_"])
def test_two_pass_crop_geometry(landmark_fx: dict[str, np.ndarray], prefix: str) -> None:
    image = landmark_fx["full_image_uint8"]
    box = landmark_fx["given_box" if not prefix else "edge_given_box"]
    first = P.landmark_crop(image, box)
    np.testing.assert_array_equal(first.params, landmark_fx[f"{prefix}pass1_params"])
    np.testing.assert_array_equal(first.crop, landmark_fx[f"{prefix}pass1_crop_uint8"])
    mapped = P.landmark_points_to_photo(landmark_fx[f"{prefix}pass1_points_crop"], first.params)
    np.testing.assert_allclose(mapped, landmark_fx[f"{prefix}pass1_landmarks_img"], atol=1e-9, rtol=0)
    # the second pass boxes the first pass's (recorded) points
    second = P.landmark_crop(image, P.box_around_points(landmark_fx[f"{prefix}pass1_landmarks_img"]))
    np.testing.assert_array_equal(second.params, landmark_fx[f"{prefix}pass2_params"])
    np.testing.assert_array_equal(second.crop, landmark_fx[f"{prefix}pass2_crop_uint8"])
    final = P.landmark_points_to_photo(landmark_fx[f"{prefix}pass2_points_crop"], second.params)
    np.testing.assert_allclose(final, landmark_fx[f"{prefix}landmarks_img"], atol=1e-9, rtol=0)


def test_landmark_net_input(landmark_fx: dict[str, np.ndarray]) -> None:
    values = P.landmark_net_input(landmark_fx["crops_uint8"])
    assert values.dtype == np.float32
    np.testing.assert_allclose(values, landmark_fx["net_input"], atol=1e-6, rtol=0)


def test_landmark_crop_rejects_boxes_off_the_photo() -> None:
    image = np.zeros((50, 60, 3), np.uint8)
    with pytest.raises(FaceBoxError):
        P.landmark_crop(image, [500, 500, 560, 560])
    with pytest.raises(FaceBoxError):
        P.check_face_box([10, 10, 5, 20], 60, 50)
    with pytest.raises(FaceBoxError):
        P.check_face_box([100, 10, 120, 20], 60, 50)
    np.testing.assert_array_equal(P.check_face_box((1, 2, 30, 40), 60, 50), [1, 2, 30, 40])


# ---------------------------------------------------------------- detector input, 5 points

def test_detector_input(tddfa_fixtures: Path) -> None:
    fx = _load(tddfa_fixtures, "retinaface.npz")
    prepared = P.detector_input(fx["image_uint8"])
    np.testing.assert_allclose(prepared.tensor, fx["input"][0], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(prepared.pads, fx["pads"])
    height, width = fx["image_uint8"].shape[:2]
    assert prepared.scale == max(height, width) / 512


def test_detector_input_odd_padding() -> None:
    image = np.full((101, 300, 3), 128, np.uint8)
    prepared = P.detector_input(image)
    new_h = round(101 * 512 / 300)
    assert prepared.resized_hw == (new_h, 512)
    x_min, y_min, x_max, y_max = prepared.pads
    assert (x_min, x_max) == (0, 0) and y_min + y_max + new_h == 512 and y_max - y_min in (0, 1)
    assert np.all(prepared.tensor[:, :y_min] == 0) and np.all(prepared.tensor[:, 512 - y_max:] == 0)


def test_five_points(tddfa_fixtures: Path) -> None:
    fx = _load(tddfa_fixtures, "e2e.npz")
    height = fx["image_uint8"].shape[0]
    points, flipped = P.five_points(fx["landmarks106_img"], height)
    np.testing.assert_array_equal(points, fx["lm5_image"])
    np.testing.assert_array_equal(flipped, fx["lm5_flipped"])


# ---------------------------------------------------------------- photos

def test_load_photo_layouts(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(P.load_photo(rgb), rgb)
    gray = rgb[:, :, 0]
    assert P.load_photo(gray).shape == (20, 30, 3)
    rgba = np.dstack([rgb, np.full((20, 30), 7, np.uint8)])
    np.testing.assert_array_equal(P.load_photo(rgba), rgb)
    wide = rgb.astype(np.uint16) * 257
    np.testing.assert_array_equal(P.load_photo(wide), rgb)
    np.testing.assert_array_equal(P.load_photo(rgb / 255.0), rgb)

    Image.fromarray(rgb).save(tmp_path / "a.png")
    np.testing.assert_array_equal(P.load_photo(tmp_path / "a.png"), rgb)
    Image.fromarray(wide[:, :, 0]).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(P.load_photo(tmp_path / "g16.png")[:, :, 1], rgb[:, :, 0])


def test_load_photo_applies_exif_orientation(tmp_path: Path) -> None:
    from PIL import Image

    image = Image.fromarray(np.zeros((10, 40, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert P.load_photo(tmp_path / "rot.jpg").shape == (40, 10, 3)


def test_load_photo_errors(tmp_path: Path) -> None:
    with pytest.raises(PhotoError, match="not found"):
        P.load_photo(tmp_path / "missing.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not an image at all")
    with pytest.raises(PhotoError, match="not an image"):
        P.load_photo(tmp_path / "bad.jpg")
    with pytest.raises(PhotoError):
        P.load_photo(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(PhotoError, match="outside"):
        P.load_photo(np.full((10, 10, 3), 3.0))
