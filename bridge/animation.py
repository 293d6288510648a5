# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Animation in Blender: bulk keyframes on any Blender version we support, Live
Link Face takes onto and off meshes, scene timing and the video behind the camera.

Keyframes are written in bulk (`keyframe_points.add` + `foreach_set`, one
`FCurve.update()` per curve), never one `keyframe_insert` per key, and give
the same keys `keyframe_insert` gives. F-curves are found or made through the
API of the running Blender:

- 4.2 and 4.3: `Action.fcurves`;
- 4.4 and later (layered actions, slots; `Action.fcurves` is gone in 5.0):
  the action is assigned first, then `Action.fcurve_ensure_for_datablock`
  makes the curve in the slot of the datablock (setting the slot, which 4.4
  otherwise leaves empty so that the curve silently animates nothing);
  curves are read back through the slot's channel bag.

Everything checks its inputs before changing anything: a bad take or a mesh
without ARKit/Maxine keys raises `AnimationError` and leaves the scene as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from ..animation.errors import AnimationError
from ..animation.live_link import Take, format_timecode, parse_timecode, read_csv, write_csv
from ..animation.names import ARKIT_SHAPES, HEAD_EYE_ANGLES, map_keys
from .bpy_typed import has_id_property, id_property, lookup

if TYPE_CHECKING:
    from bpy.types import ID, Action, FCurve, Object, Scene

#: Custom properties an imported take leaves on the object, so its export writes the same timecodes.
PROP_TIMECODE_START = "llf_timecode_start"
PROP_TIMECODE_FPS = "llf_timecode_fps"
PROP_FIRST_FRAME = "llf_first_frame"
PROP_DECIMALS = "llf_decimals"
#: F-curve group names (the Graph Editor's channel groups).
GROUP_SHAPES = "Live Link Face"
GROUP_ANGLES = "Head and eyes"

#: Timecode rates offered for a take (the file does not say which it used).
TIMECODE_RATES = ("SCENE", "30", "60")


# --- f-curves on every Blender version ----------------------------------------

def _layered(action: Action) -> bool:
    return hasattr(action, "fcurve_ensure_for_datablock")


def ensure_action(id_data: ID, name: str) -> Action:
    """The action animating `id_data`, created and assigned (with its slot) when it has none."""
    import bpy

    anim = getattr(id_data, "animation_data") or id_data.animation_data_create()
    if anim is None:
        raise AnimationError(f'"{id_data.name}" cannot be animated')
    action = anim.action
    if action is None:
        action = bpy.data.actions.new(name)
        anim.action = action
    return action


def find_fcurves(id_data: ID) -> list[FCurve]:
    """The f-curves animating `id_data` (its action's, in its slot on 4.4+); [] when none."""
    anim = getattr(id_data, "animation_data")
    action = anim.action if anim is not None else None
    if anim is None or action is None:
        return []
    if not _layered(action):
        return list(action.fcurves)
    slot = getattr(anim, "action_slot", None)
    if slot is None:
        return []
    found: list[FCurve] = []
    for layer in getattr(action, "layers"):
        for strip in layer.strips:
            bag = strip.channelbag(slot)
            if bag is not None:
                found.extend(bag.fcurves)
    return found


def ensure_fcurve(id_data: ID, data_path: str, index: int = 0, group: str = "") -> FCurve:
    """The f-curve of `id_data` for (data_path, index), made when missing."""
    action = ensure_action(id_data, f"{id_data.name}Action")
    if _layered(action):
        ensure = getattr(action, "fcurve_ensure_for_datablock")
        fcurve: FCurve = ensure(id_data, data_path, index=index, group_name=group)
        return fcurve
    curves = action.fcurves
    existing: FCurve | None = getattr(curves, "find")(data_path, index=index)
    if existing is not None:
        return existing
    return curves.new(data_path, index=index, action_group=group)


