# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Importing an .nvf face model into Blender: one mesh object per file.

The whole file is read and validated (io_nv3dmm) and every array to be put in
Blender is computed (`import_plan.plan_import`) before the first datablock is
created; if anything still fails while building, every datablock created so
far is removed, so a failed import leaves the scene as it was.

The original file's bytes are kept on the mesh (`nvf_source`, a bytes ID
property: it survives .blend save/reload, NUL bytes included) together with
the import options, so that the exporter can write the parts the user did not
edit back exactly as they were (see `original`). May import bpy, numpy, the
format (`io_nv3dmm`) and the bridge modules below it.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..io_nv3dmm import FaceModel, NvfError, read
from . import mesh as mesh_builder
from .bpy_typed import required
from .errors import NvfBridgeError
from .files import NotRegularFileError, read_regular_file
from .import_plan import ImportPlan, plan_import
from .mtl import read_mtl_colors
from .naming import (
    BASIS_NAME, COLOR_ATTRIBUTE, PARTITION_ATTRIBUTE, PROP_EIGENVALUES, PROP_IMPORT, PROP_MATERIAL,
    PROP_SOURCE, PROP_SOURCE_NAME, UV_MAP_NAME,
)
from .options import ImportOptions
from .original import NVF_MAGIC, Original, remember_original
from .rollback import Created

if TYPE_CHECKING:
    # bpy is imported where it is used, so that this module loads without it.
    from bpy.types import Context, Material, Mesh, Object


def load_model(filepath: str | Path) -> tuple[bytes, FaceModel]:
    """Reads and validates one .nvf file: (its bytes, the model).

    Detects the format by the NFAC magic, not the extension. Raises
    NvfBridgeError with a message for the user for anything unusable.
    """
    path = Path(filepath)
    try:
        data = read_regular_file(path)
    except NotRegularFileError as exc:
        raise NvfBridgeError(f"cannot import {exc}; choose an .nvf file") from exc
    except OSError as exc:
        raise NvfBridgeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if data[:4] != NVF_MAGIC:
        raise NvfBridgeError(
            f"{path.name} is not an NVIDIA 3DMM face model (it does not start with 'NFAC'; "
            f"other formats also use the .nvf extension)")
    try:
        model = read(data)
    except NvfError as exc:
        raise NvfBridgeError(f"{path.name}: {exc}") from exc
    return data, model


def import_nvf(context: Context, filepath: str | Path,
               options: ImportOptions | None = None) -> Object:
    """Imports one .nvf file as a new mesh object, linked to the active collection,
    selected and made active. Returns the object.

    Raises NvfBridgeError (file unreadable, not an .nvf, invalid); the scene is
    then unchanged. (The codec's NvfError and OSErrors never escape: the checks
    below word each one; any other is wrapped here with its own message.)
    """
    try:
        return _import_nvf(context, Path(filepath), options or ImportOptions())
    except (NvfError, OSError) as exc:
        raise NvfBridgeError(str(exc)) from exc


def _import_nvf(context: Context, path: Path, options: ImportOptions) -> Object:
    if not options.scale > 0.0:
        raise NvfBridgeError(f"the import scale must be positive, got {options.scale}")
    data, model = load_model(path)
    if model.vertex_count == 0:
        raise NvfBridgeError(
            f"{path.name} is a well-formed .nvf file whose model has no vertices (an empty mean "
            f"shape), so there is nothing to import. Re-export it from its source with the mesh in it")
    tris = np.asarray(model.shape.triangles)
    degenerate = int(np.count_nonzero((tris[:, 0] == tris[:, 1]) | (tris[:, 1] == tris[:, 2])
                                      | (tris[:, 0] == tris[:, 2])))
    if degenerate:
        raise NvfBridgeError(f"{path.name}: {degenerate} triangle(s) use the same vertex twice; "
                             f"Blender meshes cannot hold such faces")
    plan = plan_import(model, options)
    colors = read_mtl_colors(path) if options.partitions and options.mtl_colors else {}
    name = path.stem or "Face"
    created = Created()
    token = uuid.uuid4().hex
    try:
        obj = _build(context, name, path.name, data, plan, options, colors, created, token)
    except BaseException:
        created.rollback()
        raise
    remember_original(token, Original(data=data, model=model, options=options, plan=plan))
    return obj


def _build(context: Context, name: str, file_name: str, data: bytes, plan: ImportPlan,
           options: ImportOptions, colors: dict[str, tuple[float, float, float]],
           created: Created, token: str) -> Object:
    import bpy

    mesh = mesh_builder.build_mesh(name, plan.basis, plan.triangles)
    created.meshes.append(mesh)
    obj = bpy.data.objects.new(name, mesh)
    created.objects.append(obj)

    if plan.key_mean is not None:
        mesh_builder.add_shape_keys(obj, plan.key_names, plan.fill_keys,
                                    basis_name=BASIS_NAME, slider_ranges=plan.slider_ranges)
        mesh[PROP_EIGENVALUES] = plan.eigenvalues
    if plan.groups:
        mesh_builder.set_vertex_groups(obj, plan.groups)
    for prop, values in plan.contour_props.items():
        mesh[prop] = values
    if plan.face_slots is not None and plan.face_partitions is not None:
        materials: list[Material | None] = []
        for material_name in plan.materials:
            if material_name is None:
                materials.append(None)
                continue
            material = bpy.data.materials.new(material_name)
            created.materials.append(material)
            material[PROP_MATERIAL] = material_name
            _color_material(material, colors.get(material_name))
            materials.append(material)
        mesh_builder.set_materials(mesh, materials, plan.face_slots)
        mesh_builder.set_face_ints(mesh, PARTITION_ATTRIBUTE, plan.face_partitions)
    if plan.uv is not None:
        mesh_builder.set_uv_map(mesh, UV_MAP_NAME, plan.uv)
    if plan.colors is not None:
        mesh_builder.set_point_colors(mesh, COLOR_ATTRIBUTE, plan.colors)

    mesh[PROP_SOURCE] = data
    mesh[PROP_SOURCE_NAME] = file_name
    mesh[PROP_IMPORT] = dict(options.as_dict(), token=token)
    mesh.shade_smooth()

    collection = context.collection or (context.scene.collection if context.scene is not None else None)
    if collection is None:
        raise NvfBridgeError("no collection to add the imported object to (the context has no scene)")
    collection.objects.link(obj)
    view_layer = context.view_layer
    if view_layer is not None:
        # A context member that only some contexts provide (absent in e.g. a timer callback).
        selected: Sequence[Object] = getattr(context, "selected_objects", None) or ()
        for other in selected:
            other.select_set(False)
        try:
            obj.select_set(True)
            view_layer.objects.active = obj
        except RuntimeError:
            pass  # the active collection is excluded from this view layer: nothing to select
    return obj


def _color_material(material: Material, rgb: tuple[float, float, float] | None) -> None:
    """Viewport and Principled BSDF base colour from the .mtl `Kd` (grey without one)."""
    color = (*(rgb or (0.8, 0.8, 0.8)), 1.0)
    material.diffuse_color = color
    tree = material.node_tree
    if tree is None:
        try:
            material.use_nodes = True
        except (AttributeError, TypeError):
            return
        tree = material.node_tree
    if tree is None:
        return
    import bpy

    for node in tree.nodes:
        if isinstance(node, bpy.types.ShaderNodeBsdfPrincipled):
            inputs = required(node.inputs, "Principled BSDF inputs")
            inputs["Base Color"].default_value = color
            inputs["Roughness"].default_value = 0.55
            break
