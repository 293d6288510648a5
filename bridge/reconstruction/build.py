# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Building a reconstruction in Blender (main thread): `build_reconstruction` turns a
finished `ReconstructionOutput` into one object (created or updated) with its shape
keys, attributes and vertex groups, a photo material, a camera and the photo image,
all or nothing (`rollback.Created`). May import bpy (inside the functions, so the
module loads without it) and the rest of the bridge; the numbers come from `plan`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ...tddfa_v3.result import PART_NAMES, FaceResult
from .. import mesh as mesh_builder
from ..bpy_typed import has_id_property, id_property, lookup, new_node, object_camera, object_mesh, required
from ..errors import BridgeError, ReconstructionBridgeError
from ..naming import IBUG_GROUP
from ..rollback import Created
from .photo import photo_image as load_photo_image
from .plan import (
    ALBEDO_ATTRIBUTE, COEFFICIENT_SPLIT, LANDMARK_GROUP, LIT_ATTRIBUTE, PROP_CAMERA, PROP_COEFFICIENTS,
    PROP_FACE_BOX, PROP_KEY_SCALES, PROP_LANDMARKS, PROP_MARKER, PROP_PHOTO_SIZE, PROP_SOURCE, PROP_SPLIT,
    PROP_TRANS_PARAMS, UV_MAP_NAME, VISIBLE_NAME, CameraSettings, ReconstructionOutput, ReconstructOptions,
    camera_settings, key_scales, plan_shape_keys, pose_matrix,
)

if TYPE_CHECKING:
    from bpy.types import Camera, Collection, Context, Image, Material, Mesh, Object, Scene, ShaderNodeTexImage


def find_reconstruction(context: Context) -> Object | None:
    """The object a re-run should update: the active object if it is a reconstruction."""
    obj = context.view_layer.objects.active if context.view_layer is not None else None
    if obj is not None and obj.type == 'MESH' and has_id_property(obj, PROP_MARKER):
        return obj
    return None


def build_reconstruction(context: Context, output: ReconstructionOutput,
                         options: ReconstructOptions,
                         photo_image: Image | None = None,
                         photo_path: str | None = None) -> Object:
    """Create (or update) the reconstructed face object and what goes with it.

    All or nothing: when anything fails every datablock made here is removed
    and the error is raised as `ReconstructionBridgeError`. `photo_image` is an Image
    datablock of the photo; when None and `photo_path` is given, the file is
    loaded (or an Image already showing it is reused).
    """
    import bpy

    scene, view_layer, collection = context.scene, context.view_layer, context.collection
    if scene is None or view_layer is None or collection is None:
        raise ReconstructionBridgeError("building a reconstruction needs a scene, a view layer and a "
                                        "collection in the context (run it with a scene open)")
    created = Created()
    result = output.result
    target = find_reconstruction(context) if options.update_existing else None
    old_mesh = object_mesh(target) if target is not None else None
    if target is not None and old_mesh is not None and len(old_mesh.vertices) != result.vertex_count:
        # Another model: make a new object rather than break this one.
        target, old_mesh = None, None
    try:
        image = photo_image
        if image is None and photo_path and (options.create_texture or options.create_camera):
            image = load_photo_image(photo_path, created)
        name = options.name or _name_from(result, photo_path, photo_image)
        mesh = _build_face_mesh(name, output, options, created)
        material = None
        photo_node = None
        if options.create_texture:
            # An updated face keeps its photo material (and the user's edits to it).
            material = _reusable_material(old_mesh) or _build_material(name, image, created)
            photo_node = _photo_node(material)
            mesh.materials.append(material)
        camera_obj = None
        camera = None
        if options.create_camera:
            candidate = lookup(bpy.data.objects, str(id_property(target, PROP_CAMERA, ""))) \
                if target is not None else None
            camera_obj = candidate if candidate is not None and candidate.type == 'CAMERA' \
                else _new_camera_object(collection, f"{name} camera", created)
            camera = object_camera(camera_obj)
        obj = _place_object(collection, name, mesh, target, created)
        add_vertex_groups(obj, result, options)
    except BridgeError:
        created.rollback()
        raise
    except Exception as error:  # noqa: BLE001 - nothing half-built, whatever failed
        created.rollback()
        raise ReconstructionBridgeError(f"building the reconstruction in Blender failed: "
                                        f"{type(error).__name__}: {error}") from error

    # Nothing below can fail on valid data: it only sets values on data that exists.
    if old_mesh is not None and old_mesh.users == 0:
        bpy.data.meshes.remove(old_mesh)
    if photo_node is not None:
        photo_node.image = image
    _write_properties(obj, output, photo_path or (photo_image.filepath if photo_image else ""))
    matrix = pose_matrix(result)
    import mathutils
    obj.matrix_world = mathutils.Matrix(matrix.tolist())
    if camera_obj is not None and camera is not None:
        _configure_camera(scene, camera_obj, camera, camera_settings(result), image)
        obj[PROP_CAMERA] = camera_obj.name
        scene.camera = camera_obj
    for other in view_layer.objects:
        other.select_set(False)
    obj.select_set(True)
    view_layer.objects.active = obj
    return obj


