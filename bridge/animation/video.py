# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""A tracked video onto Blender data (main thread): `animate_from_video` keys the active
reconstruction (expression keys, transform, the video behind its camera), or a new one
made from the clip's reference frame, or the blend shapes of an imported .nvf model
solved per frame. `video_target` / `check_video_target` say which, before any work.
May import bpy (inside the functions), the reconstruction and .nvf bridges.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...animation.names import map_keys
from ..axes import MODEL_AXES, MODEL_TO_BLENDER
from ..bpy_typed import has_id_property, id_property, lookup, object_camera, object_mesh
from ..errors import AnimationBridgeError, NvfBridgeError
from ..naming import MODE_KEY, blend_shape_key_name
from ..original import original_of
from ..reconstruction.build import apply_camera_settings, build_reconstruction
from ..reconstruction.plan import PROP_CAMERA, PROP_KEY_SCALES, PROP_MARKER, ReconstructOptions, camera_settings
from .boundary import bridge_errors
from .keyframes import (
    GROUP_ANGLES, GROUP_SHAPES, Channel, mesh_key_names, property_path, set_scene_timing, shape_key_path,
    write_channels,
)
from .video_job import MaxineTarget, VideoFinished, VideoOptions

if TYPE_CHECKING:
    from bpy.types import MovieClip, Object, Scene

#: The object transform's f-curve group.
GROUP_TRANSFORM = "Object Transform"
GROUP_EXPRESSION = "Expression"
#: Custom properties a video animation leaves on the object.
PROP_VIDEO = "tddfa_video"
PROP_VIDEO_SKIPPED = "tddfa_video_skipped"


def maxine_target(obj: Object) -> MaxineTarget:
    """The Maxine model behind an imported (or personal) .nvf object; AnimationBridgeError otherwise."""
    try:
        original = original_of(object_mesh(obj))
    except NvfBridgeError as error:
        raise AnimationBridgeError(str(error)) from error
    if original is None or original.model.blend_shapes is None:
        raise AnimationBridgeError(f'"{obj.name}" has ARKit/Maxine-named keys but was not imported from an .nvf '
                                   "model with blend shapes: animating it from video needs the model (import the "
                                   ".nvf, or select a reconstruction)")
    model = original.model
    blend_shapes = model.blend_shapes
    assert blend_shapes is not None
    blocks = getattr(obj.data, "shape_keys").key_blocks
    modes = int(model.shape.modes.shape[0])
    identity = np.array([blocks[MODE_KEY.format(i)].value if MODE_KEY.format(i) in blocks else 0.0
                         for i in range(modes)], dtype=np.float64)
    names = [blend_shape_key_name(name, i) for i, name in enumerate(blend_shapes.names)]
    missing = [name for name in names if name not in blocks]
    if missing:
        raise AnimationBridgeError(f'"{obj.name}" lacks the blend-shape keys {", ".join(missing[:5])}: '
                                   "re-import the model")
    return MaxineTarget(model=model, identity=identity, key_names=names)


def is_reconstruction(obj: Object | None) -> bool:
    return obj is not None and obj.type == 'MESH' and has_id_property(obj, PROP_MARKER) \
        and "EXP.00" in [b.name for b in getattr(getattr(obj.data, "shape_keys", None), "key_blocks", [])]


def video_target(obj: Object | None) -> str:
    """What `animate_from_video` does with the active object: 'RECONSTRUCTION' (animate it),
    'MAXINE' (a mesh with Maxine/ARKit keys: its blend shapes, solved per frame) or 'NEW'
    (reconstruct one from the clip)."""
    if is_reconstruction(obj):
        return "RECONSTRUCTION"
    if obj is not None and obj.type == 'MESH' and map_keys(mesh_key_names(obj)).keys:
        return "MAXINE"
    return "NEW"


def check_video_target(obj: Object | None) -> MaxineTarget | None:
    """The Maxine model to solve for when the active object is one (checked before any work)."""
    if obj is not None and video_target(obj) == "MAXINE":
        return maxine_target(obj)
    return None