def set_keys(fcurve: FCurve, frames: np.ndarray, values: np.ndarray) -> None:
    """Replaces the keys of `fcurve` by (frames[i], values[i]) in bulk, as keyframe_insert would key them.

    frames must increase strictly; the keys get the user's default interpolation
    (Bezier) and automatic-clamped handles, computed by one `update()`.
    """
    frames = np.asarray(frames, dtype=np.float32)
    values = np.asarray(values, dtype=np.float32)
    if frames.ndim != 1 or frames.shape != values.shape:
        raise AnimationError(f"keys need matching frames and values, not {frames.shape} and {values.shape}")
    if len(frames) > 1 and not np.all(np.diff(frames) > 0):
        raise AnimationError("key frames must increase")
    if not (np.all(np.isfinite(frames)) and np.all(np.isfinite(values))):
        raise AnimationError("keys must be finite numbers (no NaN)")
    points = fcurve.keyframe_points
    points.clear()
    count = len(frames)
    points.add(count)
    co = np.empty(2 * count, dtype=np.float32)
    co[0::2] = frames
    co[1::2] = values
    points.foreach_set("co", co)
    # Handles start on the key; update() places them (auto-clamped) from the neighbours.
    points.foreach_set("handle_left", co)
    points.foreach_set("handle_right", co)
    fcurve.update()


def key_arrays(fcurve: FCurve) -> tuple[np.ndarray, np.ndarray]:
    """(frames, values) of an f-curve's keys, read in bulk."""
    points = fcurve.keyframe_points
    co = np.empty(2 * len(points), dtype=np.float32)
    points.foreach_get("co", co)
    return co[0::2].astype(np.float64), co[1::2].astype(np.float64)


def curve_values(fcurve: FCurve, frames: np.ndarray) -> np.ndarray:
    """The f-curve at `frames`: its key values where the keys are those frames, else evaluated."""
    key_frames, key_values = key_arrays(fcurve)
    if len(key_frames) == len(frames) and np.array_equal(key_frames.astype(np.float32), frames.astype(np.float32)):
        return key_values
    return np.array([fcurve.evaluate(float(f)) for f in frames], dtype=np.float64)


def shape_key_path(name: str) -> str:
    """The data path of a shape key's value on its Key datablock."""
    import bpy

    return f'key_blocks["{bpy.utils.escape_identifier(name)}"].value'


def property_path(name: str) -> str:
    import bpy

    return f'["{bpy.utils.escape_identifier(name)}"]'


@dataclass(frozen=True)
class Channel:
    """One animated value: (data_path, index) of `id_data`, keyed at `frames` with `values`."""

    id_data: Any
    data_path: str
    index: int
    frames: np.ndarray
    values: np.ndarray
    group: str = ""


def write_channels(channels: Iterable[Channel]) -> int:
    """Writes every channel's keys in bulk; returns the number of keys written."""
    total = 0
    for channel in channels:
        fcurve = ensure_fcurve(channel.id_data, channel.data_path, channel.index, channel.group)
        set_keys(fcurve, channel.frames, channel.values)
        total += len(channel.frames)
    return total


# --- scene timing ----------------------------------------------------------------

def scene_fps(scene: Scene) -> float:
    return float(scene.render.fps) / float(scene.render.fps_base)


def set_scene_timing(scene: Scene, fps: float | None, first: float, last: float) -> None:
    """Sets the scene's frame range to cover [first, last] and, when given, its frame rate."""
    if fps is not None:
        if not (fps > 0 and math.isfinite(fps)):
            raise AnimationError(f"a frame rate must be positive, not {fps}")
        whole = round(fps)
        if abs(fps - whole) < 1e-6:
            scene.render.fps, scene.render.fps_base = int(whole), 1.0
        else:
            # NTSC-style rates (29.97 = 30 / 1.001) as Blender's own presets store them.
            rate = math.ceil(fps)
            scene.render.fps, scene.render.fps_base = rate, rate / fps
    start, end = int(math.floor(first)), int(math.ceil(last))
    scene.frame_start = start
    scene.frame_end = max(end, start)


# --- Live Link Face takes ----------------------------------------------------------

@dataclass(frozen=True)
class LiveLinkImportOptions:
    """What `import_live_link_face` does. timecode_rate: 'SCENE', '30' or '60'."""

    filepath: str
    timecode_rate: str = "SCENE"
    set_frame_range: bool = True


@dataclass(frozen=True)
class LiveLinkSummary:
    rows: int
    keys: int
    first_frame: float
    last_frame: float
    timecode_fps: float
    message: str


