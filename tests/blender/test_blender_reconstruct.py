# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Photo reconstruction inside Blender: bridge, operator, preferences, worker.

Three groups:
- pure numpy / threading (no bpy): the coordinate mapping, the pose, the key
  scales, and the worker job with a stand-in reconstructor on a real thread;
- Blender data from a hand-made `FaceResult` (reconstruction_output.py, from the synthetic
  face model with the documented formulas), through the bridge;
- the real operator end to end on synthetic assets (torch, CPU), with a face
  box and with detection, plus error cases that must leave the scene unchanged.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from nv3dmm_face_tools.tddfa_v3.result import PART_NAMES, FaceResult
from tests import helpers

from nv3dmm_face_tools.bridge.errors import BridgeError
from tests.blender.reconstruction_output import _bridge_module, make_output
from tests.blender.ui_layout import RecordingLayout

REPO_ROOT = Path(__file__).resolve().parents[2]


def _core_errors() -> Any:
    """The core's errors as the add-on sees them (one class identity with the bridge)."""
    import importlib
    _bridge_module()
    return importlib.import_module("nv3dmm_face_tools.tddfa_v3.errors")


# --------------------------------------------------------------------------- no bpy

def test_model_to_blender_is_a_proper_rotation_with_unit_change() -> None:
    from nv3dmm_face_tools.bridge.axes import MODEL_TO_BLENDER

    bridge = _bridge_module()
    matrix = MODEL_TO_BLENDER
    assert np.isclose(np.linalg.det(matrix * 10.0), 1.0)   # winding preserved
    np.testing.assert_allclose(bridge.model_to_blender([[1.0, 2.0, 3.0]]), [[0.1, -0.3, 0.2]], atol=1e-7)


def test_pose_matrix_maps_unposed_blender_vertices_to_posed_ones() -> None:
    bridge = _bridge_module()
    output = make_output()
    result = output.result
    matrix = bridge.pose_matrix(result)
    local = bridge.model_to_blender(result.vertices_model).astype(np.float64)
    world = local @ matrix[:3, :3].T + matrix[:3, 3]
    posed_model = result.vertices_camera.astype(np.float64).copy()
    posed_model[:, 2] = 10.0 - posed_model[:, 2]
    np.testing.assert_allclose(world, bridge.model_to_blender(posed_model), atol=1e-6)
    assert np.isclose(np.linalg.det(matrix[:3, :3]), 1.0)


def test_key_scales_keep_values_inside_the_slider_range() -> None:
    from nv3dmm_face_tools.bridge.mesh import SLIDER_LIMIT

    bridge = _bridge_module()
    coefficients = np.array([0.5, -9.99, 10.0, 23.5, -31.0], dtype=np.float32)
    scales = bridge.key_scales(coefficients)
    np.testing.assert_array_equal(scales, [1, 1, 1, 3, 4])
    assert np.all(np.abs(coefficients / scales) <= SLIDER_LIMIT)


class FakeReconstructor:
    """Stands in for tddfa_v3.pipeline.Reconstructor in the worker tests."""

    def __init__(self, output: Any, fail: BaseException | None = None, stall: threading.Event | None = None):
        self.output = output
        self.fail = fail
        self.stall = stall
        self.calls: list[tuple[Any, Any]] = []

    def reconstruct(self, photo: Any, face_box: Any = None, landmarks5: Any = None, *,
                    progress: Callable[[str, float], None] | None = None,
                    cancel: Callable[[], bool] | None = None) -> FaceResult:
        self.calls.append((photo, face_box))
        for i, stage in enumerate(("detect", "align", "regress")):
            if progress is not None:
                progress(stage, i / 3)
            if self.stall is not None:
                self.stall.wait(5.0)
            if cancel is not None and cancel():
                raise _core_errors().Cancelled("cancelled by the caller")
        if self.fail is not None:
            raise self.fail
        return self.output.result


def _job(output: Any, reconstructors: dict[str, FakeReconstructor], device: str = "auto") -> Any:
    bridge = _bridge_module()
    options = bridge.ReconstructOptions(assets_dir="/nowhere", device=device, face_box=(1.0, 2.0, 3.0, 4.0))
    return bridge.ReconstructionJob(
        options, "photo.png",
        factory=lambda assets, dev, backbone, cache: reconstructors[dev],
        bases_getter=lambda reconstructor, assets: output.bases)


def _wait_final(job: Any, timeout: float = 10.0) -> list[Any]:
    bridge = _bridge_module()
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.extend(job.drain())
        if seen and isinstance(seen[-1], (bridge.JobFinished, bridge.JobFailed, bridge.JobCancelled)):
            return seen
        time.sleep(0.01)
    raise AssertionError(f"the worker did not finish: {seen}")


