# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Animation in Blender (the real bpy module): bulk keyframes equal keyframe_insert's,
on 4.2's Action.fcurves and on 4.4+/5.0 layered actions; Live Link Face CSV import
and export through the operators.

Run on the oldest supported Blender too: tools/test.sh runs this file with the
bpy 4.2 module in .venv-bpy42.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nv3dmm_face_tools.animation import ARKIT_SHAPES, HEAD_EYE_ANGLES, Take, read_csv, write_csv
from nv3dmm_face_tools.animation.live_link import format_timecode, to_text
from nv3dmm_face_tools.io_nv3dmm import MAXINE_EXPRESSIONS
from tests.blender.ui_layout import RecordingLayout

bpy = pytest.importorskip("bpy", reason="the bpy module (pip install bpy==5.0.1) is needed for Blender tests")
pytestmark = pytest.mark.blender

_KEY_FIELDS = ("co", "handle_left", "handle_right")
_KEY_ENUMS = ("interpolation", "handle_left_type", "handle_right_type", "type", "easing")


def _bridge(addon: Any) -> Any:
    import importlib

    return importlib.import_module(f"{addon.__name__}.bridge.animation")


def _mesh_with_keys(names: list[str], name: str = "Face") -> Any:
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    obj.shape_key_add(name="Basis")
    for key_name in names:
        block = obj.shape_key_add(name=key_name, from_mix=False)
        block.value = 0.0          # 5.0 starts new keys at 1.0
        block.data[0].co = (0.0, 0.0, 0.1)
    return obj


def _keys(fcurve: Any) -> list[tuple[Any, ...]]:
    return [tuple(tuple(getattr(p, f)) for f in _KEY_FIELDS) + tuple(getattr(p, e) for e in _KEY_ENUMS)
            for p in fcurve.keyframe_points]


def _curve(bridge: Any, id_data: Any, path: str, index: int = 0) -> Any:
    found = [c for c in bridge.find_fcurves(id_data) if c.data_path == path and c.array_index == index]
    assert len(found) == 1, f"{path}[{index}]: {len(found)} curves"
    return found[0]


def test_bulk_keys_equal_keyframe_insert(clean_scene: None, addon: Any) -> None:
    bridge = _bridge(addon)
    frames = np.array([1.0, 2.5, 4.0, 7.0, 8.0, 12.0])
    values = np.array([0.1, 0.7, 0.2, 0.9, 0.9, 0.3])   # inside the key's 0..1 slider
    inserted = _mesh_with_keys(["jawOpen"], "Inserted")
    bulk = _mesh_with_keys(["jawOpen"], "Bulk")
    block = inserted.data.shape_keys.key_blocks["jawOpen"]
    for f, v in zip(frames, values):
        block.value = float(v)
        block.keyframe_insert("value", frame=float(f))
        inserted.location = (float(v), 0.0, float(-v))
        inserted.keyframe_insert("location", frame=float(f))
    path = bridge.shape_key_path("jawOpen")
    bridge.write_channels([bridge.Channel(bulk.data.shape_keys, path, 0, frames, values)]
                          + [bridge.Channel(bulk, "location", i, frames, values * s) for i, s in ((0, 1), (1, 0), (2, -1))])
    pairs = [(_curve(bridge, inserted.data.shape_keys, path), _curve(bridge, bulk.data.shape_keys, path))]
    pairs += [(_curve(bridge, inserted, "location", i), _curve(bridge, bulk, "location", i)) for i in range(3)]
    for want, got in pairs:
        assert _keys(got) == _keys(want)
        for f in np.linspace(0, 13, 53):
            assert got.evaluate(f) == want.evaluate(f)
    # The keys animate the value (4.4's trap: a curve outside the slot animates nothing).
    scene = bpy.context.scene
    for f, v in zip(frames, values):
        scene.frame_set(int(f), subframe=float(f) % 1)
        assert bulk.data.shape_keys.key_blocks["jawOpen"].value == pytest.approx(v, abs=1e-6)
        assert bulk.location.z == pytest.approx(-v, abs=1e-6)


