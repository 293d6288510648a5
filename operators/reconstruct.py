# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Object > Reconstruct Face from Photo: 3DDFA-V3 on a photo file or a loaded image.

Scripts and background mode (`blender -b`, the bpy module) run `execute()`,
which reconstructs synchronously. Interactively `invoke()` runs the network on
a worker thread (it never touches bpy data) and a modal timer drains its
messages: progress in the status bar, Esc cancels, Blender keeps redrawing,
and the Blender data is built on the main thread at the end, as one undo step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatVectorProperty, StringProperty
from bpy.types import Context, Event, Image, Menu, Operator, Timer

from . import registration
from .. import preferences
from . import job_ui
from ..bridge import reconstruction as bridge
from ..bridge.bpy_typed import lookup
from ..tddfa_v3.errors import ReconstructionError


#: What execute / invoke / modal return (the stubs' literal set).
OperatorResult = set[Literal['RUNNING_MODAL', 'CANCELLED', 'FINISHED', 'PASS_THROUGH', 'INTERFACE']]


class OperatorInputError(ReconstructionError):
    """The operator's inputs cannot work (no photo, no assets, missing packages)."""


@dataclass
class _Prepared:
    options: bridge.ReconstructOptions
    photo: bridge.Photo
    photo_image: Image | None
    photo_path: str | None


@dataclass
class RunState:
    """What the interactive run is doing, for the panel to draw."""

    stage: str = ""
    fraction: float = 0.0
    running: bool = False


#: The one interactive reconstruction at a time, read by the panel.
RUN_STATE = RunState()

#: Inputs a button press must not take from the last run: Blender fills unset operator
#: properties with their last-used values, which would override the preferences' defaults
#: ("unset" means "use the preferences"), reuse another photo's face box or assets folder.
_NOT_REMEMBERED: set[str] = {'SKIP_SAVE'}


