# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The partition part of an export: triangles in file order and the partitions over them.

A partition is a run of triangles with one PART vertex group (all three
corners in it) and one material slot (`naming`); the original triangles and
partitions are given back unchanged where the groups, slots and the
`nvf_partition` face attribute are exactly the import's. May import bpy
types, numpy, the format and the bridge modules below it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ..io_nv3dmm import Partition
from . import mesh as mesh_reader
from .export_state import ExportState
from .naming import PARTITION_ATTRIBUTE, PARTITION_GROUP_PATTERN, material_nvf_name

I64 = npt.NDArray[np.int64]
U16 = npt.NDArray[np.uint16]


class Triangulation(NamedTuple):
    """The model's triangles in file order and the partitions over them (None: no partitions)."""

    triangles: U16
    partitions: list[Partition] | None


class PartitionGroup(NamedTuple):
    """One PART vertex group as the exporter reads it (`naming.PARTITION_GROUP_PATTERN`)."""

    order: int              # its number; unnumbered groups sort after the numbered ones
    position: int           # its place among the PART groups (breaks ties)
    number: int | None      # the partition number in its name, if any
    label: str | None       # the partition name in its name, if any
    members: I64            # its vertices
    name: str               # the vertex group's name


def export_partitions(state: ExportState) -> Triangulation:
    """The triangles in file order and the partitions over them."""
    original, plan = state.original, state.plan
    tris = state.tris
    mesh = state.mesh
    slot_names = [material_nvf_name(m) for m in mesh.materials]
    poly_slots = mesh_reader.read_material_indices(mesh)
    face_attr = mesh_reader.read_face_ints(mesh, PARTITION_ATTRIBUTE)
    part_groups = list(state.mine_by_kind.get("PART", {}).items())
    same_tris = (original is not None and state.same_vertices
                 and tris.shape == original.shape.triangles.shape
                 and np.array_equal(tris, original.shape.triangles))
    if original is not None and same_tris:
        if not part_groups and not slot_names and (
                original.partitions is None or not state.import_options.partitions):
            return Triangulation(original.shape.triangles, original.partitions)
        if (plan is not None and plan.face_slots is not None and slot_names == plan.materials
                and np.array_equal(poly_slots, plan.face_slots)
                and face_attr is not None and plan.face_partitions is not None
                and np.array_equal(face_attr, plan.face_partitions)
                and state.same_groups("PART")):
            return Triangulation(original.shape.triangles, original.partitions)
    state.changed()
    t_count = tris.shape[0]
    slot_count = len(slot_names)
    tri_slots = (np.clip(poly_slots[state.tri_poly], 0, slot_count - 1) if slot_count
                 else np.full(t_count, -1, np.int32))

    # Partition groups ordered by their number (unnumbered ones after, in group order).
    parsed: list[PartitionGroup] = []
    for position, (group_name, members) in enumerate(part_groups):
        match = PARTITION_GROUP_PATTERN.match(group_name)
        assert match is not None
        digits = match.group(1)
        number = int(digits) if digits is not None and len(digits) <= 9 else None
        label = match.group(2) if digits is not None else match.group(3)
        parsed.append(PartitionGroup(order=number if number is not None else 1 << 40, position=position,
                                     number=number, label=label or None, members=members, name=group_name))
    parsed.sort(key=lambda p: (p.order, p.position))
    g_count = len(parsed)
    chosen = np.full(t_count, g_count, dtype=np.int64)     # g_count = no group
    if g_count:
        inside = np.zeros((g_count, t_count), dtype=bool)
        for g, item in enumerate(parsed):
            mask = np.zeros(state.v_count, dtype=bool)
            mask[item.members] = True
            corners = mask[tris]
            inside[g] = corners[:, 0] & corners[:, 1] & corners[:, 2]
        any_group = inside.any(axis=0)
        chosen = np.where(any_group, inside.argmax(axis=0), g_count)
        if face_attr is not None:
            # Where several groups hold all three corners (partitions share
            # border vertices), the partition the face had at import decides.
            remembered = face_attr[state.tri_poly].astype(np.int64)
            owner = _partition_owners(state, parsed)
            valid = (remembered >= 0) & (remembered < owner.size)
            preferred = np.where(valid, owner[np.clip(remembered, 0, max(owner.size - 1, 0))]
                                 if owner.size else -1, -1)
            ok = preferred >= 0
            ok[ok] = inside[preferred[ok], np.flatnonzero(ok)]
            chosen = np.where(ok, preferred, chosen)
    if g_count == 0 and slot_count == 0:
        return Triangulation(tris.astype(np.uint16), None)
    run_key = chosen * (slot_count + 1) + np.where(tri_slots < 0, slot_count, tri_slots)
    order = np.argsort(run_key, kind="stable")
    sorted_key = run_key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    counts = np.diff(np.r_[starts, t_count])
    result: list[Partition] = []
    original_parts = original.partitions if original is not None else None
    for i, (start, count) in enumerate(zip(starts.tolist(), counts.tolist())):
        k = int(sorted_key[start])
        g, slot = divmod(k, slot_count + 1)
        material = slot_names[slot] if slot < slot_count else None
        smoothing = -1
        name: str | None
        if g < g_count:
            number, name = parsed[g].number, parsed[g].label
            if number is not None and original_parts is not None and number < len(original_parts):
                smoothing = original_parts[number].smoothing_group
        else:
            name = material
        result.append(Partition(index=i, face_start=start, face_count=count, vertex_start=3 * start,
                                vertex_count=3 * count, smoothing_group=smoothing,
                                name=name, material=material))
    return Triangulation(tris[order].astype(np.uint16), result)


def _partition_owners(state: ExportState, parsed: list[PartitionGroup]) -> I64:
    """For each partition number stored in `nvf_partition`, the index (in
    `parsed`) of the PART group that is that partition now, -1 if none.

    A group is recognised by its members (exactly the import's: renaming or
    renumbering a group keeps it), else by its imported name, else by its
    number; for meshes not imported from .nvf, by number.
    """
    planned = [(name, members) for name, members in state.planned_by_kind.get("PART", {}).items()]
    if planned:
        by_members: dict[bytes, int] = {}
        for g, item in enumerate(parsed):
            by_members.setdefault(item.members.tobytes(), g)
        by_name = {item.name: g for g, item in enumerate(parsed)}
        by_number = {item.number: g for g, item in enumerate(parsed) if item.number is not None}
        owners = []
        for i, (name, members) in enumerate(planned):
            owners.append(by_members.get(members.tobytes(), by_name.get(name, by_number.get(i, -1))))
        return np.asarray(owners, dtype=np.int64)
    numbers = [item.number for item in parsed if item.number is not None and item.number < 1 << 20]
    owner = np.full(max(numbers, default=-1) + 1, -1, dtype=np.int64)
    for g, item in enumerate(parsed):
        if item.number is not None and item.number < owner.size and owner[item.number] < 0:
            owner[item.number] = g
    return owner