def test_bulk_keys_replace_and_reuse_existing_curves(clean_scene: None, addon: Any) -> None:
    bridge = _bridge(addon)
    obj = _mesh_with_keys(["jawOpen"])
    block = obj.data.shape_keys.key_blocks["jawOpen"]
    block.value = 0.5
    block.keyframe_insert("value", frame=3)
    path = bridge.shape_key_path("jawOpen")
    bridge.write_channels([bridge.Channel(obj.data.shape_keys, path, 0, np.array([1.0, 2.0]), np.array([0.2, 0.4]))])
    curve = _curve(bridge, obj.data.shape_keys, path)
    assert [tuple(p.co) for p in curve.keyframe_points] == [(1.0, pytest.approx(0.2)), (2.0, pytest.approx(0.4))]
    with pytest.raises(bridge.AnimationBridgeError, match="increase"):
        bridge.set_keys(curve, np.array([2.0, 1.0]), np.array([0.0, 0.0]))
    with pytest.raises(bridge.AnimationBridgeError, match="NaN"):
        bridge.set_keys(curve, np.array([1.0]), np.array([np.nan]))


def _take(rows: int = 12) -> Take:
    rng = np.random.default_rng(3)
    start = ((10 * 60 + 4) * 60 + 2) * 60 + 7
    return Take(timecodes=[format_timecode(start + i * 0.5, 60) for i in range(rows)],
                shapes=np.round(rng.uniform(0, 1, (rows, 52)), 6),
                angles=np.round(rng.uniform(-0.4, 0.4, (rows, 9)), 6), decimals=6)


def _set_fps(fps: int) -> None:
    bpy.context.scene.render.fps = fps
    bpy.context.scene.render.fps_base = 1.0


def test_csv_onto_maxine_model_and_back_is_exact(clean_scene: None, addon: Any, tmp_path: Path) -> None:
    bridge = _bridge(addon)
    obj = _mesh_with_keys(["PCA.000", *MAXINE_EXPRESSIONS])
    take = _take()
    source = tmp_path / "take.csv"
    write_csv(take, source)
    _set_fps(30)
    bpy.context.scene.frame_start = 10
    result = bpy.ops.import_anim.live_link_face(filepath=str(source), timecode_rate="60")
    assert result == {'FINISHED'}
    scene = bpy.context.scene
    # 60 fps timecodes with half sub-frames, placed at 30 fps: a row every quarter frame.
    assert (scene.frame_start, scene.frame_end) == (10, 13)
    shape_keys = obj.data.shape_keys
    curve = _curve(bridge, shape_keys, bridge.shape_key_path("browInnerUp_R"))
    frames, values = bridge.key_arrays(curve)
    assert np.allclose(frames, 10 + np.arange(12) * 0.25)
    column = ARKIT_SHAPES.index("browInnerUp")
    assert np.allclose(values, take.shapes[:, column], atol=1e-7)
    assert not any("tongue" in c.data_path for c in bridge.find_fcurves(shape_keys))
    assert "PCA.000" not in str([c.data_path for c in bridge.find_fcurves(shape_keys)])
    scene.frame_set(11)
    assert shape_keys.key_blocks["eyeBlink_L"].value == pytest.approx(take.shapes[4, 0], abs=1e-6)
    assert obj["HeadYaw"] == pytest.approx(take.angles[4, HEAD_EYE_ANGLES.index("HeadYaw")], abs=1e-6)
    out = tmp_path / "back.csv"
    assert bpy.ops.export_anim.live_link_face(filepath=str(out)) == {'FINISHED'}
    # tongueOut is not on a Maxine model: it comes back 0; everything else to the file's precision.
    expected = Take(take.timecodes, take.shapes.copy(), take.angles, take.decimals)
    expected.shapes[:, ARKIT_SHAPES.index("tongueOut")] = 0.0
    assert out.read_text() == to_text(expected)


def test_csv_onto_arkit_rig_keeps_tongue_and_round_trips(clean_scene: None, addon: Any, tmp_path: Path) -> None:
    _mesh_with_keys(list(ARKIT_SHAPES))
    take = _take(rows=5)
    source = tmp_path / "take.csv"
    write_csv(take, source)
    _set_fps(60)
    assert bpy.ops.import_anim.live_link_face(filepath=str(source)) == {'FINISHED'}
    out = tmp_path / "back.csv"
    assert bpy.ops.export_anim.live_link_face(filepath=str(out)) == {'FINISHED'}
    assert out.read_text() == source.read_text()
    assert read_csv(out).shapes[:, -1].tolist() == take.shapes[:, -1].tolist()


