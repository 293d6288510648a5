"""Animation operators: Live Link Face CSV import (File > Import, onto the
active mesh's ARKit- or Maxine-named keys) and export (File > Export).

Thin: each reads its properties into the bridge's options and calls one bridge
function; errors come back as `AnimationError` (bad take, unsuitable mesh) or
`OSError` and are reported, leaving the scene unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty
from bpy.types import Context, Event, Menu, Object, Operator
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..animation.errors import AnimationError
from ..bridge import animation as bridge

OperatorResult = set[Literal['RUNNING_MODAL', 'CANCELLED', 'FINISHED', 'PASS_THROUGH', 'INTERFACE']]


def _active_mesh(context: Context) -> Object | None:
    obj = context.active_object
    return obj if obj is not None and obj.type == 'MESH' else None


def _rate_items(self: object, context: Context | None) -> list[tuple[str, str, str]]:
    fps = bridge.scene_fps(context.scene) if context is not None and context.scene is not None else None
    scene = f"Scene ({fps:g} fps)" if fps is not None else "Scene"
    return [("SCENE", scene, "Read the take's timecodes at the scene's frame rate"),
            ("30", "30 fps", "The take's timecodes run at 30 frames per second"),
            ("60", "60 fps", "The take's timecodes run at 60 frames per second")]


# Why the ignores on the class lines: see operators/io_nvf.py (bpy_extras' helper stubs).
class IMPORT_ANIM_OT_live_link_face(Operator, ImportHelper):  # type: ignore[misc]
    """Import a Live Link Face CSV take onto the active mesh's ARKit- or Maxine-named shape keys"""

    bl_idname = "import_anim.live_link_face"
    bl_label = "Import Live Link Face (.csv)"
    bl_options = {'REGISTER', 'UNDO'}

    filename_ext = ".csv"
    if TYPE_CHECKING:
        filepath: str
        filter_glob: str
        timecode_rate: str
        set_frame_range: bool
    else:
        filter_glob: StringProperty(default="*.csv", options={'HIDDEN'})  # type: ignore[valid-type]
        timecode_rate: EnumProperty(  # type: ignore[valid-type]
            name="Timecode Rate", items=_rate_items,
            description="The frame rate of the take's timecodes (the file does not say it)")
        set_frame_range: BoolProperty(  # type: ignore[valid-type]
            name="Set Frame Range", default=True, description="Set the scene's frame range to the take")

    @classmethod
    def poll(cls, context: Context) -> bool:
        return _active_mesh(context) is not None

    def execute(self, context: Context) -> OperatorResult:
        obj = _active_mesh(context)
        scene = context.scene
        if obj is None or scene is None:
            self.report({'ERROR'}, "Select a mesh with ARKit- or Maxine-named shape keys first")
            return {'CANCELLED'}
        options = bridge.LiveLinkImportOptions(filepath=self.filepath, timecode_rate=self.timecode_rate,
                                               set_frame_range=self.set_frame_range)
        try:
            summary = bridge.import_live_link_face(scene, obj, options)
        except (AnimationError, OSError) as error:
            self.report({'ERROR'}, f"Live Link Face import failed: {error}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"Imported {summary.message}")
        return {'FINISHED'}


class EXPORT_ANIM_OT_live_link_face(Operator, ExportHelper):  # type: ignore[misc]
    """Export the active mesh's ARKit- or Maxine-named shape-key animation as a Live Link Face CSV"""

    bl_idname = "export_anim.live_link_face"
    bl_label = "Export Live Link Face (.csv)"
    bl_options = {'REGISTER'}

    filename_ext = ".csv"
    if TYPE_CHECKING:
        filepath: str
        filter_glob: str
    else:
        filter_glob: StringProperty(default="*.csv", options={'HIDDEN'})  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: Context) -> bool:
        return _active_mesh(context) is not None

    def invoke(self, context: Context, event: Event) -> OperatorResult:  # type: ignore[override]
        return ExportHelper.invoke(self, context, event)  # type: ignore[func-returns-value, return-value]

    def execute(self, context: Context) -> OperatorResult:
        obj = _active_mesh(context)
        scene = context.scene
        if obj is None or scene is None:
            self.report({'ERROR'}, "Select a mesh with animated ARKit- or Maxine-named shape keys first")
            return {'CANCELLED'}
        try:
            summary = bridge.export_live_link_face(scene, obj, self.filepath)
        except (AnimationError, OSError) as error:
            self.report({'ERROR'}, f"Live Link Face export failed: {error}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"Exported {summary.message}")
        return {'FINISHED'}


def _menu_import(self: Menu, context: Context) -> None:
    if self.layout is not None:
        self.layout.operator(IMPORT_ANIM_OT_live_link_face.bl_idname, text="Live Link Face (.csv)")


def _menu_export(self: Menu, context: Context) -> None:
    if self.layout is not None:
        self.layout.operator(EXPORT_ANIM_OT_live_link_face.bl_idname, text="Live Link Face (.csv)")


_CLASSES: tuple[type, ...] = (IMPORT_ANIM_OT_live_link_face, EXPORT_ANIM_OT_live_link_face)


def register() -> None:
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.TOPBAR_MT_file_import.append(_menu_import)
    bpy.types.TOPBAR_MT_file_export.append(_menu_export)


def unregister() -> None:
    bpy.types.TOPBAR_MT_file_export.remove(_menu_export)
    bpy.types.TOPBAR_MT_file_import.remove(_menu_import)
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
