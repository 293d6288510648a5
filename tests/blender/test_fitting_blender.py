# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make Maxine Model in Blender (the real `bpy` module): the operator and the bridge on a
reconstruction object whose surface is a known target (fitting.ground_truth), so where the
personal model lands can be checked; its keys, export, errors and the worker."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("scipy", reason="the fitting layer needs SciPy")

from nv3dmm_face_tools import io_nv3dmm  # noqa: E402
from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model  # noqa: E402

from nv3dmm_face_tools.fitting.ground_truth import GroundTruth, make_target  # noqa: E402
from tests import helpers  # noqa: E402
from tests.blender.ui_layout import draw_panel  # noqa: E402

#: A world placement for the reconstruction object (a turn and a shift), so that the
#: personal model has to follow it.
_TURN = 0.3


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return helpers.demo_nvf(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def truth() -> GroundTruth:
    # The demo model's modes are large: a third of their spread (see test_fitting.SPREAD).
    return make_target(build_demo_model(), 60, scale_range=(1.0, 1.0), coefficient_scale=0.35)


def _world() -> np.ndarray:
    c, s = np.cos(_TURN), np.sin(_TURN)
    matrix = np.eye(4)
    matrix[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    matrix[:3, 3] = [0.5, -1.0, 0.2]
    return matrix


def _to_blender(points: np.ndarray) -> np.ndarray:
    """NVIDIA axes, centimetres -> Blender axes, metres (the .nvf import convention)."""
    return np.stack([points[:, 0], -points[:, 2], points[:, 1]], axis=1) * 0.01


def _reconstruction(truth: GroundTruth) -> Any:
    """A mesh object marked as a reconstruction, its local surface the target; its 68 landmark
    vertices (as a reconstruction keeps them) are the true landmarks, added as loose vertices."""
    import bpy
    import mathutils

    marks = np.array([truth.landmarks[n] for n in range(1, 69)])
    local = _to_blender(np.concatenate([truth.vertices, marks]))
    mesh = bpy.data.meshes.new("face")
    mesh.from_pydata(local.tolist(), [], truth.triangles.tolist())
    obj = bpy.data.objects.new("face", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj["tddfa_v3"] = 1
    obj["tddfa_landmarks_68"] = list(range(truth.vertices.shape[0], truth.vertices.shape[0] + 68))
    obj.matrix_world = mathutils.Matrix(_world().tolist())
    bpy.context.view_layer.objects.active = obj
    return obj


def _world_vertices(obj: Any) -> np.ndarray:
    import bpy

    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    points = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", points)
    evaluated.to_mesh_clear()
    local = points.reshape(-1, 3).astype(np.float64)
    matrix = np.array(obj.matrix_world, dtype=np.float64)
    result: np.ndarray = local @ matrix[:3, :3].T + matrix[:3, 3]
    return result


def test_operator_makes_the_personal_model_on_the_reconstruction(clean_scene: None, demo_file: Path,
                                                                  truth: GroundTruth, tmp_path: Path,
                                                                  nvidia_faceio: Any) -> None:
    import bpy

    _reconstruction(truth)
    assert bpy.ops.object.make_maxine_model(filepath=str(demo_file)) == {'FINISHED'}
    obj = bpy.context.view_layer.objects.active
    assert obj.name == "face Maxine" and obj["nv3dmm_fit_source"] == "face"
    keys = obj.data.shape_keys.key_blocks
    model = build_demo_model()
    assert [k.name for k in keys][1:] == [f"PCA.{i:03d}" for i in range(model.mode_count)] \
        + list(io_nv3dmm.MAXINE_EXPRESSIONS)
    report = json.loads(obj["nv3dmm_fit_report"])
    for name, value in report["expression_weights"].items():
        assert keys[name].value == pytest.approx(value, abs=1e-6)
    assert all(keys[f"PCA.{i:03d}"].value == 0.0 for i in range(model.mode_count))   # identity is in the mean
    # Where it lands: on the true face (in the reconstruction's world placement), in cm.
    placed = _world_vertices(obj)
    world = _world()
    expected = _to_blender(truth.scale * truth.truth @ truth.rotation.T + truth.translation)
    expected = expected @ world[:3, :3].T + world[:3, 3]
    error_cm = 100.0 * np.linalg.norm(placed - expected, axis=1).mean()
    assert error_cm <= 0.15, error_cm
    # It exports with the .nvf exporter, and NVIDIA's reader takes the file.
    out = tmp_path / "me.nvf"
    assert bpy.ops.export_scene.nvf(filepath=str(out)) == {'FINISHED'}
    exported = io_nv3dmm.read(out)
    assert exported.blend_shapes is not None and exported.blend_shapes.names == list(io_nv3dmm.MAXINE_EXPRESSIONS)
    nvidia_faceio.check(out)


def test_a_model_object_and_the_bridge_headless(clean_scene: None, demo_file: Path, truth: GroundTruth) -> None:
    import bpy

    from nv3dmm_face_tools.bridge import fitting as bridge  # the add-on's own import name

    assert bpy.ops.import_scene.nvf(filepath=str(demo_file)) == {'FINISHED'}
    imported = bpy.context.view_layer.objects.active
    recon = _reconstruction(truth)
    before = len(bpy.data.objects)
    obj = bridge.make_maxine_model(bpy.context, bridge.MakeModelOptions(model_object=imported.name, residual=False,
                                                                        name="Me"))
    assert obj.name == "Me" and len(bpy.data.objects) == before + 1
    assert json.loads(obj["nv3dmm_fit_report"])["max_residual"] == 0.0
    landmarks_only = bridge.make_maxine_model(bpy.context, bridge.MakeModelOptions(
        model_path=str(demo_file), landmarks_only=True), reconstruction=recon)
    report = json.loads(landmarks_only["nv3dmm_fit_report"])
    assert report["dense_matched_vertices"] == 0 and report["mean_landmark_error"] < 0.5


def test_errors_leave_the_scene_unchanged(clean_scene: None, demo_file: Path, truth: GroundTruth,
                                          tmp_path: Path) -> None:
    import bpy

    with pytest.raises(RuntimeError, match="reconstruction active"):
        bpy.ops.object.make_maxine_model(filepath=str(demo_file))
    recon = _reconstruction(truth)
    counts = (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.materials))
    not_nvf = tmp_path / "model.nvf"
    not_nvf.write_bytes(b"JUNK" * 8)
    for kwargs, message in [(dict(filepath=str(not_nvf)), "not an NVIDIA 3DMM"),
                            (dict(), "choose the .nvf model"),
                            (dict(model_object="face"), "was not imported from an .nvf")]:
        with pytest.raises(RuntimeError, match=message):
            bpy.ops.object.make_maxine_model(**kwargs)
        assert (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.materials)) == counts
    # A reconstruction whose kept landmarks no longer fit its mesh.
    recon["tddfa_landmarks_68"] = [10 ** 6] * 68
    with pytest.raises(RuntimeError, match="landmark indices"):
        bpy.ops.object.make_maxine_model(filepath=str(demo_file))
    assert (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.materials)) == counts


