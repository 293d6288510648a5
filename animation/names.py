# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""ARKit, Live Link Face and Maxine expression names, and the mapping between
them and the shape keys of any mesh.

- ARKit (Apple's `ARFaceAnchor.BlendShapeLocation`): 52 names such as
  `eyeBlinkLeft`; their raw values, such as `eyeBlink_L`, are what Maxine uses.
- Live Link Face CSV columns: the ARKit names capitalised (`EyeBlinkLeft`), in
  the recorder's order, which swaps JawLeft/JawRight and MouthLeft/MouthRight
  against Apple's (columns are always matched by name, never by position).
- Maxine (io_nv3dmm.MAXINE_EXPRESSIONS): 53 names, ARKit's raw values with
  `browInnerUp` and `cheekPuff` split into `_L`/`_R` halves and no `tongueOut`.

A mesh may carry any of these spellings (matched without regard to case). An
ARKit value goes to every key that carries it (both halves of a split shape);
reading back, a shape's value is the mean of its keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

# The 52 ARKit shapes in the Live Link Face recorder's column order.
ARKIT_SHAPES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawRight", "jawLeft", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthRight", "mouthLeft",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)

# Head and eye angles after the 52 shapes in a Live Link Face CSV.
HEAD_EYE_ANGLES: tuple[str, ...] = (
    "HeadYaw", "HeadPitch", "HeadRoll",
    "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)

# Shapes whose Left/Right is a direction of motion, not a side of the face:
# their raw ARKit value keeps the word.
_DIRECTIONAL = frozenset({"jawLeft", "jawRight", "mouthLeft", "mouthRight"})
# Shapes Maxine splits into two halves.
_SPLIT = frozenset({"browInnerUp", "cheekPuff"})


def csv_column(shape: str) -> str:
    """The Live Link Face column of an ARKit shape: `eyeBlinkLeft` -> `EyeBlinkLeft`."""
    return shape[:1].upper() + shape[1:]


def raw_name(shape: str) -> str:
    """ARKit's raw key of a shape: `eyeBlinkLeft` -> `eyeBlink_L`, `jawLeft` -> `jawLeft`."""
    if shape not in _DIRECTIONAL:
        if shape.endswith("Left"):
            return shape[:-4] + "_L"
        if shape.endswith("Right"):
            return shape[:-5] + "_R"
    return shape


def maxine_names(shape: str) -> tuple[str, ...]:
    """The Maxine blend shapes an ARKit shape drives (two halves for a split shape, none for tongueOut)."""
    if shape == "tongueOut":
        return ()
    if shape in _SPLIT:
        return (shape + "_L", shape + "_R")
    return (raw_name(shape),)


def _spellings(shape: str) -> set[str]:
    names = {shape, csv_column(shape), raw_name(shape)}
    names.update(maxine_names(shape))
    return {name.casefold() for name in names}


_BY_SPELLING: dict[str, str] = {spelling: shape for shape in ARKIT_SHAPES for spelling in _spellings(shape)}


def shape_of(key_name: str) -> str | None:
    """The ARKit shape a shape key carries (any spelling, any case), or None."""
    return _BY_SPELLING.get(key_name.casefold())


@dataclass(frozen=True)
class KeyMap:
    """Which keys of a mesh carry each ARKit shape.

    keys: ARKit shape -> the mesh's key names carrying it, in the mesh's order
    (only shapes the mesh has). missing: the ARKit shapes it has no key for.
    """

    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    missing: tuple[str, ...] = ()

    def key_values(self, shape_values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """ARKit values -> the value of each of the mesh's keys (a split shape's value on both halves)."""
        out: dict[str, np.ndarray] = {}
        for shape, keys in self.keys.items():
            if shape in shape_values:
                for key in keys:
                    out[key] = np.asarray(shape_values[shape], dtype=np.float64)
        return out

    def shape_values(self, key_values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The mesh's key values -> ARKit values (the mean over a shape's keys)."""
        out: dict[str, np.ndarray] = {}
        for shape, keys in self.keys.items():
            present = [np.asarray(key_values[key], dtype=np.float64) for key in keys if key in key_values]
            if present:
                out[shape] = np.mean(present, axis=0)
        return out


def map_keys(key_names: Iterable[str]) -> KeyMap:
    """The KeyMap of a mesh whose shape keys are `key_names` (other keys, e.g. Basis, are ignored)."""
    found: dict[str, list[str]] = {}
    for name in key_names:
        shape = shape_of(name)
        if shape is not None:
            found.setdefault(shape, []).append(name)
    keys = {shape: tuple(found[shape]) for shape in ARKIT_SHAPES if shape in found}
    return KeyMap(keys=keys, missing=tuple(shape for shape in ARKIT_SHAPES if shape not in found))


def maxine_to_arkit(weights: Mapping[str, np.ndarray | float]) -> dict[str, np.ndarray]:
    """Maxine expression weights by name -> ARKit values (split halves averaged; no tongueOut)."""
    return map_keys(weights.keys()).shape_values({k: np.asarray(v) for k, v in weights.items()})


def arkit_to_maxine(values: Mapping[str, np.ndarray | float]) -> dict[str, np.ndarray]:
    """ARKit values by name -> the 53 Maxine weights (tongueOut dropped)."""
    out: dict[str, np.ndarray] = {}
    for shape, value in values.items():
        canonical = shape_of(shape)
        if canonical is None:
            raise KeyError(f"{shape!r} is not an ARKit shape name")
        for name in maxine_names(canonical):
            out[name] = np.asarray(value, dtype=np.float64)
    return out
