# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The 3DDFA-V3 parametric face model: reference conformance and the add-on's extras.

The conformance test rebuilds the fixtures' synthetic face_model.npy, loads it
through the safe loader (and its cache) and compares every array of
face_model_recon.npz. The other tests run on a face model generated in code,
so they need no fixtures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is needed for the face model")

from nv3dmm_face_tools.tddfa_v3 import assets, synthetic_face  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.crop import crop_geometries as crop_geometry  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.crop import identity_trans_params, photo_camera_intrinsics  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.face_model import ParametricFaceModel  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.visibility import auto_visibility_resolution, vertex_visibility  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.result import PART_NAMES, FaceResult  # noqa: E402


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def generated_model() -> ParametricFaceModel:
    arrays = assets.face_model_arrays_from_dict(synthetic_face.generate_face_model_dict(seed=3))
    return ParametricFaceModel(arrays, "cpu")


def random_coefficients(rng: np.random.Generator, batch: int, scale: float = 1.0) -> np.ndarray:
    alpha = np.zeros((batch, 257), dtype=np.float32)
    alpha[:, :224] = scale * rng.standard_normal((batch, 224))
    alpha[:, 224:227] = rng.uniform(-0.5, 0.5, (batch, 3))
    alpha[:, 227:254] = 0.2 * rng.standard_normal((batch, 27))
    alpha[:, 254:256] = rng.uniform(-0.3, 0.3, (batch, 2))
    alpha[:, 256] = rng.uniform(-0.5, 0.5, batch)
    return alpha


# --------------------------------------------------------------------------- reference conformance

TOLERANCES = {
    "face_shape": 1e-5, "face_shape_transformed": 1e-5, "v3d": 1e-5, "albedo": 1e-5, "normals": 1e-5,
    "normals_rotated": 1e-5, "texture": 1e-5, "gray_shading": 1e-5, "rotation": 1e-6,
    "v2d": 1e-3, "ldm68": 1e-3, "ldm106": 1e-3, "ldm134": 1e-3, "ldm106_2d": 1e-3,
}


def _outputs_by_fixture_key(out: Any) -> dict[str, Any]:
    return {
        "face_shape": out.vertices_model, "rotation": out.rotation,
        "face_shape_transformed": out.vertices_transformed, "v3d": out.vertices_camera,
        "v2d": out.projection_crop, "albedo": out.albedo, "normals": out.normals,
        "normals_rotated": out.normals_rotated, "texture": out.texture, "gray_shading": out.gray_shading,
        "ldm68": out.landmarks_crop["68"], "ldm106": out.landmarks_crop["106"],
        "ldm134": out.landmarks_crop["134"], "ldm106_2d": out.landmarks_crop["106_2d"],
    }


