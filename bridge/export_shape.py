# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The shape part of an export: the mean shape, shape modes and blend shapes.

Reads the shape keys (`ExportState`) and gives the original file's arrays back
unchanged where nothing was edited (compared vertex by vertex, batched), the
converted Blender values where something was. Also knows a 3DDFA-V3
reconstruction's keys (`ID.xx` identity keys, written as shape modes, and the
slider scales kept on the object). May import bpy types, numpy, the format
and the bridge modules below it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ..io_nv3dmm import BlendShapes
from . import reconstruction as tddfa
from .axes import to_nvf
from .bpy_typed import has_id_property, id_property, property_array
from .export_compare import all_same, rows_equal
from .export_state import ExportState
from .naming import MODE_KEY_PATTERN, PROP_EIGENVALUES

F32 = npt.NDArray[np.float32]

#: A reconstruction's shape keys (bridge.reconstruction: "ID.00", "EXP.00", ...).
_TDDFA_KEY = re.compile(r"^(ID|EXP)\.(\d+)$")


class ShapeKeys(NamedTuple):
    """What the shape keys become in the file."""

    modes: F32                      # (M, V, 3) shape-mode offsets
    eigenvalues: F32                # (M,) one per mode
    blend_shapes: BlendShapes | None


class ReconstructionKeys(NamedTuple):
    """Per shape key of a 3DDFA-V3 reconstruction: whether it is an identity key
    (written as a shape mode) and what its offset is divided by on export."""

    identity: list[bool]
    divisors: list[float]


def export_mean(state: ExportState) -> F32:
    """The mean shape: the original values where the basis is as imported, else converted."""
    converted = to_nvf(state.basis, state.scale, state.axes)
    if not state.same_conversion:
        return converted
    assert state.plan is not None and state.original is not None
    original = state.original.shape.mean
    same = rows_equal(state.basis, state.plan.basis)
    if bool(same.all()):
        return original
    state.changed()
    return np.where(same[:, None], original, converted).astype(np.float32)


def export_shape_keys(state: ExportState) -> ShapeKeys:
    """The shape modes (with eigenvalues) and blend shapes from the shape keys."""
    plan, original = state.plan, state.original
    names = state.key_names[1:]
    if not names and original is not None and state.same_vertices and not state.import_options.shape_keys:
        # Shape keys were not imported: carry the original ones over untouched.
        return ShapeKeys(original.shape.modes, original.shape.eigenvalues, original.blend_shapes)
    if (plan is not None and original is not None and state.same_conversion
            and plan.key_positions is not None and names == plan.key_names
            and not any(state.key_relative[1:]) and _eigenvalues_kept(state)
            and all_same(state.key_blocks[0], plan.basis)
            and all_same(state.key_blocks[1:], plan.key_positions)):
        # Fast path: no key was touched since import (one comparison of all keys).
        return ShapeKeys(original.shape.modes, original.shape.eigenvalues, original.blend_shapes)
    planned = {name: i for i, name in enumerate(plan.key_names)} if plan is not None else {}
    current = set(names)
    eigen_prop = id_property(state.mesh, PROP_EIGENVALUES)
    eigen_source = property_array(eigen_prop).astype(np.float64) if eigen_prop is not None else np.ones(0)
    modes: list[F32] = []
    mode_eigen: list[float] = []
    mode_sources: list[int | None] = []
    blend_names: list[str] = []
    blend_deltas: list[F32] = []
    blend_sources: list[int | None] = []
    use_plan = plan is not None and state.same_conversion and plan.key_positions is not None
    key_count = len(names)
    positions = state.key_blocks[1:]
    relative_index = np.asarray(state.key_relative[1:], dtype=np.int64)
    relative_is_basis = not bool(relative_index.any())
    relatives = (state.key_blocks[:1] if relative_is_basis or key_count == 0
                 else state.key_blocks[relative_index])

    # Which original key each key continues: same name, else the key that
    # sat at this place and whose name is gone (it was renamed).
    candidates = np.full(key_count, -1, dtype=np.int64)
    if use_plan:
        assert plan is not None
        for j, name in enumerate(names):
            found = planned.get(name)
            if found is None and j < len(plan.key_names) and plan.key_names[j] not in current:
                found = j
            if found is not None:
                candidates[j] = found
    matched = np.flatnonzero(candidates >= 0)
    # Per key and vertex: still exactly what the import made (batched comparisons;
    # no copies when the keys are still in their imported order).
    same = np.zeros((key_count, state.v_count), dtype=bool)
    if matched.size:
        assert plan is not None and plan.key_positions is not None
        in_order = matched.size == key_count and np.array_equal(candidates, np.arange(key_count))
        planned_positions = plan.key_positions if in_order else plan.key_positions[candidates[matched]]
        mine = positions if in_order else positions[matched]
        basis_same = rows_equal(relatives, plan.basis)
        same[matched] = rows_equal(mine, planned_positions) & basis_same
        partial = matched[~same[matched].all(axis=1)]
        if partial.size:
            # A key moved together with its basis keeps its offset.
            planned_delta = plan.key_positions[candidates[partial]] - plan.basis
            mine_delta = positions[partial] - relatives[partial if not relative_is_basis else [0]]
            same[partial] |= rows_equal(mine_delta, planned_delta)
    untouched = same.all(axis=1)

    def converted(j: int, where: npt.NDArray[np.intp] | None = None) -> F32:
        relative = relatives[0] if relative_is_basis else relatives[j]
        if where is None:
            return to_nvf(positions[j] - relative, state.scale, state.axes)
        return to_nvf(positions[j][where] - relative[where], state.scale, state.axes)

    identity_keys, divisors = _reconstruction_keys(state, names)
    for j, name in enumerate(names):
        kind = "mode" if MODE_KEY_PATTERN.match(name) or identity_keys[j] else "blend"
        out_name = name
        source: int | None = None
        candidate = int(candidates[j])
        delta: F32
        if candidate >= 0:
            assert plan is not None and original is not None
            src_kind, src_index = plan.key_sources[candidate]
            if name == plan.key_names[candidate]:
                kind = src_kind
                if src_kind == "blend":
                    assert original.blend_shapes is not None
                    out_name = original.blend_shapes.names[src_index]
            original_delta = (original.shape.modes[src_index] if src_kind == "mode"
                              else original.blend_shapes.deltas[src_index])  # type: ignore[union-attr]
            if untouched[j]:
                delta = original_delta
                source = src_index if kind == src_kind else None
            else:
                # Only the edited vertices are converted; the rest keep their exact values.
                edited = np.flatnonzero(~same[j])
                delta = np.array(original_delta, dtype=np.float32)
                delta[edited] = converted(j, edited)
        else:
            delta = converted(j)
            if divisors[j] != 1.0:
                delta = (delta / np.float32(divisors[j])).astype(np.float32)
        if kind == "mode":
            match = MODE_KEY_PATTERN.match(name)
            number = int(match.group(1)) if match else len(modes)
            mode_eigen.append(1.0 if identity_keys[j] else
                              float(eigen_source[number]) if number < eigen_source.size else 1.0)
            modes.append(delta)
            mode_sources.append(source)
        else:
            blend_names.append(out_name)
            blend_deltas.append(delta)
            blend_sources.append(source)

    v_count = state.v_count
    eigen = np.asarray(mode_eigen, dtype=np.float32)
    if (original is not None and mode_sources == list(range(original.mode_count))
            and np.array_equal(eigen, original.shape.eigenvalues, equal_nan=True)):
        mode_array, eigen = original.shape.modes, original.shape.eigenvalues
    else:
        state.changed()
        mode_array = (np.stack(modes).astype(np.float32) if modes
                      else np.zeros((0, v_count, 3), np.float32))
    blend: BlendShapes | None = None
    original_blend = original.blend_shapes if original is not None else None
    if (original_blend is not None and blend_sources == list(range(len(original_blend.names)))
            and blend_names == list(original_blend.names)):
        blend = original_blend
    elif blend_names:
        state.changed()
        blend = BlendShapes(names=blend_names, deltas=np.stack(blend_deltas).astype(np.float32))
    elif original_blend is not None:
        state.changed()
    return ShapeKeys(mode_array, eigen, blend)