def _mesh_key_names(obj: Object) -> list[str]:
    data = obj.data
    shape_keys = getattr(data, "shape_keys", None)
    if obj.type != 'MESH' or shape_keys is None:
        return []
    return [block.name for block in shape_keys.key_blocks][1:]


def _timecode_rate(scene: Scene, choice: str) -> float:
    if choice == "SCENE":
        return scene_fps(scene)
    if choice in TIMECODE_RATES:
        return float(choice)
    raise AnimationError(f"the timecode rate is 'SCENE', '30' or '60', not {choice!r}")


def import_live_link_face(scene: Scene, obj: Object, options: LiveLinkImportOptions) -> LiveLinkSummary:
    """Keys a Live Link Face take onto `obj`'s ARKit- or Maxine-named shape keys.

    The take's first row lands on the scene's start frame; timecodes are read
    at the chosen rate and placed at the scene's frame rate. Head and eye
    angles become keyed custom properties (`HeadYaw`...) of the object. The
    file is read and checked whole first: any error leaves the scene unchanged.
    """
    key_names = _mesh_key_names(obj)
    key_map = map_keys(key_names)
    if not key_map.keys:
        raise AnimationError(f'"{obj.name}" has no shape keys with ARKit names (eyeBlinkLeft...) or Maxine names '
                             f"(eyeBlink_L...): import an .nvf model or add such keys first")
    take = read_csv(options.filepath)
    rate = _timecode_rate(scene, options.timecode_rate)
    tc_frames = take.frames(rate)
    fps = scene_fps(scene)
    start = float(scene.frame_start)
    frames = start + (tc_frames - tc_frames[0]) * (fps / rate)
    shape_values = {shape: take.shapes[:, i] for i, shape in enumerate(ARKIT_SHAPES)}
    key_values = key_map.key_values(shape_values)
    shape_keys = getattr(obj.data, "shape_keys")
    channels = [Channel(shape_keys, shape_key_path(name), 0, frames, values, GROUP_SHAPES)
                for name, values in key_values.items()]
    for i, angle in enumerate(HEAD_EYE_ANGLES):
        obj[angle] = float(take.angles[0, i])
        channels.append(Channel(obj, property_path(angle), 0, frames, take.angles[:, i], GROUP_ANGLES))
    obj[PROP_TIMECODE_START] = take.timecodes[0]
    obj[PROP_TIMECODE_FPS] = rate
    obj[PROP_FIRST_FRAME] = start
    obj[PROP_DECIMALS] = take.decimals
    keys = write_channels(channels)
    if options.set_frame_range:
        set_scene_timing(scene, None, frames[0], frames[-1])
    rate_text = "the scene's" if options.timecode_rate == "SCENE" else "the chosen"
    message = (f'{len(take)} frames onto {len(key_values)} keys of "{obj.name}", frames {frames[0]:g}-{frames[-1]:g}; '
               f"timecodes read at {rate:g} fps ({rate_text} rate: the file does not say)")
    if "tongueOut" in key_map.missing:
        message += "; tongueOut skipped (the mesh has no such key)"
    return LiveLinkSummary(len(take), keys, float(frames[0]), float(frames[-1]), rate, message)


def _union_frames(curves: Sequence[FCurve]) -> np.ndarray:
    frames = [key_arrays(fcurve)[0] for fcurve in curves]
    return np.unique(np.concatenate(frames)) if frames else np.empty(0)


