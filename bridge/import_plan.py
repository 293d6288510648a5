# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The import plan: everything `import_nvf` puts into Blender for one model, as arrays.

`plan_import` computes it from a validated `FaceModel` (pure numpy, no bpy)
before the first datablock is built; the exporter recomputes it from the kept
original file to tell what the user edited. May import numpy, the format
(`io_nv3dmm`) and the bridge's `axes`, `naming`, `options`, `errors`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..io_nv3dmm import FaceModel, LandmarkSet
from .axes import offsets_to_blender, to_blender
from .errors import NvfBridgeError
from .naming import (
    BASIS_NAME, CONTOUR_GROUP, IBUG_GROUP, MODE_KEY, NVLM_GROUP, PROP_CONTOURS, blend_shape_key_name,
    partition_label, unique_names,
)
from .options import ImportOptions

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

MODE_SLIDER = (-10.0, 10.0)
BLEND_SLIDER = (0.0, 1.0)

#: Most vertex groups an import creates (a real model needs about 200).
MAX_VERTEX_GROUPS = 4096


@dataclass
class ImportPlan:
    """Everything `import_nvf` puts into Blender for one model, as arrays (no bpy).

    Positions are Blender-space float32. Group/key names are the names Blender
    will hold (truncated and de-duplicated the way Blender does it).

    Shape keys are kept as their sources (the float32 mean and the offset
    blocks, views of the file) and converted on demand: `fill_keys` writes any
    run of keys into a caller's buffer (the import streams them through a small
    one, cache-resident, straight into Blender), `key_positions` converts all of
    them once and keeps the array (the exporter's comparisons).
    """

    basis: F32
    triangles: I32
    key_names: list[str] = field(default_factory=list)
    key_mean: F32 | None = None                 # None: no shape keys planned
    key_offsets: list[F32] = field(default_factory=list)
    scale: float = 0.01
    convert_axes: bool = True
    key_sources: list[tuple[str, int]] = field(default_factory=list)   # ("mode"|"blend", index)
    slider_ranges: list[tuple[float, float]] = field(default_factory=list)
    eigenvalues: list[float] = field(default_factory=list)
    groups: list[tuple[str, I64]] = field(default_factory=list)
    contour_props: dict[str, list[int]] = field(default_factory=dict)
    materials: list[str | None] = field(default_factory=list)
    face_slots: I32 | None = None
    face_partitions: I32 | None = None
    uv: F32 | None = None
    colors: F32 | None = None
    _key_positions: F32 | None = field(default=None, repr=False)

    @property
    def key_positions(self) -> F32 | None:
        """(K, V, 3) Blender-space positions of every planned key (None: no shape
        keys planned); converted on first use, then kept."""
        if self.key_mean is None:
            return None
        if self._key_positions is None:
            positions = np.empty((len(self.key_names), self.key_mean.shape[0], 3), np.float32)
            self.fill_keys(0, positions)
            self._key_positions = positions
        return self._key_positions

    def fill_keys(self, first: int, out: F32) -> None:
        """Writes the Blender-space positions of keys first .. first + len(out) - 1
        into `out` (C-contiguous float32 (n, V, 3))."""
        if self.key_mean is None:
            raise ValueError("this import plan has no shape keys")
        count = out.shape[0]
        if first < 0 or first + count > len(self.key_names):
            raise IndexError(f"keys {first}..{first + count - 1} are not in 0..{len(self.key_names) - 1}")
        if self._key_positions is not None:
            np.copyto(out, self._key_positions[first:first + count])
            return
        row = 0
        for block in self.key_offsets:
            low, high = max(first, row), min(first + count, row + block.shape[0])
            if low < high:
                offsets_to_blender(block[low - row:high - row], self.key_mean, self.scale, self.convert_axes,
                                   out=out[low - first:high - first])
            row += block.shape[0]


def _landmark_groups(template: str, marks: LandmarkSet) -> list[tuple[str, I64]]:
    """One group per landmark number with its distinct vertices, both ascending.

    Each (number, vertex) pair (uint16 in a model) is packed into one int64,
    so one 1-D `np.unique` sorts and de-duplicates them all (a few numpy calls
    in all, none per group).
    """
    pairs = np.asarray(marks.pairs, dtype=np.int64).reshape(-1, 2)
    if pairs.size == 0:
        return []
    if int(pairs.min()) < 0 or int(pairs.max()) >= 1 << 31:
        raise NvfBridgeError("landmark numbers and vertex indices must lie in 0..2147483647")
    packed = np.unique((pairs[:, 0] << 32) | pairs[:, 1])
    numbers = packed >> 32
    vertices = packed & 0xFFFFFFFF
    starts = (np.flatnonzero(numbers[1:] != numbers[:-1]) + 1).tolist()
    bounds = [0] + starts + [packed.size]
    firsts = numbers[bounds[:-1]].tolist()
    # Slices of one array (np.split costs ~1 us more per group).
    return [(template.format(number), vertices[bounds[i]:bounds[i + 1]]) for i, number in enumerate(firsts)]


