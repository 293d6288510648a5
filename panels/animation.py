# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""3D View > Sidebar > Face > Animate from Video, and the Live Link Face buttons.

The settings live on the scene (`scene.nv3dmm_animation`), saved with the
.blend; the button passes them to `object.animate_from_video`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, PointerProperty
from bpy.types import Context, MovieClip, Scene

from . import common
from .. import preferences
from ..bridge import animation as bridge
from ..operators import registration
from ..operators.properties import NetworkDefaults
from ..operators.animation import (VIDEO_STATE, EXPORT_ANIM_OT_live_link_face, IMPORT_ANIM_OT_live_link_face,
                                   OBJECT_OT_animate_from_video)

#: The Scene property holding the settings.
SETTINGS_ATTRIBUTE = "nv3dmm_animation"


class NV3DMMAnimationSettings(NetworkDefaults, common.SourceSettings):
    """The Animate from Video panel's inputs, stored on the scene (device and backbone: NetworkDefaults)."""

    if TYPE_CHECKING:
        # What the Blender properties below hold (source and filepath: SourceSettings).
        clip: MovieClip | None
        frame_start: int
        frame_stop: int
        stride: int
        smoothing: bool
        min_cutoff: float
        beta: float
    else:
        source: common.source_property(  # type: ignore[valid-type]
            ("Video File", "A movie file or one image of an image sequence"),
            ("CLIP", "Movie Clip", "A movie clip already loaded in Blender"))
        filepath: preferences.path_property(  # type: ignore[valid-type]
            "Video", "Movie file (mp4, mov, mkv, webm, avi) or one image of a numbered sequence")
        clip: PointerProperty(name="Clip", type=bpy.types.MovieClip)  # type: ignore[valid-type]
        frame_start: IntProperty(name="First Frame", default=0, min=0)  # type: ignore[valid-type]
        frame_stop: IntProperty(  # type: ignore[valid-type]
            name="Stop Frame", default=0, min=0, description="Stop before this video frame (0: the end)")
        stride: IntProperty(name="Stride", default=1, min=1, max=100)  # type: ignore[valid-type]
        smoothing: BoolProperty(name="Smooth", default=True)  # type: ignore[valid-type]
        min_cutoff: FloatProperty(  # type: ignore[valid-type]
            name="Min Cutoff", default=1.0, min=0.01, max=30.0, description="One Euro: smoothing at rest (Hz)")
        beta: FloatProperty(  # type: ignore[valid-type]
            name="Speed Response", default=5.0, min=0.0, max=1000.0, description="One Euro beta")


def scene_settings(scene: Scene) -> NV3DMMAnimationSettings:
    return cast(NV3DMMAnimationSettings, getattr(scene, SETTINGS_ATTRIBUTE))


class VIEW3D_PT_nv3dmm_animation(common.FacePanel):
    """Animate a face from a video; Live Link Face takes in and out."""

    bl_label = "Animate from Video"
    bl_idname = "VIEW3D_PT_nv3dmm_animation"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context: Context) -> None:
        layout = self.layout
        if layout is None or context.scene is None:
            return
        settings = scene_settings(context.scene)
        prefs = preferences.get_preferences(context)
        ready = preferences.draw_dependency_status(layout)
        common.draw_source(layout, settings, "clip", open_operator="clip.open")
        col = layout.column(align=True)
        col.prop(settings, "frame_start")
        col.prop(settings, "frame_stop")
        col.prop(settings, "stride")
        common.draw_network(layout, settings)
        col = layout.column(heading="Smooth", align=True)
        col.prop(settings, "smoothing", text="One Euro Filter")
        sub = col.column(align=True)
        sub.enabled = settings.smoothing
        sub.prop(settings, "min_cutoff")
        sub.prop(settings, "beta")
        active = context.view_layer.objects.active if context.view_layer is not None else None
        target = bridge.video_target(active)
        if target == "RECONSTRUCTION" and active is not None:
            layout.label(text=f"Animates {active.name}", icon='OBJECT_DATA')
        elif target == "MAXINE" and active is not None:
            layout.label(text=f"Animates the blend shapes of {active.name}", icon='SHAPEKEY_DATA')
        else:
            layout.label(text="Makes a face from the clip", icon='ADD')
        if not (prefs.assets_dir if prefs is not None else ""):
            layout.label(text="Choose the 3DDFA-V3 assets in the add-on preferences", icon='INFO')
            ready = False
        if VIDEO_STATE.running:
            common.draw_running(layout, f"{VIDEO_STATE.done} / {VIDEO_STATE.total} frames, {VIDEO_STATE.fps:.1f}/s "
                                        "(Esc stops, keeps frames)")
        else:
            op = cast(OBJECT_OT_animate_from_video, common.run_button(
                layout, OBJECT_OT_animate_from_video.bl_idname, 'SEQUENCE', settings, enabled=ready, network=True,
                same=("frame_start", "frame_stop", "stride", "smoothing", "min_cutoff", "beta")))
            if settings.source == 'FILE':
                op.filepath = settings.filepath
            else:
                op.filepath = bpy.path.abspath(settings.clip.filepath) if settings.clip is not None else ""
        layout.separator()
        layout.label(text="Live Link Face (.csv)")
        row = layout.row(align=True)
        row.operator(IMPORT_ANIM_OT_live_link_face.bl_idname, text="Import", icon='IMPORT')
        row.operator(EXPORT_ANIM_OT_live_link_face.bl_idname, text="Export", icon='EXPORT')


register, unregister = registration.factory(
    (NV3DMMAnimationSettings, VIEW3D_PT_nv3dmm_animation),
    scene_settings=(SETTINGS_ATTRIBUTE, NV3DMMAnimationSettings))
