# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The synthetic demo face model: complete, deterministic, plausible, and a valid file."""

from __future__ import annotations

import numpy as np
import pytest

from nv3dmm_face_tools import io_nv3dmm as nvf
from nv3dmm_face_tools.io_nv3dmm import MAXINE_EXPRESSIONS
from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model


@pytest.fixture(scope="module")
def model() -> nvf.FaceModel:
    return build_demo_model(with_color=True)


def test_every_object_is_present(model: nvf.FaceModel) -> None:
    assert 2000 <= model.vertex_count <= 6000
    assert model.mode_count == 20 and np.all(model.shape.eigenvalues == 1.0)
    assert model.shape.mean.dtype == np.float32 and model.shape.triangles.dtype == np.uint16
    assert model.color is not None and model.color.mean.shape == (model.vertex_count, 3)
    assert model.texcoords is not None and model.texcoords.shape == (model.vertex_count, 2)
    assert model.blend_shapes is not None and tuple(model.blend_shapes.names) == MAXINE_EXPRESSIONS
    assert model.ibug is not None and model.ibug.pairs.shape == (68, 2)
    np.testing.assert_array_equal(model.ibug.pairs[:, 0], np.arange(1, 69))
    np.testing.assert_array_equal(model.ibug.right_contour, np.arange(1, 9))
    np.testing.assert_array_equal(model.ibug.left_contour, np.arange(10, 18))
    assert model.nvlm is not None and model.nvlm.pairs.shape[0] > 33
    assert model.model_contours is not None
    assert model.model_contours.right is not None and len(model.model_contours.right) == 16
    assert model.partitions is not None
    assert [p.material for p in model.partitions] == ["Face", "Sclera", "Iris", "Sclera", "Iris", "MouthSocket"]
    starts = [p.face_start for p in model.partitions]
    assert starts == sorted(starts) and sum(p.face_count for p in model.partitions) == model.triangle_count


def test_deterministic_and_valid_file(model: nvf.FaceModel) -> None:
    again = build_demo_model(with_color=True)
    assert nvf.to_bytes(again) == nvf.to_bytes(model)
    back = nvf.read(nvf.to_bytes(model))
    np.testing.assert_array_equal(back.shape.mean, model.shape.mean)
    assert back.topology is not None


def test_proportions_in_nvidia_space(model: nvf.FaceModel) -> None:
    mean = model.shape.mean
    width = mean[:, 0].max() - mean[:, 0].min()
    assert 14.0 <= width <= 20.0                       # a head, in centimetres
    nose_tip = mean[np.argmax(mean[:, 2])]
    assert abs(nose_tip[0]) < 0.5                      # +Z out of the nose, on the midline
    assert model.ibug is not None
    pairs = dict(model.ibug.pairs.tolist())
    brow, chin = mean[pairs[20], 1], mean[pairs[9], 1]
    assert brow > chin + 8.0                           # +Y up
    assert mean[pairs[46], 0] > 0 > mean[pairs[37], 0]  # subject's left eye on +X
    # Faces point outwards: the front of the face looks along +Z.
    tri = model.shape.triangles[: model.partitions[0].face_count].astype(np.int64)  # type: ignore[index]
    p = mean[tri]
    normals = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    front = p.mean(axis=1)[:, 2] > 8.0
    assert (normals[front, 2] > 0).mean() > 0.95


def test_blend_shapes_move_the_right_regions(model: nvf.FaceModel) -> None:
    assert model.blend_shapes is not None and model.ibug is not None
    names = model.blend_shapes.names
    deltas = model.blend_shapes.deltas
    pairs = dict(model.ibug.pairs.tolist())
    mean = model.shape.mean

    def moved(name: str) -> np.ndarray:
        return np.asarray(deltas[names.index(name)])

    jaw = moved("jawOpen")
    assert jaw[pairs[9], 1] < -1.0                     # the chin drops
    assert np.abs(jaw[pairs[20]]).max() < 1e-3         # the brow does not move
    blink = moved("eyeBlink_L")
    assert blink[pairs[44], 1] < -0.3                  # left upper lid comes down
    assert np.abs(blink[pairs[38]]).max() < 1e-3       # the right eye stays open
    smile_l, smile_r = moved("mouthSmile_L"), moved("mouthSmile_R")
    assert smile_l[pairs[55], 1] > 0.3 and abs(smile_l[pairs[49], 1]) < 0.1
    assert smile_r[pairs[49], 1] > 0.3
    brow = moved("browInnerUp_R")
    assert brow[pairs[22], 1] > 0.2 and abs(brow[pairs[23], 1]) < 0.1
    # Left and right shapes mirror each other (mouth corners 55 and 49 are mirror images).
    assert abs(mean[pairs[55], 0] + mean[pairs[49], 0]) < 0.3
    assert abs(smile_l[pairs[55], 1] - smile_r[pairs[49], 1]) < 0.1
    assert smile_l[pairs[55], 0] > 0 > smile_r[pairs[49], 0]
    for name in names:
        assert np.isfinite(moved(name)).all() and np.abs(moved(name)).max() < 4.0, name


def test_options() -> None:
    small = build_demo_model(shape_modes=3, blend_shape_names=["jawOpen", "eyeBlink_R"], resolution=(31, 29))
    assert small.mode_count == 3 and small.blend_shapes is not None
    assert small.blend_shapes.names == ["jawOpen", "eyeBlink_R"]
    variances = build_demo_model(shape_modes=5, true_variances=True)
    norms = np.sqrt((variances.shape.modes.astype(np.float64) ** 2).sum(axis=(1, 2)))
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    assert np.all(np.diff(variances.shape.eigenvalues) <= 0) and variances.shape.eigenvalues[0] > 1.0
    with pytest.raises(ValueError, match="no blend shape named"):
        build_demo_model(blend_shape_names=["tongueOut"])