def test_job_on_a_thread_posts_progress_then_the_result() -> None:
    bridge = _bridge_module()
    output = make_output()
    fake = FakeReconstructor(output)
    job = _job(output, {"auto": fake})
    job.start()
    messages = _wait_final(job)
    job.thread.join(5)
    assert [m.stage for m in messages if isinstance(m, bridge.JobProgress)] == \
        ["loading networks", "detect", "align", "regress", "preparing shape keys"]
    assert isinstance(messages[-1], bridge.JobFinished)
    assert messages[-1].output.result is output.result
    np.testing.assert_array_equal(fake.calls[0][1], [1.0, 2.0, 3.0, 4.0])
    assert job.finished


def test_job_cancel_from_the_main_thread_stops_the_worker() -> None:
    bridge = _bridge_module()
    output = make_output()
    gate = threading.Event()
    job = _job(output, {"auto": FakeReconstructor(output, stall=gate)})
    job.start()
    job.cancel()
    gate.set()
    messages = _wait_final(job)
    assert isinstance(messages[-1], bridge.JobCancelled)
    assert not any(isinstance(m, bridge.JobFinished) for m in messages)


def test_job_retries_on_the_cpu_when_auto_gpu_runs_out_of_memory() -> None:
    bridge = _bridge_module()
    output = make_output()
    oom = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    job = _job(output, {"auto": FakeReconstructor(output, fail=oom), "cpu": FakeReconstructor(output)})
    job.start()
    messages = _wait_final(job)
    notices = [m.text for m in messages if isinstance(m, bridge.JobNotice)]
    assert notices and "retrying on the CPU" in notices[0]
    assert isinstance(messages[-1], bridge.JobFinished) and messages[-1].output.device == "cpu"


def test_job_on_cuda_reports_a_gpu_failure_clearly() -> None:
    bridge = _bridge_module()
    output = make_output()
    oom = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    job = _job(output, {"cuda": FakeReconstructor(output, fail=oom)}, device="cuda")
    with pytest.raises(BridgeError, match="GPU failed.*CPU or Auto"):
        bridge.run_job_sync(job)


def test_job_reports_core_errors_as_they_are() -> None:
    bridge = _bridge_module()
    NoFaceError = _core_errors().NoFaceError
    output = make_output()
    job = _job(output, {"auto": FakeReconstructor(output, fail=NoFaceError("no face found in photo.png"))})
    with pytest.raises(BridgeError, match="no face found"):
        bridge.run_job_sync(job)


def test_modal_timer_step_builds_once_when_the_worker_finishes(addon: Any) -> None:
    """The modal operator's per-tick handler, driven by hand (timers never fire in the bpy module)."""
    import importlib
    from types import SimpleNamespace
    operators = importlib.import_module(f"{addon.__name__}.operators.reconstruct")
    bridge = _bridge_module()
    output = make_output()
    gate = threading.Event()
    job = _job(output, {"auto": FakeReconstructor(output, stall=gate)})
    built: list[Any] = []
    reports: list[tuple[set[str], str]] = []
    progress: list[int] = []
    fake_operator = SimpleNamespace(
        report=lambda kind, text: reports.append((kind, text)),
        _finish=lambda context: None,
        _show_status=lambda context: None,
        _build=lambda context, prepared, result: built.append(result))
    context = SimpleNamespace(window_manager=SimpleNamespace(progress_update=progress.append))
    prepared = operators._Prepared(job.options, "photo.png", None, "photo.png")
    job.start()
    outcome = operators.OBJECT_OT_reconstruct_face._drain(fake_operator, context, job, prepared)
    assert outcome == {'RUNNING_MODAL'} and not built          # the worker is still busy
    gate.set()
    deadline = time.monotonic() + 10
    while outcome == {'RUNNING_MODAL'} and time.monotonic() < deadline:
        time.sleep(0.01)
        outcome = operators.OBJECT_OT_reconstruct_face._drain(fake_operator, context, job, prepared)
    assert outcome == {'FINISHED'}
    assert len(built) == 1 and built[0].result is output.result
    assert progress and progress == sorted(progress) and not reports


# --------------------------------------------------------------------------- Blender data, hand-made result

def _data_counts() -> dict[str, int]:
    import bpy
    return {name: len(getattr(bpy.data, name)) for name in
            ("objects", "meshes", "cameras", "materials", "images", "shape_keys", "collections")}


def _evaluated_positions(obj: Any) -> np.ndarray:
    import bpy
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        positions = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
        mesh.vertices.foreach_get("co", positions)
    finally:
        evaluated.to_mesh_clear()
    return positions.reshape(-1, 3)


