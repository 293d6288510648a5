# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Typed access to bpy where its stubs cannot say enough on their own.

mypy checks the Blender code against the fake-bpy-module stubs for Blender
4.2, our minimum version. Two kinds of help live here, so the rest of the
code can use plain, checked attribute access:

- narrowing: `obj.data` is a union of every object-data type, attributes and
  new nodes come typed as their base class and many pointers are Optional;
  `object_mesh`, `object_camera`, `typed_attribute`, `new_node` and
  `required` check the real value at run time and return it typed;
- stub gaps: a few APIs that the 4.2 stubs type wrongly (`bpy_prop_collection.get`,
  `bpy_struct.get` and `keys`, `Image.pixels`, `UILayout.panel`): each helper is a plain call of the
  real API, typed as Blender documents it.

Custom (ID) property values are whatever a script stored, so they are `Any`.
Importing this module does not import bpy (the worker-side modules import it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, TypeVar, cast

import numpy as np

if TYPE_CHECKING:
    from bpy.types import (Attribute, Camera, Image, Mesh, Node, Nodes, Object, UILayout, bpy_prop_array,
                           bpy_prop_collection, bpy_struct)

    NodeT = TypeVar("NodeT", bound=Node)
    AttributeT = TypeVar("AttributeT", bound=Attribute)
else:
    NodeT = TypeVar("NodeT")
    AttributeT = TypeVar("AttributeT")

_T = TypeVar("_T")


class BlenderDataError(TypeError):
    """A Blender value is not of the kind the add-on needs (e.g. an object without a mesh)."""


def object_mesh(obj: Object) -> Mesh:
    """The mesh of a mesh object; `BlenderDataError` for any other kind of object."""
    import bpy

    data = obj.data
    if not isinstance(data, bpy.types.Mesh):
        raise BlenderDataError(f'"{obj.name}" is a {obj.type.lower()} object, not a mesh')
    return data


def object_camera(obj: Object) -> Camera:
    """The camera of a camera object; `BlenderDataError` for any other kind of object."""
    import bpy

    data = obj.data
    if not isinstance(data, bpy.types.Camera):
        raise BlenderDataError(f'"{obj.name}" is a {obj.type.lower()} object, not a camera')
    return data


def new_node(nodes: Nodes, kind: type[NodeT]) -> NodeT:
    """Add a node of the built-in class `kind` (e.g. `bpy.types.ShaderNodeTexImage`),
    typed as that class. A built-in node's type name is its class name."""
    node = nodes.new(kind.__name__)
    if not isinstance(node, kind):
        raise BlenderDataError(f"a new {kind.__name__} node is a {type(node).__name__}")
    return node


def required(value: _T | None, what: str) -> _T:
    """`value`, which the stubs mark Optional but Blender always provides here (a node's
    sockets, a new datablock's collections); `BlenderDataError` naming `what` if it is None."""
    if value is None:
        raise BlenderDataError(f"Blender gave no {what}")
    return value


def typed_attribute(attribute: Attribute, kind: type[AttributeT]) -> AttributeT:
    """`attribute` as its storage class (e.g. `bpy.types.IntAttribute`), whose `data` the
    stubs know; `BlenderDataError` when it stores another type."""
    if not isinstance(attribute, kind):
        raise BlenderDataError(f'the attribute "{attribute.name}" holds {attribute.data_type} values, '
                               f"not {kind.__name__} values")
    return attribute


def lookup(collection: bpy_prop_collection[_T], key: str) -> _T | None:
    """`collection.get(key)`: the item named `key`, or None."""
    # The 4.2 stubs type bpy_prop_collection.get by its default argument (None), which
    # makes every use of the result unreachable, and so unchecked, code.
    getter = cast("Callable[[str], _T | None]", collection.get)
    return getter(key)


def id_property(owner: bpy_struct, key: str, default: Any = None) -> Any:
    """The custom property `key` of `owner`, or `default` (`owner.get(key, default)`)."""
    # bpy_struct.get returns the stored value; the 4.2 stubs type it as returning None.
    getter = cast("Callable[[str, Any], Any]", owner.get)
    return getter(key, default)


def id_property_names(owner: bpy_struct) -> list[str]:
    """The names of `owner`'s custom properties (`owner.keys()`)."""
    # bpy_struct.keys returns the names; the 4.2 stubs type it as returning None.
    keys = cast("Callable[[], Iterable[str]]", owner.keys)
    return list(keys())


def has_id_property(owner: bpy_struct, key: str) -> bool:
    """Whether `owner` has the custom property `key`."""
    return key in id_property_names(owner)


def property_array(values: Any) -> np.ndarray[Any, Any]:
    """A custom property's array (or list) value as a numpy array. (`Any`: whatever a
    script stored; anything that is not a sequence gives an empty array.)"""
    try:
        return np.asarray(values.to_list() if hasattr(values, "to_list") else list(values))
    except TypeError:
        return np.asarray([])


def image_pixels(image: Image) -> bpy_prop_array[float]:
    """`image.pixels`, the flat RGBA float array (the 4.2 stubs type it as one float)."""
    return cast("bpy_prop_array[float]", image.pixels)


def layout_panel(layout: UILayout, idname: str, default_closed: bool = False) -> tuple[UILayout, UILayout | None]:
    """`layout.panel(idname)`: a collapsible sub-panel's header and its body (None while
    collapsed). The 4.2 stubs type UILayout.panel as returning None."""
    panel = cast("Callable[..., tuple[UILayout, UILayout | None]]", layout.panel)
    return panel(idname, default_closed=default_closed)
