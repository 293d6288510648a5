# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Live Link Face takes onto and off meshes: `import_live_link_face` keys a CSV take
onto a mesh's ARKit- or Maxine-named shape keys, `export_live_link_face` writes their
animation back as a CSV. The take is read and checked whole first: a bad take or a
mesh without such keys raises `AnimationBridgeError` and leaves the scene as it was.
May import bpy (through `keyframes`) and the core's `animation.live_link` / `names`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ...animation.live_link import Take, format_timecode, parse_timecode, read_csv, write_csv
from ...animation.names import ARKIT_SHAPES, HEAD_EYE_ANGLES, map_keys
from ..bpy_typed import has_id_property, id_property
from ..errors import AnimationBridgeError
from .boundary import bridge_errors
from .keyframes import (
    GROUP_ANGLES, GROUP_SHAPES, Channel, curve_values, find_fcurves, key_arrays, mesh_key_names, property_path,
    scene_fps, set_scene_timing, shape_key_path, write_channels,
)

if TYPE_CHECKING:
    from bpy.types import FCurve, Object, Scene

#: Custom properties an imported take leaves on the object, so its export writes the same timecodes.
PROP_TIMECODE_START = "llf_timecode_start"
PROP_TIMECODE_FPS = "llf_timecode_fps"
PROP_FIRST_FRAME = "llf_first_frame"
PROP_DECIMALS = "llf_decimals"

#: Timecode rates offered for a take (the file does not say which it used).
TIMECODE_RATES = ("SCENE", "30", "60")


@dataclass(frozen=True)
class LiveLinkImportOptions:
    """What `import_live_link_face` does. timecode_rate: 'SCENE', '30' or '60'."""

    filepath: str
    timecode_rate: str = "SCENE"
    set_frame_range: bool = True


@dataclass(frozen=True)
class LiveLinkSummary:
    rows: int
    keys: int
    first_frame: float
    last_frame: float
    timecode_fps: float
    message: str


def _timecode_rate(scene: Scene, choice: str) -> float:
    if choice == "SCENE":
        return scene_fps(scene)
    if choice in TIMECODE_RATES:
        return float(choice)
    raise AnimationBridgeError(f"the timecode rate is 'SCENE', '30' or '60', not {choice!r}")


@bridge_errors
def import_live_link_face(scene: Scene, obj: Object, options: LiveLinkImportOptions) -> LiveLinkSummary:
    """Keys a Live Link Face take onto `obj`'s ARKit- or Maxine-named shape keys.

    The take's first row lands on the scene's start frame; timecodes are read
    at the chosen rate and placed at the scene's frame rate. Head and eye
    angles become keyed custom properties (`HeadYaw`...) of the object. The
    file is read and checked whole first: any error leaves the scene unchanged.
    """
    key_names = mesh_key_names(obj)
    key_map = map_keys(key_names)
    if not key_map.keys:
        raise AnimationBridgeError(f'"{obj.name}" has no shape keys with ARKit names (eyeBlinkLeft...) or Maxine '
                                   f"names (eyeBlink_L...): import an .nvf model or add such keys first")
    take = read_csv(options.filepath)
    rate = _timecode_rate(scene, options.timecode_rate)
    tc_frames = take.frames(rate)
    fps = scene_fps(scene)
    start = float(scene.frame_start)
    frames = start + (tc_frames - tc_frames[0]) * (fps / rate)
    shape_values = {shape: take.shapes[:, i] for i, shape in enumerate(ARKIT_SHAPES)}
    key_values = key_map.key_values(shape_values)
    shape_keys = getattr(obj.data, "shape_keys")
    channels = [Channel(shape_keys, shape_key_path(name), 0, frames, values, GROUP_SHAPES)
                for name, values in key_values.items()]
    for i, angle in enumerate(HEAD_EYE_ANGLES):
        obj[angle] = float(take.angles[0, i])
        channels.append(Channel(obj, property_path(angle), 0, frames, take.angles[:, i], GROUP_ANGLES))
    obj[PROP_TIMECODE_START] = take.timecodes[0]
    obj[PROP_TIMECODE_FPS] = rate
    obj[PROP_FIRST_FRAME] = start
    obj[PROP_DECIMALS] = take.decimals
    keys = write_channels(channels)
    if options.set_frame_range:
        set_scene_timing(scene, None, frames[0], frames[-1])
    rate_text = "the scene's" if options.timecode_rate == "SCENE" else "the chosen"
    message = (f'{len(take)} frames onto {len(key_values)} keys of "{obj.name}", frames {frames[0]:g}-{frames[-1]:g}; '
               f"timecodes read at {rate:g} fps ({rate_text} rate: the file does not say)")
    if "tongueOut" in key_map.missing:
        message += "; tongueOut skipped (the mesh has no such key)"
    return LiveLinkSummary(len(take), keys, float(frames[0]), float(frames[-1]), rate, message)


