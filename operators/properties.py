# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""What several operators and panels declare, declared once: the 3DDFA-V3 inputs (assets
folder, device, backbone, face box) as a mixin, the panels' "Default" device and backbone,
file-browser filters, and `options_from` (an operator's properties -> the bridge's options
value, through `as_keywords`). May import bpy, the bridge and preferences.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatVectorProperty, StringProperty
from bpy.types import Context, Operator

from .. import preferences
from ..bridge import readiness
from ..bridge.reconstruction import BACKBONES, DEVICES

#: What execute / invoke / modal return (the stubs' literal set).
OperatorResult = set[Literal['RUNNING_MODAL', 'CANCELLED', 'FINISHED', 'PASS_THROUGH', 'INTERFACE']]

#: Inputs a button press must not take from the last run: Blender fills unset operator
#: properties with their last-used values, which would override the preferences' defaults
#: ("unset" means "use the preferences"), reuse another photo's face box or assets folder.
NOT_REMEMBERED: set[str] = {'SKIP_SAVE'}

Options = TypeVar("Options")


# bpy.props functions return a deferred property that Blender reads from a class annotation
# (which mypy cannot check, hence the ignores there).
def file_filter(pattern: str) -> Any:
    """The hidden `filter_glob` property that makes the file browser show `pattern` files."""
    return StringProperty(default=pattern, options={'HIDDEN'})


def face_box_property(description: str) -> Any:
    """x1, y1, x2, y2 of the face in pixels; all zero means "detect it" (not remembered)."""
    return FloatVectorProperty(
        name="Face Box", size=4, default=(0.0, 0.0, 0.0, 0.0), options={'SKIP_SAVE'}, description=description)


def face_box(values: Any) -> tuple[float, float, float, float] | None:
    """The face box property's value, or None (detect the face) when it is all zero."""
    x1, y1, x2, y2 = (float(v) for v in values)
    return (x1, y1, x2, y2) if any(abs(v) > 0.0 for v in (x1, y1, x2, y2)) else None


def options_from(operator: Operator, options_type: type[Options], **given: Any) -> Options:
    """`options_type` (a dataclass) from the operator's properties of the same names
    (`as_keywords`), with `given` for the fields the operator works out itself."""
    fields = {field.name for field in dataclasses.fields(options_type)}  # type: ignore[arg-type]
    # (The stubs type as_keywords as returning None.)
    keywords: dict[str, Any] = cast(Any, operator).as_keywords(ignore=tuple(given))
    return options_type(**{name: value for name, value in keywords.items() if name in fields}, **given)


class ReconstructionParts:
    """Mixin: what a reconstruction creates besides the mesh, declared once for the Reconstruct
    operator and the panel's scene settings (the panel hands them to the operator by name)."""

    if TYPE_CHECKING:
        # What the Blender properties below hold on an instance (mypy cannot read a
        # property annotation).
        create_texture: bool
        create_landmarks: bool
        create_segmentation: bool
        create_camera: bool
        update_existing: bool
    else:
        create_texture: BoolProperty(  # type: ignore[valid-type]
            name="Photo Texture", default=True,
            description="Photo material through the reconstruction's UVs, albedo and lit colour attributes")
        create_landmarks: BoolProperty(  # type: ignore[valid-type]
            name="Landmarks", default=True, description="Vertex groups of the 68/106/134 landmark vertices")
        create_segmentation: BoolProperty(  # type: ignore[valid-type]
            name="Face Parts", default=True, description="Vertex groups of the 8 face parts")
        create_camera: BoolProperty(  # type: ignore[valid-type]
            name="Photo Camera", default=True,
            description="A camera that reproduces the photo's framing, with the photo as background")
        update_existing: BoolProperty(  # type: ignore[valid-type]
            name="Update Active Face", default=True,
            description="Re-fit the active reconstructed face instead of adding a new object")


class NetworkInputs:
    """Operator mixin: the assets folder, device and backbone a 3DDFA-V3 run uses, each
    falling back to the add-on preferences when the caller leaves it unset."""

    if TYPE_CHECKING:
        # What the Blender properties below hold on an instance (mypy cannot read a
        # property annotation).
        assets_dir: str
        device: str
        backbone: str
        properties: bpy.types.OperatorProperties
    else:
        assets_dir: preferences.path_property(  # type: ignore[valid-type]
            "Assets", "3DDFA-V3 assets folder (empty: the add-on preferences' folder)", folder=True, remember=False)
        device: preferences.device_property(  # type: ignore[valid-type]
            "Compute device (unset: the preferences' default)", options=NOT_REMEMBERED)
        backbone: preferences.backbone_property(  # type: ignore[valid-type]
            "Regressor network (unset: the preferences' default)", options=NOT_REMEMBERED)

    def _choice(self, name: str, context: Context) -> str:
        """An enum property, or the preferences' default when the caller left it unset."""
        prefs = preferences.get_preferences(context)
        if not self.properties.is_property_set(name) and prefs is not None:
            return str(getattr(prefs, name))
        return str(getattr(self, name))

    def network(self, context: Context) -> tuple[str, str]:
        """The (device, backbone) names the bridge takes, e.g. ("auto", "resnet50")."""
        return DEVICES[self._choice("device", context)], BACKBONES[self._choice("backbone", context)]

    def assets(self, context: Context, *, hint: bool = True) -> str:
        """The assets folder (this run's, else the preferences'), absolute; ReadinessError
        when neither is set."""
        prefs = preferences.get_preferences(context)
        return readiness.assets_folder(self.assets_dir, prefs.assets_dir if prefs is not None else "", hint=hint)


class NetworkDefaults:
    """PropertyGroup mixin for the panels: device and backbone, "Default" meaning the
    preferences' choice (the button then leaves the operator's property unset)."""

    if TYPE_CHECKING:
        device: str
        backbone: str
    else:
        device: EnumProperty(  # type: ignore[valid-type]
            name="Device", items=[("PREFS", "Default", "The add-on preferences' device")]
            + readiness.device_items(), default="PREFS")
        backbone: EnumProperty(  # type: ignore[valid-type]
            name="Backbone", items=[("PREFS", "Default", "The add-on preferences' backbone")]
            + readiness.backbone_items(), default="PREFS")
