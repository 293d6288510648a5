# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the Face sidebar panels share: their place, the source switch (a file or a Blender data-block),
the backbone and device choice, the progress line of a running job, and the big button that
passes the panel's settings to its operator. May import bpy and UI siblings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bpy.props import EnumProperty
from bpy.types import Panel, PropertyGroup, UILayout


class FacePanel(Panel):
    """The base of the add-on's panels (never registered itself): where they live,
    3D View > Sidebar > Face."""

    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Face"


class SourceSettings(PropertyGroup):
    """The base of the panels' settings groups (never registered itself): each has a `source`
    switch (`source_property`) and the `filepath` used when it is "FILE"."""

    if TYPE_CHECKING:
        source: str
        filepath: str


def source_property(file: tuple[str, str], other: tuple[str, str, str], *, name: str = "Source") -> Any:
    """The settings' `source` switch that `draw_source` draws: "FILE" (the default; `file` is
    its label and description) or `other` (identifier, label, description)."""
    return EnumProperty(name=name, default="FILE", items=[("FILE", *file), other])


def draw_source(layout: UILayout, settings: SourceSettings, other: str, *, open_operator: str = "") -> None:
    """The FILE / other switch, then `settings.filepath` or the `other` data-block (a
    template with `open_operator`'s Open button when given, else a plain field)."""
    layout.row().prop(settings, "source", expand=True)
    if settings.source == 'FILE':
        layout.prop(settings, "filepath")
    elif open_operator:
        layout.template_ID(settings, other, open=open_operator)
    else:
        layout.prop(settings, other)


def draw_network(layout: UILayout, settings: PropertyGroup) -> None:
    """The backbone and device choices (operators.properties.NetworkDefaults)."""
    col = layout.column(align=True)
    col.prop(settings, "backbone")
    col.prop(settings, "device")


def draw_running(layout: UILayout, text: str) -> None:
    """The progress line shown instead of the button while the panel's job runs."""
    layout.label(text=text, icon='SORTTIME')


def run_button(layout: UILayout, idname: str, icon: str, settings: PropertyGroup, *, enabled: bool = True,
               same: tuple[str, ...] = (), network: bool = False) -> Any:
    """The panel's big button for operator `idname`, given the `settings` properties named in
    `same`; with `network` (settings from NetworkDefaults) also its device and backbone unless
    "Default" (left unset: the preferences decide). Returns the button's operator properties
    for the caller to fill in the rest."""
    row = layout.row()
    row.scale_y = 1.4
    row.enabled = enabled
    op = row.operator(idname, icon=icon)  # type: ignore[arg-type]  # one of Blender's icon names
    for name in same:
        setattr(op, name, getattr(settings, name))
    for name in ("device", "backbone") if network else ():
        if getattr(settings, name) != 'PREFS':
            setattr(op, name, getattr(settings, name))
    return op
