# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""A drawn clip (tests/video_clips.py) animated in Blender on the real bpy module: the
Animate from Video operator end to end, a cancelled job, and a Maxine model solved per
frame; synthetic 3DDFA-V3 weights, no downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("cv2", reason="OpenCV reads the videos (requirements-reconstruction.txt)")

from tests.video_clips import assets, clip, face_box, reconstructor, skin_detector  # noqa: E402,F401

pytestmark = pytest.mark.blender


def _curves(addon: Any, id_data: Any) -> dict[tuple[str, int], Any]:
    import importlib

    bridge = importlib.import_module(f"{addon.__name__}.bridge.animation")
    return {(c.data_path, c.array_index): c for c in bridge.find_fcurves(id_data)}


@pytest.mark.blender
def test_operator_reconstructs_and_animates_from_a_clip(clean_scene: None, addon: Any, clip: Path,
                                                        assets: Path, tmp_path: Path) -> None:
    import bpy

    bpy.context.scene.frame_start = 5
    result = bpy.ops.object.animate_from_video(
        filepath=str(clip), assets_dir=str(assets), device='CPU', backbone='MOBILENETV3', frame_start=0,
        frame_stop=5, batch_size=2, face_box=face_box())
    assert result == {'FINISHED'}
    obj = bpy.context.active_object
    scene = bpy.context.scene
    assert obj["tddfa_video"] == str(clip)
    assert (scene.render.fps, scene.render.fps_base) == (24, 1.0)
    assert (scene.frame_start, scene.frame_end) == (5, 9)
    key = obj.data.shape_keys
    curves = _curves(addon, key)
    frames = [5.0, 6.0, 7.0, 8.0, 9.0]
    # One key per tracked frame on each of the 64 expression keys and the 6 transform channels.
    assert sorted(p for p, _ in curves) == sorted(f'key_blocks["EXP.{i:02d}"].value' for i in range(64))
    for curve in curves.values():
        assert [p.co[0] for p in curve.keyframe_points] == frames
    transform = _curves(addon, obj)
    assert set(transform) == {(p, i) for p in ("location", "rotation_euler") for i in range(3)}
    assert all(len(c.keyframe_points) == 5 for c in transform.values())
    # The identity is one value for the whole clip: set, never keyed.
    scales = np.asarray(obj["tddfa_key_scales"])
    identity = [key.key_blocks[f"ID.{i:02d}"].value * scales[i] for i in range(80)]
    scene.frame_set(7)
    assert [key.key_blocks[f"ID.{i:02d}"].value * scales[i] for i in range(80)] == identity
    # The camera shows the clip, its first frame at the scene frame of video frame 0.
    camera = bpy.data.objects[obj["tddfa_camera"]].data
    background = camera.background_images[0]
    assert background.source == 'MOVIE_CLIP' and background.clip.frame_start == 5
    assert camera.show_background_images
    assert (scene.render.resolution_x, scene.render.resolution_y) == (160, 120)
    objects = len(bpy.data.objects)
    # Again with the reconstruction active: it is animated, nothing new is made.
    assert bpy.ops.object.animate_from_video(
        filepath=str(clip), assets_dir=str(assets), device='CPU', backbone='MOBILENETV3', frame_start=2,
        frame_stop=6, stride=2, face_box=face_box(2)) == {'FINISHED'}
    assert len(bpy.data.objects) == objects and bpy.context.active_object == obj
    assert [p.co[0] for p in _curves(addon, key)[('key_blocks["EXP.00"].value', 0)].keyframe_points] == [5.0, 7.0]