def _union_frames(curves: Sequence[FCurve]) -> np.ndarray:
    frames = [key_arrays(fcurve)[0] for fcurve in curves]
    return np.unique(np.concatenate(frames)) if frames else np.empty(0)


@bridge_errors
def export_live_link_face(scene: Scene, obj: Object, filepath: str) -> LiveLinkSummary:
    """Writes the animation of `obj`'s ARKit- or Maxine-named shape keys as a Live Link Face CSV.

    One row per keyed frame (of any of those keys); a split Maxine shape's
    value is the mean of its halves; shapes the mesh lacks are 0. Head and eye
    angles come from the object's `HeadYaw`... custom properties when it has
    them, else 0. A take imported onto the object comes back with its own
    timecodes and precision.
    """
    key_map = map_keys(mesh_key_names(obj))
    if not key_map.keys:
        raise AnimationBridgeError(f'"{obj.name}" has no shape keys with ARKit or Maxine names to export')
    shape_keys = getattr(obj.data, "shape_keys")
    by_path = {fcurve.data_path: fcurve for fcurve in find_fcurves(shape_keys)}
    curves = {name: by_path[shape_key_path(name)] for keys in key_map.keys.values() for name in keys
              if shape_key_path(name) in by_path}
    frames = _union_frames(list(curves.values()))
    if not len(frames):
        raise AnimationBridgeError(f'"{obj.name}" has no keyframes on its ARKit/Maxine shape keys: nothing to export')
    blocks = shape_keys.key_blocks
    key_values = {name: (curve_values(curves[name], frames) if name in curves
                         else np.full(len(frames), blocks[name].value, dtype=np.float64))
                  for keys in key_map.keys.values() for name in keys}
    shape_values = key_map.shape_values(key_values)
    shapes = np.zeros((len(frames), len(ARKIT_SHAPES)))
    for i, shape in enumerate(ARKIT_SHAPES):
        if shape in shape_values:
            shapes[:, i] = shape_values[shape]
    object_curves = {fcurve.data_path: fcurve for fcurve in find_fcurves(obj)}
    angles = np.zeros((len(frames), len(HEAD_EYE_ANGLES)))
    for i, angle in enumerate(HEAD_EYE_ANGLES):
        path = property_path(angle)
        if path in object_curves:
            angles[:, i] = curve_values(object_curves[path], frames)
        elif has_id_property(obj, angle):
            angles[:, i] = float(id_property(obj, angle))
    fps = scene_fps(scene)
    if has_id_property(obj, PROP_TIMECODE_START):
        rate = float(id_property(obj, PROP_TIMECODE_FPS))
        h, m, s, f, sub = parse_timecode(str(id_property(obj, PROP_TIMECODE_START)))
        origin = ((h * 60 + m) * 60 + s) * rate + f + sub
        first = float(id_property(obj, PROP_FIRST_FRAME))
        decimals = int(id_property(obj, PROP_DECIMALS))
    else:
        rate, origin, first, decimals = float(round(fps)), 0.0, float(scene.frame_start), 6
    timecodes = [format_timecode(origin + (frame - first) * (rate / fps), rate) for frame in frames]
    take = Take(timecodes=timecodes, shapes=shapes, angles=angles, decimals=decimals)
    write_csv(take, filepath)
    return LiveLinkSummary(len(frames), 0, float(frames[0]), float(frames[-1]), rate,
                           f'{len(frames)} frames of "{obj.name}" written to {filepath} '
                           f"(timecodes at {rate:g} fps)")