def _scene_state(obj: Any) -> tuple[Any, ...]:
    key = obj.data.shape_keys
    return (key.animation_data is None, obj.animation_data is None, sorted(obj.keys()),
            bpy.context.scene.frame_start, bpy.context.scene.frame_end, len(bpy.data.actions))


@pytest.mark.parametrize("damage, message", [
    (lambda text: text.replace("EyeBlinkLeft", "EyeBlink"), "lacks the column"),
    (lambda text: text.replace(",61,", ",60,", 1), "BlendShapeCount"),
    (lambda text: re.sub(r",0\.\d+", ",nan", text, count=1), "not a finite"),
    (lambda text: text.replace(",0.", ",x.", 1), "not a number"),
])
def test_bad_csv_changes_nothing(clean_scene: None, addon: Any, tmp_path: Path, damage: Any, message: str) -> None:
    obj = _mesh_with_keys(list(MAXINE_EXPRESSIONS))
    source = tmp_path / "bad.csv"
    source.write_text(damage(to_text(_take(rows=4))))
    before = _scene_state(obj)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.import_anim.live_link_face(filepath=str(source))
    assert _scene_state(obj) == before


def test_mesh_without_arkit_keys_and_export_without_keys(clean_scene: None, addon: Any, tmp_path: Path) -> None:
    source = tmp_path / "take.csv"
    write_csv(_take(rows=3), source)
    obj = _mesh_with_keys(["smile", "PCA.000"])
    before = _scene_state(obj)
    with pytest.raises(RuntimeError, match="no shape keys with ARKit names"):
        bpy.ops.import_anim.live_link_face(filepath=str(source))
    assert _scene_state(obj) == before
    _mesh_with_keys(list(MAXINE_EXPRESSIONS), "Still")
    with pytest.raises(RuntimeError, match="no keyframes"):
        bpy.ops.export_anim.live_link_face(filepath=str(tmp_path / "out.csv"))
    assert not (tmp_path / "out.csv").exists()


def test_file_menus_offer_the_operators(addon: Any) -> None:
    import importlib

    module = importlib.import_module(f"{addon.__name__}.operators.animation")
    assert module._menu_import in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()
    assert module._menu_export in bpy.types.TOPBAR_MT_file_export._dyn_ui_initialize()


def test_sidebar_panel_draws_and_passes_its_settings(clean_scene: None, addon: Any) -> None:
    import importlib
    from types import SimpleNamespace

    panels = importlib.import_module(f"{addon.__name__}.panels.animation")
    assert panels.VIEW3D_PT_nv3dmm_animation.bl_category == "Face"
    settings = bpy.context.scene.nv3dmm_animation
    settings.filepath = "/videos/take.mp4"
    settings.frame_start, settings.frame_stop, settings.stride = 10, 50, 2
    settings.device = 'CPU'
    log: dict[str, list[Any]] = {"labels": [], "props": [], "operators": []}
    panels.VIEW3D_PT_nv3dmm_animation.draw(SimpleNamespace(layout=RecordingLayout(log)), bpy.context)
    assert {"filepath", "frame_start", "stride", "min_cutoff", "beta", "device"} <= set(log["props"])
    ops = dict((idname, op) for idname, op in log["operators"])
    # (plus an install button where PyTorch/OpenCV are missing, as in the bpy 4.2 test venv)
    assert {"object.animate_from_video", "import_anim.live_link_face", "export_anim.live_link_face"} <= set(ops)
    video = ops["object.animate_from_video"]
    assert (video.filepath, video.frame_start, video.frame_stop, video.stride, video.device) == \
        ("/videos/take.mp4", 10, 50, 2, 'CPU')
    assert not hasattr(video, "backbone")            # 'Default': the preferences decide
    assert "Makes a face from the clip" in log["labels"]
    _mesh_with_keys(list(MAXINE_EXPRESSIONS))
    log = {"labels": [], "props": [], "operators": []}
    panels.VIEW3D_PT_nv3dmm_animation.draw(SimpleNamespace(layout=RecordingLayout(log)), bpy.context)
    assert "Animates the blend shapes of Face" in log["labels"]
