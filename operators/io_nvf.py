# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""File > Import / Export > NVIDIA 3DMM (.nvf), and drag-and-drop of .nvf files.

Thin: each operator turns its properties into `ImportOptions` /
`ExportOptions` and calls `bridge.nvf_import.import_nvf` /
`bridge.nvf_export.export_nvf`, the same functions a script can call. Warnings
are collected and reported once at the end; failures are ERROR reports (in
background mode an ERROR report makes the `bpy.ops` call raise RuntimeError).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable

import bpy
from bpy.props import BoolProperty, CollectionProperty, FloatProperty, StringProperty
from bpy.types import Context, Event, FileHandler, Object, Operator, OperatorFileListElement, UILayout
from bpy_extras.io_utils import ExportHelper, ImportHelper, poll_file_object_drop

from . import registration
from ..bridge.bpy_typed import layout_panel
from ..bridge.errors import BridgeError
from ..bridge.nvf_export import ExportOptions, collection_mesh, export_nvf
from ..bridge.nvf_import import import_nvf
from ..bridge.options import ImportOptions
from .properties import OperatorResult, file_filter, options_from


def _draw_sections(operator: Operator, sections: tuple[tuple[str, str, tuple[str, ...]], ...]
                   ) -> list[UILayout | None]:
    """The operator's options in collapsible sub-panels, each (panel id, title, property names);
    returns each sub-panel's body (None while collapsed) for more to be drawn into."""
    layout = operator.layout
    if layout is None:
        return []
    layout.use_property_split = True
    layout.use_property_decorate = False
    bodies: list[UILayout | None] = []
    for idname, title, names in sections:
        header, body = layout_panel(layout, idname)
        header.label(text=title)
        if body is not None:
            for name in names:
                body.prop(operator, name)
        bodies.append(body)
    return bodies


# The import and export transform options, declared alike.
def _scale_property(description: str) -> Any:
    return FloatProperty(
        name="Scale", default=0.01, min=1e-6, max=1e6, soft_min=0.001, soft_max=100.0, precision=4,
        description=description)


def _axes_property(name: str, description: str) -> Any:
    return BoolProperty(name=name, default=True, description=description)


# bpy_extras' stubs type ImportHelper/ExportHelper.check and .invoke as returning None (they
# return a bool and {'RUNNING_MODAL'}), which clashes with Operator's signatures: hence the
# narrow ignores on the class lines, the invoke overrides and the helper invoke calls.
class IMPORT_SCENE_OT_nvf(Operator, ImportHelper):  # type: ignore[misc]
    """Import NVIDIA 3DMM face models (.nvf, Maxine AR SDK): mean mesh, PCA modes and blend shapes as
    shape keys, landmarks as vertex groups, partitions as materials"""

    bl_idname = "import_scene.nvf"
    bl_label = "Import NVIDIA 3DMM (.nvf)"
    bl_options = {'REGISTER', 'UNDO', 'PRESET'}

    filename_ext = ".nvf"
    if TYPE_CHECKING:
        # What the Blender properties below hold on an instance (mypy cannot read a
        # property annotation); `filepath` comes from ImportHelper.
        filepath: str
        filter_glob: str
        files: bpy.types.bpy_prop_collection[OperatorFileListElement]
        directory: str
        scale: float
        convert_axes: bool
        shape_keys: bool
        landmarks: bool
        partitions: bool
        mtl_colors: bool
    else:
        filter_glob: file_filter("*.nvf")  # type: ignore[valid-type]
        files: CollectionProperty(  # type: ignore[valid-type]
            type=OperatorFileListElement, options={'HIDDEN', 'SKIP_SAVE'})
        directory: StringProperty(subtype='DIR_PATH', options={'HIDDEN', 'SKIP_SAVE'})  # type: ignore[valid-type]

        scale: _scale_property("Blender units per centimetre of the model (0.01: metres)")  # type: ignore[valid-type]
        convert_axes: _axes_property(  # type: ignore[valid-type]
            "Y Up to Z Up", "Turn NVIDIA's +Y-up space into Blender's +Z-up: (x, y, z) -> (x, -z, y)")
        shape_keys: BoolProperty(  # type: ignore[valid-type]
            name="Shape Keys", default=True,
            description="PCA modes (PCA.000 ...) and named blend shapes as shape keys")
        landmarks: BoolProperty(  # type: ignore[valid-type]
            name="Landmarks", default=True,
            description="iBUG-68 and NVIDIA-126 landmarks and the face contours as vertex groups")
        partitions: BoolProperty(  # type: ignore[valid-type]
            name="Partitions", default=True,
            description="Partitions as vertex groups and their materials as material slots")
        mtl_colors: BoolProperty(  # type: ignore[valid-type]
            name="Colours from .mtl", default=True,
            description="Colour the materials from the .mtl file with the same name beside the .nvf")

    def draw(self, context: Context) -> None:
        bodies = _draw_sections(self, (("NVF_import_transform", "Transform", ("scale", "convert_axes")),
                                       ("NVF_import_include", "Include", ("shape_keys", "landmarks", "partitions"))))
        include = bodies[-1] if bodies else None
        if include is not None:
            row = include.row()
            row.enabled = self.partitions
            row.prop(self, "mtl_colors")

    def import_options(self) -> ImportOptions:
        return options_from(self, ImportOptions)

    def paths(self) -> list[str]:
        names = [f.name for f in self.files if f.name]
        if names and self.directory:
            return [os.path.join(self.directory, name) for name in names]
        return [self.filepath] if self.filepath else []

    def invoke(self, context: Context, event: Event) -> OperatorResult:  # type: ignore[override]
        if self.directory and any(f.name for f in self.files):
            # Dropped on the 3D Viewport or the Outliner (FileHandler): show the options, then import.
            # ImportHelper.invoke_popup is newer than some 4.x releases (and the 4.2 stubs).
            popup: Callable[[Context], OperatorResult] | None = getattr(self, "invoke_popup", None)
            if popup is not None:
                return popup(context)
            return self.execute(context)
        return ImportHelper.invoke(self, context, event)  # type: ignore[func-returns-value, return-value]

    def execute(self, context: Context) -> OperatorResult:
        paths = self.paths()
        if not paths:
            self.report({'ERROR'}, "No .nvf file given")
            return {'CANCELLED'}
        options = self.import_options()
        imported: list[str] = []
        errors: list[str] = []
        for path in paths:
            try:
                imported.append(import_nvf(context, path, options).name)
            except BridgeError as error:
                errors.append(str(error))
        if imported:
            self.report({'INFO'}, f"Imported {', '.join(imported)}")
        if errors:
            self.report({'ERROR'}, "Import failed: " + "; ".join(errors))
        return {'FINISHED'} if imported else {'CANCELLED'}