def export_live_link_face(scene: Scene, obj: Object, filepath: str) -> LiveLinkSummary:
    """Writes the animation of `obj`'s ARKit- or Maxine-named shape keys as a Live Link Face CSV.

    One row per keyed frame (of any of those keys); a split Maxine shape's
    value is the mean of its halves; shapes the mesh lacks are 0. Head and eye
    angles come from the object's `HeadYaw`... custom properties when it has
    them, else 0. A take imported onto the object comes back with its own
    timecodes and precision.
    """
    key_map = map_keys(_mesh_key_names(obj))
    if not key_map.keys:
        raise AnimationError(f'"{obj.name}" has no shape keys with ARKit or Maxine names to export')
    shape_keys = getattr(obj.data, "shape_keys")
    by_path = {fcurve.data_path: fcurve for fcurve in find_fcurves(shape_keys)}
    curves = {name: by_path[shape_key_path(name)] for keys in key_map.keys.values() for name in keys
              if shape_key_path(name) in by_path}
    frames = _union_frames(list(curves.values()))
    if not len(frames):
        raise AnimationError(f'"{obj.name}" has no keyframes on its ARKit/Maxine shape keys: nothing to export')
    blocks = shape_keys.key_blocks
    key_values = {name: (curve_values(curves[name], frames) if name in curves
                         else np.full(len(frames), blocks[name].value, dtype=np.float64))
                  for keys in key_map.keys.values() for name in keys}
    shape_values = key_map.shape_values(key_values)
    shapes = np.zeros((len(frames), len(ARKIT_SHAPES)))
    for i, shape in enumerate(ARKIT_SHAPES):
        if shape in shape_values:
            shapes[:, i] = shape_values[shape]
    object_curves = {fcurve.data_path: fcurve for fcurve in find_fcurves(obj)}
    angles = np.zeros((len(frames), len(HEAD_EYE_ANGLES)))
    for i, angle in enumerate(HEAD_EYE_ANGLES):
        path = property_path(angle)
        if path in object_curves:
            angles[:, i] = curve_values(object_curves[path], frames)
        elif has_id_property(obj, angle):
            angles[:, i] = float(id_property(obj, angle))
    fps = scene_fps(scene)
    if has_id_property(obj, PROP_TIMECODE_START):
        rate = float(id_property(obj, PROP_TIMECODE_FPS))
        h, m, s, f, sub = parse_timecode(str(id_property(obj, PROP_TIMECODE_START)))
        origin = ((h * 60 + m) * 60 + s) * rate + f + sub
        first = float(id_property(obj, PROP_FIRST_FRAME))
        decimals = int(id_property(obj, PROP_DECIMALS))
    else:
        rate, origin, first, decimals = float(round(fps)), 0.0, float(scene.frame_start), 6
    timecodes = [format_timecode(origin + (frame - first) * (rate / fps), rate) for frame in frames]
    take = Take(timecodes=timecodes, shapes=shapes, angles=angles, decimals=decimals)
    write_csv(take, filepath)
    return LiveLinkSummary(len(frames), 0, float(frames[0]), float(frames[-1]), rate,
                           f'{len(frames)} frames of "{obj.name}" written to {filepath} '
                           f"(timecodes at {rate:g} fps)")


# --- video to animation ---------------------------------------------------------------

#: The object transform's f-curve group.
GROUP_TRANSFORM = "Object Transform"
GROUP_EXPRESSION = "Expression"
#: Custom properties a video animation leaves on the object.
PROP_VIDEO = "tddfa_video"
PROP_VIDEO_SKIPPED = "tddfa_video_skipped"


@dataclass(frozen=True)
class VideoOptions:
    """What `animate_from_video` does; the operator fills it from its properties.

    start/stop/stride: the video frames to track (stop None: to the end).
    identity_frame: the video frame whose identity is used (None: the median
    over the clip). min_cutoff/beta: the One Euro smoother (smoothing False: raw).
    sequence_fps: the frame rate of an image sequence. face_box: the face on
    the first frame (x1, y1, x2, y2 pixels, y down), skipping detection there.
    """

    filepath: str
    assets_dir: str
    device: str = "auto"
    backbone: str = "resnet50"
    cache_dir: str | None = None
    start: int = 0
    stop: int | None = None
    stride: int = 1
    batch_size: int = 16
    smoothing: bool = True
    min_cutoff: float = 1.0
    beta: float = 5.0
    identity_frame: int | None = None
    sequence_fps: float = 30.0
    set_scene: bool = True
    camera_background: bool = True
    face_box: tuple[float, float, float, float] | None = None

    def track_options(self) -> Any:
        from ..animation.one_euro import OneEuroParams
        from ..animation.tracking import TrackOptions
        from ..animation.video import FrameRange

        try:
            smoothing = OneEuroParams(self.min_cutoff, self.beta) if self.smoothing else None
        except ValueError as error:
            raise AnimationError(str(error)) from None
        return TrackOptions(frames=FrameRange(self.start, self.stop, self.stride), batch_size=self.batch_size,
                            smoothing=smoothing, identity_frame=self.identity_frame, face_box=self.face_box)


@dataclass(frozen=True)
class VideoProgress:
    done: int
    total: int
    fps: float


