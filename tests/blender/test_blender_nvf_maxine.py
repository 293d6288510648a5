# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every .nvf the Blender exporter writes is read by NVIDIA's own reader with the
same data (issue 9), on every path the add-on writes: an imported real model,
an edited import, a mesh made in Blender (no PCA keys: zero modes), a mesh with
a colour attribute (a colour model), the demo model as tools/demo.py writes it,
and a 3DDFA-V3 reconstruction, whose identity keys become shape modes and its
expression keys blend shapes.

`nvidia_faceio.check(path)` (tests/nvidia_faceio.py) runs NVIDIA's reader through
both adapters and compares its counts and checksums with io_nv3dmm's; it skips,
saying why, without NVIDIA_FACEIO or a C++ compiler.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nv3dmm_face_tools import io_nv3dmm
from nv3dmm_face_tools.io_nv3dmm.maxine import maxine_problems

from tests.blender.scene_data import data_snapshot, dome_model, key_array, set_key_array

pytestmark = pytest.mark.blender

ADDON = "nv3dmm_face_tools"



def _bridge(name: str) -> Any:
    return importlib.import_module(f"{ADDON}.bridge.{name}")


def _export(obj: Any, path: Path) -> list[str]:
    warnings: list[str] = _bridge("nvf_export").export_nvf(obj, path)
    return warnings


def test_imported_real_model_and_an_edit_read_the_same_in_nvidia_s_reader(
        clean_scene: None, nvf_samples: Path, nvidia_faceio: Any, tmp_path: Path) -> None:
    import bpy

    source = nvf_samples / "face_model2.nvf"
    if not source.exists():
        pytest.skip(f"no face_model2.nvf in {nvf_samples}")
    bpy.ops.import_scene.nvf(filepath=str(source))
    obj = bpy.context.active_object
    same = tmp_path / "unedited.nvf"
    bpy.ops.export_scene.nvf(filepath=str(same))
    assert same.read_bytes() == source.read_bytes()
    original = nvidia_faceio.check(source)
    assert nvidia_faceio.check(same)["fnv1a64"] == original["fnv1a64"]

    # Edits: a moved Basis vertex, a renamed blend shape, a new blend shape, a removed mode.
    basis = key_array(obj, "Basis")
    basis[10] += np.array([0.002, 0.0, 0.001], np.float32)
    set_key_array(obj, "Basis", basis)
    blocks = obj.data.shape_keys.key_blocks
    blocks["jawOpen"].name = "jawOpenWide"
    obj.shape_key_remove(blocks["PCA.099"])
    added = obj.shape_key_add(name="mouthPucker_Extra", from_mix=False)
    moved = key_array(obj, "Basis")
    moved[:50, 2] += 0.001
    set_key_array(obj, added.name, moved)
    edited = tmp_path / "edited.nvf"
    _export(obj, edited)
    summary = nvidia_faceio.check(edited)
    model = io_nv3dmm.read(edited)
    assert model.mode_count == 99 and "jawOpenWide" in model.blend_shapes.names
    assert summary["fnv1a64"] != original["fnv1a64"]


def test_blender_mesh_without_modes_reads_in_nvidia_s_reader(clean_scene: None, nvidia_faceio: Any,
                                                              tmp_path: Path) -> None:
    """A mesh made in Blender with blend shapes but no PCA keys: zero shape modes
    (the case that crashed NVIDIA's reader with SIGFPE)."""
    import bpy

    bpy.ops.mesh.primitive_uv_sphere_add(segments=16, ring_count=8, radius=0.1)
    obj = bpy.context.active_object
    obj.shape_key_add(name="Basis")
    smile = obj.shape_key_add(name="mouthSmile_L", from_mix=False)
    moved = key_array(obj, "Basis")
    moved[:, 0] *= 1.2
    set_key_array(obj, smile.name, moved)
    obj.vertex_groups.new(name="IBUG.031").add([0], 1.0, 'REPLACE')
    out = tmp_path / "sphere.nvf"
    _export(obj, out)
    model = io_nv3dmm.read(out)
    assert model.mode_count == 0 and model.blend_shapes.names == ["mouthSmile_L"]
    summary = nvidia_faceio.check(out)
    assert summary["modes"] == 0

    # No shape keys, groups or materials at all: the barest mesh.
    bpy.ops.mesh.primitive_cube_add()
    bare = tmp_path / "cube.nvf"
    _export(bpy.context.active_object, bare)
    assert io_nv3dmm.read(bare).blend_shapes is None
    nvidia_faceio.check(bare)


