# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Blender import/export of .nvf (GitHub issue 3) on the real `bpy` module.

Models are built here in code (a small dome with every object the format has,
the embedded demo model, user meshes made with Blender's own primitives);
the real files in NVF_SAMPLES are round-tripped when that folder is given.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nv3dmm_face_tools import io_nv3dmm
from nv3dmm_face_tools.io_nv3dmm import FaceModel, LandmarkSet, build_topology

pytestmark = pytest.mark.blender

ADDON = "nv3dmm_face_tools"


def _bridge(name: str) -> Any:
    return importlib.import_module(f"{ADDON}.bridge.{name}")


from tests.blender.scene_data import (  # noqa: E402  (shared with the other Blender .nvf tests)
    data_snapshot, dome_file, dome_model, group_members, key_array, set_key_array,
)


# --- import ---------------------------------------------------------------------------


def test_import_creates_keys_groups_materials(clean_scene: None, dome_file: Path) -> None:
    import bpy

    bpy.ops.import_scene.nvf(filepath=str(dome_file))
    obj = bpy.context.active_object
    assert obj is not None and obj.name == "dome" and obj.type == 'MESH'
    mesh = obj.data
    model = dome_model()
    assert len(mesh.vertices) == model.vertex_count and len(mesh.polygons) == model.triangle_count

    # Coordinates: (x, y, z) cm -> (x, -z, y) m.
    basis = key_array(obj, "Basis")
    expected = np.stack([model.shape.mean[:, 0], -model.shape.mean[:, 2], model.shape.mean[:, 1]], 1) * 0.01
    np.testing.assert_allclose(basis, expected, rtol=1e-6)

    blocks = mesh.shape_keys.key_blocks
    names = [b.name for b in blocks]
    assert names == ["Basis", "PCA.000", "PCA.001", "PCA.002", "jawOpen", "mouthSmile_L", "eyeBlink_R"]
    assert all(b.value == 0.0 for b in blocks)
    assert [(b.slider_min, b.slider_max) for b in blocks[1:4]] == [(-10.0, 10.0)] * 3
    assert [(b.slider_min, b.slider_max) for b in blocks[4:]] == [(0.0, 1.0)] * 3
    assert all(b.relative_key.name == "Basis" and not b.mute for b in blocks)
    assert mesh.shape_keys.animation_data is None  # plain keys, no drivers
    mode1 = key_array(obj, "PCA.001") - basis
    d = model.shape.modes[1]
    np.testing.assert_allclose(mode1, np.stack([d[:, 0], -d[:, 2], d[:, 1]], 1) * 0.01, atol=1e-7)
    assert list(mesh["nvf_eigenvalues"]) == [0.5, 2.0, 1.0]

    groups = group_members(obj)
    assert groups["IBUG.031"] == [14] and groups["IBUG.009"] == [3] and groups["NVLM.017"] == [5]
    assert [groups[f"MCTR.R.{i:02d}"] for i in range(3)] == [[0], [6], [12]]
    assert groups["MCTR.L.01"] == [11]
    assert "PART.000.Skin" in groups and "PART.001.Lips" in groups
    assert list(mesh["nvf_ibug_right_contour"]) == [1, 2, 3]
    assert list(mesh["nvf_nvlm_left_contour"]) == [18]

    assert [m.name for m in mesh.materials] == ["Skin", "LipMat"]
    assert tuple(round(c, 3) for c in mesh.materials[1].diffuse_color) == (0.6, 0.2, 0.2, 1.0)
    slots = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("material_index", slots)
    half = model.partitions[1].face_start
    assert (slots[:half] == 0).all() and (slots[half:] == 1).all()

    assert mesh.uv_layers.active.name == "UVMap"
    colors = _bridge("mesh").read_point_colors(mesh, "nvf_color")
    np.testing.assert_array_equal(colors[:, :3], model.color.mean)
    assert mesh.validate() is False  # nothing to fix


def test_imported_shape_keys_are_keyframeable(clean_scene: None, dome_file: Path) -> None:
    """PCA keys take signed values and both kinds animate: keyframes on `value`
    drive the key over the timeline."""
    import bpy

    bpy.ops.import_scene.nvf(filepath=str(dome_file))
    obj = bpy.context.active_object
    blocks = obj.data.shape_keys.key_blocks
    mode, blend = blocks["PCA.002"], blocks["jawOpen"]
    for frame, mode_value, blend_value in ((1, -3.5, 0.0), (11, 2.0, 1.0)):
        mode.value, blend.value = mode_value, blend_value
        assert mode.keyframe_insert("value", frame=frame)
        assert blend.keyframe_insert("value", frame=frame)
    action = obj.data.shape_keys.animation_data.action
    assert action is not None
    scene = bpy.context.scene
    scene.frame_set(1)
    assert (mode.value, blend.value) == (-3.5, 0.0)
    scene.frame_set(6)
    assert -3.5 < mode.value < 2.0 and 0.0 < blend.value < 1.0
    scene.frame_set(11)
    assert (mode.value, blend.value) == (2.0, 1.0)


def test_ui_registration_menus_undo_presets_drop(addon: Any) -> None:
    """File > Import/Export entries, undo and presets on the operators, and the
    drag-and-drop handler for .nvf (the 3D Viewport and the Outliner: test_blender_nvf_files)."""
    import bpy
    from types import SimpleNamespace

    importer, exporter = bpy.types.IMPORT_SCENE_OT_nvf, bpy.types.EXPORT_SCENE_OT_nvf
    assert {'UNDO', 'PRESET'} <= importer.bl_options and 'PRESET' in exporter.bl_options
    import_menu = [f.__name__ for f in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()]
    export_menu = [f.__name__ for f in bpy.types.TOPBAR_MT_file_export._dyn_ui_initialize()]
    assert "_menu_import" in import_menu and "_menu_export" in export_menu
    handler = bpy.types.NVF_FH_import
    assert handler.bl_import_operator == "import_scene.nvf" and handler.bl_file_extensions == ".nvf"
    assert handler.poll_drop(SimpleNamespace(area=SimpleNamespace(type='VIEW_3D')))
    assert not handler.poll_drop(SimpleNamespace(area=SimpleNamespace(type='IMAGE_EDITOR')))
    props = bpy.ops.import_scene.nvf.get_rna_type().properties
    assert {"files", "directory", "scale", "convert_axes", "shape_keys", "landmarks", "partitions",
            "mtl_colors"} <= {p.identifier for p in props}


def test_import_by_magic_and_multi_file(clean_scene: None, dome_file: Path, tmp_path: Path) -> None:
    import bpy

    renamed = tmp_path / "face.bin"
    renamed.write_bytes(dome_file.read_bytes())
    bpy.ops.import_scene.nvf(directory=str(tmp_path), files=[{"name": "dome.nvf"}, {"name": "face.bin"}])
    assert sorted(o.name for o in bpy.data.objects) == ["dome", "face"]
    assert {m.name for m in bpy.data.materials} == {"Skin", "LipMat", "Skin.001", "LipMat.001"}
    # "Skin.001" is still "Skin" in the file: the second copy exports byte-identical too.
    out = tmp_path / "second.nvf"
    _bridge("nvf_export").export_nvf(bpy.data.objects["face"], out)
    assert out.read_bytes() == dome_file.read_bytes()


def test_multi_file_import_reports_bad_file_keeps_good(clean_scene: None, dome_file: Path,
                                                       tmp_path: Path) -> None:
    import bpy

    (tmp_path / "broken.nvf").write_bytes(dome_file.read_bytes()[:100])
    with pytest.raises(RuntimeError, match="broken.nvf"):
        bpy.ops.import_scene.nvf(directory=str(tmp_path), files=[{"name": "dome.nvf"}, {"name": "broken.nvf"}])
    assert [o.name for o in bpy.data.objects] == ["dome"]


def test_export_options_scale_axes_transform(clean_scene: None, tmp_path: Path) -> None:
    import bpy

    bpy.ops.mesh.primitive_plane_add(size=2.0, location=(5.0, 0.0, 0.0))
    obj = bpy.context.active_object
    local = _bridge("mesh").read_positions(obj.data)
    model = io_nv3dmm.read(_write(obj, tmp_path / "a.nvf", scale=1.0, convert_axes=False, apply_transform=False))
    np.testing.assert_allclose(model.shape.mean, local)
    model = io_nv3dmm.read(_write(obj, tmp_path / "b.nvf", scale=1.0, convert_axes=True, apply_transform=True))
    world = local + np.array([5.0, 0.0, 0.0], np.float32)
    np.testing.assert_allclose(model.shape.mean, np.stack([world[:, 0], world[:, 2], -world[:, 1]], 1))


def test_collection_exporter_writes_the_collections_mesh(clean_scene: None, dome_file: Path,
                                                        tmp_path: Path) -> None:
    import bpy

    obj = _import_dome(dome_file)
    faces = bpy.data.collections.new("Faces")
    bpy.context.scene.collection.children.link(faces)
    faces.objects.link(obj)
    bpy.ops.mesh.primitive_cube_add()                     # active, but not in the collection
    out = tmp_path / "collection.nvf"
    bpy.ops.export_scene.nvf(filepath=str(out), collection="Faces")
    assert out.read_bytes() == dome_file.read_bytes()
    faces.objects.link(bpy.context.active_object)
    with pytest.raises(RuntimeError, match="2 mesh objects"):
        bpy.ops.export_scene.nvf(filepath=str(tmp_path / "two.nvf"), collection="Faces")


def test_export_with_other_settings_converts_everything(clean_scene: None, dome_file: Path,
                                                        tmp_path: Path) -> None:
    obj = _import_dome(dome_file)
    model = io_nv3dmm.read(_write(obj, tmp_path / "mm.nvf", scale=0.001, convert_axes=True))
    original = io_nv3dmm.read(dome_file)
    np.testing.assert_allclose(model.shape.mean, original.shape.mean * 10.0, rtol=1e-5)
    np.testing.assert_allclose(model.shape.modes, original.shape.modes * 10.0, rtol=1e-4, atol=1e-5)
    assert model.ibug.pairs.tolist() == original.ibug.pairs.tolist()


def _write(obj: Any, path: Path, **options: Any) -> Path:
    export = _bridge("nvf_export")
    export.export_nvf(obj, path, export.ExportOptions(use_import_settings=False, **options))
    return path


def test_import_options_switch_parts_off_and_export_keeps_them(clean_scene: None, dome_file: Path,
                                                                tmp_path: Path) -> None:
    import bpy

    bpy.ops.import_scene.nvf(filepath=str(dome_file), shape_keys=False, landmarks=False, partitions=False,
                             scale=1.0, convert_axes=False)
    obj = bpy.context.active_object
    assert obj.data.shape_keys is None and len(obj.vertex_groups) == 0 and len(obj.data.materials) == 0
    np.testing.assert_array_equal(_bridge("mesh").read_positions(obj.data), dome_model().shape.mean)
    out = tmp_path / "out.nvf"
    bpy.ops.export_scene.nvf(filepath=str(out))
    assert out.read_bytes() == dome_file.read_bytes()


# --- round trips ------------------------------------------------------------------------


def test_roundtrip_synthetic_and_after_blend_reload(clean_scene: None, dome_file: Path, tmp_path: Path) -> None:
    import bpy

    bpy.ops.import_scene.nvf(filepath=str(dome_file))
    out = tmp_path / "again.nvf"
    bpy.ops.export_scene.nvf(filepath=str(out))
    assert out.read_bytes() == dome_file.read_bytes()

    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    obj = bpy.data.objects["dome"]
    out.unlink()
    warnings = _bridge("nvf_export").export_nvf(obj, out)
    assert out.read_bytes() == dome_file.read_bytes()
    assert any("50 of Maxine's 53" in w for w in warnings)


def test_roundtrip_non_finite_and_signed_zero_values(clean_scene: None, tmp_path: Path) -> None:
    """An unedited NaN is not an edit: a file with a NaN vertex exports
    byte-identical (comparing as floats made NaN != NaN look edited, and the
    re-encoded modes picked up NaN deltas at that vertex). A zero whose sign
    flipped in Blender (as an Edit Mode offset of 0.0 does to -0.0) is no edit
    either: the file keeps its own zero."""
    model = dome_model()
    mean = np.array(model.shape.mean)
    mean[4, 0] = np.nan
    mean[5, 2] = 0.0          # Blender's y = -z * 0.01: -0.0 on the Basis
    mean[6, 2] = -0.0
    model.shape.mean = mean
    modes = np.array(model.shape.modes)
    modes[1, 7, 1] = np.nan
    model.shape.modes = modes
    path = tmp_path / "nan.nvf"
    io_nv3dmm.write(model, path)
    obj = _import_dome(path)
    out = tmp_path / "nan_out.nvf"
    _bridge("nvf_export").export_nvf(obj, out)
    assert out.read_bytes() == path.read_bytes()
    basis = key_array(obj, "Basis")
    assert np.signbit(basis[5, 1]) and not np.signbit(basis[6, 1])
    basis[5, 1], basis[6, 1] = 0.0, -0.0
    set_key_array(obj, "Basis", basis)
    out.unlink()
    _bridge("nvf_export").export_nvf(obj, out)
    assert out.read_bytes() == path.read_bytes()


def test_roundtrip_demo_model(clean_scene: None, tmp_path: Path) -> None:
    import bpy
    demo_model = pytest.importorskip("nv3dmm_face_tools.io_nv3dmm.demo_model")

    source = tmp_path / "demo.nvf"
    io_nv3dmm.write(demo_model.build_demo_model(), source)
    bpy.ops.import_scene.nvf(filepath=str(source))
    obj = bpy.context.active_object
    assert len(obj.data.shape_keys.key_blocks) == 1 + io_nv3dmm.read(source).mode_count + 53
    out = tmp_path / "out.nvf"
    assert _bridge("nvf_export").export_nvf(obj, out) == []       # all 53 expressions present
    assert out.read_bytes() == source.read_bytes()


def test_samples_roundtrip_byte_identical(clean_scene: None, nvf_samples: Path, tmp_path: Path) -> None:
    import bpy

    files = sorted(nvf_samples.glob("*.nvf"))
    if not files:
        pytest.skip(f"no .nvf files in {nvf_samples}")
    names = []
    for i, path in enumerate(files):
        bpy.ops.import_scene.nvf(filepath=str(path))
        obj = bpy.context.active_object
        names.append(obj.name)
        model = io_nv3dmm.read(path)
        blocks = obj.data.shape_keys.key_blocks
        blend_count = len(model.blend_shapes.names) if model.blend_shapes else 0
        assert len(blocks) == 1 + model.mode_count + blend_count
        assert all(b.value == 0.0 for b in blocks)
        if model.partitions:
            materials = {p.material for p in model.partitions if p.material}
            assert {_bridge("naming").material_nvf_name(m) for m in obj.data.materials if m} == materials
        out = tmp_path / f"direct_{i}.nvf"
        bpy.ops.export_scene.nvf(filepath=str(out))
        assert out.read_bytes() == path.read_bytes(), path.name
    if "face_model2" in names:
        # Partitions share border vertices there; a material edit keeps every face in its partition.
        obj = bpy.data.objects["face_model2"]
        original = io_nv3dmm.read(nvf_samples / "face_model2.nvf")
        sclera = next(m for m in obj.data.materials if m.name.startswith("Sclera"))
        face_material = obj.data.materials[0]
        obj.data.materials[0] = sclera
        edited = tmp_path / "material_edit.nvf"
        _bridge("nvf_export").export_nvf(obj, edited)
        model = io_nv3dmm.read(edited)
        assert [(p.face_start, p.face_count, p.name) for p in model.partitions] == [
            (p.face_start, p.face_count, p.name) for p in original.partitions]
        assert model.partitions[0].material == "Sclera"
        np.testing.assert_array_equal(model.shape.triangles, original.shape.triangles)
        obj.data.materials[0] = face_material
    if (nvf_samples / "face_model2.mtl").exists() and "face_model2" in names:
        face = bpy.data.objects["face_model2"].data.materials[0]
        assert tuple(round(c, 2) for c in face.diffuse_color[:3]) == (0.77, 0.63, 0.56)

    blend = tmp_path / "samples.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    for i, (name, path) in enumerate(zip(names, files)):
        out = tmp_path / f"reloaded_{i}.nvf"
        _bridge("nvf_export").export_nvf(bpy.data.objects[name], out)
        assert out.read_bytes() == path.read_bytes(), path.name


# --- edits ------------------------------------------------------------------------------


def _import_dome(dome_file: Path) -> Any:
    import bpy
    bpy.ops.import_scene.nvf(filepath=str(dome_file))
    return bpy.context.active_object


def _export_model(obj: Any, path: Path) -> FaceModel:
    _bridge("nvf_export").export_nvf(obj, path)
    return io_nv3dmm.read(path)


def test_moved_basis_vertex_changes_only_that_vertex(clean_scene: None, dome_file: Path, tmp_path: Path) -> None:
    obj = _import_dome(dome_file)
    original = io_nv3dmm.read(dome_file)
    basis = key_array(obj, "Basis")
    basis[7] += np.array([0.01, 0.0, 0.02], np.float32)   # 1 cm right, 2 cm up
    set_key_array(obj, "Basis", basis)
    model = _export_model(obj, tmp_path / "moved.nvf")
    changed = np.flatnonzero(np.any(model.shape.mean != original.shape.mean, axis=1))
    assert changed.tolist() == [7]
    np.testing.assert_allclose(model.shape.mean[7] - original.shape.mean[7], [1.0, 2.0, 0.0], atol=1e-5)
    # Absolute key positions stayed, so the deltas at vertex 7 absorb the move.
    np.testing.assert_allclose(model.shape.modes[:, 7] - original.shape.modes[:, 7],
                               np.tile([-1.0, -2.0, 0.0], (3, 1)), atol=1e-5)
    np.testing.assert_array_equal(np.delete(model.shape.modes, 7, axis=1),
                                  np.delete(original.shape.modes, 7, axis=1))
    assert model.blend_shapes.names == original.blend_shapes.names


def test_edit_mode_basis_edit_keeps_key_offsets(clean_scene: None, dome_file: Path, tmp_path: Path) -> None:
    import bmesh
    import bpy

    obj = _import_dome(dome_file)
    original = io_nv3dmm.read(dome_file)
    before = data_snapshot()
    bpy.ops.object.mode_set(mode='EDIT')
    edit = bmesh.from_edit_mesh(obj.data)
    edit.verts.ensure_lookup_table()
    edit.verts[10].co.z += 0.01                              # 1 cm up, on the Basis
    bmesh.update_edit_mesh(obj.data)
    model = _export_model(obj, tmp_path / "edit_mode.nvf")   # exported while still in Edit Mode
    assert obj.mode == 'EDIT' and data_snapshot() == before
    assert np.flatnonzero(np.any(model.shape.mean != original.shape.mean, axis=1)).tolist() == [10]
    np.testing.assert_allclose(model.shape.mean[10] - original.shape.mean[10], [0.0, 1.0, 0.0], atol=1e-5)
    # Blender moved every key with the Basis: their offsets, and so the file's, are unchanged.
    np.testing.assert_array_equal(model.shape.modes, original.shape.modes)
    np.testing.assert_array_equal(model.blend_shapes.deltas, original.blend_shapes.deltas)
    bpy.ops.object.mode_set(mode='OBJECT')


def test_key_edits_rename_add_remove(clean_scene: None, dome_file: Path, tmp_path: Path) -> None:
    obj = _import_dome(dome_file)
    original = io_nv3dmm.read(dome_file)
    key = key_array(obj, "PCA.001")
    key[3, 2] += 0.05                                       # 5 cm along Blender Z = NVIDIA +Y
    set_key_array(obj, "PCA.001", key)
    blocks = obj.data.shape_keys.key_blocks
    blocks["mouthSmile_L"].name = "mouthSmileWide"
    new = obj.shape_key_add(name="cheekPuff_L", from_mix=False)
    co = key_array(obj, "Basis")
    co[:, 1] -= 0.01                                        # everything 1 cm out of the nose (+Z)
    set_key_array(obj, "cheekPuff_L", co)
    obj.shape_key_remove(blocks["eyeBlink_R"])
    assert new.name == "cheekPuff_L"

    model = _export_model(obj, tmp_path / "edited.nvf")
    np.testing.assert_array_equal(model.shape.modes[[0, 2]], original.shape.modes[[0, 2]])
    diff = model.shape.modes[1] - original.shape.modes[1]
    assert np.flatnonzero(np.any(diff != 0, axis=1)).tolist() == [3]
    np.testing.assert_allclose(diff[3], [0.0, 5.0, 0.0], atol=1e-4)
    np.testing.assert_array_equal(model.shape.eigenvalues, original.shape.eigenvalues)
    assert model.blend_shapes.names == ["jawOpen", "mouthSmileWide", "cheekPuff_L"]
    np.testing.assert_array_equal(model.blend_shapes.deltas[:2], original.blend_shapes.deltas[:2])
    np.testing.assert_allclose(model.blend_shapes.deltas[2], np.tile([0.0, 0.0, 1.0], (36, 1)), atol=1e-5)
    # Only the shape keys changed: everything else is the original.
    np.testing.assert_array_equal(model.shape.mean, original.shape.mean)
    np.testing.assert_array_equal(model.topology.adjacent_faces, original.topology.adjacent_faces)
    assert model.partitions == original.partitions


def test_group_and_material_edits(clean_scene: None, dome_file: Path, tmp_path: Path) -> None:
    import bpy

    obj = _import_dome(dome_file)
    original = io_nv3dmm.read(dome_file)
    group = obj.vertex_groups["IBUG.031"]
    group.remove([14])
    group.add([15], 1.0, 'REPLACE')
    obj.vertex_groups.new(name="IBUG.040").add([21, 22], 1.0, 'REPLACE')
    obj.vertex_groups.remove(obj.vertex_groups["MCTR.R.02"])
    obj.data["nvf_ibug_left_contour"] = [15, 16]
    model = _export_model(obj, tmp_path / "groups.nvf")
    assert model.ibug.pairs.tolist() == [[9, 3], [31, 15], [37, 20], [40, 21], [40, 22]]
    assert model.ibug.left_contour.tolist() == [15, 16]
    assert model.model_contours.right.tolist() == [0, 6]
    assert model.nvlm.pairs.tolist() == original.nvlm.pairs.tolist()

    # Give the first partition's faces the second material: one partition per material run.
    lips = bpy.data.materials["LipMat"]
    obj.data.materials[0] = lips
    model = _export_model(obj, tmp_path / "materials.nvf")
    assert [(p.name, p.material) for p in model.partitions] == [("Skin", "LipMat"), ("Lips", "LipMat")]
    assert model.partitions[1].smoothing_group == 2
    np.testing.assert_array_equal(model.shape.triangles, original.shape.triangles)

    # A new material on some faces splits their partition and reorders triangles by run.
    extra = bpy.data.materials.new("Teeth")
    obj.data.materials.append(extra)
    slots = np.empty(len(obj.data.polygons), np.int32)
    obj.data.polygons.foreach_get("material_index", slots)
    slots[:5] = 2
    obj.data.polygons.foreach_set("material_index", slots)
    model = _export_model(obj, tmp_path / "split.nvf")
    runs = [(p.name, p.material, p.face_count) for p in model.partitions]
    assert runs == [("Skin", "LipMat", 23), ("Skin", "Teeth", 5), ("Lips", "LipMat", 22)]
    assert sorted(map(tuple, model.shape.triangles.tolist())) == sorted(map(tuple, original.shape.triangles.tolist()))
    np.testing.assert_array_equal(model.topology.adjacent_faces, build_topology(model.shape.triangles).adjacent_faces)


def test_partition_group_rename_and_reorder(clean_scene: None, dome_file: Path, tmp_path: Path) -> None:
    obj = _import_dome(dome_file)
    original = io_nv3dmm.read(dome_file)
    obj.vertex_groups["PART.001.Lips"].name = "PART.001.Mouth"
    model = _export_model(obj, tmp_path / "renamed.nvf")
    assert [(p.name, p.material, p.face_count) for p in model.partitions] == [
        ("Skin", "Skin", original.partitions[0].face_count), ("Mouth", "LipMat", original.partitions[1].face_count)]
    np.testing.assert_array_equal(model.shape.triangles, original.shape.triangles)
    # The number orders partitions: the mouth's run now comes first.
    obj.vertex_groups["PART.001.Mouth"].name = "PART.000.Mouth"
    obj.vertex_groups["PART.000.Skin"].name = "PART.001.Skin"
    model = _export_model(obj, tmp_path / "reordered.nvf")
    assert [p.name for p in model.partitions] == ["Mouth", "Skin"]
    first = original.partitions[1]
    np.testing.assert_array_equal(
        model.shape.triangles[:first.face_count],
        original.shape.triangles[first.face_start:first.face_start + first.face_count])


# --- user meshes ---------------------------------------------------------------------------


def test_user_mesh_becomes_valid_model(clean_scene: None, tmp_path: Path) -> None:
    import bpy

    bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=2, radius=0.1, location=(0.0, 0.0, 1.5))
    obj = bpy.context.active_object
    obj.scale = (2.0, 2.0, 2.0)
    bpy.context.view_layer.update()
    mesh = obj.data
    v_count, t_count = len(mesh.vertices), len(mesh.polygons)
    assert (v_count, t_count) == (42, 80)
    local = _bridge("mesh").read_positions(mesh)
    obj.shape_key_add(name="Basis")
    obj.shape_key_add(name="PCA.000", from_mix=False)
    obj.shape_key_add(name="jawOpen", from_mix=False)
    set_key_array(obj, "PCA.000", local * 1.1)
    moved = local.copy()
    moved[local[:, 2] < 0, 1] -= 0.01
    set_key_array(obj, "jawOpen", moved)
    obj.vertex_groups.new(name="IBUG.031").add([0], 1.0, 'REPLACE')
    obj.vertex_groups.new(name="NVLM.002").add([5, 6], 1.0, 'REPLACE')
    obj.vertex_groups.new(name="MCTR.R.00").add([3], 1.0, 'REPLACE')
    back = np.flatnonzero(local[:, 1] > 0.02).tolist()
    obj.vertex_groups.new(name="PART.000.Back").add(back, 1.0, 'REPLACE')
    skin = bpy.data.materials.new("Skin")
    lips = bpy.data.materials.new("Lips")
    mesh.materials.append(skin)
    mesh.materials.append(lips)
    centers = np.empty(len(mesh.polygons) * 3, np.float32)
    mesh.polygons.foreach_get("center", centers)
    slots = (centers.reshape(-1, 3)[:, 2] < 0).astype(np.int32)
    mesh.polygons.foreach_set("material_index", slots)
    before = data_snapshot()

    out = tmp_path / "sphere.nvf"
    warnings = _bridge("nvf_export").export_nvf(obj, out)
    assert data_snapshot() == before and len(mesh.polygons) == t_count      # the user's mesh untouched
    assert any("52 of Maxine's 53" in w for w in warnings)
    model = io_nv3dmm.read(out)
    assert model.vertex_count == v_count and model.triangle_count == t_count
    world = local * 2.0 + np.array([0.0, 0.0, 1.5], np.float32)
    expected = np.stack([world[:, 0], world[:, 2], -world[:, 1]], 1) * 100.0
    np.testing.assert_allclose(model.shape.mean, expected, atol=1e-4)
    np.testing.assert_allclose(model.shape.modes[0], (np.stack([local[:, 0], local[:, 2], -local[:, 1]], 1)
                                                      * 0.1 * 2.0 * 100.0), atol=1e-4)
    assert model.blend_shapes.names == ["jawOpen"]
    np.testing.assert_array_equal(model.shape.eigenvalues, [1.0])
    # Winding kept: every normal points away from the sphere's centre.
    p = model.shape.mean[model.shape.triangles.astype(np.int64)]
    normals = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    assert np.all(np.einsum("ij,ij->i", normals, p.mean(1) - expected.mean(0)) > 0)
    topo = build_topology(model.shape.triangles)
    np.testing.assert_array_equal(model.topology.adjacent_faces, topo.adjacent_faces)
    np.testing.assert_array_equal(model.topology.edge_vertices, topo.edge_vertices)
    assert int((model.topology.adjacent_faces == 0).sum()) == 0          # closed surface
    assert model.ibug.pairs.tolist() == [[31, 0]] and model.nvlm.pairs.tolist() == [[2, 5], [2, 6]]
    assert model.model_contours.right.tolist() == [3] and model.model_contours.left is None
    # Partitions: the group's faces first, then one run per material; contiguous and complete.
    parts = model.partitions
    assert parts[0].name == "Back" and {(p.name, p.material) for p in parts[-2:]} == {("Skin", "Skin"), ("Lips", "Lips")}
    assert [p.face_start for p in parts] == list(np.cumsum([0] + [p.face_count for p in parts[:-1]]))
    assert sum(p.face_count for p in parts) == t_count
    group_mask = np.zeros(v_count, bool)
    group_mask[back] = True
    first = model.shape.triangles[:parts[0].face_count].astype(np.int64)
    assert group_mask[first].all()
    assert model.texcoords is not None and model.texcoords.shape == (v_count, 2)