def _camera_projection(obj: Any, camera: Any) -> np.ndarray:
    """Evaluated vertices through the Blender camera, in photo pixels (y down, integers at
    pixel centres, as FaceResult.projection_photo)."""
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector
    scene = bpy.context.scene
    local = _evaluated_positions(obj).astype(np.float64)
    matrix = np.array(obj.matrix_world)
    world = local @ matrix[:3, :3].T + matrix[:3, 3]
    width, height = scene.render.resolution_x, scene.render.resolution_y
    # A few hundred points through Blender's own function; the rest would only repeat it.
    picks = np.linspace(0, len(world) - 1, 300).astype(int)
    projected = np.array([tuple(world_to_camera_view(scene, camera, Vector(world[i].tolist())))
                          for i in picks])
    return picks, np.stack([projected[:, 0] * width - 0.5, (1.0 - projected[:, 1]) * height - 0.5], 1)


def test_bridge_builds_keys_pose_camera_material_groups(clean_scene: None) -> None:
    import bpy
    bridge = _bridge_module()
    output = make_output(big=True)
    result = output.result
    options = bridge.ReconstructOptions(assets_dir="", name="Hand made")
    obj = bridge.build_reconstruction(bpy.context, output, options)

    keys = obj.data.shape_keys.key_blocks
    assert keys[0].name == "Basis" and len(keys) == 1 + 80 + 64
    assert keys[1].name == "ID.00" and keys[81].name == "EXP.00" and keys[-1].name == "EXP.63"
    values = np.array([k.value for k in keys[1:]])
    scales = np.array(obj[bridge.PROP_KEY_SCALES])
    np.testing.assert_allclose(values * scales, result.coefficients.raw[:144], rtol=1e-6, atol=1e-6)
    assert scales[3] == 3 and scales[85] == 2 and np.all(np.abs(values) <= 10)

    evaluated = _evaluated_positions(obj)
    np.testing.assert_allclose(evaluated, bridge.model_to_blender(result.vertices_model), atol=2e-6)

    camera = bpy.context.scene.camera
    assert camera is not None and camera.name == obj[bridge.PROP_CAMERA]
    picks, pixels = _camera_projection(obj, camera)
    error = np.abs(pixels - result.projection_photo[picks]).max()
    assert error < 0.05, f"camera projection is off by {error:.3f} px"

    groups = {g.name for g in obj.vertex_groups}
    assert {"IBUG.001", "IBUG.068", "landmarks_106", "landmarks_134", "visible", *PART_NAMES} <= groups
    ibug_31 = obj.vertex_groups["IBUG.031"].index
    holders = [v.index for v in obj.data.vertices if any(g.group == ibug_31 for g in v.groups)]
    assert holders == [int(result.landmark_indices["68"][30])]
    part = obj.vertex_groups[PART_NAMES[4]].index
    members = np.array([v.index for v in obj.data.vertices if any(g.group == part for g in v.groups)])
    np.testing.assert_array_equal(members, np.unique(result.part_vertices[4]))

    assert obj.data.uv_layers.get("photo") is not None
    assert {"albedo", "lit", "visible"} <= set(obj.data.attributes.keys())
    material = obj.data.materials[0]
    assert any(n.type == 'TEX_IMAGE' for n in material.node_tree.nodes)
    np.testing.assert_allclose(obj[bridge.PROP_COEFFICIENTS], result.coefficients.raw, rtol=1e-6)


@pytest.mark.parametrize("update", [False, True])
def test_bridge_rolls_back_everything_when_building_fails(clean_scene: None, monkeypatch: pytest.MonkeyPatch,
                                                         update: bool) -> None:
    import bpy
    bridge = _bridge_module()
    output = make_output()
    options = bridge.ReconstructOptions(assets_dir="", update_existing=update)
    face = bridge.build_reconstruction(bpy.context, output, options) if update else None
    before = _data_counts()
    groups_before = [g.name for g in face.vertex_groups] if face is not None else []
    mesh_before = face.data if face is not None else None

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated failure in the last step")

    monkeypatch.setattr(sys.modules[f"{bridge.__name__}.build"], "add_vertex_groups", broken)
    with pytest.raises(BridgeError, match="simulated failure"):
        bridge.build_reconstruction(bpy.context, make_output(seed=5), options)
    assert _data_counts() == before
    if face is not None:
        assert face.data == mesh_before and [g.name for g in face.vertex_groups] == groups_before
        np.testing.assert_allclose(_evaluated_positions(face),
                                   bridge.model_to_blender(output.result.vertices_model), atol=2e-6)
        ibug = face.vertex_groups["IBUG.001"].index
        holders = [v.index for v in face.data.vertices if any(g.group == ibug for g in v.groups)]
        assert holders == [int(output.result.landmark_indices["68"][0])]