@dataclass(frozen=True)
class VideoFinished:
    track: Any                     # animation.tracking.Track
    reference: Any                 # bridge.reconstruction.ReconstructionOutput, or None
    maxine: Any = None             # animation.maxine.MaxineAnimation for a Maxine target


@dataclass(frozen=True)
class MaxineTarget:
    """What a Maxine model object gives the worker: its .nvf model, its identity (the
    PCA.* key values) and the shape-key name of each blend shape."""

    model: Any
    identity: np.ndarray
    key_names: list[str]


def maxine_target(obj: Object) -> MaxineTarget:
    """The Maxine model behind an imported (or personal) .nvf object; AnimationError otherwise."""
    from .bpy_typed import object_mesh
    from .nvf_import import model_of
    from .nvf_mapping import MODE_KEY, NvfBridgeError, blend_shape_key_name

    try:
        original = model_of(object_mesh(obj))
    except NvfBridgeError as error:
        raise AnimationError(str(error)) from error
    if original is None or original.model.blend_shapes is None:
        raise AnimationError(f'"{obj.name}" has ARKit/Maxine-named keys but was not imported from an .nvf model '
                             "with blend shapes: animating it from video needs the model (import the .nvf, or "
                             "select a reconstruction)")
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
        raise AnimationError(f'"{obj.name}" lacks the blend-shape keys {", ".join(missing[:5])}: re-import the model')
    return MaxineTarget(model=model, identity=identity, key_names=names)


@dataclass(frozen=True)
class VideoFailed:
    message: str
    error: BaseException


VideoMessage = VideoProgress | VideoFinished | VideoFailed


def _video_reconstructor(options: VideoOptions) -> Any:
    from ..tddfa_v3.pipeline import Reconstructor

    return Reconstructor(options.assets_dir, device=options.device, backbone=options.backbone,
                         cache_dir=options.cache_dir)


class VideoJob:
    """Tracking a video on a worker thread (`start`), or on this one (`run`); never touches bpy.

    Posts `VideoProgress` messages and exactly one `VideoFinished` or `VideoFailed`.
    A cancel keeps the frames already tracked (the finished track says `cancelled`).
    With `reconstruct_reference`, the face is also reconstructed from the
    clip's reference frame with the clip's identity (for a new object).
    """

    def __init__(self, options: VideoOptions, reconstruct_reference: bool,
                 reconstructor_factory: Any = None, detector: Any = None,
                 maxine: MaxineTarget | None = None) -> None:
        import queue
        import threading

        self.options = options
        self.reconstruct_reference = reconstruct_reference
        self.messages: queue.Queue[VideoMessage] = queue.Queue()
        self._cancel = threading.Event()
        self._factory = reconstructor_factory or _video_reconstructor
        self._detector = detector
        self.maxine = maxine
        self.thread: Any = None

    def start(self) -> None:
        import threading

        self.thread = threading.Thread(target=self.run, name="video tracking", daemon=True)
        self.thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    def drain(self) -> list[VideoMessage]:
        import queue

        out: list[VideoMessage] = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def run(self) -> None:
        from ..animation.tracking import track_video
        from ..animation.video import FrameRange, VideoSource

        try:
            source = VideoSource(self.options.filepath, sequence_fps=self.options.sequence_fps)
            track_options = self.options.track_options()
            reconstructor = self._factory(self.options)
            track = track_video(source, reconstructor, track_options, detector=self._detector,
                                progress=lambda d, t, f: self.messages.put(VideoProgress(d, t, f)),
                                cancel=self._cancel.is_set)
            reference = None
            if self.reconstruct_reference or self.maxine is not None:
                frame = track.reference_frame
                image = next(img for _, img in source.frames(FrameRange(frame, frame + 1)))
                reference = _reference_output(reconstructor, self.options, image, track)
            maxine = None
            if self.maxine is not None:
                maxine = self._solve_maxine(track, reference)
                reference = None
            self.messages.put(VideoFinished(track, reference, maxine))
        except BaseException as error:  # noqa: BLE001 - every failure is reported
            self.messages.put(VideoFailed(str(error) or type(error).__name__, error))


    def _solve_maxine(self, track: Any, reference: Any) -> Any:
        """The Maxine weights per frame (fitting on the clip's reconstruction)."""
        from .. import fitting
        from ..animation.maxine import FaceShapes, solve_maxine
        from ..animation.one_euro import OneEuroParams

        assert self.maxine is not None
        result, bases = reference.result, reference.bases
        shapes = FaceShapes(mean=bases.mean, identity=bases.identity, expression=bases.expression,
                            triangles=np.asarray(result.triangles), landmarks68=np.asarray(result.landmark_indices["68"]))
        smoothing = OneEuroParams(self.options.min_cutoff, self.options.beta) if self.options.smoothing else None
        return solve_maxine(self.maxine.model, self.maxine.identity, track, shapes, smoothing=smoothing,
                            cancel=self._cancel.is_set, fitting=fitting)