@bridge_errors
def animate_from_video(context: Any, options: VideoOptions, finished: VideoFinished) -> tuple[Object, str]:
    """Main thread: the tracked clip onto the active reconstruction, or onto a new one made
    from the clip's reference frame. Returns the object and a summary for the report."""
    scene = context.scene
    obj = context.view_layer.objects.active if context.view_layer is not None else None
    track = finished.track
    if finished.maxine is not None:
        if obj is None or video_target(obj) != "MAXINE":
            raise AnimationBridgeError("the Maxine model the clip was solved for is no longer active")
        keys = apply_maxine(scene, obj, track, finished.maxine, options)
        message = (f'animated the {len(finished.maxine.names)} blend shapes of "{obj.name}" from '
                   f"{Path(options.filepath).name}: {len(finished.maxine.frames)} frames, {keys} keys")
        return obj, _with_skips(message, track)
    clip = None
    if not is_reconstruction(obj):
        if finished.reference is None:
            raise AnimationBridgeError("no reconstruction is active and none was made from the clip")
        name = Path(options.filepath).stem or "Video face"
        build = ReconstructOptions(options.assets_dir, device=options.device, backbone=options.backbone,
                                   create_texture=False, create_landmarks=True, create_segmentation=False,
                                   create_camera=True, update_existing=False, name=name)
        if options.camera_background:
            clip = _movie_clip(track)   # before anything is built: a clip that fails changes nothing
        obj = build_reconstruction(context, finished.reference, build)
    assert obj is not None
    keys = apply_track(scene, obj, track, options, clip=clip)
    done = f"{len(track)} of {len(track) + len(track.skipped)} frames"
    message = f'animated "{obj.name}" from {Path(options.filepath).name}: {done}, {keys} keys'
    return obj, _with_skips(message, track)


def _with_skips(message: str, track: Any) -> str:
    if track.skipped:
        shown = ", ".join(str(i) for i in track.skipped[:10]) + (" ..." if len(track.skipped) > 10 else "")
        message += f"; no face in {len(track.skipped)} frame(s) (no keys there): {shown}"
    if track.cancelled:
        message += "; cancelled: the frames done are kept"
    return message


def apply_maxine(scene: Scene, obj: Object, track: Any, solved: Any, options: VideoOptions) -> int:
    """Keys the Maxine model's blend-shape keys with the solved weights at every solved frame,
    and its HeadYaw/HeadPitch/HeadRoll properties with the clip's head angles; scene fps and
    frame range from the video. Returns the keys written."""
    target = maxine_target(obj)
    shape_keys = getattr(obj.data, "shape_keys")
    offset = float(scene.frame_start) - options.start
    frames = solved.frames.astype(np.float64) + offset
    if options.set_scene:
        set_scene_timing(scene, track.fps, frames[0], frames[-1])
    count = len(frames)
    channels = [Channel(shape_keys, shape_key_path(key), 0, frames, solved.weights[:, i], GROUP_SHAPES)
                for i, key in enumerate(target.key_names)]
    # 3DDFA-V3 angles are (pitch, yaw, roll) of the head seen by the camera.
    for name, column in (("HeadYaw", 1), ("HeadPitch", 0), ("HeadRoll", 2)):
        obj[name] = float(track.angles[0, column])
        channels.append(Channel(obj, property_path(name), 0, frames, track.angles[:count, column], GROUP_ANGLES))
    keys = write_channels(channels)
    obj[PROP_VIDEO] = track.source
    obj[PROP_VIDEO_SKIPPED] = [int(i) for i in track.skipped]
    return keys


