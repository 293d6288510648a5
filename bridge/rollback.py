# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rolling back a failed build: `Created` lists the datablocks one bridge call made.

A bridge function that builds Blender data records every datablock it creates
(and an undo step for every change to existing data) in one `Created`; if the
build fails, `Created.rollback()` undoes the changes and removes the
datablocks newest first, so the scene is as it was before the call. May import
bpy (inside the method, so the module loads without it); nothing from the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, TypeVar

if TYPE_CHECKING:
    from bpy.types import Camera, Image, Material, Mesh, Object


@dataclass
class Created:
    """Datablocks made so far by one build, removed again if the build fails."""

    objects: list[Object] = field(default_factory=list)
    meshes: list[Mesh] = field(default_factory=list)
    cameras: list[Camera] = field(default_factory=list)
    materials: list[Material] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    #: Undo steps for changes to existing data (e.g. an updated face), run first on rollback.
    restore: list[Callable[[], None]] = field(default_factory=list)

    def rollback(self) -> None:
        """Runs the undo steps (newest first), then removes every datablock
        (objects before the data they use), and forgets them all."""
        import bpy

        for step in reversed(self.restore):
            step()
        self.restore.clear()
        remove_each(bpy.data.objects.remove, self.objects)
        remove_each(bpy.data.meshes.remove, self.meshes)
        remove_each(bpy.data.cameras.remove, self.cameras)
        remove_each(bpy.data.materials.remove, self.materials)
        remove_each(bpy.data.images.remove, self.images)


_Datablock = TypeVar("_Datablock")


def remove_each(remove: Callable[[_Datablock], None], items: list[_Datablock]) -> None:
    """Removes `items` newest first, skipping any already gone (with its owner), and forgets them."""
    for item in reversed(items):
        try:
            remove(item)
        except (ReferenceError, RuntimeError):
            pass  # already gone with its owner
    items.clear()