def _reference_output(reconstructor: Any, options: VideoOptions, image: np.ndarray, track: Any) -> Any:
    """The reconstruction of the reference frame, with the clip's locked identity."""
    import dataclasses

    from . import reconstruction as recon

    result = reconstructor.reconstruct(image, landmarks5=track.reference_landmarks5)
    identity = np.asarray(track.identity, dtype=np.float32)
    result = dataclasses.replace(result, coefficients=dataclasses.replace(result.coefficients, identity=identity))
    result.source = options.filepath
    bases = recon._default_bases(reconstructor, recon.ReconstructOptions(options.assets_dir,
                                                                       cache_dir=options.cache_dir))
    device = str(getattr(getattr(reconstructor, "device", None), "type", options.device))
    return recon.ReconstructionOutput(result=result, bases=bases, device=device, backbone=options.backbone,
                                      shape_keys=recon.plan_shape_keys(result, bases))


def run_video_sync(job: VideoJob) -> VideoFinished:
    """Runs `job` on this thread; its finished message, or its error raised."""
    job.run()
    for message in job.drain():
        if isinstance(message, VideoFinished):
            return message
        if isinstance(message, VideoFailed):
            if isinstance(message.error, Exception):
                raise message.error
            raise AnimationError(message.message)
    raise AnimationError("the video job ended without a result")


def is_reconstruction(obj: Object | None) -> bool:
    from .reconstruction import PROP_MARKER

    return obj is not None and obj.type == 'MESH' and has_id_property(obj, PROP_MARKER) \
        and "EXP.00" in [b.name for b in getattr(getattr(obj.data, "shape_keys", None), "key_blocks", [])]


def video_target(obj: Object | None) -> str:
    """What `animate_from_video` does with the active object: 'RECONSTRUCTION' (animate it),
    'MAXINE' (a mesh with Maxine/ARKit keys: its blend shapes, solved per frame) or 'NEW'
    (reconstruct one from the clip)."""
    if is_reconstruction(obj):
        return "RECONSTRUCTION"
    if obj is not None and obj.type == 'MESH' and map_keys(_mesh_key_names(obj)).keys:
        return "MAXINE"
    return "NEW"


def check_video_target(obj: Object | None) -> MaxineTarget | None:
    """The Maxine model to solve for when the active object is one (checked before any work)."""
    if obj is not None and video_target(obj) == "MAXINE":
        return maxine_target(obj)
    return None


def animate_from_video(context: Any, options: VideoOptions, finished: VideoFinished) -> tuple[Object, str]:
    """Main thread: the tracked clip onto the active reconstruction, or onto a new one made
    from the clip's reference frame. Returns the object and a summary for the report."""
    from . import reconstruction as recon

    scene = context.scene
    obj = context.view_layer.objects.active if context.view_layer is not None else None
    track = finished.track
    if finished.maxine is not None:
        if obj is None or video_target(obj) != "MAXINE":
            raise AnimationError("the Maxine model the clip was solved for is no longer active")
        keys = apply_maxine(scene, obj, track, finished.maxine, options)
        message = (f'animated the {len(finished.maxine.names)} blend shapes of "{obj.name}" from '
                   f"{Path(options.filepath).name}: {len(finished.maxine.frames)} frames, {keys} keys")
        return obj, _with_skips(message, track)
    if not is_reconstruction(obj):
        if finished.reference is None:
            raise AnimationError("no reconstruction is active and none was made from the clip")
        name = Path(options.filepath).stem or "Video face"
        build = recon.ReconstructOptions(options.assets_dir, device=options.device, backbone=options.backbone,
                                         create_texture=False, create_landmarks=True, create_segmentation=False,
                                         create_camera=True, update_existing=False, name=name)
        obj = recon.build_reconstruction(context, finished.reference, build)
    assert obj is not None
    keys = apply_track(scene, obj, track, options)
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