def apply_track(scene: Scene, obj: Object, track: Any, options: VideoOptions, clip: MovieClip | None = None) -> int:
    """Keys a reconstruction with a tracked clip: its EXP.* keys and its transform at every
    tracked frame, its ID.* keys set to the clip's identity; scene fps and frame range from
    the video; the video (`clip`, else loaded here before anything changes) behind the
    reconstruction's camera, in sync. Returns the keys written."""
    import mathutils

    shape_keys = getattr(obj.data, "shape_keys")
    blocks = shape_keys.key_blocks
    scales = np.asarray(id_property(obj, PROP_KEY_SCALES, [1.0] * 144), dtype=np.float64)
    n_id, n_exp = track.identity.shape[0], track.expression.shape[1]
    if scales.shape[0] != n_id + n_exp or f"EXP.{n_exp - 1:02d}" not in blocks:
        raise AnimationBridgeError(f'"{obj.name}" is not a reconstruction with {n_id} identity and '
                                   f"{n_exp} expression keys")
    camera_obj = lookup(scene.objects, str(id_property(obj, PROP_CAMERA, "")))
    if camera_obj is not None and camera_obj.type != 'CAMERA':
        camera_obj = None
    if camera_obj is not None and options.camera_background and clip is None:
        clip = _movie_clip(track)   # a clip Blender cannot load fails here, the scene unchanged
    offset = float(scene.frame_start) - options.start
    frames = track.frames.astype(np.float64) + offset
    if options.set_scene:
        set_scene_timing(scene, track.fps, frames[0], frames[-1])
    for i in range(n_id):
        blocks[f"ID.{i:02d}"].value = float(track.identity[i] / scales[i])
    channels = [Channel(shape_keys, shape_key_path(f"EXP.{i:02d}"), 0, frames,
                        track.expression[:, i] / scales[n_id + i], GROUP_EXPRESSION) for i in range(n_exp)]
    rotations = track.rotations()
    locations = track.translation @ MODEL_TO_BLENDER.T
    eulers = np.empty((len(frames), 3))
    previous = None
    for row, rotation in enumerate(rotations):
        matrix = mathutils.Matrix((MODEL_AXES @ rotation.T @ MODEL_AXES.T).tolist())
        euler = matrix.to_euler('XYZ', previous) if previous is not None else matrix.to_euler('XYZ')
        eulers[row] = (euler.x, euler.y, euler.z)
        previous = euler
    obj.rotation_mode = 'XYZ'
    channels += [Channel(obj, "location", i, frames, locations[:, i], GROUP_TRANSFORM) for i in range(3)]
    channels += [Channel(obj, "rotation_euler", i, frames, eulers[:, i], GROUP_TRANSFORM) for i in range(3)]
    keys = write_channels(channels)
    obj[PROP_VIDEO] = track.source
    obj[PROP_VIDEO_SKIPPED] = [int(i) for i in track.skipped]
    if camera_obj is not None:
        _video_camera(scene, camera_obj, track, offset, clip if options.camera_background else None)
    return keys


def _movie_clip(track: Any) -> MovieClip:
    """The tracked video as a Blender movie clip; AnimationBridgeError when Blender cannot load it."""
    import bpy

    try:
        return bpy.data.movieclips.load(track.source, check_existing=True)
    except RuntimeError as error:
        raise AnimationBridgeError(f"Blender cannot load {track.source} as a movie clip: {error}") from error


def _video_camera(scene: Scene, camera_obj: Object, track: Any, offset: float, clip: MovieClip | None) -> None:
    """The reconstruction's camera as the reference frame's camera, the video (`clip`) behind it."""
    from ...tddfa_v3.result import PhotoCamera

    fx, fy, cx, cy = (float(v) for v in track.camera)
    camera = object_camera(camera_obj)
    apply_camera_settings(scene, camera_obj, camera,
                          camera_settings(PhotoCamera(int(track.width), int(track.height), fx, fy, cx, cy)))
    if clip is not None:
        # The clip's first frame (video frame 0) plays at this scene frame: keys and video in sync.
        clip.frame_start = int(round(offset))
        camera.background_images.clear()
        background = camera.background_images.new()
        background.source = 'MOVIE_CLIP'
        background.clip = clip
        background.alpha = 1.0
        background.display_depth = 'BACK'
        camera.show_background_images = True