def _name_from(result: FaceResult, photo_path: str | None,
               photo_image: Image | None) -> str:
    if photo_path:
        return Path(photo_path).stem or "Face"
    if photo_image is not None:
        return Path(photo_image.name).stem or "Face"
    return Path(result.source).stem if result.source else "Face"


def _build_face_mesh(name: str, output: ReconstructionOutput, options: ReconstructOptions,
                     created: Created) -> Mesh:
    import bpy

    result = output.result
    plan = output.shape_keys if output.shape_keys is not None else plan_shape_keys(result, output.bases)
    key_names, values = plan.names, plan.values

    mesh: Mesh = mesh_builder.build_mesh(name, plan.basis, np.asarray(result.triangles, dtype=np.int64))
    created.meshes.append(mesh)
    limit = mesh_builder.SLIDER_LIMIT
    given = mesh_builder.add_shape_keys(mesh, key_names, plan.positions, basis_name="Basis",
                                        slider_ranges=[(-limit, limit)] * len(key_names))
    if mesh.shape_keys is None:
        raise ReconstructionBridgeError(f'the mesh "{mesh.name}" got no shape keys')
    key_blocks = mesh.shape_keys.key_blocks
    for name, value in zip(given, values.tolist()):
        key_blocks[name].value = value

    if options.create_texture:
        mesh_builder.set_uv_map(mesh, UV_MAP_NAME, np.asarray(result.photo_uv, dtype=np.float32))
        mesh_builder.set_point_colors(mesh, ALBEDO_ATTRIBUTE, np.asarray(result.albedo, dtype=np.float32))
        mesh_builder.set_point_colors(mesh, LIT_ATTRIBUTE, np.asarray(result.colors, dtype=np.float32))
    visible = np.asarray(result.visible, dtype=bool)
    attribute = mesh.attributes.new(VISIBLE_NAME, 'FLOAT', 'POINT')
    if not isinstance(attribute, bpy.types.FloatAttribute):
        raise ReconstructionBridgeError(f"a new float attribute is a {type(attribute).__name__}")
    attribute.data.foreach_set("value", visible.astype(np.float32))
    return mesh


def _photo_node(material: Material) -> ShaderNodeTexImage:
    """The "Photo" image texture node of a photo material."""
    import bpy

    node = lookup(material.node_tree.nodes, "Photo") if material.node_tree is not None else None
    if not isinstance(node, bpy.types.ShaderNodeTexImage):
        raise ReconstructionBridgeError(f'the material "{material.name}" has no "Photo" image texture node')
    return node


def _reusable_material(mesh: Mesh | None) -> Material | None:
    """The photo material of a face being updated (kept, with any edits, for the new fit)."""
    if mesh is None:
        return None
    for material in mesh.materials:
        if material is not None and has_id_property(material, PROP_MARKER) \
                and material.node_tree is not None and lookup(material.node_tree.nodes, "Photo") is not None:
            return material
    return None