def test_quads_are_triangulated(clean_scene: None, tmp_path: Path) -> None:
    import bpy

    bpy.ops.mesh.primitive_cube_add(size=2.0)
    obj = bpy.context.active_object
    model = _export_model(obj, tmp_path / "cube.nvf")
    assert model.vertex_count == 8 and model.triangle_count == 12 and model.partitions is None
    assert len(obj.data.polygons) == 6
    assert model.topology.adjacent_faces.shape == (18, 2)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "hostile_size", "not_nvf", "empty", "degenerate"])
def test_bad_file_reports_error_and_leaves_scene(clean_scene: None, dome_file: Path, tmp_path: Path,
                                                  damage: str) -> None:
    import bpy

    data = dome_file.read_bytes()
    bad = tmp_path / f"{damage}.nvf"
    if damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "hostile_size":
        broken = bytearray(data)
        broken[20:24] = (0xFFFFFFF0).to_bytes(4, "little")     # MODL claims ~4 GB
        bad.write_bytes(bytes(broken))
    elif damage == "degenerate":
        model = dome_model()
        tris = model.shape.triangles.copy()
        tris[4, 1] = tris[4, 0]
        model.shape.triangles = tris
        model.topology = None
        io_nv3dmm.write(model, bad)
    elif damage == "not_nvf":
        bad.write_bytes(b"NVF\x00 some other format using the same extension" * 10)
    else:
        bad.write_bytes(b"")
    bpy.ops.import_scene.nvf(filepath=str(dome_file))       # something in the scene already
    before = data_snapshot()
    with pytest.raises(RuntimeError) as error:
        bpy.ops.import_scene.nvf(filepath=str(bad))
    assert data_snapshot() == before
    message = str(error.value)
    assert bad.name in message
    if damage == "not_nvf":
        assert "NFAC" in message


