# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bulk keyframes on any Blender version we support, and the scene's timing.

Keyframes are written in bulk (`keyframe_points.add` + `foreach_set`, one
`FCurve.update()` per curve), never one `keyframe_insert` per key, and give
the same keys `keyframe_insert` gives. F-curves are found or made through the
API of the running Blender:

- 4.2 and 4.3: `Action.fcurves`;
- 4.4 and later (layered actions, slots; `Action.fcurves` is gone in 5.0):
  the action is assigned first, then `Action.fcurve_ensure_for_datablock`
  makes the curve in the slot of the datablock (setting the slot, which 4.4
  otherwise leaves empty so that the curve silently animates nothing);
  curves are read back through the slot's channel bag.

Bad keys raise `AnimationBridgeError` before anything changes. May import bpy
(inside the functions) and numpy; nothing from the core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from ..errors import AnimationBridgeError

if TYPE_CHECKING:
    from bpy.types import ID, Action, FCurve, Object, Scene

#: F-curve group names (the Graph Editor's channel groups).
GROUP_SHAPES = "Live Link Face"
GROUP_ANGLES = "Head and eyes"


def mesh_key_names(obj: Object) -> list[str]:
    """The shape-key names of a mesh object, its basis left out ([] for other objects)."""
    data = obj.data
    shape_keys = getattr(data, "shape_keys", None)
    if obj.type != 'MESH' or shape_keys is None:
        return []
    return [block.name for block in shape_keys.key_blocks][1:]


# --- f-curves on every Blender version ----------------------------------------

def _layered(action: Action) -> bool:
    return hasattr(action, "fcurve_ensure_for_datablock")


def ensure_action(id_data: ID, name: str) -> Action:
    """The action animating `id_data`, created and assigned (with its slot) when it has none."""
    import bpy

    anim = getattr(id_data, "animation_data") or id_data.animation_data_create()
    if anim is None:
        raise AnimationBridgeError(f'"{id_data.name}" cannot be animated')
    action = anim.action
    if action is None:
        action = bpy.data.actions.new(name)
        anim.action = action
    return action


def find_fcurves(id_data: ID) -> list[FCurve]:
    """The f-curves animating `id_data` (its action's, in its slot on 4.4+); [] when none."""
    anim = getattr(id_data, "animation_data")
    action = anim.action if anim is not None else None
    if anim is None or action is None:
        return []
    if not _layered(action):
        return list(action.fcurves)
    slot = getattr(anim, "action_slot", None)
    if slot is None:
        return []
    found: list[FCurve] = []
    for layer in getattr(action, "layers"):
        for strip in layer.strips:
            bag = strip.channelbag(slot)
            if bag is not None:
                found.extend(bag.fcurves)
    return found


def ensure_fcurve(id_data: ID, data_path: str, index: int = 0, group: str = "") -> FCurve:
    """The f-curve of `id_data` for (data_path, index), made when missing."""
    action = ensure_action(id_data, f"{id_data.name}Action")
    if _layered(action):
        ensure = getattr(action, "fcurve_ensure_for_datablock")
        fcurve: FCurve = ensure(id_data, data_path, index=index, group_name=group)
        return fcurve
    curves = action.fcurves
    existing: FCurve | None = getattr(curves, "find")(data_path, index=index)
    if existing is not None:
        return existing
    return curves.new(data_path, index=index, action_group=group)


def set_keys(fcurve: FCurve, frames: np.ndarray, values: np.ndarray) -> None:
    """Replaces the keys of `fcurve` by (frames[i], values[i]) in bulk, as keyframe_insert would key them.

    frames must increase strictly; the keys get the user's default interpolation
    (Bezier) and automatic-clamped handles, computed by one `update()`.
    """
    frames = np.asarray(frames, dtype=np.float32)
    values = np.asarray(values, dtype=np.float32)
    if frames.ndim != 1 or frames.shape != values.shape:
        raise AnimationBridgeError(f"keys need matching frames and values, not {frames.shape} and {values.shape}")
    if len(frames) > 1 and not np.all(np.diff(frames) > 0):
        raise AnimationBridgeError("key frames must increase")
    if not (np.all(np.isfinite(frames)) and np.all(np.isfinite(values))):
        raise AnimationBridgeError("keys must be finite numbers (no NaN)")
    points = fcurve.keyframe_points
    points.clear()
    count = len(frames)
    points.add(count)
    co = np.empty(2 * count, dtype=np.float32)
    co[0::2] = frames
    co[1::2] = values
    points.foreach_set("co", co)
    # Handles start on the key; update() places them (auto-clamped) from the neighbours.
    points.foreach_set("handle_left", co)
    points.foreach_set("handle_right", co)
    fcurve.update()


def key_arrays(fcurve: FCurve) -> tuple[np.ndarray, np.ndarray]:
    """(frames, values) of an f-curve's keys, read in bulk."""
    points = fcurve.keyframe_points
    co = np.empty(2 * len(points), dtype=np.float32)
    points.foreach_get("co", co)
    return co[0::2].astype(np.float64), co[1::2].astype(np.float64)


def curve_values(fcurve: FCurve, frames: np.ndarray) -> np.ndarray:
    """The f-curve at `frames`: its key values where the keys are those frames, else evaluated."""
    key_frames, key_values = key_arrays(fcurve)
    if len(key_frames) == len(frames) and np.array_equal(key_frames.astype(np.float32), frames.astype(np.float32)):
        return key_values
    return np.array([fcurve.evaluate(float(f)) for f in frames], dtype=np.float64)


def shape_key_path(name: str) -> str:
    """The data path of a shape key's value on its Key datablock."""
    import bpy

    return f'key_blocks["{bpy.utils.escape_identifier(name)}"].value'


def property_path(name: str) -> str:
    import bpy

    return f'["{bpy.utils.escape_identifier(name)}"]'


@dataclass(frozen=True)
class Channel:
    """One animated value: (data_path, index) of `id_data`, keyed at `frames` with `values`."""

    id_data: Any
    data_path: str
    index: int
    frames: np.ndarray
    values: np.ndarray
    group: str = ""


def write_channels(channels: Iterable[Channel]) -> int:
    """Writes every channel's keys in bulk; returns the number of keys written."""
    total = 0
    for channel in channels:
        fcurve = ensure_fcurve(channel.id_data, channel.data_path, channel.index, channel.group)
        set_keys(fcurve, channel.frames, channel.values)
        total += len(channel.frames)
    return total


# --- scene timing ----------------------------------------------------------------

def scene_fps(scene: Scene) -> float:
    return float(scene.render.fps) / float(scene.render.fps_base)


def set_scene_timing(scene: Scene, fps: float | None, first: float, last: float) -> None:
    """Sets the scene's frame range to cover [first, last] and, when given, its frame rate."""
    if fps is not None:
        if not (fps > 0 and math.isfinite(fps)):
            raise AnimationBridgeError(f"a frame rate must be positive, not {fps}")
        whole = round(fps)
        if abs(fps - whole) < 1e-6:
            scene.render.fps, scene.render.fps_base = int(whole), 1.0
        else:
            # NTSC-style rates (29.97 = 30 / 1.001) as Blender's own presets store them.
            rate = math.ceil(fps)
            scene.render.fps, scene.render.fps_base = rate, rate / fps
    start, end = int(math.floor(first)), int(math.ceil(last))
    scene.frame_start = start
    scene.frame_end = max(end, start)

