# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""3D View > Sidebar > Face > Maxine Model: the active reconstruction becomes the
person's own Maxine (.nvf) model. Settings live on the scene (`scene.nv3dmm_fitting`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import bpy
from bpy.props import BoolProperty, PointerProperty
from bpy.types import Context, Object, PropertyGroup, Scene

from . import common
from .. import preferences
from ..operators import registration
from ..bridge.fitting import find_reconstruction
from ..bridge.original import is_imported
from ..operators.fitting import RUN_STATE, OBJECT_OT_make_maxine_model

SETTINGS_ATTRIBUTE = "nv3dmm_fitting"


def _is_imported_model(_settings: PropertyGroup, obj: Object) -> bool:
    return is_imported(obj)


class NV3DMMFittingSettings(common.SourceSettings):
    """The Maxine Model panel's inputs, stored on the scene."""

    if TYPE_CHECKING:
        # What the Blender properties below hold (source and filepath: SourceSettings).
        model_object: Object | None
        residual: bool
    else:
        source: common.source_property(  # type: ignore[valid-type]
            ("File", "Fit an .nvf file"), ("OBJECT", "Object", "Fit a model already imported from an .nvf file"),
            name="Model")
        filepath: preferences.path_property(  # type: ignore[valid-type]
            "Model File", "The .nvf face model to fit (e.g. NVIDIA's face_model2.nvf)")
        model_object: PointerProperty(  # type: ignore[valid-type]
            name="Model Object", type=bpy.types.Object, poll=_is_imported_model,
            description="An object imported from an .nvf file")
        residual: BoolProperty(  # type: ignore[valid-type]
            name="Detail", default=True, description="Add the smooth detail the model's modes cannot express")


def scene_settings(scene: Scene) -> NV3DMMFittingSettings:
    return cast(NV3DMMFittingSettings, getattr(scene, SETTINGS_ATTRIBUTE))


class VIEW3D_PT_nv3dmm_fitting(common.FacePanel):
    """Make the person's own Maxine model from the active reconstruction."""

    bl_label = "Maxine Model"
    bl_idname = "VIEW3D_PT_nv3dmm_fitting"

    def draw(self, context: Context) -> None:
        layout = self.layout
        if layout is None or context.scene is None:
            return
        settings = scene_settings(context.scene)
        common.draw_source(layout, settings, "model_object")
        layout.prop(settings, "residual")
        reconstruction = find_reconstruction(context)
        if reconstruction is None:
            layout.label(text="Make a reconstruction active", icon='INFO')
        if RUN_STATE.running:
            common.draw_running(layout, RUN_STATE.panel_text())
            return
        has_model = bool(settings.filepath) if settings.source == 'FILE' else settings.model_object is not None
        op = cast(OBJECT_OT_make_maxine_model, common.run_button(
            layout, OBJECT_OT_make_maxine_model.bl_idname, 'USER', settings,
            enabled=reconstruction is not None and has_model, same=("residual",)))
        if settings.source == 'FILE':
            op.filepath, op.model_object = settings.filepath, ""
        else:
            op.filepath = ""
            op.model_object = settings.model_object.name if settings.model_object is not None else ""


register, unregister = registration.factory(
    (NV3DMMFittingSettings, VIEW3D_PT_nv3dmm_fitting), scene_settings=(SETTINGS_ATTRIBUTE, NV3DMMFittingSettings))