# --------------------------------------------------------------------------- the operator on synthetic assets

FACE_BOX = (96.0, 52.0, 224.0, 196.0)


@pytest.fixture(scope="module")
def synthetic_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete synthetic assets folder (the fixtures' face model when they are available)."""
    pytest.importorskip("torch", reason="PyTorch is needed to run the reconstruction core")
    return helpers.synthetic_assets(tmp_path_factory.mktemp("tddfa_assets"))


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smooth synthetic 'portrait': a warm ellipse with darker eyes and mouth on a gradient."""
    return helpers.portrait(tmp_path_factory.mktemp("photos") / "portrait.png", features=True)


@pytest.fixture(scope="module")
def core_result(synthetic_assets: Path, photo: Path, tmp_path_factory: pytest.TempPathFactory) -> FaceResult:
    """The core's own result for the photo and face box, to compare the Blender data with."""
    from nv3dmm_face_tools.tddfa_v3.pipeline import Reconstructor
    reconstructor = Reconstructor(synthetic_assets, device="cpu",
                                  cache_dir=tmp_path_factory.mktemp("face_model_cache"))
    return reconstructor.reconstruct(str(photo), face_box=FACE_BOX)


def _reconstruct(assets: Path, photo_path: Path | str, **overrides: Any) -> Any:
    import bpy
    arguments: dict[str, Any] = dict(filepath=str(photo_path), assets_dir=str(assets), device='CPU',
                                     face_box=FACE_BOX)
    arguments.update(overrides)
    assert bpy.ops.object.reconstruct_face(**arguments) == {'FINISHED'}
    return bpy.context.view_layer.objects.active


def test_operator_builds_the_reconstruction(clean_scene: None, synthetic_assets: Path, photo: Path,
                                            core_result: FaceResult) -> None:
    import bpy
    bridge = _bridge_module()
    obj = _reconstruct(synthetic_assets, photo)
    result = core_result

    # shape keys carry the fitted coefficients, and the evaluated mesh is the core's shape
    keys = obj.data.shape_keys.key_blocks
    assert len(keys) == 1 + 80 + 64
    values = np.array([k.value for k in keys[1:]]) * np.array(obj[bridge.PROP_KEY_SCALES])
    np.testing.assert_allclose(values, result.coefficients.raw[:144], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_evaluated_positions(obj), bridge.model_to_blender(result.vertices_model),
                               atol=1e-5)

    # the pose, and the camera reproducing the photo's framing
    camera = bpy.context.scene.camera
    assert camera is not None and camera.data.background_images[0].image.filepath
    assert (bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y) == (320, 240)
    picks, pixels = _camera_projection(obj, camera)
    error = float(np.abs(pixels - result.projection_photo[picks]).max())
    assert error < 0.05, f"projection through the Blender camera is off by {error:.3f} px"

    # material: the photo through the photo UVs
    material = obj.data.materials[0]
    textures = [n for n in material.node_tree.nodes if n.type == 'TEX_IMAGE']
    assert textures and Path(bpy.path.abspath(textures[0].image.filepath)) == photo
    uv = np.empty(len(obj.data.loops) * 2, dtype=np.float32)
    obj.data.uv_layers["photo"].uv.foreach_get("vector", uv)
    corners = np.empty(len(obj.data.loops), dtype=np.int32)
    obj.data.attributes[".corner_vert"].data.foreach_get("value", corners)
    np.testing.assert_allclose(uv.reshape(-1, 2), result.photo_uv[corners], atol=1e-6)
    visible = np.empty(len(obj.data.vertices), dtype=np.float32)
    obj.data.attributes["visible"].data.foreach_get("value", visible)
    np.testing.assert_array_equal(visible > 0.5, result.visible)

    # groups and custom properties a script can read back
    names = {g.name for g in obj.vertex_groups}
    assert {"IBUG.001", "IBUG.068", "landmarks_106", "landmarks_134", *PART_NAMES} <= names
    np.testing.assert_allclose(obj[bridge.PROP_COEFFICIENTS], result.coefficients.raw, rtol=1e-6)
    np.testing.assert_allclose(obj[bridge.PROP_TRANS_PARAMS], result.trans_params)
    assert obj[bridge.PROP_SOURCE] == str(photo)
    assert dict(obj[bridge.PROP_SPLIT].to_dict())["expression"] == [80, 144]
    np.testing.assert_array_equal(obj["tddfa_landmarks_106"], result.landmark_indices["106"])


def test_update_existing_refits_the_active_face(clean_scene: None, synthetic_assets: Path, photo: Path) -> None:
    import bpy
    first = _reconstruct(synthetic_assets, photo)
    # keyframes on the coefficients survive a re-fit
    key = first.data.shape_keys.key_blocks["EXP.03"]
    key.value = 2.5
    assert key.keyframe_insert("value", frame=1)
    key.value = -3.0
    assert key.keyframe_insert("value", frame=10)
    action = first.data.shape_keys.animation_data.action
    counts = _data_counts()
    second = _reconstruct(synthetic_assets, photo, face_box=(100.0, 60.0, 220.0, 190.0))
    assert second == first
    assert _data_counts() == counts
    assert second.data.shape_keys.animation_data.action == action
    bpy.context.scene.frame_set(10)    # the keyframes still drive the re-fitted slider
    assert second.data.shape_keys.key_blocks["EXP.03"].value == pytest.approx(-3.0)
    bpy.context.scene.frame_set(1)
    assert second.data.shape_keys.key_blocks["EXP.03"].value == pytest.approx(2.5)
    assert len(second.vertex_groups) == len({g.name for g in second.vertex_groups})
    third = _reconstruct(synthetic_assets, photo, update_existing=False)
    assert third != first and len(bpy.data.objects) == counts["objects"] + 2   # a face and its camera


def test_image_datablock_as_the_source(clean_scene: None, synthetic_assets: Path, photo: Path,
                                       core_result: FaceResult) -> None:
    import bpy
    image = bpy.data.images.load(str(photo))
    images = len(bpy.data.images)
    # 'INVOKE_DEFAULT' is what a button press sends; headless it must run synchronously too
    assert bpy.ops.object.reconstruct_face('INVOKE_DEFAULT', image_name=image.name,
                                           assets_dir=str(synthetic_assets), device='CPU',
                                           face_box=FACE_BOX) == {'FINISHED'}
    obj = bpy.context.view_layer.objects.active
    assert len(bpy.data.images) == images      # the loaded image is used, not a second copy
    assert obj.data.materials[0].node_tree.nodes["Photo"].image == image
    bridge = _bridge_module()
    values = np.array([k.value for k in obj.data.shape_keys.key_blocks[1:]]) * np.array(obj[bridge.PROP_KEY_SCALES])
    np.testing.assert_allclose(values, core_result.coefficients.raw[:144], rtol=1e-4, atol=1e-4)


def test_phone_photo_with_exif_rotation_is_shown_upright(clean_scene: None, synthetic_assets: Path, photo: Path,
                                                         tmp_path: Path) -> None:
    """Phones store portraits sideways with an EXIF orientation; the core reconstructs the upright
    pixels, so the texture, camera background and render size must use those too (Blender itself
    shows image files as stored)."""
    import bpy
    from PIL import Image

    from nv3dmm_face_tools.tddfa_v3.preprocess import load_photo
    upright = np.asarray(Image.open(photo).convert("RGB"))
    sideways = Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1)))
    exif = sideways.getexif()
    exif[0x0112] = 6                                        # "rotate 90 degrees clockwise to view"
    path = tmp_path / "phone.jpg"
    sideways.save(path, quality=95, exif=exif.tobytes())
    expected = load_photo(path)
    assert expected.shape == upright.shape                  # the core sees the portrait upright
    obj = _reconstruct(synthetic_assets, path)
    height, width = expected.shape[:2]
    assert list(obj[_bridge_module().PROP_PHOTO_SIZE]) == [width, height]
    image = obj.data.materials[0].node_tree.nodes["Photo"].image
    assert tuple(image.size) == (width, height)
    pixels = np.empty(width * height * 4, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    shown = np.round(pixels.reshape(height, width, 4)[::-1, :, :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(shown, expected)
    assert image.packed_file is not None                    # kept with the .blend
    assert bpy.context.scene.camera.data.background_images[0].image == image
    assert (bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y) == (width, height)


def test_detection_path_finds_a_face(clean_scene: None, synthetic_assets: Path, photo: Path) -> None:
    import bpy
    bridge = _bridge_module()
    obj = _reconstruct(synthetic_assets, photo, face_box=(0.0, 0.0, 0.0, 0.0))
    box = np.array(obj[bridge.PROP_FACE_BOX])
    assert box.shape == (4,) and box[2] > box[0] and box[3] > box[1]
    assert bpy.context.scene.camera is not None


def test_ui_runs_do_not_inherit_the_last_run_s_box_backbone_or_assets(clean_scene: None, synthetic_assets: Path,
                                                                       photo: Path) -> None:
    """A button press loads the operator's last-used values into the properties it leaves
    unset (undo=True makes a Python call behave like one): the face box, backbone, device
    and assets must not carry over, or the panel's "Default" and detection would be ignored."""
    import bpy
    bridge = _bridge_module()
    common = dict(filepath=str(photo), update_existing=False)
    assert bpy.ops.object.reconstruct_face('EXEC_DEFAULT', True, assets_dir=str(synthetic_assets), device='CPU',
                                           backbone='MOBILENETV3', face_box=FACE_BOX, **common) == {'FINISHED'}
    first = bpy.context.view_layer.objects.active
    assert first["tddfa_backbone"] == "mobilenetv3"
    # No assets folder and no preferences: this run must fail instead of reusing the last folder.
    with pytest.raises(RuntimeError, match="No 3DDFA-V3 assets folder"):
        bpy.ops.object.reconstruct_face('EXEC_DEFAULT', True, **common)
    assert bpy.ops.object.reconstruct_face('EXEC_DEFAULT', True, assets_dir=str(synthetic_assets),
                                           **common) == {'FINISHED'}
    second = bpy.context.view_layer.objects.active
    assert second != first and second["tddfa_backbone"] == "resnet50"
    assert list(second[bridge.PROP_FACE_BOX]) != list(FACE_BOX)       # detected, not the last run's box


@pytest.mark.parametrize("case", ["no_face", "missing_assets", "bad_path", "no_photo", "no_torch"])
def test_errors_leave_the_scene_unchanged(clean_scene: None, synthetic_assets: Path, photo: Path,
                                          tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import bpy
    from PIL import Image
    arguments: dict[str, Any] = dict(filepath=str(photo), assets_dir=str(synthetic_assets), device='CPU')
    if case == "no_face":
        gray = tmp_path / "gray.png"
        Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(gray)
        arguments["filepath"] = str(gray)
        expected = "No face found"
    elif case == "missing_assets":
        (tmp_path / "assets").mkdir()
        arguments["assets_dir"] = str(tmp_path / "assets")
        expected = "huggingface.co/datasets/Zidu-Wang/3DDFA-V3"
    elif case == "bad_path":
        arguments["filepath"] = str(tmp_path / "missing.jpg")
        expected = "does not exist"
    elif case == "no_photo":
        arguments["filepath"] = ""
        expected = "Choose a photo"
    else:
        real_find_spec = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *rest: None if name == "torch" else real_find_spec(name, *rest))
        expected = r"needs torch in Blender's Python; install with: .* -m pip install torch"
    before = _data_counts()
    camera_before = bpy.context.scene.camera
    with pytest.raises(RuntimeError, match=expected):
        bpy.ops.object.reconstruct_face(**arguments)
    assert _data_counts() == before
    assert bpy.context.scene.camera == camera_before


def test_preferences_report_missing_assets_and_dependencies(addon: Any, synthetic_assets: Path,
                                                            tmp_path: Path) -> None:
    import importlib
    preferences = importlib.import_module(f"{addon.__name__}.preferences")
    empty = preferences.asset_status(str(tmp_path))
    assert not empty.ok and "net_recon.pth" in empty.missing and "face_model.npy" in empty.missing
    assert preferences.ASSETS_URL in empty.message
    full = preferences.asset_status(str(synthetic_assets))
    assert full.ok and not full.missing
    assert preferences.asset_status(str(synthetic_assets)) is full          # cached until the folder changes
    assert preferences.missing_dependencies() == []                          # the test venv has them all
    command = importlib.import_module("nv3dmm_face_tools.bridge.readiness").pip_command(["torch", "scipy"])
    assert sys.executable in command and command.endswith("-m pip install torch scipy")
    assert preferences.NV3DMMFacePreferences.bl_idname == addon.__name__
    # not installed as an extension here: the face-model cache falls back to a temp folder
    assert Path(preferences.cache_dir()).is_dir()


def test_asset_status_follows_files_changed_in_place(addon: Any, synthetic_assets: Path,
                                                      tmp_path: Path) -> None:
    """A download finishing in place, or files added under the dataset root's assets/
    folder, change no modification time of the chosen folder: the status must still follow."""
    import importlib
    import shutil
    preferences = importlib.import_module(f"{addon.__name__}.preferences")
    root = tmp_path / "dataset"
    shutil.copytree(synthetic_assets, root / "assets")
    growing = root / "assets" / "net_recon.pth"
    full = growing.read_bytes()
    growing.write_bytes(full[:len(full) // 3])            # the download is still running
    stamp = os.stat(root).st_mtime_ns
    partial = preferences.asset_status(str(root))
    assert not partial.ok and "net_recon.pth" in partial.missing
    with open(growing, "r+b") as handle:                  # ... and completes in the same file
        handle.seek(0, os.SEEK_END)
        handle.write(full[len(full) // 3:])
    assert os.stat(root).st_mtime_ns == stamp
    assert preferences.asset_status(str(root)).ok
    (root / "assets" / "face_model.npy").unlink()         # a change inside assets/ only
    os.utime(root, ns=(stamp, stamp))
    assert "face_model.npy" in preferences.asset_status(str(root)).missing


def test_ui_is_registered_with_scene_settings(clean_scene: None) -> None:
    import bpy
    assert "VIEW3D_PT_nv3dmm_reconstruct" in dir(bpy.types)
    assert "OBJECT_OT_reconstruct_face" in dir(bpy.types)
    settings = bpy.context.scene.nv3dmm_reconstruct
    assert settings.device == 'PREFS' and settings.create_camera and settings.update_existing
    settings.filepath = "//photo.jpg"          # stored on the scene, saved with the file
    assert bpy.context.scene.nv3dmm_reconstruct.filepath == "//photo.jpg"


def test_panel_and_preferences_draw(addon: Any, clean_scene: None, synthetic_assets: Path,
                                    tmp_path: Path) -> None:
    import importlib
    from types import SimpleNamespace
    import bpy
    preferences = importlib.import_module(f"{addon.__name__}.preferences")
    panels = importlib.import_module(f"{addon.__name__}.panels.reconstruct")

    log: dict[str, list[Any]] = {"labels": [], "props": [], "operators": []}
    settings = bpy.context.scene.nv3dmm_reconstruct
    settings.filepath = "/photos/face.jpg"
    settings.device = 'CPU'
    panels.VIEW3D_PT_nv3dmm_reconstruct.draw(SimpleNamespace(layout=RecordingLayout(log)), bpy.context)
    assert {"filepath", "backbone", "device", "create_texture", "update_existing"} <= set(log["props"])
    ((idname, op),) = log["operators"]
    assert idname == "object.reconstruct_face"
    assert op.filepath == "/photos/face.jpg" and op.device == 'CPU' and not hasattr(op, "backbone")
    assert any("preferences" in text for text in log["labels"])      # no assets folder set yet

    for folder, expect in ((str(tmp_path), "incomplete"), (str(synthetic_assets), "All 3DDFA-V3 assets found")):
        log = {"labels": [], "props": [], "operators": []}
        prefs = SimpleNamespace(layout=RecordingLayout(log), assets_dir=folder, device='AUTO', backbone='RESNET50',
                                wheels_dir="", assets_url="", torch_build='AUTO')
        preferences.NV3DMMFacePreferences.draw(prefs, bpy.context)
        assert any(expect in text for text in log["labels"]), log["labels"]
        assert log["operators"][0][1].url == preferences.ASSETS_URL


def test_reconstruction_exports_as_a_valid_nvf(clean_scene: None, synthetic_assets: Path, photo: Path,
                                               core_result: FaceResult, tmp_path: Path) -> None:
    import bpy
    from nv3dmm_face_tools.io_nv3dmm import read
    _reconstruct(synthetic_assets, photo)
    target = tmp_path / "reconstruction.nvf"
    assert bpy.ops.export_scene.nvf(filepath=str(target)) == {'FINISHED'}
    model = read(target.read_bytes())
    assert model.shape.mean.shape == (core_result.vertex_count, 3)
    assert model.shape.triangles.shape[0] == core_result.triangles.shape[0]
    # Identity keys are shape modes, expression keys blend shapes (test_blender_nvf_maxine).
    assert model.mode_count == 80
    assert model.blend_shapes is not None and len(model.blend_shapes.names) == 64
    assert model.ibug is not None
    pairs = np.asarray(model.ibug.pairs)
    np.testing.assert_array_equal(pairs[:, 0], np.arange(1, 69))
    np.testing.assert_array_equal(pairs[:, 1], core_result.landmark_indices["68"])


# ---------------------------------------------------------------- menus and the folder tool (issue 10)

def test_reconstruct_is_in_the_add_and_import_menus_and_searchable(addon: Any) -> None:
    import bpy
    from types import SimpleNamespace

    operators = sys.modules[f"{addon.__name__}.operators.reconstruct"]
    add_menu = bpy.types.VIEW3D_MT_add._dyn_ui_initialize()
    import_menu = bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()
    assert operators._menu_add_face_from_photo in add_menu
    assert operators._menu_import_face_from_photo in import_menu
    drawn: list[tuple[str, str]] = []

    class Layout:
        def operator(self, idname: str, text: str = "", icon: str = "NONE") -> None:
            drawn.append((idname, text))

    for entry in (operators._menu_add_face_from_photo, operators._menu_import_face_from_photo):
        entry(SimpleNamespace(layout=Layout()), bpy.context)
    assert drawn == [("object.reconstruct_face", "Face from Photo"),
                     ("object.reconstruct_face", "Face from Photo (3DDFA-V3)")]
    # F3 searches menus and registered operators by their label and description.
    rna = bpy.ops.object.reconstruct_face.get_rna_type()
    assert rna.name == "Reconstruct Face from Photo" and "3DDFA-V3" in rna.description
    # From a menu the photo comes from a file browser showing images (hidden filter options).
    assert rna.properties["filepath"].subtype == 'FILE_PATH'
    assert rna.properties["filter_image"].default and rna.properties["filter_image"].is_hidden


def test_backbone_names_come_from_the_core_table(addon: Any) -> None:
    from nv3dmm_face_tools.tddfa_v3.backbones import BACKBONE_TABLE

    preferences = sys.modules[f"{addon.__name__}.preferences"]
    bridge = _bridge_module()
    assert [item[0] for item in preferences.BACKBONE_ITEMS] == [b.identifier for b in BACKBONE_TABLE]
    assert bridge.BACKBONES == {b.identifier: b.name for b in BACKBONE_TABLE}
    assert "mbnetv3" not in bridge.BACKBONES.values()


def _folder_tool() -> Any:
    import importlib.util
    spec = importlib.util.spec_from_file_location("reconstruct_folder_tool", REPO_ROOT / "tools" / "reconstruct_folder.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_folder_tool_with_missing_assets_fails_once_and_writes_nothing(
        clean_scene: None, tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(photo, photos / "a.png")
    shutil.copy(photo, photos / "b.png")
    out = tmp_path / "faces.blend"
    status = _folder_tool().main(["reconstruct_folder.py", "--photos", str(photos), "--assets",
                                  str(tmp_path / "no_assets"), "--out", str(out), "--device", "CPU"])
    captured = capsys.readouterr()
    assert status == 3 and not out.exists()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: 3DDFA-V3 with backbone resnet50 cannot run")
    assert "Error:" not in captured.err and "a.png" not in captured.err + captured.out
    assert "retinaface_resnet50_2020-07-20_old_torch.pth" in lines[0]


def test_folder_tool_reports_each_failed_photo_once_with_the_core_message(
        clean_scene: None, tmp_path: Path, photo: Path, synthetic_assets: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    import shutil
    from PIL import Image
    from nv3dmm_face_tools.tddfa_v3 import preprocess
    from nv3dmm_face_tools.tddfa_v3.errors import PhotoError

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(photo, photos / "a.png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(photos / "one.png")
    with pytest.raises(PhotoError) as core:
        preprocess.load_photo(photos / "one.png")
    out = tmp_path / "faces.blend"
    status = _folder_tool().main(["reconstruct_folder.py", "--photos", str(photos), "--assets",
                                  str(synthetic_assets), "--out", str(out), "--device", "CPU", "--no-texture"])
    captured = capsys.readouterr()
    assert status == 1 and out.is_file()
    assert captured.err.strip().splitlines() == [f"one.png: FAILED: {core.value}"]
    assert "Error:" not in captured.out
    # The operator says the same sentence (Blender adds its "Error: " prefix only when printing).
    import bpy
    import re
    with pytest.raises(RuntimeError, match=re.escape(str(core.value))):
        bpy.ops.object.reconstruct_face(filepath=str(photos / "one.png"), assets_dir=str(synthetic_assets),
                                        device='CPU')


def test_a_tiny_blender_image_gets_the_cores_size_message(clean_scene: None, synthetic_assets: Path) -> None:
    import bpy
    from nv3dmm_face_tools.tddfa_v3.errors import PhotoError
    from nv3dmm_face_tools.tddfa_v3.preprocess import check_photo_size

    image = bpy.data.images.new("tiny", 1, 1)
    with pytest.raises(PhotoError) as core:
        check_photo_size(1, 1, f'the image "{image.name}"')
    before = len(bpy.data.objects)
    import re
    with pytest.raises(RuntimeError, match=re.escape(str(core.value))):
        bpy.ops.object.reconstruct_face(image_name=image.name, assets_dir=str(synthetic_assets), device='CPU')
    assert len(bpy.data.objects) == before


def test_the_bridge_knows_the_mps_device_and_its_failures(addon: Any) -> None:
    """(Moved from tests/core/test_tddfa_devices.py: it needs the bridge, so bpy.)"""
    import importlib
    bridge = importlib.import_module("nv3dmm_face_tools.bridge.reconstruction")
    assert bridge.DEVICES["MPS"] == "mps"     # (its failures: tests/core/test_tddfa_devices.py)
    preferences = importlib.import_module("nv3dmm_face_tools.preferences")
    assert [item[0] for item in preferences.DEVICE_ITEMS] == list(bridge.DEVICES)
