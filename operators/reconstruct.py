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

from dataclasses import dataclass
from typing import TYPE_CHECKING

import bpy
from bpy.props import BoolProperty, StringProperty
from bpy.types import Context, Event, Image

from . import job_ui, registration
from .. import preferences
from ..bridge import readiness
from ..bridge import reconstruction as bridge
from ..bridge.errors import BridgeError
from .properties import (NOT_REMEMBERED, NetworkInputs, OperatorResult, ReconstructionParts, face_box,
                         face_box_property, options_from)


@dataclass
class _Prepared:
    options: bridge.ReconstructOptions
    photo: bridge.Photo
    photo_image: Image | None
    photo_path: str | None


#: The one interactive reconstruction at a time, read by the panel.
RUN_STATE = job_ui.RunState()


class OBJECT_OT_reconstruct_face(ReconstructionParts, NetworkInputs, job_ui.ModalJob):
    """Reconstruct a 3D face (shape keys, pose, camera, photo texture) from a photo with 3DDFA-V3"""

    bl_idname = "object.reconstruct_face"
    bl_label = "Reconstruct Face from Photo"
    bl_description = ("Reconstruct a 3D face from a photo with 3DDFA-V3: a mesh with fitted shape keys, "
                      "the head pose, a camera matching the photo and the photo as texture")
    bl_options = {'REGISTER', 'UNDO'}

    # assets_dir, device and backbone: NetworkInputs; create_* and update_existing: ReconstructionParts.
    if TYPE_CHECKING:
        # What the Blender properties below hold on an instance (mypy cannot read a
        # property annotation).
        filepath: str
        image_name: str
        face_box: bpy.types.bpy_prop_array[float]
        filter_image: bool
        filter_folder: bool
    else:
        filepath: preferences.path_property(  # type: ignore[valid-type]
            "Photo", "Photo file to reconstruct (ignored when an image is named)", remember=False)
        # The file browser shows only images (and folders) when the menus open it for a photo.
        filter_image: BoolProperty(default=True, options={'HIDDEN', 'SKIP_SAVE'})  # type: ignore[valid-type]
        filter_folder: BoolProperty(default=True, options={'HIDDEN', 'SKIP_SAVE'})  # type: ignore[valid-type]
        image_name: StringProperty(  # type: ignore[valid-type]
            name="Image", description="Name of an image already loaded in Blender to reconstruct", default="",
            options=NOT_REMEMBERED)
        face_box: face_box_property(  # type: ignore[valid-type]
            "x1, y1, x2, y2 of the face in photo pixels (y down); all zero: detect the face")

    _worker: bridge.ReconstructionJob | None = None
    _run = RUN_STATE
    _doing = "Reconstructing face"
    _busy = "A face reconstruction is already running (Esc cancels it)"
    _prepared: _Prepared | None = None
    _browsing: bool = False

    # ------------------------------------------------------------------ inputs
    def _prepare(self, context: Context) -> _Prepared:
        readiness.require_dependencies("3DDFA-V3")
        assets = self.assets(context)
        device, backbone = self.network(context)
        box = face_box(self.face_box)
        readiness.require_assets(assets, backbone, detector=box is None)
        given = readiness.photo_input(self.image_name, self.filepath)
        photo: bridge.Photo = bridge.image_to_rgb(given.image) if given.image is not None else str(given.path)
        options = options_from(self, bridge.ReconstructOptions, assets_dir=assets, device=device, backbone=backbone,
                               cache_dir=preferences.cache_dir(), face_box=box)
        return _Prepared(options, photo, given.image, given.path)

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
            return self._run_modal(context)
        try:
            prepared = self._prepare(context)
            job = bridge.ReconstructionJob(prepared.options, prepared.photo)
            output = bridge.run_job_sync(job, on_message=self._report_notice)
            self._build(context, prepared, output)
        except BridgeError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        return {'FINISHED'}

    def _report_notice(self, message: bridge.JobMessage) -> None:
        if isinstance(message, bridge.JobNotice):
            self.report({'WARNING'}, message.text)

    # ------------------------------------------------------------------ interactive
    def invoke(self, context: Context, event: Event) -> OperatorResult:
        wm = context.window_manager
        if (job_ui.interactive(context) and wm is not None and not self._is_running()
                and not self.filepath and not self.image_name):
            # From a menu or F3 search: ask for the photo first.
            self._browsing = True
            wm.fileselect_add(self)
            return {'RUNNING_MODAL'}
        return self._run_modal(context)

    def _start(self, context: Context) -> OperatorResult:
        """Check the inputs, then run the reconstruction on a worker thread (modal)."""
        try:
            self._prepared = self._prepare(context)
        except BridgeError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        worker = bridge.ReconstructionJob(self._prepared.options, self._prepared.photo)
        worker.start()
        return self._launch(context, worker)

    def _on_escape(self, context: Context) -> OperatorResult:
        job = self._worker
        if job is None:
            return {'CANCELLED'}
        if job.cancel_requested:
            return {'PASS_THROUGH'}
        job.cancel()
        RUN_STATE.stage = "cancelling"
        self._show_status(context)
        return {'RUNNING_MODAL'}

    def _on_tick(self, context: Context) -> OperatorResult:
        job = self._worker
        if job is None or self._prepared is None:
            return {'CANCELLED'}
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
                except BridgeError as error:
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



#: Add > Face from Photo (Object Mode's Add menu).
_menu_add_face_from_photo = registration.menu_entry(
    "_menu_add_face_from_photo", OBJECT_OT_reconstruct_face.bl_idname, "Face from Photo", icon='USER')
#: File > Import > Face from Photo (3DDFA-V3).
_menu_import_face_from_photo = registration.menu_entry(
    "_menu_import_face_from_photo", OBJECT_OT_reconstruct_face.bl_idname, "Face from Photo (3DDFA-V3)")

#: (menu, entry): where users look for the operator besides the sidebar and F3 search.
MENUS: tuple[registration.MenuEntry, ...] = (
    ("VIEW3D_MT_add", _menu_add_face_from_photo),
    ("TOPBAR_MT_file_import", _menu_import_face_from_photo),
)

register, unregister = registration.factory((OBJECT_OT_reconstruct_face,), MENUS)