def test_failure_mid_build_removes_everything(clean_scene: None, dome_file: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import bpy

    nvf_import = _bridge("nvf_import")
    before = data_snapshot()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("simulated failure while building")
    monkeypatch.setattr(nvf_import.mesh_builder, "set_uv_map", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        nvf_import.import_nvf(bpy.context, dome_file)
    assert data_snapshot() == before


def _export_fails(obj_setup: Any, tmp_path: Path, match: str) -> None:
    import bpy
    obj_setup()
    before = data_snapshot()
    out = tmp_path / "never.nvf"
    with pytest.raises(RuntimeError, match=match):
        bpy.ops.export_scene.nvf(filepath=str(out))
    assert not out.exists() and not list(tmp_path.glob(".nvf-*"))
    assert data_snapshot() == before


def test_export_errors(clean_scene: None, tmp_path: Path) -> None:
    import bpy
    mesh_builder = _bridge("mesh")

    _export_fails(lambda: None, tmp_path, "no active object")

    def too_many() -> None:
        bpy.ops.mesh.primitive_grid_add(x_subdivisions=256, y_subdivisions=257)
        assert len(bpy.context.active_object.data.vertices) > 65535
    _export_fails(too_many, tmp_path, "65,535")

    def non_manifold() -> None:
        positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1]], np.float32)
        mesh = mesh_builder.build_mesh("fan", positions, np.array([[0, 1, 2], [1, 0, 3], [0, 1, 4]]))
        obj = bpy.data.objects.new("fan", mesh)
        bpy.context.scene.collection.objects.link(obj)
        bpy.context.view_layer.objects.active = obj
    _export_fails(non_manifold, tmp_path, "non-manifold")

    def no_faces() -> None:
        mesh = mesh_builder.build_mesh("points", np.zeros((4, 3), np.float32), np.zeros((0, 3), np.int64))
        obj = bpy.data.objects.new("points", mesh)
        bpy.context.scene.collection.objects.link(obj)
        bpy.context.view_layer.objects.active = obj
    _export_fails(no_faces, tmp_path, "no faces")

    def camera() -> None:
        bpy.ops.object.camera_add()
    _export_fails(camera, tmp_path, "not a mesh")