def test_mesh_with_colour_attribute_reads_in_nvidia_s_reader(clean_scene: None, nvidia_faceio: Any,
                                                              tmp_path: Path) -> None:
    """`nvf_color` becomes a colour model with its mean only (zero colour modes)."""
    import bpy

    bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=2, radius=0.1)
    obj = bpy.context.active_object
    mesh = obj.data
    rgba = np.random.default_rng(4).random((len(mesh.vertices), 4)).astype(np.float32)
    rgba[:, 3] = 1.0
    attribute = mesh.color_attributes.new(name="nvf_color", type='FLOAT_COLOR', domain='POINT')
    attribute.data.foreach_set("color", rgba.ravel())
    out = tmp_path / "coloured.nvf"
    _export(obj, out)
    model = io_nv3dmm.read(out)
    assert model.color is not None and model.color.modes.shape[0] == 0
    np.testing.assert_array_equal(model.color.mean, rgba[:, :3])
    summary = nvidia_faceio.check(out)
    assert summary["vertices"] == len(mesh.vertices)


def test_demo_model_path_reads_in_nvidia_s_reader(clean_scene: None, nvidia_faceio: Any, tmp_path: Path) -> None:
    """tools/demo.py's path: the demo model written by the codec, imported, posed
    (key values) and exported again through the operator."""
    import bpy
    demo_model = pytest.importorskip("nv3dmm_face_tools.io_nv3dmm.demo_model")

    source = tmp_path / "demo_face.nvf"
    io_nv3dmm.write(demo_model.build_demo_model(), source)
    bpy.ops.import_scene.nvf(filepath=str(source))
    obj = bpy.context.active_object
    obj.data.shape_keys.key_blocks["mouthSmile_L"].value = 0.9
    exported = tmp_path / "demo_face_export.nvf"
    bpy.ops.export_scene.nvf(filepath=str(exported))
    assert exported.read_bytes() == source.read_bytes()
    nvidia_faceio.check(exported)

    # And the demo model with a colour model and without shape modes, edited so that it is re-encoded.
    variant = tmp_path / "demo_variant.nvf"
    io_nv3dmm.write(demo_model.build_demo_model(shape_modes=0, with_color=True, color_modes=0), variant)
    bpy.ops.import_scene.nvf(filepath=str(variant))
    obj = bpy.context.active_object
    basis = key_array(obj, "Basis")
    basis[0] += 0.001
    set_key_array(obj, "Basis", basis)
    edited = tmp_path / "demo_variant_edited.nvf"
    _export(obj, edited)
    assert io_nv3dmm.read(edited).mode_count == 0
    nvidia_faceio.check(edited)


# --- reconstructions ---------------------------------------------------------------------------


def _reconstruction(big: bool = False) -> Any:
    """A reconstruction built by the bridge from a hand-made result on the synthetic
    face model (tests/blender/reconstruction_output.make_output), no torch needed."""
    import bpy

    from tests.blender.reconstruction_output import _bridge_module, make_output

    bridge = _bridge_module()
    output = make_output(big=big)
    obj = bridge.build_reconstruction(bpy.context, output, bridge.ReconstructOptions(assets_dir="", name="Face"))
    return obj, output