def _build_material(name: str, image: Image | None, created: Created) -> Material:
    """Photo projected through the reconstruction's UVs where the face is visible,
    the model's albedo elsewhere."""
    import bpy
    from bpy import types as bt

    material = bpy.data.materials.new(f"{name} photo")
    created.materials.append(material)
    material[PROP_MARKER] = 1
    if bpy.app.version < (5, 0, 0):
        material.use_nodes = True   # always on (and deprecated) from Blender 5.0
    tree = material.node_tree
    if tree is None:
        raise ReconstructionBridgeError(f'the material "{material.name}" has no node tree')
    nodes, links = tree.nodes, tree.links
    bsdf = next((node for node in nodes if isinstance(node, bt.ShaderNodeBsdfPrincipled)), None)
    if bsdf is None:
        bsdf = new_node(nodes, bt.ShaderNodeBsdfPrincipled)
        output_node = next(node for node in nodes if isinstance(node, bt.ShaderNodeOutputMaterial))
        links.new(required(bsdf.outputs, "BSDF outputs")["BSDF"],
                  required(output_node.inputs, "material output inputs")["Surface"])
    bsdf_inputs = required(bsdf.inputs, "BSDF inputs")
    bsdf_inputs["Roughness"].default_value = 0.6

    uv = new_node(nodes, bt.ShaderNodeUVMap)
    uv.uv_map = UV_MAP_NAME
    uv.location = (-900, 300)
    texture = new_node(nodes, bt.ShaderNodeTexImage)
    texture.name = texture.label = "Photo"
    texture.image = image
    texture.extension = 'EXTEND'
    texture.location = (-650, 300)
    links.new(required(uv.outputs, "UV map outputs")["UV"],
              required(texture.inputs, "image texture inputs")["Vector"])

    albedo = new_node(nodes, bt.ShaderNodeVertexColor)
    albedo.layer_name = ALBEDO_ATTRIBUTE
    albedo.label = "Model albedo"
    albedo.location = (-650, 0)
    visible = new_node(nodes, bt.ShaderNodeAttribute)
    visible.attribute_name = VISIBLE_NAME
    visible.label = "Visible in the photo"
    visible.location = (-650, 550)

    mix = new_node(nodes, bt.ShaderNodeMix)
    mix.data_type = 'RGBA'
    mix.label = "Photo where visible"
    mix.location = (-300, 250)
    mix_inputs = required(mix.inputs, "mix inputs")
    links.new(required(visible.outputs, "attribute outputs")["Fac"], mix_inputs["Factor"])
    links.new(required(albedo.outputs, "colour attribute outputs")["Color"], mix_inputs[6])  # A (colour)
    links.new(required(texture.outputs, "image texture outputs")["Color"], mix_inputs[7])    # B (colour)
    links.new(required(mix.outputs, "mix outputs")[2], bsdf_inputs["Base Color"])           # Result (colour)
    return material


def _new_camera_object(collection: Collection, name: str, created: Created) -> Object:
    import bpy

    camera = bpy.data.cameras.new(name)
    created.cameras.append(camera)
    camera_obj = bpy.data.objects.new(name, camera)
    created.objects.append(camera_obj)
    collection.objects.link(camera_obj)
    return camera_obj


def apply_camera_settings(scene: Scene, camera_obj: Object, camera: Camera, settings: CameraSettings) -> None:
    """Lens, shift and placement of a photo camera, and the scene's render size and pixel
    aspect, from `settings` (a reconstruction's photo, or a tracked video's frame)."""
    camera.sensor_fit = 'HORIZONTAL'
    camera.sensor_width = settings.sensor_width
    camera.lens = settings.lens
    camera.shift_x = settings.shift_x
    camera.shift_y = settings.shift_y
    camera_obj.location = settings.location
    camera_obj.rotation_mode = 'XYZ'
    camera_obj.rotation_euler = settings.rotation_euler
    render = scene.render
    render.resolution_x, render.resolution_y = settings.resolution
    render.resolution_percentage = 100
    render.pixel_aspect_x = settings.pixel_aspect_x
    render.pixel_aspect_y = settings.pixel_aspect_y


def _configure_camera(scene: Scene, camera_obj: Object, camera: Camera, settings: CameraSettings,
                      image: Image | None) -> None:
    """The photo camera (lens, shift, placement, clipping, the photo behind it) and the
    scene's render size."""
    camera.type = 'PERSP'
    camera.lens_unit = 'MILLIMETERS'
    camera.clip_start = 0.01
    camera.clip_end = 100.0
    camera_obj.scale = (1.0, 1.0, 1.0)
    apply_camera_settings(scene, camera_obj, camera, settings)
    if image is not None:
        camera.background_images.clear()
        background = camera.background_images.new()
        background.image = image
        background.alpha = 1.0
        background.display_depth = 'BACK'
        camera.show_background_images = True