def test_existing_file_untouched_on_failure(clean_scene: None, tmp_path: Path) -> None:
    import bpy
    out = tmp_path / "keep.nvf"
    out.write_bytes(b"previous contents")
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=256, y_subdivisions=257)
    with pytest.raises(RuntimeError):
        bpy.ops.export_scene.nvf(filepath=str(out))
    assert out.read_bytes() == b"previous contents"


def test_export_replaces_large_file_completely(clean_scene: None, dome_file: Path, tmp_path: Path) -> None:
    """A large file being overwritten is swapped out by the rename and removed
    afterwards (off the main thread): only the new file is left, other hard
    links to the old one keep it."""
    import threading
    nvf_export = _bridge("nvf_export")
    obj = _import_dome(dome_file)
    out = tmp_path / "face.nvf"
    old = b"old" * 700_000                      # above the size where the old file gets a second name
    for linked in (False, True):
        out.write_bytes(old)
        if linked:
            (tmp_path / "other-name.nvf").hardlink_to(out)
        nvf_export.export_nvf(obj, out)
        for worker in threading.enumerate():
            if worker.name == "nvf-remove-replaced":
                worker.join()
        assert out.read_bytes() == dome_file.read_bytes()
        assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".mtl") == sorted(
            ["face.nvf", dome_file.name] + (["other-name.nvf"] if linked else []))
    assert (tmp_path / "other-name.nvf").read_bytes() == old