def apply_track(scene: Scene, obj: Object, track: Any, options: VideoOptions) -> int:
    """Keys a reconstruction with a tracked clip: its EXP.* keys and its transform at every
    tracked frame, its ID.* keys set to the clip's identity; scene fps and frame range from
    the video; the video behind the reconstruction's camera, in sync. Returns the keys written."""
    import mathutils

    from .reconstruction import _AXES, MODEL_TO_BLENDER, PROP_CAMERA, PROP_KEY_SCALES

    shape_keys = getattr(obj.data, "shape_keys")
    blocks = shape_keys.key_blocks
    scales = np.asarray(id_property(obj, PROP_KEY_SCALES, [1.0] * 144), dtype=np.float64)
    n_id, n_exp = track.identity.shape[0], track.expression.shape[1]
    if scales.shape[0] != n_id + n_exp or f"EXP.{n_exp - 1:02d}" not in blocks:
        raise AnimationError(f'"{obj.name}" is not a reconstruction with {n_id} identity and {n_exp} expression keys')
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
        matrix = mathutils.Matrix((_AXES @ rotation.T @ _AXES.T).tolist())
        euler = matrix.to_euler('XYZ', previous) if previous is not None else matrix.to_euler('XYZ')
        eulers[row] = (euler.x, euler.y, euler.z)
        previous = euler
    obj.rotation_mode = 'XYZ'
    channels += [Channel(obj, "location", i, frames, locations[:, i], GROUP_TRANSFORM) for i in range(3)]
    channels += [Channel(obj, "rotation_euler", i, frames, eulers[:, i], GROUP_TRANSFORM) for i in range(3)]
    keys = write_channels(channels)
    obj[PROP_VIDEO] = track.source
    obj[PROP_VIDEO_SKIPPED] = [int(i) for i in track.skipped]
    camera_obj = lookup(scene.objects, str(id_property(obj, PROP_CAMERA, "")))
    if camera_obj is not None and camera_obj.type == 'CAMERA':
        _video_camera(scene, camera_obj, track, options, offset)
    return keys


def _video_camera(scene: Scene, camera_obj: Object, track: Any, options: VideoOptions, offset: float) -> None:
    """The reconstruction's camera as the reference frame's camera, the video behind it."""
    import bpy
    from types import SimpleNamespace

    from ..tddfa_v3.result import PhotoCamera
    from .reconstruction import camera_settings

    fx, fy, cx, cy = (float(v) for v in track.camera)
    settings = camera_settings(SimpleNamespace(camera=PhotoCamera(int(track.width), int(track.height),
                                                                  fx, fy, cx, cy)))  # type: ignore[arg-type]
    camera = camera_obj.data
    assert isinstance(camera, bpy.types.Camera)
    camera.sensor_fit = 'HORIZONTAL'
    camera.sensor_width = settings.sensor_width
    camera.lens = settings.lens
    camera.shift_x, camera.shift_y = settings.shift_x, settings.shift_y
    camera_obj.location = settings.location
    camera_obj.rotation_mode = 'XYZ'
    camera_obj.rotation_euler = settings.rotation_euler
    render = scene.render
    render.resolution_x, render.resolution_y = settings.resolution
    render.resolution_percentage = 100
    render.pixel_aspect_x, render.pixel_aspect_y = settings.pixel_aspect_x, settings.pixel_aspect_y
    if options.camera_background:
        try:
            clip = bpy.data.movieclips.load(track.source, check_existing=True)
        except RuntimeError as error:
            raise AnimationError(f"Blender cannot load {track.source} as a movie clip: {error}") from error
        # The clip's first frame (video frame 0) plays at this scene frame: keys and video in sync.
        clip.frame_start = int(round(offset))
        camera.background_images.clear()
        background = camera.background_images.new()
        background.source = 'MOVIE_CLIP'
        background.clip = clip
        background.alpha = 1.0
        background.display_depth = 'BACK'
        camera.show_background_images = True