@pytest.mark.blender
def test_cancelled_job_keeps_frames_done_and_bad_targets(clean_scene: None, addon: Any, clip: Path,
                                                         assets: Path) -> None:
    import importlib
    import queue

    import bpy

    bridge = importlib.import_module(f"{addon.__name__}.bridge.animation")
    options = bridge.VideoOptions(filepath=str(clip), assets_dir=str(assets), device="cpu", backbone="mobilenetv3",
                                  stop=8, batch_size=2)
    job = bridge.VideoJob(options, reconstruct_reference=True, detector=skin_detector)

    class CancelAfterThree(queue.Queue):  # type: ignore[type-arg]
        def put(self, item: Any, block: bool = True, timeout: Any = None) -> None:
            super().put(item, block, timeout)
            if isinstance(item, bridge.VideoProgress) and item.done == 3:
                job.cancel()

    job.messages = CancelAfterThree()
    finished = bridge.run_video_sync(job)
    assert finished.track.cancelled and finished.track.frames.tolist() == [0, 1, 2]
    obj, message = bridge.animate_from_video(bpy.context, options, finished)
    assert "cancelled" in message
    curve = _curves(addon, obj.data.shape_keys)[('key_blocks["EXP.10"].value', 0)]
    assert len(curve.keyframe_points) == 3

    # A Maxine-keyed mesh that was not imported from an .nvf has no model to solve: a clear error,
    # nothing changed.
    mesh = bpy.data.meshes.new("Maxine")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    maxine = bpy.data.objects.new("Maxine", mesh)
    bpy.context.scene.collection.objects.link(maxine)
    maxine.shape_key_add(name="Basis")
    maxine.shape_key_add(name="jawOpen")
    bpy.context.view_layer.objects.active = maxine
    count = len(bpy.data.objects)
    with pytest.raises(RuntimeError, match="not imported from an .nvf model"):
        bpy.ops.object.animate_from_video(filepath=str(clip), assets_dir=str(assets), device='CPU')
    assert len(bpy.data.objects) == count and maxine.data.shape_keys.animation_data is None


@pytest.mark.blender
def test_a_failure_outside_the_core_is_a_bridge_error_with_the_reported_text(addon: Any, clip: Path,
                                                                            assets: Path) -> None:
    """run_video_sync (the operator's script path) raises only BridgeErrors: a torch-style
    RuntimeError in the worker comes out as AnimationBridgeError with the text the
    interactive run reports, never as a traceback."""
    import importlib

    bridge = importlib.import_module(f"{addon.__name__}.bridge.animation")
    options = bridge.VideoOptions(filepath=str(clip), assets_dir=str(assets), device="cpu", backbone="mobilenetv3")

    def broken(_options: Any) -> Any:
        raise RuntimeError("CUDA error: out of memory")

    with pytest.raises(bridge.AnimationBridgeError, match="^CUDA error: out of memory$") as raised:
        bridge.run_video_sync(bridge.VideoJob(options, reconstruct_reference=False, reconstructor_factory=broken))
    assert isinstance(raised.value.__cause__, RuntimeError)


@pytest.mark.blender
def test_operator_solves_a_maxine_model_per_frame(clean_scene: None, addon: Any, clip: Path, assets: Path,
                                                  tmp_path: Path) -> None:
    import bpy

    from nv3dmm_face_tools import io_nv3dmm
    from nv3dmm_face_tools.io_nv3dmm import MAXINE_EXPRESSIONS
    from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model

    source = tmp_path / "demo.nvf"
    io_nv3dmm.write(build_demo_model(), source)
    assert bpy.ops.import_scene.nvf(filepath=str(source)) == {'FINISHED'}
    face = bpy.context.active_object
    face.data.shape_keys.key_blocks["PCA.000"].value = 0.5          # its identity: kept fixed
    objects = len(bpy.data.objects)
    assert bpy.ops.object.animate_from_video(
        filepath=str(clip), assets_dir=str(assets), device='CPU', backbone='MOBILENETV3', frame_stop=3,
        face_box=face_box(), smoothing=False) == {'FINISHED'}
    assert len(bpy.data.objects) == objects and bpy.context.active_object == face
    curves = _curves(addon, face.data.shape_keys)
    assert sorted(p for p, _ in curves) == sorted(f'key_blocks["{n}"].value' for n in MAXINE_EXPRESSIONS)
    values = []
    for curve in curves.values():
        assert [p.co[0] for p in curve.keyframe_points] == [1.0, 2.0, 3.0]
        values += [p.co[1] for p in curve.keyframe_points]
    assert min(values) >= 0.0 and max(values) <= 1.0                 # bounded weights
    assert face.data.shape_keys.key_blocks["PCA.000"].value == 0.5
    assert len(_curves(addon, face)[('["HeadYaw"]', 0)].keyframe_points) == 3
