# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""3D View > Sidebar > Face > Reconstruct from Photo.

The settings live on the scene (`scene.nv3dmm_reconstruct`), so they are saved
with the .blend file and can be keyframed or set by scripts; the button passes
them to `object.reconstruct_face`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import bpy
from bpy.props import PointerProperty
from bpy.types import Context, Image, Scene

from . import common
from .. import preferences
from ..operators import registration
from ..operators.properties import NetworkDefaults, ReconstructionParts
from ..operators.reconstruct import RUN_STATE, OBJECT_OT_reconstruct_face


#: The Scene property holding the settings.
SETTINGS_ATTRIBUTE = "nv3dmm_reconstruct"


class NV3DMMReconstructSettings(ReconstructionParts, NetworkDefaults, common.SourceSettings):
    """The Reconstruct panel's inputs, stored on the scene (device and backbone: NetworkDefaults;
    what it creates: ReconstructionParts, shared with the operator)."""

    if TYPE_CHECKING:
        # What the Blender properties below hold on an instance (mypy cannot read a
        # property annotation; source and filepath: SourceSettings).
        image: Image | None
    else:
        source: common.source_property(  # type: ignore[valid-type]
            ("Photo File", "Read the photo from a file"),
            ("IMAGE", "Blender Image", "Use an image already loaded in Blender"))
        filepath: preferences.path_property("Photo", "Photo file to reconstruct")  # type: ignore[valid-type]
        image: PointerProperty(  # type: ignore[valid-type]
            name="Image", type=bpy.types.Image, description="An image already loaded in Blender")


def scene_settings(scene: Scene) -> NV3DMMReconstructSettings:
    """The panel's settings on `scene` (a property this module adds to Scene at registration)."""
    return cast(NV3DMMReconstructSettings, getattr(scene, SETTINGS_ATTRIBUTE))


class VIEW3D_PT_nv3dmm_reconstruct(common.FacePanel):
    """Reconstruct a face from a photo with 3DDFA-V3."""

    bl_label = "Reconstruct from Photo"
    bl_idname = "VIEW3D_PT_nv3dmm_reconstruct"

    def draw(self, context: Context) -> None:
        layout = self.layout
        if layout is None or context.scene is None:
            return
        settings = scene_settings(context.scene)
        prefs = preferences.get_preferences(context)
        ready = preferences.draw_dependency_status(layout)

        common.draw_source(layout, settings, "image", open_operator="image.open")
        common.draw_network(layout, settings)

        col = layout.column(heading="Create", align=True)
        col.prop(settings, "create_texture")
        col.prop(settings, "create_landmarks")
        col.prop(settings, "create_segmentation")
        col.prop(settings, "create_camera")
        layout.prop(settings, "update_existing")

        assets_dir = prefs.assets_dir if prefs is not None else ""
        if not assets_dir:
            layout.label(text="Download or choose the 3DDFA-V3 assets in the add-on preferences", icon='INFO')
            ready = False
        else:
            ready = preferences.draw_asset_status(layout, assets_dir) and ready

        if RUN_STATE.running:
            common.draw_running(layout, RUN_STATE.panel_text())
            return
        # The returned OperatorProperties carry the operator's properties: typed as the
        # operator class so their names are checked.
        op = cast(OBJECT_OT_reconstruct_face, common.run_button(
            layout, OBJECT_OT_reconstruct_face.bl_idname, 'USER', settings, enabled=ready, network=True,
            same=("create_texture", "create_landmarks", "create_segmentation", "create_camera", "update_existing")))
        if settings.source == 'FILE':
            op.filepath = settings.filepath
            op.image_name = ""
        else:
            op.filepath = ""
            op.image_name = settings.image.name if settings.image is not None else ""


register, unregister = registration.factory(
    (NV3DMMReconstructSettings, VIEW3D_PT_nv3dmm_reconstruct),
    scene_settings=(SETTINGS_ATTRIBUTE, NV3DMMReconstructSettings))