def face_partition_numbers(model: FaceModel) -> I32:
    """The partition (list position) of every triangle, -1 where none; the first
    partition listed wins where partitions overlap."""
    result = np.full(model.triangle_count, -1, dtype=np.int32)
    for i in reversed(range(len(model.partitions or []))):
        part = (model.partitions or [])[i]
        result[part.face_start:part.face_start + part.face_count] = i
    return result


def plan_import(model: FaceModel, options: ImportOptions) -> ImportPlan:
    """What importing `model` with `options` creates (pure numpy; validates nothing bpy-related)."""
    scale, axes = options.scale, options.convert_axes
    shape = model.shape
    mean = np.asarray(shape.mean, dtype=np.float32)
    plan = ImportPlan(basis=to_blender(mean, scale, axes),
                      triangles=np.ascontiguousarray(shape.triangles, dtype=np.int32).reshape(-1, 3),
                      scale=scale, convert_axes=axes)

    if options.shape_keys:
        names: list[str] = []
        sources: list[tuple[str, int]] = []
        ranges: list[tuple[float, float]] = []
        blocks = []
        if model.mode_count:
            names += [MODE_KEY.format(i) for i in range(model.mode_count)]
            sources += [("mode", i) for i in range(model.mode_count)]
            ranges += [MODE_SLIDER] * model.mode_count
            blocks.append(np.asarray(shape.modes, dtype=np.float32))
        blend = model.blend_shapes
        if blend is not None and len(blend.names):
            names += [blend_shape_key_name(n, i) for i, n in enumerate(blend.names)]
            sources += [("blend", i) for i in range(len(blend.names))]
            ranges += [BLEND_SLIDER] * len(blend.names)
            blocks.append(np.asarray(blend.deltas, dtype=np.float32))
        plan.key_names = unique_names(names, {BASIS_NAME})
        plan.key_sources = sources
        plan.slider_ranges = ranges
        plan.key_mean = mean
        plan.key_offsets = blocks
        plan.eigenvalues = np.asarray(shape.eigenvalues, dtype=np.float64).tolist()

    groups: list[tuple[str, I64]] = []
    if options.landmarks:
        for prefix, template, marks in (("IBUG", IBUG_GROUP, model.ibug), ("NVLM", NVLM_GROUP, model.nvlm)):
            if marks is None:
                continue
            groups += _landmark_groups(template, marks)
            for side, contour in (("R", marks.right_contour), ("L", marks.left_contour)):
                if contour is not None:
                    plan.contour_props[PROP_CONTOURS[(prefix, side)]] = np.asarray(
                        contour, dtype=np.int64).tolist()
        contours = model.model_contours
        if contours is not None:
            for side, values in (("R", contours.right), ("L", contours.left)):
                if values is None:
                    continue
                points = np.asarray(values, dtype=np.int64).ravel()
                groups += [(CONTOUR_GROUP.format(i, side=side), points[i:i + 1]) for i in range(points.size)]

    if options.partitions and model.partitions:
        parts = model.partitions
        plan.face_partitions = face_partition_numbers(model)
        tris = plan.triangles
        part_groups: list[tuple[str, I64]] = []
        for i, part in enumerate(parts):
            run = tris[part.face_start:part.face_start + part.face_count]
            part_groups.append((partition_label(i, part.name, part.material), np.unique(run).astype(np.int64)))
        # Partition groups go first: Blender's VertexGroup.add looks the group up
        # by walking the group list once per vertex, and these hold nearly every
        # vertex (after 186 landmark groups they cost 2.3x as much to fill).
        groups = part_groups + groups
        distinct: list[str] = []
        for part in parts:
            if part.material and part.material not in distinct:
                distinct.append(part.material)
        part_slot = np.array([distinct.index(p.material) if p.material else len(distinct) for p in parts]
                             + [len(distinct)], dtype=np.int32)
        slots = part_slot[plan.face_partitions]          # -1 -> the trailing "none" slot
        plan.materials = list(distinct)
        if bool(np.any(slots == len(distinct))):
            plan.materials.append(None)
        plan.face_slots = np.ascontiguousarray(slots, dtype=np.int32)

    if len(groups) > MAX_VERTEX_GROUPS:
        # Blender creates vertex groups one call at a time, ever slower as they pile up
        # (65,536 landmark groups take minutes): refuse before building anything.
        raise NvfBridgeError(
            f"this model would need {len(groups):,} vertex groups (landmarks, contours and partitions); "
            f"more than {MAX_VERTEX_GROUPS:,} would freeze Blender for minutes. Import it with "
            f"'Landmarks' (or 'Partitions') turned off: the file's data is still kept and exported unchanged")
    names_only = unique_names([g[0] for g in groups])
    plan.groups = [(n, g[1]) for n, g in zip(names_only, groups)]

    if model.texcoords is not None:
        plan.uv = np.ascontiguousarray(model.texcoords, dtype=np.float32).reshape(-1, 2)
    if model.color is not None:
        plan.colors = np.ascontiguousarray(model.color.mean, dtype=np.float32).reshape(-1, 3)
    return plan