def test_an_unexpected_failure_is_a_fitting_bridge_error_on_both_paths(clean_scene: None, demo_file: Path,
                                                                       truth: GroundTruth,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's script path (execute calls compute_fit itself) reports an unexpected error
    as the worker does, never as a traceback."""
    import bpy

    bridge = sys.modules["nv3dmm_face_tools.bridge.fitting"]
    _reconstruction(truth)

    def singular(*args: Any, **kwargs: Any) -> Any:
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(bridge.fitting, "fit_model", singular)
    data = bridge.prepare_fit(bpy.context, bridge.MakeModelOptions(model_path=str(demo_file)))
    with pytest.raises(bridge.FittingBridgeError, match="^the fit failed: LinAlgError: Singular matrix$"):
        bridge.compute_fit(data)
    counts = (len(bpy.data.objects), len(bpy.data.meshes))
    with pytest.raises(RuntimeError, match="the fit failed: LinAlgError: Singular matrix"):
        bpy.ops.object.make_maxine_model(filepath=str(demo_file))
    assert (len(bpy.data.objects), len(bpy.data.meshes)) == counts


def test_the_worker_runs_off_the_main_thread(clean_scene: None, demo_file: Path, truth: GroundTruth) -> None:
    import threading

    import bpy

    bridge = sys.modules["nv3dmm_face_tools.bridge.fitting"]
    _reconstruction(truth)
    data = bridge.prepare_fit(bpy.context, bridge.MakeModelOptions(model_path=str(demo_file)))
    seen: list[str] = []
    original = bridge.compute_fit

    def spy(*args: Any) -> Any:
        seen.append(threading.current_thread().name)
        return original(*args)

    bridge.compute_fit = spy
    try:
        job = bridge.FitJob(data)
        job.start()
        deadline = time.monotonic() + 120
        while not job.done and time.monotonic() < deadline:
            time.sleep(0.05)
        output = job.result()
    finally:
        bridge.compute_fit = original
    assert seen and seen[0].startswith("nv3dmm-fit") and job.fraction >= 0.8
    obj = bridge.build_personal_model(bpy.context, data, output)
    assert obj.name == "face Maxine"


def test_sidebar_panel_draws_and_passes_its_settings(clean_scene: None, demo_file: Path, truth: GroundTruth,
                                                     addon: Any) -> None:
    """The Maxine Model panel (its draw code runs headless only here): the source switch,
    the file or the imported model, Detail, the button enabled only with a reconstruction
    and a model, the button's settings, and the progress line while a fit runs."""
    import importlib

    import bpy

    panels = importlib.import_module(f"{addon.__name__}.panels.fitting")
    panel = panels.VIEW3D_PT_nv3dmm_fitting
    assert panel.bl_category == "Face"
    settings = bpy.context.scene.nv3dmm_fitting

    log = draw_panel(panel, bpy.context)          # nothing yet: no reconstruction, no file
    assert {"source", "filepath", "residual"} <= set(log["props"]) and "model_object" not in log["props"]
    assert "Make a reconstruction active" in log["labels"]
    assert log["enabled"] == [("object.make_maxine_model", False)]

    settings.filepath, settings.residual = str(demo_file), False
    log = draw_panel(panel, bpy.context)          # a model but no reconstruction
    assert "Make a reconstruction active" in log["labels"]
    assert log["enabled"] == [("object.make_maxine_model", False)]

    _reconstruction(truth)
    log = draw_panel(panel, bpy.context)
    assert "Make a reconstruction active" not in log["labels"]
    assert log["enabled"] == [("object.make_maxine_model", True)]
    ((idname, op),) = log["operators"]
    assert (op.filepath, op.model_object, op.residual) == (str(demo_file), "", False)

    recon = bpy.context.view_layer.objects.active
    assert bpy.ops.import_scene.nvf(filepath=str(demo_file)) == {'FINISHED'}
    imported = bpy.context.view_layer.objects.active
    bpy.context.view_layer.objects.active = recon
    settings.source = 'OBJECT'
    log = draw_panel(panel, bpy.context)
    assert "model_object" in log["props"] and log["enabled"] == [("object.make_maxine_model", False)]
    settings.model_object = imported
    log = draw_panel(panel, bpy.context)
    ((idname, op),) = log["operators"]
    assert log["enabled"] == [("object.make_maxine_model", True)]
    assert (op.filepath, op.model_object) == ("", imported.name)

    state = sys.modules[f"{addon.__name__}.operators.fitting"].RUN_STATE
    state.begin()
    try:
        state.stage, state.fraction = "fitting", 0.5
        log = draw_panel(panel, bpy.context)
    finally:
        state.reset()
    assert log["operators"] == [] and "fitting: 50%  (Esc cancels)" in log["labels"]