def test_reference_face_model_recon(tddfa_fixtures: Path, tmp_path: Path) -> None:
    synthetic_face.write_synthetic_face_model(tmp_path / "assets", fixtures_dir=tddfa_fixtures)
    cache = tmp_path / "cache"
    parsed = assets.load_face_model_arrays(tmp_path / "assets", cache_dir=cache)
    cached = assets.load_face_model_arrays(tmp_path / "assets", cache_dir=cache)
    assert (parsed.loaded_from, cached.loaded_from) == ("pickle", "cache")
    source = np.load(tddfa_fixtures / "face_model.npz")
    assert (parsed.vertex_count, parsed.triangle_count) == (source["u"].shape[0] // 3, source["tri"].shape[0])
    reference = np.load(tddfa_fixtures / "face_model_recon.npz")
    for arrays in (parsed, cached):
        model = ParametricFaceModel(arrays, "cpu")
        out = model.reconstruct(reference["coeffs"])           # the 3 rows in one batch
        for key, value in _outputs_by_fixture_key(out).items():
            np.testing.assert_allclose(value.numpy(), reference[key], rtol=0, atol=TOLERANCES[key], err_msg=key)
        np.testing.assert_array_equal(out.landmark_indices["106_2d"].numpy(), reference["ldm106_2d_index"])
        for name, start, stop in (("id", 0, 80), ("exp", 80, 144), ("alb", 144, 224), ("angle", 224, 227),
                                  ("sh", 227, 254), ("trans", 254, 257)):
            np.testing.assert_array_equal(out.split[name].numpy(), reference["coeffs"][:, start:stop])
        np.testing.assert_array_equal(out.colors.numpy(), np.clip(out.texture.numpy(), 0, 1))


def test_reference_five_point_template(tddfa_fixtures: Path) -> None:
    template = assets.load_five_point_template(tddfa_fixtures / "similarity_Lm3D_all.mat")
    align = np.load(tddfa_fixtures / "align.npz")
    np.testing.assert_array_equal(template, align["lm3d"])


# --------------------------------------------------------------------------- formulas, fixture-free

def test_normals_unit_length_and_rotation(generated_model: ParametricFaceModel) -> None:
    alpha = random_coefficients(np.random.default_rng(0), 4)
    out = generated_model.reconstruct(alpha, visibility=False)
    lengths = torch.linalg.norm(out.normals, dim=-1)
    torch.testing.assert_close(lengths, torch.ones_like(lengths), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.normals_rotated, out.normals @ out.rotation)
    eye = torch.eye(3).expand(4, 3, 3)
    torch.testing.assert_close(out.rotation @ out.rotation.transpose(1, 2), eye, atol=1e-6, rtol=0)
    # rotation is (Rz Ry Rx)^T: a pure yaw turns +x towards -z (right-handed, about +y)
    yaw = torch.tensor([[0.0, np.pi / 2, 0.0]])
    turned = torch.tensor([[[1.0, 0.0, 0.0]]]) @ generated_model.compute_rotation(yaw)
    torch.testing.assert_close(turned, torch.tensor([[[0.0, 0.0, -1.0]]]), atol=1e-6, rtol=0)


def test_zero_coefficients_give_the_mean_face(generated_model: ParametricFaceModel) -> None:
    out = generated_model.reconstruct(np.zeros((1, 257), np.float32), visibility=False)
    arrays = generated_model.arrays
    np.testing.assert_allclose(out.vertices_model[0].numpy(), arrays.u.reshape(-1, 3), atol=1e-7)
    np.testing.assert_allclose(out.albedo[0].numpy(), arrays.u_alb.reshape(-1, 3) / 255.0, atol=1e-7)
    v = out.vertices_camera[0].numpy()
    np.testing.assert_allclose(v[:, 2], 10.0 - arrays.u.reshape(-1, 3)[:, 2], atol=1e-6)
    uv = out.projection_crop[0].numpy()
    np.testing.assert_allclose(uv, 1015.0 * v[:, :2] / v[:, 2:] + 112.0, atol=1e-3)


def test_to_camera_does_not_mutate(generated_model: ParametricFaceModel) -> None:
    shape = torch.rand(2, 5, 3)
    before = shape.clone()
    camera = generated_model.to_camera(shape)
    torch.testing.assert_close(shape, before)
    torch.testing.assert_close(camera[..., 2], 10.0 - before[..., 2])


def test_batch_equals_single(generated_model: ParametricFaceModel) -> None:
    rng = np.random.default_rng(5)
    alpha = random_coefficients(rng, 3)
    params = np.array([[640, 480, 2.1, 320.5, 250.0], [300, 500, 0.7, 140.0, 260.2],
                       [224, 224, 1.0, 112.0, 112.0]], dtype=np.float64)
    batch = generated_model.reconstruct(alpha, params)
    for row in range(3):
        single = generated_model.reconstruct(alpha[row:row + 1], params[row:row + 1])
        # batched and single matrix products may round differently: float32-level tolerances
        for name, atol in (("vertices_camera", 1e-5), ("projection_crop", 1e-3), ("projection_photo", 2e-3),
                           ("normals_rotated", 1e-5), ("texture", 1e-5), ("photo_uv", 1e-5)):
            torch.testing.assert_close(getattr(batch, name)[row], getattr(single, name)[0],
                                       atol=atol, rtol=0, msg=name)
        for key in batch.landmarks_crop:
            torch.testing.assert_close(batch.landmarks_crop[key][row], single.landmarks_crop[key][0],
                                       atol=1e-3, rtol=0, msg=key)
        assert torch.equal(batch.landmark_indices["106_2d"][row], single.landmark_indices["106_2d"][0])
        assert batch.visible is not None and single.visible is not None
        assert torch.equal(batch.visible[row], single.visible[0])


def test_ldm106_2d_follows_the_reference_rule_per_sample(generated_model: ParametricFaceModel) -> None:
    """Each row picks, per contour chain, the min-u (0-15) / max-u (17-32) vertex of the roll-free
    projection; 16 and the inner points stay; rows never mix (the reference's B > 1 bug)."""
    alpha = random_coefficients(np.random.default_rng(11), 4, scale=1.5)
    out = generated_model.reconstruct(alpha, visibility=False)
    arrays = generated_model.arrays
    chosen = out.landmark_indices["106_2d"].numpy()
    for row in range(4):
        no_roll = torch.from_numpy(alpha[row:row + 1, 224:227]).clone()
        no_roll[:, 2] = 0
        rotation = generated_model.compute_rotation(no_roll)
        shape = out.vertices_model[row:row + 1]
        u = generated_model.to_image(generated_model.to_camera(
            generated_model.transform(shape, rotation, torch.from_numpy(alpha[row:row + 1, 254:257]))))[0, :, 0]
        expected = arrays.ldm106.copy()
        for i, chain in enumerate(arrays.parallel):
            members = np.sort(np.asarray(chain))
            if i < 16:
                expected[i] = members[np.argmin(u.numpy()[members])]
            elif i > 16:
                expected[i] = members[np.argmax(u.numpy()[members])]
        np.testing.assert_array_equal(chosen[row], expected)
        np.testing.assert_array_equal(out.landmarks_crop["106_2d"][row].numpy(),
                                      out.projection_crop[row].numpy()[expected])


def test_gray_shading_and_texture_ranges(generated_model: ParametricFaceModel) -> None:
    out = generated_model.reconstruct(random_coefficients(np.random.default_rng(2), 2), visibility=False)
    assert float(out.gray_shading.min()) >= 0.0 and float(out.gray_shading.max()) <= 0.78 * 1.7 + 1e-6
    assert float(out.colors.min()) >= 0.0 and float(out.colors.max()) <= 1.0
    # frontal normal (0, 0, 1): lights 1-4 give 1/sqrt(3) each, light 5 gives 1
    frontal = generated_model.compute_gray_shading(torch.tensor([[[0.0, 0.0, 1.0]]]))
    expected = 0.78 * 1.7 * (4 / np.sqrt(3) + 1) / 5
    torch.testing.assert_close(frontal, torch.full((1, 1, 3), expected, dtype=torch.float32))


# --------------------------------------------------------------------------- photo mapping

def test_photo_camera_reproduces_photo_projection(generated_model: ParametricFaceModel) -> None:
    rng = np.random.default_rng(7)
    alpha = random_coefficients(rng, 3, scale=0.5)
    params = np.array([[1280, 720, 1.9, 610.3, 402.7], [480, 640, 0.55, 250.0, 300.0],
                       [333, 333, 1.27, 170.1, 160.9]], dtype=np.float64)
    out = generated_model.reconstruct(alpha, params, visibility=False)
    for row in range(3):
        fields = out.result_fields(row)
        cam = fields["camera"]
        w, h, left, up = crop_geometry(params[row])[0]
        assert (cam.width, cam.height) == (int(params[row, 0]), int(params[row, 1]))
        assert cam.fx == pytest.approx(1015 * params[row, 0] / w)
        assert cam.fy == pytest.approx(1015 * params[row, 1] / h)
        assert cam.cx == pytest.approx((112 + left) * params[row, 0] / w)
        assert cam.cy == pytest.approx((111 + up) * params[row, 1] / h)
        v = fields["vertices_camera"].astype(np.float64)
        projected = np.stack([cam.fx * v[:, 0] / v[:, 2] + cam.cx, cam.fy * -v[:, 1] / v[:, 2] + cam.cy], 1)
        np.testing.assert_allclose(projected, fields["projection_photo"], atol=2e-2)
        # back-mapping as the reference: x = (u + left) w0 / w, y = (223 - v + up) h0 / h
        crop = fields["projection_crop"].astype(np.float64)
        expected = np.stack([(crop[:, 0] + left) / w * params[row, 0],
                             (223 - crop[:, 1] + up) / h * params[row, 1]], 1)
        np.testing.assert_allclose(fields["projection_photo"], expected, atol=2e-2)
        uv = fields["photo_uv"]
        np.testing.assert_allclose(uv[:, 0], (fields["projection_photo"][:, 0] + 0.5) / params[row, 0], atol=1e-6)
        np.testing.assert_allclose(uv[:, 1], 1 - (fields["projection_photo"][:, 1] + 0.5) / params[row, 1],
                                   atol=1e-6)
        np.testing.assert_allclose(fields["landmarks_photo"]["68"],
                                   fields["projection_photo"][generated_model.arrays.ldm68], atol=1e-4)


def test_crop_geometry_matches_the_alignment() -> None:
    preprocess = pytest.importorskip("nv3dmm_face_tools.tddfa_v3.preprocess")
    rng = np.random.default_rng(1)
    params = np.column_stack([rng.integers(100, 4000, 50), rng.integers(100, 4000, 50),
                              rng.uniform(0.05, 3.0, 50), rng.uniform(-50, 4000, 50), rng.uniform(-50, 4000, 50)])
    ours = crop_geometry(params)
    theirs = np.array([preprocess.crop_geometry(p) for p in params], dtype=np.float64)
    np.testing.assert_array_equal(ours, theirs)


def test_without_trans_params_the_photo_is_the_crop(generated_model: ParametricFaceModel) -> None:
    out = generated_model.reconstruct(random_coefficients(np.random.default_rng(4), 2, 0.3), visibility=False)
    crop = out.projection_crop.numpy()
    np.testing.assert_allclose(out.projection_photo.numpy()[..., 0], crop[..., 0], atol=1e-4)
    np.testing.assert_allclose(out.projection_photo.numpy()[..., 1], 223 - crop[..., 1], atol=1e-4)
    intrinsics = photo_camera_intrinsics(identity_trans_params(1))[0]
    np.testing.assert_allclose(intrinsics, [1015, 1015, 112, 111])


# --------------------------------------------------------------------------- visibility

def _dome_with_occluder() -> tuple[np.ndarray, np.ndarray, int]:
    """The generated dome plus a square plate floating in front of its right half."""
    vertices = synthetic_face.grid_vertices()
    tri = synthetic_face.grid_triangles()
    n = vertices.shape[0]
    plate = np.array([[0.1, -0.5, 1.2], [0.8, -0.5, 1.2], [0.8, 0.5, 1.2], [0.1, 0.5, 1.2]])
    plate_tri = np.array([[0, 1, 2], [0, 2, 3]]) + n
    return np.concatenate([vertices, plate]), np.concatenate([tri, plate_tri]), n


def _camera_and_normals(vertices: np.ndarray, tri: np.ndarray) -> tuple[Any, Any]:
    v = torch.as_tensor(vertices, dtype=torch.float32)
    t = torch.as_tensor(tri)
    face = torch.cross(v[t[:, 0]] - v[t[:, 1]], v[t[:, 1]] - v[t[:, 2]], dim=-1)
    summed = torch.zeros_like(v).index_add_(0, t.reshape(-1), face.repeat_interleave(3, 0))
    normals = torch.nn.functional.normalize(summed, dim=-1)
    camera = v.clone()
    camera[:, 2] = 10.0 - v[:, 2]
    return camera[None], normals[None]


def test_occluded_vertices_are_not_visible() -> None:
    vertices, tri, n = _dome_with_occluder()
    camera, normals = _camera_and_normals(vertices, tri)
    visible, facing, unoccluded = vertex_visibility(camera, normals, torch.as_tensor(tri), 256, return_parts=True)
    visible = visible[0].numpy()
    assert facing[0].all(), "every vertex of the dome and plate faces the camera"
    # Which dome vertices does the plate cover, seen from the camera? (its corners projected)
    proj = 1015 * vertices[:, :2] / (10 - vertices[:, 2:3])
    plate_proj = proj[n:]
    lo, hi = plate_proj.min(0), plate_proj.max(0)
    pixel = (proj[:n].max(0) - proj[:n].min(0)).max() / 254
    margin = 3 * pixel
    behind = np.all((proj[:n] > lo + margin) & (proj[:n] < hi - margin), axis=1)
    clear = np.any((proj[:n] < lo - margin) | (proj[:n] > hi + margin), axis=1)
    assert behind.sum() > 100 and clear.sum() > 1000
    assert not visible[:n][behind].any(), "vertices behind the plate must be hidden"
    assert visible[:n][clear].all(), "vertices the plate does not cover stay visible"
    assert visible[n:].all(), "the plate itself is visible"
    # Without the plate everything is visible again.
    camera2, normals2 = _camera_and_normals(vertices[:n], tri[:-2])
    assert vertex_visibility(camera2, normals2, torch.as_tensor(tri[:-2]), 256)[0].all()


def test_self_occlusion_and_back_faces(generated_model: ParametricFaceModel) -> None:
    alpha = np.zeros((3, 257), np.float32)
    alpha[1, 225] = 0.8         # strong yaw: the nose hides part of the far cheek
    alpha[2, 225] = np.pi       # turned around: nothing faces the camera
    out = generated_model.reconstruct(alpha)
    assert out.visible is not None
    visible = out.visible.numpy()
    assert visible[0].all()
    assert not visible[2].any()
    _, facing, unoccluded = vertex_visibility(out.vertices_camera, out.normals_rotated, generated_model.tri,
                                              return_parts=True)
    hidden = facing[1] & ~unoccluded[1]
    assert int(hidden.sum()) > 5, "the yawed nose must occlude some facing vertices"
    # yaw +0.8 swings the nose towards +x and the +x cheek backwards: the hidden vertices are there
    assert float(out.vertices_camera[1, hidden, 0].mean()) > float(out.vertices_camera[1, :, 0].mean()) + 0.2


def test_visibility_resolution_default() -> None:
    assert auto_visibility_resolution(3840) == 96
    assert 384 <= auto_visibility_resolution(70_789) <= 448
    assert auto_visibility_resolution(10) == 64


def test_visibility_ignores_vertices_behind_the_camera() -> None:
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 12.0], [1, 0, 12], [0, 1, 12]])
    tri = np.array([[0, 1, 2], [3, 4, 5]])
    camera, normals = _camera_and_normals(vertices, tri)
    visible = vertex_visibility(camera, normals, torch.as_tensor(tri), 64)[0].numpy()
    assert visible.tolist() == [True, True, True, False, False, False]