class EXPORT_SCENE_OT_nvf(Operator, ExportHelper):  # type: ignore[misc]
    """Export the active mesh as an NVIDIA 3DMM face model (.nvf)"""

    bl_idname = "export_scene.nvf"
    bl_label = "Export NVIDIA 3DMM (.nvf)"
    bl_options = {'REGISTER', 'PRESET'}

    filename_ext = ".nvf"
    if TYPE_CHECKING:
        # What the Blender properties below hold on an instance; `filepath` comes from ExportHelper.
        filepath: str
        filter_glob: str
        use_import_settings: bool
        scale: float
        convert_axes: bool
        apply_transform: bool
        collection: str
    else:
        filter_glob: file_filter("*.nvf")  # type: ignore[valid-type]

        use_import_settings: BoolProperty(  # type: ignore[valid-type]
            name="Use Import Settings", default=True,
            description="For a mesh imported from .nvf, invert that import's scale and axes "
                        "(Scale and Y Up below then apply to other meshes only)")
        scale: _scale_property(  # type: ignore[valid-type]
            "Blender units per centimetre of the model (0.01: the mesh is in metres)")
        convert_axes: _axes_property(  # type: ignore[valid-type]
            "Z Up to Y Up", "Turn Blender's +Z-up space into NVIDIA's +Y-up: (x, y, z) -> (x, z, -y)")
        apply_transform: BoolProperty(  # type: ignore[valid-type]
            name="Apply Object Transform", default=True,
            description="Bake the object's location, rotation and scale into the exported vertices")
        # Set by Blender's collection exporters (Collection properties > Exporters).
        collection: StringProperty(options={'HIDDEN'})  # type: ignore[valid-type]

    def draw(self, context: Context) -> None:
        _draw_sections(self, (("NVF_export_transform", "Transform",
                               ("use_import_settings", "scale", "convert_axes", "apply_transform")),))

    def invoke(self, context: Context, event: Event) -> OperatorResult:  # type: ignore[override]
        obj = context.active_object
        if obj is not None and not self.filepath:
            self.filepath = bpy.path.clean_name(obj.name) + self.filename_ext
        return ExportHelper.invoke(self, context, event)  # type: ignore[func-returns-value, return-value]

    def target(self, context: Context) -> Context | Object:
        """The active object, or the one mesh of the collection being exported."""
        return collection_mesh(self.collection) if self.collection else context

    def output_path(self) -> str:
        return self.filepath

    def execute(self, context: Context) -> OperatorResult:
        try:
            warnings = export_nvf(self.target(context), self.output_path(), options_from(self, ExportOptions))
        except BridgeError as error:
            self.report({'ERROR'}, f"Export failed: {error}")
            return {'CANCELLED'}
        if warnings:
            self.report({'WARNING'}, " | ".join(warnings))
        self.report({'INFO'}, f"Wrote {self.output_path()}")
        return {'FINISHED'}


class NVF_FH_import(FileHandler):
    """Drop .nvf files on the 3D Viewport or the Outliner (View Layer mode) to import them."""

    bl_idname = "NVF_FH_import"
    bl_label = "NVIDIA 3DMM face model"
    bl_import_operator = "import_scene.nvf"
    bl_export_operator = "export_scene.nvf"
    bl_file_extensions = ".nvf"

    @classmethod
    def poll_drop(cls, context: Context | None) -> bool:
        # Blender's own rule for object importers (4.2+), as its OBJ/FBX/glTF handlers use:
        # the 3D Viewport, and the Outliner in View Layer mode. (Its 4.2 stub says it returns None.)
        return context is not None and bool(poll_file_object_drop(context))  # type: ignore[func-returns-value]


_menu_import = registration.menu_entry("_menu_import", IMPORT_SCENE_OT_nvf.bl_idname, "NVIDIA 3DMM (.nvf)")
_menu_export = registration.menu_entry("_menu_export", EXPORT_SCENE_OT_nvf.bl_idname, "NVIDIA 3DMM (.nvf)")

register, unregister = registration.factory(
    (IMPORT_SCENE_OT_nvf, EXPORT_SCENE_OT_nvf, NVF_FH_import),
    (("TOPBAR_MT_file_import", _menu_import), ("TOPBAR_MT_file_export", _menu_export)))
