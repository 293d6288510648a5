# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Animation operators: Object > Animate from Video (a clip tracked into keyframes
on the active reconstruction, or on a new one made from the clip), and Live Link
Face CSV import (File > Import, onto the active mesh's ARKit- or Maxine-named
keys) and export (File > Export).

Animate from Video runs `execute()` synchronously for scripts and `blender -b`;
interactively `invoke()` tracks on a worker thread with progress (frames done /
total, frames per second) in the status bar, and Esc keeps the frames done.

Thin: each reads its properties into the bridge's options and calls one bridge
function; errors come back as a `BridgeError` (bad take, unsuitable mesh, a file that
cannot be read or written) and are reported, leaving the scene unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty
from bpy.types import Context, Event, Object, Operator, Scene
from bpy_extras.io_utils import ExportHelper, ImportHelper

from . import job_ui, registration
from .. import preferences
from ..bridge import animation as bridge
from ..bridge import readiness
from ..bridge.errors import BridgeError
from .properties import NetworkInputs, OperatorResult, face_box, face_box_property, file_filter, options_from


class _LiveLinkFace:
    """What the Live Link Face import and export share: the .csv file filter and the
    active mesh they work on."""

    filename_ext = ".csv"
    if TYPE_CHECKING:
        filepath: str
        filter_glob: str
    else:
        filter_glob: file_filter("*.csv")  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: Context) -> bool:
        return _active_mesh(context) is not None


def _active_mesh(context: Context) -> Object | None:
    obj = context.active_object
    return obj if obj is not None and obj.type == 'MESH' else None


def _target(context: Context) -> tuple[Scene, Object] | None:
    """The scene and the active mesh, or None when there is none."""
    obj = _active_mesh(context)
    return (context.scene, obj) if obj is not None and context.scene is not None else None


def _rate_items(self: object, context: Context | None) -> list[tuple[str, str, str]]:
    fps = bridge.scene_fps(context.scene) if context is not None and context.scene is not None else None
    scene = f"Scene ({fps:g} fps)" if fps is not None else "Scene"
    return [("SCENE", scene, "Read the take's timecodes at the scene's frame rate"),
            ("30", "30 fps", "The take's timecodes run at 30 frames per second"),
            ("60", "60 fps", "The take's timecodes run at 60 frames per second")]