# --------------------------------------------------------------------------- parts and the result

def test_parts_and_result_fields(generated_model: ParametricFaceModel) -> None:
    alpha = random_coefficients(np.random.default_rng(9), 2, 0.5)
    params = np.array([[640, 480, 2.0, 320, 240], [640, 480, 2.0, 320, 240]], dtype=np.float64)
    out = generated_model.reconstruct(alpha, params)
    arrays = generated_model.arrays
    fields = out.result_fields(1)
    assert len(fields["part_vertices"]) == len(PART_NAMES) == 8
    assert out.visible is not None
    visible = out.visible[1].numpy()
    for part, shown, annotated in zip(fields["part_vertices"], fields["part_visible"], arrays.annotation):
        np.testing.assert_array_equal(part, annotated)
        np.testing.assert_array_equal(shown, np.intersect1d(annotated, np.flatnonzero(visible)))
    result = FaceResult(photo_size=(640, 480), face_box=np.zeros(4), face_score=1.0,
                        landmarks106_detected=np.zeros((106, 2)), trans_params=params[1],
                        triangles=arrays.tri, **fields)
    assert result.vertex_count == arrays.vertex_count
    assert result.vertices_camera.dtype == np.float32 and result.vertices_camera.shape == (arrays.vertex_count, 3)
    assert result.landmark_indices["106_2d"].shape == (106,)
    assert set(result.landmarks_photo) == {"68", "106", "106_2d", "134"}
    assert result.coefficients.raw.shape == (257,) and result.coefficients.translation.shape == (3,)
    assert result.visible.dtype == np.bool_


