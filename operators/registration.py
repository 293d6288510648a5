# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""One register/unregister for every UI module: its classes (Blender's
`register_classes_factory`), the menu entries it adds, and the settings group it hangs on
the Scene; undone in the reverse order. May import bpy only."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import bpy
from bpy.props import PointerProperty
from bpy.types import Context, Menu, Scene

MenuEntry = tuple[str, Callable[[Menu, Context], None]]


def menu_entry(name: str, idname: str, text: str, *, icon: str = 'NONE') -> Callable[[Menu, Context], None]:
    """A menu draw function (called `name`, as menus list it) that adds operator `idname`
    labelled `text`, with `icon` (one of Blender's icon names) when given."""
    def draw(self: Menu, context: Context) -> None:
        if self.layout is not None:
            self.layout.operator(idname, text=text, icon=icon)  # type: ignore[arg-type]

    draw.__name__ = draw.__qualname__ = name
    return draw


def factory(classes: Sequence[type], menus: Sequence[MenuEntry] = (),
            scene_settings: tuple[str, type] | None = None) -> tuple[Callable[[], None], Callable[[], None]]:
    """A module's register() and unregister(): register registers `classes`, appends each
    (menu type name, draw function) entry and, when given, adds `Scene.<name>` as a pointer
    to the settings group (one of `classes`); unregister undoes it all in reverse."""
    # Blender's own pair for a tuple of classes (the stubs type it as returning None).
    pair: Any = bpy.utils.register_classes_factory(tuple(classes))  # type: ignore[func-returns-value]
    register_classes: Callable[[], None] = pair[0]
    unregister_classes: Callable[[], None] = pair[1]

    def register() -> None:
        register_classes()
        for menu, entry in menus:
            getattr(bpy.types, menu).append(entry)
        if scene_settings is not None:
            name, group = scene_settings
            # A dynamic RNA property: unknown to the stubs, which also type bpy.props
            # functions as returning None.
            pointer: Any = PointerProperty(type=group)  # type: ignore[func-returns-value]
            setattr(Scene, name, pointer)

    def unregister() -> None:
        if scene_settings is not None:
            delattr(Scene, scene_settings[0])
        for menu, entry in reversed(menus):
            getattr(bpy.types, menu).remove(entry)
        unregister_classes()

    return register, unregister