def test_reconstruction_exports_identity_as_modes_and_expressions_as_blend_shapes(
        clean_scene: None, tmp_path: Path) -> None:
    import bpy

    obj, output = _reconstruction(big=True)
    bases = output.bases
    n_id, n_exp = bases.identity.shape[0], bases.expression.shape[0]
    before = data_snapshot()
    out = tmp_path / "face.nvf"
    bpy.context.view_layer.objects.active = obj
    warnings = _bridge("nvf_export").export_nvf(obj, out, _bridge("nvf_export").ExportOptions(apply_transform=False))
    assert data_snapshot() == before
    model = io_nv3dmm.read(out)
    assert model.vertex_count == bases.mean.shape[0]
    assert model.mode_count == n_id and len(model.blend_shapes.names) == n_exp
    assert model.blend_shapes.names == [f"EXP.{i:02d}" for i in range(n_exp)]
    # Model space (decimetres, y up, z to the camera) -> Blender metres -> .nvf centimetres, y up:
    # the face model's own arrays times 10, pre-scaled modes with eigenvalue 1 (the key scales of
    # coefficients beyond the slider range divided out again).
    np.testing.assert_allclose(model.shape.mean, bases.mean * 10.0, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(model.shape.modes, bases.identity * 10.0, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(model.blend_shapes.deltas, bases.expression * 10.0, rtol=1e-4, atol=2e-5)
    np.testing.assert_array_equal(model.shape.eigenvalues, np.ones(n_id, np.float32))
    # Every one of Maxine's 53 expressions is missing, and the warning names them all.
    warning = next(w for w in warnings if "of Maxine's 53" in w)
    assert warning.startswith("53 of Maxine's 53")
    assert all(name in warning for name in io_nv3dmm.MAXINE_EXPRESSIONS)
    assert model.ibug is not None and model.ibug.pairs.shape == (68, 2)


def test_reconstruction_export_reads_in_nvidia_s_reader(clean_scene: None, nvidia_faceio: Any,
                                                       tmp_path: Path) -> None:
    import bpy

    obj, output = _reconstruction()
    out = tmp_path / "reconstruction.nvf"
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.export_scene.nvf(filepath=str(out)) == {'FINISHED'}
    summary = nvidia_faceio.check(out)
    assert summary["modes"] == output.bases.identity.shape[0]
    assert summary["blend_shapes"] == output.bases.expression.shape[0]


def test_only_reconstructions_turn_id_keys_into_modes(clean_scene: None, tmp_path: Path) -> None:
    """On a mesh that is not a reconstruction, `ID.xx` / `EXP.xx` keys are ordinary
    blend shapes (the naming convention: only `PCA.<n>` keys are modes)."""
    import bpy

    bpy.ops.mesh.primitive_cube_add()
    obj = bpy.context.active_object
    obj.shape_key_add(name="Basis")
    for name in ("ID.00", "EXP.00"):
        key = obj.shape_key_add(name=name, from_mix=False)
        moved = key_array(obj, "Basis") * 1.5
        set_key_array(obj, key.name, moved)
    model = io_nv3dmm.read(_export_path(obj, tmp_path / "cube.nvf"))
    assert model.mode_count == 0 and model.blend_shapes.names == ["ID.00", "EXP.00"]


def _export_path(obj: Any, path: Path) -> Path:
    _export(obj, path)
    return path


# --- what NVIDIA's reader cannot take is never written ----------------------------------------------


def test_import_of_a_file_maxine_cannot_read_exports_one_it_can(clean_scene: None, nvidia_faceio: Any,
                                                               tmp_path: Path) -> None:
    """A file as older tools wrote it (a BSIS chunk of 0 modes; a top-level chunk
    NVIDIA's reader does not know) imports, and its unedited export is written
    again in a form NVIDIA's reader takes, with warnings, instead of byte for byte."""
    import bpy

    model = dome_model()
    model.shape.modes = np.zeros((0, model.vertex_count, 3), np.float32)
    model.shape.eigenvalues = np.zeros(0, np.float32)
    model.unknown_chunks = [io_nv3dmm.UnknownChunk(tag="XTRA", payload=b"abcd", parent="", position=2)]
    old = tmp_path / "old.nvf"
    io_nv3dmm.write(model, old, maxine=False)
    assert len(maxine_problems(old)) == 2
    bpy.ops.import_scene.nvf(filepath=str(old))
    out = tmp_path / "for_maxine.nvf"
    warnings = _export(bpy.context.active_object, out)
    assert any("could not be read by NVIDIA's Maxine reader" in w and "BSIS" in w for w in warnings)
    assert any("'XTRA'" in w and "left out" in w for w in warnings)
    assert maxine_problems(out) == []
    nvidia_faceio.check(out)
    again = io_nv3dmm.read(out)
    np.testing.assert_array_equal(again.shape.mean, model.shape.mean)
    assert again.blend_shapes.names == model.blend_shapes.names and again.mode_count == 0


def test_export_maxine_cannot_read_is_refused_with_what_to_change(clean_scene: None, tmp_path: Path) -> None:
    import bpy

    bpy.ops.mesh.primitive_cube_add()
    obj = bpy.context.active_object
    obj.data["nvf_ibug_right_contour"] = list(range(1, 10))      # 9 entries: Maxine's adapter holds 8
    before = data_snapshot()
    out = tmp_path / "never.nvf"
    with pytest.raises(RuntimeError, match="Maxine") as error:
        bpy.ops.export_scene.nvf(filepath=str(out))
    assert "nvf_ibug_right_contour" in str(error.value) and "at most 8" in str(error.value)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == []
    assert data_snapshot() == before
    obj.data["nvf_ibug_right_contour"] = list(range(1, 9))
    bpy.ops.export_scene.nvf(filepath=str(out))
    assert io_nv3dmm.read(out).ibug.right_contour.tolist() == list(range(1, 9))
