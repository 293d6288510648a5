# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""One register/unregister for every UI module: its classes, the menu entries it adds,
and the settings group it hangs on the Scene; undone in the reverse order."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import bpy
from bpy.props import PointerProperty
from bpy.types import Context, Menu, Scene

MenuEntry = tuple[str, Callable[[Menu, Context], None]]


def register(classes: Sequence[type], menus: Sequence[MenuEntry] = (),
             scene_settings: tuple[str, type] | None = None) -> None:
    """Registers `classes`, appends each (menu type name, draw function) entry and, when
    given, adds `Scene.<name>` as a pointer to the settings group (one of `classes`)."""
    for cls in classes:
        bpy.utils.register_class(cls)
    for menu, entry in menus:
        getattr(bpy.types, menu).append(entry)
    if scene_settings is not None:
        name, group = scene_settings
        # A dynamic RNA property: unknown to the stubs, which also type bpy.props
        # functions as returning None.
        pointer: Any = PointerProperty(type=group)  # type: ignore[func-returns-value]
        setattr(Scene, name, pointer)


def unregister(classes: Sequence[type], menus: Sequence[MenuEntry] = (),
               scene_settings: tuple[str, type] | None = None) -> None:
    """Undoes `register` with the same arguments."""
    if scene_settings is not None:
        delattr(Scene, scene_settings[0])
    for menu, entry in reversed(menus):
        getattr(bpy.types, menu).remove(entry)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