def _place_object(collection: Collection, name: str, mesh: Mesh,
                  target: Object | None, created: Created) -> Object:
    import bpy

    if target is None:
        obj = bpy.data.objects.new(name, mesh)
        created.objects.append(obj)
        collection.objects.link(obj)
        return obj
    old_mesh = object_mesh(target)
    old_key, new_key = old_mesh.shape_keys, mesh.shape_keys
    old_action = old_key.animation_data.action \
        if old_key is not None and old_key.animation_data is not None else None
    if old_action is not None and new_key is not None:
        # Keep keyframes on the coefficients when the sliders are re-fitted.
        animation = new_key.animation_data_create()
        if animation is not None:
            animation.action = old_action
            # Blender 4.4+ actions hold per-datablock slots: the new key datablock has
            # another name, so no slot is picked for it and nothing would play.
            old_slot = getattr(old_key.animation_data, "action_slot", None) if old_key is not None else None
            if old_slot is not None and getattr(animation, "action_slot", None) is None:
                setattr(animation, "action_slot", old_slot)
    # Vertex group names live on the mesh (Blender 3.0+): swapping the mesh swaps
    # the groups too, and swapping back restores them untouched.
    created.restore.append(lambda: setattr(target, "data", old_mesh))
    target.data = mesh
    return target


def _write_properties(obj: Object, output: ReconstructionOutput, photo_path: str) -> None:
    """Custom properties a script can read back, and the landmark / part vertex groups."""
    result = output.result
    coefficients = result.coefficients
    obj[PROP_MARKER] = 1
    obj[PROP_COEFFICIENTS] = np.asarray(coefficients.raw, dtype=np.float64).tolist()
    obj[PROP_SPLIT] = {name: list(span) for name, span in COEFFICIENT_SPLIT.items()}
    obj[PROP_TRANS_PARAMS] = np.asarray(result.trans_params, dtype=np.float64).tolist()
    obj[PROP_SOURCE] = photo_path or result.source
    obj[PROP_PHOTO_SIZE] = [int(result.photo_size[0]), int(result.photo_size[1])]
    obj[PROP_FACE_BOX] = np.asarray(result.face_box, dtype=np.float64).tolist()
    obj["tddfa_backbone"] = output.backbone
    obj["tddfa_device"] = output.device
    scales = key_scales(np.concatenate([np.asarray(coefficients.identity), np.asarray(coefficients.expression)]))
    obj[PROP_KEY_SCALES] = scales.astype(np.float64).tolist()
    for set_name, indices in result.landmark_indices.items():
        obj[PROP_LANDMARKS + set_name] = np.asarray(indices, dtype=np.int64).ravel().tolist()


def add_vertex_groups(obj: Object, result: FaceResult, options: ReconstructOptions) -> None:
    """Landmark, face-part and visibility vertex groups (weight 1).

    The 68 landmarks follow the iBUG-68 numbering, so they get the .nvf
    bridge's per-landmark groups ("IBUG.001".."IBUG.068"), which the .nvf
    exporter writes as the model's IBUG landmarks; the 106- and 134-point sets
    get one group each ("landmarks_106", "landmarks_134") and their ordered
    vertex indices as custom properties.
    """
    groups: list[tuple[str, npt.NDArray[np.int64]]] = [
        (VISIBLE_NAME, np.flatnonzero(np.asarray(result.visible, dtype=bool)).astype(np.int64))]
    if options.create_landmarks:
        for set_name in ("68", "106", "134"):
            if set_name not in result.landmark_indices:
                continue
            ordered = np.asarray(result.landmark_indices[set_name], dtype=np.int64).ravel()
            if set_name == "68":
                groups.extend((IBUG_GROUP.format(number), ordered[number - 1:number])
                              for number in range(1, ordered.shape[0] + 1))
            else:
                groups.append((LANDMARK_GROUP + set_name, np.unique(ordered)))
    if options.create_segmentation:
        groups.extend((part_name, np.asarray(indices, dtype=np.int64))
                      for part_name, indices in zip(PART_NAMES, result.part_vertices))
    mesh_builder.set_vertex_groups(obj, groups)