def _reconstruction_keys(state: ExportState, names: list[str]) -> ReconstructionKeys:
    """For a 3DDFA-V3 reconstruction (bridge.reconstruction): which keys are its
    identity components (`ID.xx`, written as shape modes) and what to divide each
    key's offset by to get the face model's component back (a key holds
    scale * component so that its value fits the slider; the scales are kept
    on the object). For any other object: no identity keys, divisors 1.

    3DDFA-V3's components are the model's principal directions already
    multiplied by their standard deviations (coefficients are in standard
    deviations), so the modes go out pre-scaled with eigenvalue 1.0, the way
    NVIDIA's own models store theirs.
    """
    count = len(names)
    if not has_id_property(state.obj, tddfa.PROP_MARKER):
        return ReconstructionKeys([False] * count, [1.0] * count)
    scales = property_array(id_property(state.obj, tddfa.PROP_KEY_SCALES, [])).astype(np.float64).ravel()
    split = id_property(state.obj, tddfa.PROP_SPLIT, None)
    spans = dict(tddfa.COEFFICIENT_SPLIT)
    for part in ("identity", "expression"):
        try:
            start, stop = (int(v) for v in split[part])
            spans[part] = (start, stop)
        except (KeyError, TypeError, ValueError, IndexError):
            pass
    first = spans["identity"][0]
    identity: list[bool] = []
    divisors: list[float] = []
    for name in names:
        found = _TDDFA_KEY.match(name)
        divisor = 1.0
        if found is not None:
            part = "identity" if found.group(1) == "ID" else "expression"
            number = int(found.group(2))
            start, stop = spans[part]
            where = start - first + number
            if number < stop - start and 0 <= where < scales.size and scales[where] > 0.0 \
                    and np.isfinite(scales[where]):
                divisor = float(scales[where])
        identity.append(found is not None and found.group(1) == "ID")
        divisors.append(divisor)
    return ReconstructionKeys(identity, divisors)


def _eigenvalues_kept(state: ExportState) -> bool:
    assert state.original is not None
    value = id_property(state.mesh, PROP_EIGENVALUES)
    if value is None:
        return False
    return np.array_equal(property_array(value).astype(np.float32), state.original.shape.eigenvalues,
                          equal_nan=True)
