# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Object > Make Maxine Model: the active reconstruction + an .nvf model -> the person's
own Maxine model object (bridge/fitting.py does the work).

Scripts and background mode run `execute()` (synchronous; an error report makes
`bpy.ops` raise RuntimeError there). Interactively `invoke()` reads the inputs on the
main thread, fits on a worker thread (concurrent.futures), shows progress in the
status bar (Esc cancels), and builds the object on the main thread: one undo step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import bpy
from bpy.props import BoolProperty, StringProperty
from bpy.types import Context

from . import job_ui, registration
from .. import preferences
from ..bridge import fitting as bridge
from ..bridge.errors import BridgeError
from .properties import NOT_REMEMBERED, OperatorResult, options_from


#: The one interactive fit at a time, read by the panel.
RUN_STATE = job_ui.RunState()


class OBJECT_OT_make_maxine_model(job_ui.ModalJob):
    """Fit an NVIDIA Maxine (.nvf) face model to the active reconstruction and add the person's own model: """ \
        """its shape keys are the model's modes and 53 expressions, set to the fitted values"""

    bl_idname = "object.make_maxine_model"
    bl_label = "Make Maxine Model"
    bl_options = {'REGISTER', 'UNDO'}

    if TYPE_CHECKING:
        filepath: str
        model_object: str
        residual: bool
        landmarks_only: bool
        name: str
    else:
        filepath: preferences.path_property(  # type: ignore[valid-type]
            "Model", "The .nvf face model to fit (e.g. NVIDIA's face_model2.nvf)", remember=False)
        model_object: StringProperty(  # type: ignore[valid-type]
            name="Model Object", default="", options=NOT_REMEMBERED,
            description="An object imported from an .nvf file to fit instead of a file")
        residual: BoolProperty(  # type: ignore[valid-type]
            name="Detail", default=True,
            description="Add the smooth detail the model's shape modes cannot express")
        landmarks_only: BoolProperty(  # type: ignore[valid-type]
            name="Landmarks Only", default=False,
            description="Fit the reconstruction's 68 landmarks alone, not its whole surface")
        name: StringProperty(  # type: ignore[valid-type]
            name="Name", default="", options=NOT_REMEMBERED,
            description="Name of the new object (empty: the reconstruction's name + Maxine)")

    _worker: bridge.FitJob | None = None
    _run = RUN_STATE
    _doing = "Making Maxine model"
    _busy = "A Maxine model is already being made (Esc cancels it)"

    def _options(self) -> bridge.MakeModelOptions:
        return options_from(self, bridge.MakeModelOptions, model_path=self.filepath)

    def _done(self, obj: bpy.types.Object, output: bridge.FitOutput) -> None:
        self.report({'INFO'}, f'Made "{obj.name}" ({bridge.describe(output)})')

    def execute(self, context: Context) -> OperatorResult:
        try:
            data = bridge.prepare_fit(context, self._options())
            output = bridge.compute_fit(data)
            obj = bridge.build_personal_model(context, data, output)
        except BridgeError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        self._done(obj, output)
        return {'FINISHED'}

    def _start(self, context: Context) -> OperatorResult:
        try:
            data = bridge.prepare_fit(context, self._options())
        except BridgeError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        worker = bridge.FitJob(data)
        worker.start()
        return self._launch(context, worker)

    def _on_escape(self, context: Context) -> OperatorResult:
        self.cancel(context)
        self.report({'INFO'}, "Make Maxine Model cancelled")
        return {'CANCELLED'}

    def _on_tick(self, context: Context) -> OperatorResult:
        job = self._worker
        if job is None:
            return {'CANCELLED'}
        if not job.done:
            RUN_STATE.stage, RUN_STATE.fraction = job.stage, job.fraction
            if context.window_manager is not None:
                context.window_manager.progress_update(int(100 * job.fraction))
            self._show_status(context)
            return {'RUNNING_MODAL'}
        self._finish(context)
        try:
            output = job.result()
            obj = bridge.build_personal_model(context, job.data, output)
        except BridgeError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        self._done(obj, output)
        return {'FINISHED'}


register, unregister = registration.factory((OBJECT_OT_make_maxine_model,))
