# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The landmark part of an export: iBUG and NVIDIA landmarks and the model contours.

Read from the IBUG/NVLM/MCTR vertex groups and the contour properties
(`naming`); the original file's sets are given back unchanged where the groups
are exactly the import's. May import bpy types, numpy, the format and the
bridge modules below it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..io_nv3dmm import Contours, LandmarkSet
from .bpy_typed import id_property, property_array
from .errors import NvfBridgeError
from .export_state import ExportState
from .naming import CONTOUR_GROUP_PATTERN, LANDMARK_GROUP_PATTERN, PROP_CONTOURS

I64 = npt.NDArray[np.int64]
U16 = npt.NDArray[np.uint16]


def _contour_prop(state: ExportState, key: tuple[str, str], fallback: U16 | None) -> U16 | None:
    value = id_property(state.mesh, PROP_CONTOURS[key])
    if value is None:
        return None
    values = property_array(value).astype(np.int64).ravel()
    if values.size and (values.min() < 0 or values.max() > 0xFFFF):
        raise NvfBridgeError(f"the mesh property '{PROP_CONTOURS[key]}' holds landmark numbers "
                             f"outside 0..65535")
    array = values.astype(np.uint16)
    if fallback is not None and np.array_equal(array, fallback):
        return fallback
    return array


def export_landmarks(state: ExportState, prefix: str) -> LandmarkSet | None:
    """The "IBUG" or "NVLM" landmark set from its vertex groups and contour properties."""
    original = state.original
    original_set: LandmarkSet | None = None
    if original is not None:
        original_set = original.ibug if prefix == "IBUG" else original.nvlm
    if original_set is not None and state.same_vertices and not state.import_options.landmarks:
        return original_set
    entries: list[tuple[int, I64]] = []
    for name, members in state.mine_by_kind.get(prefix, {}).items():
        match = LANDMARK_GROUP_PATTERN.match(name)
        if match:
            number = int(match.group(2))
            if number > 0xFFFF:
                raise NvfBridgeError(f"vertex group '{name}': landmark numbers go up to 65535")
            entries.append((number, members))
    right = _contour_prop(state, (prefix, "R"), original_set.right_contour if original_set else None)
    left = _contour_prop(state, (prefix, "L"), original_set.left_contour if original_set else None)
    if original_set is not None and state.same_vertices and state.same_groups(prefix):
        if right is original_set.right_contour and left is original_set.left_contour:
            return original_set
        state.changed()
        return LandmarkSet(pairs=original_set.pairs, right_contour=right, left_contour=left)
    if not entries and right is None and left is None:
        if original_set is not None:
            state.changed()
        return None
    state.changed()
    entries.sort(key=lambda e: e[0])
    pairs = [np.stack([np.full(m.size, n, np.int64), m], axis=1) for n, m in entries if m.size]
    table = np.concatenate(pairs).astype(np.uint16) if pairs else np.zeros((0, 2), np.uint16)
    return LandmarkSet(pairs=table, right_contour=right, left_contour=left)


def export_model_contours(state: ExportState) -> Contours | None:
    """The model's face contours from the MCTR vertex groups."""
    original = state.original.model_contours if state.original is not None else None
    if original is not None and state.same_vertices and not state.import_options.landmarks:
        return original
    if original is not None and state.same_vertices and state.same_groups("MCTR"):
        return original
    sides: dict[str, list[tuple[int, I64]]] = {"R": [], "L": []}
    for name, members in state.mine_by_kind.get("MCTR", {}).items():
        match = CONTOUR_GROUP_PATTERN.match(name)
        if match:
            sides[match.group(1)].append((int(match.group(2)), members))
    if not sides["R"] and not sides["L"]:
        if original is not None:
            state.changed()
        return None
    state.changed()
    def line(points: list[tuple[int, I64]]) -> U16 | None:
        if not points:
            return None
        points.sort(key=lambda e: e[0])
        return np.concatenate([m for _, m in points] + [np.zeros(0, np.int64)]).astype(np.uint16)
    return Contours(right=line(sides["R"]), left=line(sides["L"]))