def test_key_conversion_exact_and_streamed(addon: Any) -> None:
    """The in-place conversion equals the element-wise map (value for value,
    non-finite values included), and streaming keys in runs gives the same
    arrays as converting them all."""
    axes_module, import_plan, options = _bridge("axes"), _bridge("import_plan"), _bridge("options")
    rng = np.random.default_rng(3)
    for trial in range(40):
        offsets = (rng.normal(size=(int(rng.integers(0, 4)), int(rng.integers(0, 30)), 3))
                   * 10.0 ** rng.integers(-20, 20)).astype(np.float32)
        offsets[rng.random(offsets.shape) < 0.2] = 0.0
        offsets[rng.random(offsets.shape) < 0.1] = -0.0
        if trial % 4 == 0 and offsets.size:
            offsets.flat[int(rng.integers(offsets.size))] = [np.inf, -np.inf, np.nan][trial % 3]
        base = rng.normal(size=offsets.shape[1:]).astype(np.float32)
        for scale in (0.01, 1.0, 2.5):
            for axes in (True, False):
                summed = offsets + base
                expected = (np.stack([summed[..., 0], -summed[..., 2], summed[..., 1]], -1) if axes
                            else summed) * np.float32(scale)
                got = axes_module.offsets_to_blender(offsets, base, scale, axes)
                np.testing.assert_array_equal(got, expected.astype(np.float32))

    model = dome_model()
    plan = import_plan.plan_import(model, options.ImportOptions())
    everything = np.array(plan.key_positions)
    again = import_plan.plan_import(model, options.ImportOptions())
    for first, count in ((0, 6), (1, 3), (2, 4), (5, 1)):      # runs across the modes/blend-shapes border
        out = np.empty((count,) + everything.shape[1:], np.float32)
        again.fill_keys(first, out)
        np.testing.assert_array_equal(out, everything[first:first + count])
    with pytest.raises(IndexError):
        again.fill_keys(4, np.empty((3,) + everything.shape[1:], np.float32))
    assert import_plan.plan_import(model, options.ImportOptions(shape_keys=False)).key_positions is None


def test_absurd_landmark_count_is_refused_before_building(clean_scene: None, tmp_path: Path) -> None:
    """A valid but absurd file (thousands of distinct landmark numbers) would freeze Blender
    creating one vertex group each: the import refuses it at once, scene untouched, and
    imports with Landmarks off (the landmarks still export unchanged)."""
    import bpy

    model = dome_model()
    count = 5000
    numbers = np.arange(1, count + 1, dtype=np.uint16)
    model.ibug = LandmarkSet(pairs=np.stack([numbers, numbers % model.vertex_count], 1).astype(np.uint16))
    path = tmp_path / "many_landmarks.nvf"
    io_nv3dmm.write(model, path)
    before = data_snapshot()
    with pytest.raises(RuntimeError, match="vertex groups"):
        bpy.ops.import_scene.nvf(filepath=str(path))
    assert data_snapshot() == before
    bpy.ops.import_scene.nvf(filepath=str(path), landmarks=False)
    out = tmp_path / "out.nvf"
    bpy.ops.export_scene.nvf(filepath=str(out))
    assert out.read_bytes() == path.read_bytes()