class OBJECT_OT_reconstruct_face(Operator):
    """Reconstruct a 3D face (shape keys, pose, camera, photo texture) from a photo with 3DDFA-V3"""

    bl_idname = "object.reconstruct_face"
    bl_label = "Reconstruct Face from Photo"
    bl_description = ("Reconstruct a 3D face from a photo with 3DDFA-V3: a mesh with fitted shape keys, "
                      "the head pose, a camera matching the photo and the photo as texture")
    bl_options = {'REGISTER', 'UNDO'}

    if TYPE_CHECKING:
        # What the Blender properties below hold on an instance (mypy cannot read a
        # property annotation).
        filepath: str
        image_name: str
        assets_dir: str
        device: str
        backbone: str
        face_box: bpy.types.bpy_prop_array[float]
        filter_image: bool
        filter_folder: bool
        create_texture: bool
        create_landmarks: bool
        create_segmentation: bool
        create_camera: bool
        update_existing: bool
    else:
        filepath: StringProperty(  # type: ignore[valid-type]
            name="Photo", description="Photo file to reconstruct (ignored when an image is named)",
            subtype='FILE_PATH', default="", options=preferences.PATH_OPTIONS | _NOT_REMEMBERED)
        # The file browser shows only images (and folders) when the menus open it for a photo.
        filter_image: BoolProperty(default=True, options={'HIDDEN', 'SKIP_SAVE'})  # type: ignore[valid-type]
        filter_folder: BoolProperty(default=True, options={'HIDDEN', 'SKIP_SAVE'})  # type: ignore[valid-type]
        image_name: StringProperty(  # type: ignore[valid-type]
            name="Image", description="Name of an image already loaded in Blender to reconstruct", default="",
            options=_NOT_REMEMBERED)
        assets_dir: StringProperty(  # type: ignore[valid-type]
            name="Assets", description="3DDFA-V3 assets folder (empty: the add-on preferences' folder)",
            subtype='DIR_PATH', default="", options=preferences.PATH_OPTIONS | _NOT_REMEMBERED)
        device: EnumProperty(  # type: ignore[valid-type]
            name="Device", items=preferences.DEVICE_ITEMS, default="AUTO", options=_NOT_REMEMBERED,
            description="Compute device (unset: the preferences' default)")
        backbone: EnumProperty(  # type: ignore[valid-type]
            name="Backbone", items=preferences.BACKBONE_ITEMS, default="RESNET50", options=_NOT_REMEMBERED,
            description="Regressor network (unset: the preferences' default)")
        face_box: FloatVectorProperty(  # type: ignore[valid-type]
            name="Face Box", size=4, default=(0.0, 0.0, 0.0, 0.0), options=_NOT_REMEMBERED,
            description="x1, y1, x2, y2 of the face in photo pixels (y down); all zero: detect the face")
        create_texture: BoolProperty(  # type: ignore[valid-type]
            name="Texture", default=True,
            description="Photo material through the reconstruction's UVs, albedo and lit colour attributes")
        create_landmarks: BoolProperty(  # type: ignore[valid-type]
            name="Landmarks", default=True, description="Vertex groups of the 68/106/134 landmark vertices")
        create_segmentation: BoolProperty(  # type: ignore[valid-type]
            name="Face Parts", default=True, description="Vertex groups of the 8 face parts")
        create_camera: BoolProperty(  # type: ignore[valid-type]
            name="Camera", default=True,
            description="A camera that reproduces the photo's framing, with the photo as background")
        update_existing: BoolProperty(  # type: ignore[valid-type]
            name="Update Active", default=True,
            description="Update the active reconstructed face instead of adding a new object")

    _job: bridge.ReconstructionJob | None = None
    _prepared: _Prepared | None = None
    _timer: Timer | None = None
    _browsing: bool = False

    # ------------------------------------------------------------------ inputs
    def _choice(self, name: str, context: Context) -> str:
        """An enum property, or the preferences' default when the caller left it unset."""
        prefs = preferences.get_preferences(context)
        if not self.properties.is_property_set(name) and prefs is not None:
            return str(getattr(prefs, name))
        return str(getattr(self, name))

    def _prepare(self, context: Context) -> _Prepared:
        missing = preferences.missing_dependencies()
        if missing:
            raise OperatorInputError(
                f"3DDFA-V3 needs {', '.join(missing)} in Blender's Python; install with: "
                f"{preferences.pip_command(missing)}")
        prefs = preferences.get_preferences(context)
        assets = self.assets_dir or (prefs.assets_dir if prefs is not None else "")
        if not assets:
            raise OperatorInputError(
                "No 3DDFA-V3 assets folder: set it in the add-on preferences (or pass assets_dir); "
                f"download the files from {preferences.ASSETS_HINT}")
        assets = os.path.abspath(bpy.path.abspath(assets))
        backbone = bridge.BACKBONES[self._choice("backbone", context)]
        x1, y1, x2, y2 = (float(v) for v in self.face_box)
        face_box = (x1, y1, x2, y2) if any(abs(v) > 0.0 for v in (x1, y1, x2, y2)) else None
        use_box = face_box is not None
        status = preferences.asset_status(assets)
        if status.report is not None and not status.report.ok_for(backbone, detector=not use_box):
            raise OperatorInputError(status.message)

        photo: bridge.Photo
        photo_image = None
        photo_path: str | None = None
        if self.image_name:
            photo_image = lookup(bpy.data.images, self.image_name)
            if photo_image is None:
                raise OperatorInputError(f'No image named "{self.image_name}" in this file')
            photo = bridge.image_to_rgb(photo_image)
            photo_path = bpy.path.abspath(photo_image.filepath) if photo_image.filepath else None
        elif self.filepath:
            photo_path = os.path.abspath(bpy.path.abspath(self.filepath))
            if not os.path.isfile(photo_path):
                raise OperatorInputError(f"The photo {photo_path} does not exist")
            photo = photo_path
        else:
            raise OperatorInputError("Choose a photo file or an image to reconstruct")

        options = bridge.ReconstructOptions(
            assets_dir=assets,
            device=bridge.DEVICES[self._choice("device", context)],
            backbone=backbone,
            cache_dir=preferences.cache_dir(),
            face_box=face_box,
            create_texture=self.create_texture,
            create_landmarks=self.create_landmarks,
            create_segmentation=self.create_segmentation,
            create_camera=self.create_camera,
            update_existing=self.update_existing,
        )
        return _Prepared(options, photo, photo_image, photo_path)

    def _build(self, context: Context, prepared: _Prepared, output: bridge.ReconstructionOutput) -> None:
        obj = bridge.build_reconstruction(context, output, prepared.options,
                                          photo_image=prepared.photo_image, photo_path=prepared.photo_path)
        self.report({'INFO'}, f'Reconstructed "{obj.name}" ({output.result.vertex_count} vertices, '
                              f"{output.backbone} on {output.device})")

    # ------------------------------------------------------------------ synchronous
    def execute(self, context: Context) -> OperatorResult:
        if self._browsing:
            # The file browser (opened by invoke from a menu) returned with a photo:
            # reconstruct off the main thread as a button press would.
            self._browsing = False
            return self._start(context)
        try:
            prepared = self._prepare(context)
            job = bridge.ReconstructionJob(prepared.options, prepared.photo)
            output = bridge.run_job_sync(job, on_message=self._report_notice)
            self._build(context, prepared, output)
        except ReconstructionError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        return {'FINISHED'}

    def _report_notice(self, message: bridge.JobMessage) -> None:
        if isinstance(message, bridge.JobNotice):
            self.report({'WARNING'}, message.text)

    # ------------------------------------------------------------------ interactive
    def invoke(self, context: Context, event: Event) -> OperatorResult:
        wm = context.window_manager
        if bpy.app.background or context.window is None or wm is None:
            return self.execute(context)
        if RUN_STATE.running:
            self.report({'ERROR'}, "A face reconstruction is already running (Esc cancels it)")
            return {'CANCELLED'}
        if not self.filepath and not self.image_name:
            # From a menu or F3 search: ask for the photo first.
            self._browsing = True
            wm.fileselect_add(self)
            return {'RUNNING_MODAL'}
        return self._start(context)

    def _start(self, context: Context) -> OperatorResult:
        """Check the inputs, then run the reconstruction on a worker thread (modal)."""
        wm = context.window_manager
        if wm is None or context.window is None:
            return self.execute(context)
        if RUN_STATE.running:
            self.report({'ERROR'}, "A face reconstruction is already running (Esc cancels it)")
            return {'CANCELLED'}
        try:
            self._prepared = self._prepare(context)
        except ReconstructionError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        self._job = bridge.ReconstructionJob(self._prepared.options, self._prepared.photo)
        self._job.start()
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0, 100)
        RUN_STATE.running, RUN_STATE.stage, RUN_STATE.fraction = True, "starting", 0.0
        self._show_status(context)
        wm.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def modal(self, context: Context, event: Event) -> OperatorResult:
        job = self._job
        if job is None or self._prepared is None:
            return {'CANCELLED'}
        if event.type == 'ESC' and event.value == 'PRESS' and not job.cancel_requested:
            job.cancel()
            RUN_STATE.stage = "cancelling"
            self._show_status(context)
            return {'RUNNING_MODAL'}
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        try:
            return self._drain(context, job, self._prepared)
        except Exception as error:  # noqa: BLE001 - never leave the modal state behind
            self._finish(context)
            self.report({'ERROR'}, f"Face reconstruction failed: {type(error).__name__}: {error}")
            return {'CANCELLED'}

    def _drain(self, context: Context, job: bridge.ReconstructionJob, prepared: _Prepared) -> OperatorResult:
        """Handle what the worker posted since the last timer tick."""
        for message in job.drain():
            if isinstance(message, bridge.JobProgress):
                RUN_STATE.stage, RUN_STATE.fraction = message.stage, message.fraction
                if context.window_manager is not None:
                    context.window_manager.progress_update(int(100 * message.fraction))
            elif isinstance(message, bridge.JobNotice):
                self.report({'WARNING'}, message.text)
            elif isinstance(message, bridge.JobFinished):
                self._finish(context)
                try:
                    self._build(context, prepared, message.output)
                except ReconstructionError as error:
                    self.report({'ERROR'}, str(error))
                    return {'CANCELLED'}
                return {'FINISHED'}
            elif isinstance(message, bridge.JobFailed):
                self._finish(context)
                self.report({'ERROR'}, message.message)
                return {'CANCELLED'}
            elif isinstance(message, bridge.JobCancelled):
                self._finish(context)
                self.report({'INFO'}, "Face reconstruction cancelled")
                return {'CANCELLED'}
        self._show_status(context)
        return {'RUNNING_MODAL'}

    def cancel(self, context: Context) -> None:
        # Blender ends the operator (file load, quit): stop the worker, drop its result.
        if self._job is not None:
            self._job.cancel()
        self._finish(context)

    def _show_status(self, context: Context) -> None:
        job_ui.show(
            context, f"Reconstructing face: {RUN_STATE.stage} {int(100 * RUN_STATE.fraction)}%  (Esc to cancel)")

    def _finish(self, context: Context) -> None:
        RUN_STATE.running, RUN_STATE.stage, RUN_STATE.fraction = False, "", 0.0
        job_ui.end(context, self._timer)
        self._timer = None


def _menu_add_face_from_photo(self: Menu, context: Context) -> None:
    """Add > Face from Photo (Object Mode's Add menu)."""
    if self.layout is not None:
        self.layout.operator(OBJECT_OT_reconstruct_face.bl_idname, text="Face from Photo", icon='USER')


def _menu_import_face_from_photo(self: Menu, context: Context) -> None:
    """File > Import > Face from Photo (3DDFA-V3)."""
    if self.layout is not None:
        self.layout.operator(OBJECT_OT_reconstruct_face.bl_idname, text="Face from Photo (3DDFA-V3)")


#: (menu, entry): where users look for the operator besides the sidebar and F3 search.
MENUS: tuple[registration.MenuEntry, ...] = (
    ("VIEW3D_MT_add", _menu_add_face_from_photo),
    ("TOPBAR_MT_file_import", _menu_import_face_from_photo),
)

_CLASSES = (OBJECT_OT_reconstruct_face,)


def register() -> None:
    registration.register(_CLASSES, MENUS)


def unregister() -> None:
    registration.unregister(_CLASSES, MENUS)