def test_bad_coefficients_are_refused(generated_model: ParametricFaceModel) -> None:
    from nv3dmm_face_tools.tddfa_v3.errors import ReconstructionError

    with pytest.raises(ReconstructionError, match="257"):
        generated_model.reconstruct(np.zeros((2, 256), np.float32))
    with pytest.raises(ReconstructionError, match="trans_params"):
        generated_model.reconstruct(np.zeros((2, 257), np.float32), np.ones((1, 5)))


@pytest.mark.parametrize("yaw, pitch", [(0.7, 0.0), (1.0, 0.4), (-1.3, -0.3)])
def test_convex_surface_never_hides_itself(yaw: float, pitch: float) -> None:
    """A dome without a nose is convex: every vertex facing the camera is visible, grazing ones included."""
    vertices = synthetic_face.grid_vertices()
    vertices[:, 2] = 0.38 - 0.55 * (vertices[:, 0] / 0.9) ** 2 - 0.45 * (vertices[:, 1] / 0.96) ** 2
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    rotation = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]]) @ np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    tri = synthetic_face.grid_triangles()
    camera, normals = _camera_and_normals(vertices @ rotation.T, tri)
    visible, facing, _ = vertex_visibility(camera, normals, torch.as_tensor(tri), return_parts=True)
    assert 0 < int(facing.sum()) < vertices.shape[0] or yaw == 0
    assert torch.equal(visible, facing)


def test_large_batches_are_sliced_identically(generated_model: ParametricFaceModel,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import nv3dmm_face_tools.tddfa_v3.visibility as face_model_module

    out = generated_model.reconstruct(random_coefficients(np.random.default_rng(8), 5, 0.8))
    whole = vertex_visibility(out.vertices_camera, out.normals_rotated, generated_model.tri)
    monkeypatch.setattr(face_model_module, "_MAX_BATCH_TRIANGLES", 2 * generated_model.triangle_count)
    sliced = vertex_visibility(out.vertices_camera, out.normals_rotated, generated_model.tri, return_parts=True)
    assert torch.equal(whole, sliced[0]) and sliced[1].shape == whole.shape
    assert out.visible is not None and torch.equal(out.visible, whole)