# Why the ignores on the class lines: see operators/io_nvf.py (bpy_extras' helper stubs).
class IMPORT_ANIM_OT_live_link_face(_LiveLinkFace, Operator, ImportHelper):  # type: ignore[misc]
    """Import a Live Link Face CSV take onto the active mesh's ARKit- or Maxine-named shape keys"""

    bl_idname = "import_anim.live_link_face"
    bl_label = "Import Live Link Face (.csv)"
    bl_options = {'REGISTER', 'UNDO'}

    if TYPE_CHECKING:
        timecode_rate: str
        set_frame_range: bool
    else:
        timecode_rate: EnumProperty(  # type: ignore[valid-type]
            name="Timecode Rate", items=_rate_items,
            description="The frame rate of the take's timecodes (the file does not say it)")
        set_frame_range: BoolProperty(  # type: ignore[valid-type]
            name="Set Frame Range", default=True, description="Set the scene's frame range to the take")

    def execute(self, context: Context) -> OperatorResult:
        target = _target(context)
        if target is None:
            self.report({'ERROR'}, "Select a mesh with ARKit- or Maxine-named shape keys first")
            return {'CANCELLED'}
        try:
            summary = bridge.import_live_link_face(*target, options_from(self, bridge.LiveLinkImportOptions))
        except BridgeError as error:
            self.report({'ERROR'}, f"Live Link Face import failed: {error}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"Imported {summary.message}")
        return {'FINISHED'}


class EXPORT_ANIM_OT_live_link_face(_LiveLinkFace, Operator, ExportHelper):  # type: ignore[misc]
    """Export the active mesh's ARKit- or Maxine-named shape-key animation as a Live Link Face CSV"""

    bl_idname = "export_anim.live_link_face"
    bl_label = "Export Live Link Face (.csv)"
    bl_options = {'REGISTER'}

    def invoke(self, context: Context, event: Event) -> OperatorResult:  # type: ignore[override]
        return ExportHelper.invoke(self, context, event)  # type: ignore[func-returns-value, return-value]

    def execute(self, context: Context) -> OperatorResult:
        target = _target(context)
        if target is None:
            self.report({'ERROR'}, "Select a mesh with animated ARKit- or Maxine-named shape keys first")
            return {'CANCELLED'}
        try:
            summary = bridge.export_live_link_face(*target, self.filepath)
        except BridgeError as error:
            self.report({'ERROR'}, f"Live Link Face export failed: {error}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"Exported {summary.message}")
        return {'FINISHED'}


@dataclass
class VideoRunState(job_ui.RunState):
    """What the interactive video run is doing, for the panel to draw: frames done of total."""

    done: int = 0
    total: int = 0
    fps: float = 0.0

    def begin(self) -> None:
        super().begin()
        self.done, self.total, self.fps = 0, 0, 0.0


VIDEO_STATE = VideoRunState()


class OBJECT_OT_animate_from_video(NetworkInputs, job_ui.ModalJob):
    """Track a face through a video into keyframes: expression keys and head pose of the active
    reconstruction (or of a new one made from the clip), the video behind its camera"""

    bl_idname = "object.animate_from_video"
    bl_label = "Animate from Video"
    bl_options = {'REGISTER', 'UNDO'}

    # assets_dir, device and backbone: NetworkInputs.
    if TYPE_CHECKING:
        filepath: str
        frame_start: int
        frame_stop: int
        stride: int
        batch_size: int
        smoothing: bool
        min_cutoff: float
        beta: float
        identity_frame: int
        sequence_fps: float
        camera_background: bool
        face_box: bpy.types.bpy_prop_array[float]
    else:
        filepath: preferences.path_property(  # type: ignore[valid-type]
            "Video", "Movie file (mp4, mov, mkv, webm, avi) or one image of a numbered image sequence",
            remember=False)
        frame_start: IntProperty(  # type: ignore[valid-type]
            name="First Frame", default=0, min=0, description="First video frame to track (0-based)")
        frame_stop: IntProperty(  # type: ignore[valid-type]
            name="Stop Frame", default=0, min=0,
            description="Video frame to stop before (0: to the end of the video)")
        stride: IntProperty(  # type: ignore[valid-type]
            name="Stride", default=1, min=1, max=100, description="Track every n-th frame")
        batch_size: IntProperty(  # type: ignore[valid-type]
            name="Batch", default=16, min=1, max=512, description="Frames per regression pass")
        smoothing: BoolProperty(  # type: ignore[valid-type]
            name="Smooth", default=True, description="One Euro filter on expression and pose")
        min_cutoff: FloatProperty(  # type: ignore[valid-type]
            name="Min Cutoff", default=1.0, min=0.01, max=30.0,
            description="One Euro: smoothing at rest in Hz (lower: steadier still face)")
        beta: FloatProperty(  # type: ignore[valid-type]
            name="Speed Response", default=5.0, min=0.0, max=1000.0,
            description="One Euro beta: how fast smoothing falls with speed (higher: less lag)")
        identity_frame: IntProperty(  # type: ignore[valid-type]
            name="Identity Frame", default=-1, min=-1,
            description="Video frame whose face shape is used (-1: the median over the clip)")
        sequence_fps: FloatProperty(  # type: ignore[valid-type]
            name="Sequence FPS", default=30.0, min=1.0, max=1000.0,
            description="Frame rate of an image sequence (movies say their own)")
        camera_background: BoolProperty(  # type: ignore[valid-type]
            name="Video Background", default=True, description="Show the video behind the camera, in sync")
        face_box: face_box_property(  # type: ignore[valid-type]
            "x1, y1, x2, y2 of the face on the first frame in pixels (y down); all zero: detect it")

    _worker: bridge.VideoJob | None = None
    _run = VIDEO_STATE
    _busy = "A video is already being tracked (Esc cancels it)"
    _options: bridge.VideoOptions | None = None
    _maxine: bridge.MaxineTarget | None = None

    def _prepare(self, context: Context) -> tuple[bridge.VideoOptions, bool]:
        readiness.require_dependencies("tracking")
        assets = self.assets(context, hint=False)
        path = readiness.video_file(self.filepath)
        active = context.view_layer.objects.active if context.view_layer is not None else None
        self._maxine = bridge.check_video_target(active)
        device, backbone = self.network(context)
        options = options_from(
            self, bridge.VideoOptions, filepath=path, assets_dir=assets, device=device, backbone=backbone,
            cache_dir=preferences.cache_dir(), start=self.frame_start,
            stop=self.frame_stop if self.frame_stop > 0 else None,
            identity_frame=self.identity_frame if self.identity_frame >= 0 else None, face_box=face_box(self.face_box))
        return options, bridge.video_target(active) == "NEW"

    def _land(self, context: Context, options: bridge.VideoOptions, finished: bridge.VideoFinished) -> OperatorResult:
        try:
            _, message = bridge.animate_from_video(context, options, finished)
        except BridgeError as error:
            self.report({'ERROR'}, f"Animate from video failed: {error}")
            return {'CANCELLED'}
        self.report({'WARNING'} if finished.track.skipped or finished.track.cancelled else {'INFO'},
                    message[:1].upper() + message[1:])
        return {'FINISHED'}

    def execute(self, context: Context) -> OperatorResult:
        try:
            options, new = self._prepare(context)
            finished = bridge.run_video_sync(bridge.VideoJob(options, new, maxine=self._maxine))
        except BridgeError as error:
            self.report({'ERROR'}, f"Animate from video failed: {error}")
            return {'CANCELLED'}
        return self._land(context, options, finished)

    def _start(self, context: Context) -> OperatorResult:
        try:
            self._options, new = self._prepare(context)
        except BridgeError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        worker = bridge.VideoJob(self._options, new, maxine=self._maxine)
        worker.start()
        return self._launch(context, worker)

    def _on_escape(self, context: Context) -> OperatorResult:
        if self._worker is None:
            return {'CANCELLED'}
        self._worker.cancel()           # the worker stops after this frame and hands back what it did
        return {'RUNNING_MODAL'}

    def _on_tick(self, context: Context) -> OperatorResult:
        job, options = self._worker, self._options
        if job is None or options is None:
            return {'CANCELLED'}
        for message in job.drain():
            if isinstance(message, bridge.VideoProgress):
                VIDEO_STATE.done, VIDEO_STATE.total, VIDEO_STATE.fps = message.done, message.total, message.fps
                if context.window_manager is not None and message.total:
                    context.window_manager.progress_update(int(100 * message.done / message.total))
            elif isinstance(message, bridge.VideoFinished):
                self._finish(context)
                return self._land(context, options, message)
            elif isinstance(message, bridge.VideoFailed):
                self._finish(context)
                self.report({'ERROR'}, f"Animate from video failed: {message.message}")
                return {'CANCELLED'}
        self._show_status(context)
        return {'RUNNING_MODAL'}

    def _show_status(self, context: Context) -> None:
        job_ui.show(
            context, f"Tracking video: {VIDEO_STATE.done} / {VIDEO_STATE.total} frames, "
            f"{VIDEO_STATE.fps:.1f} frames/s  (Esc: stop and keep the frames done)")


_menu_import = registration.menu_entry(
    "_menu_import", IMPORT_ANIM_OT_live_link_face.bl_idname, "Live Link Face (.csv)")
_menu_export = registration.menu_entry(
    "_menu_export", EXPORT_ANIM_OT_live_link_face.bl_idname, "Live Link Face (.csv)")

register, unregister = registration.factory(
    (OBJECT_OT_animate_from_video, IMPORT_ANIM_OT_live_link_face, EXPORT_ANIM_OT_live_link_face),
    (("TOPBAR_MT_file_import", _menu_import), ("TOPBAR_MT_file_export", _menu_export)))
