# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Exporting a Blender mesh object as an .nvf face model.

Two kinds of meshes are handled the same way:

- a mesh imported from .nvf carries its original file (`nvf_source`). The
  exporter recomputes what the importer made from it (`plan_import`) and
  compares it with the mesh now, per vertex and per component: whatever still
  matches bit for bit is written with the original values, whatever differs
  was edited and is converted from Blender. An unedited import (also after a
  .blend save/reload) is written back byte for byte.
- any other mesh becomes a new model: triangulated (Blender's loop triangles;
  the mesh itself is not changed), shape keys -> shape modes and blend shapes,
  vertex groups -> landmarks, contours and partitions, materials ->
  partitions, by the naming convention in `nvf_mapping`.

Everything is validated and the whole file is built in memory before the
destination is touched; it is then written by the codec's one atomic write
(`io_nv3dmm.write_atomic`: temporary file, fsync, rename, folder fsync), so a
failed or interrupted export writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..io_nv3dmm import (
    MAX_VERTICES, MAXINE_EXPRESSIONS, BlendShapes, Contours, DestinationError, FaceModel, LandmarkSet,
    LinearModel, NvfError, Partition, Topology, build_topology, to_bytes, write_atomic,
)
from ..io_nv3dmm.limits import MAX_TRIANGLES
from ..io_nv3dmm.maxine import maxine_problems
from . import mesh as mesh_reader
from . import reconstruction as tddfa
from .bpy_typed import has_id_property, id_property, lookup, object_mesh
from .nvf_import import as_array, model_of
from .nvf_mapping import (
    COLOR_ATTRIBUTE, CONTOUR_GROUP_PATTERN, LANDMARK_GROUP_PATTERN, MODE_KEY_PATTERN,
    PARTITION_ATTRIBUTE, PARTITION_GROUP_PATTERN, PROP_CONTOURS, PROP_EIGENVALUES, UV_MAP_NAME,
    ImportOptions, ImportPlan, NvfBridgeError, material_nvf_name,
    to_nvf,
)

if TYPE_CHECKING:
    # bpy is imported where it is used, so that this module loads without it.
    from bpy.types import Context, Mesh, Object

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U16 = npt.NDArray[np.uint16]


@dataclass
class ExportOptions:
    """How `export_nvf` converts coordinates.

    use_import_settings: for a mesh imported from .nvf, invert that import's
    own scale/axis conversion (recommended; `scale`/`convert_axes` then only
    apply to other meshes). scale: Blender units per centimetre as imported
    (0.01: the mesh is in metres). convert_axes: Blender +Z up -> NVIDIA +Y up.
    apply_transform: bake the object's world transform into the exported
    geometry (an imported face that was only moved/rotated as an object keeps
    its exact values when this is off).
    """

    use_import_settings: bool = True
    scale: float = 0.01
    convert_axes: bool = True
    apply_transform: bool = True


def export_nvf(target: Context | Object | None, filepath: str | Path,
               options: ExportOptions | None = None, *, fsync: bool = True) -> list[str]:
    """Writes the active (or given) mesh object as an .nvf file; returns warnings.

    Raises NvfBridgeError, writing nothing, when there is no mesh object, it
    has no faces, is over a format limit (65,535 vertices or triangles), has an
    edge shared by more than two faces, or the file cannot be written (the
    destination is a FIFO, device or folder, the disk is full, ...). The file
    is flushed to disk before it replaces the old one; fsync=False skips that
    (benchmarks).
    """
    obj = _resolve_object(target)
    result = build_export(obj, options or ExportOptions())
    _write(Path(filepath), result.data, fsync)
    return result.warnings


@dataclass
class ExportResult:
    """The bytes to write, the model they encode (None when the original bytes
    are reused unchanged), and warnings for the user."""

    data: bytes
    model: FaceModel | None
    warnings: list[str]
    unchanged: bool


def _resolve_object(target: Context | Object | None) -> Object:
    import bpy

    obj = target
    if target is None or isinstance(target, bpy.types.Context):
        context = target if target is not None else bpy.context
        obj = getattr(context, "active_object", None) or getattr(context, "object", None)
        if obj is None:
            raise NvfBridgeError("no active object: select the face mesh to export")
    if not isinstance(obj, bpy.types.Object):
        raise NvfBridgeError(f"cannot export {type(obj).__name__}: a mesh object is needed")
    if obj.type != 'MESH':
        raise NvfBridgeError(f"'{obj.name}' is a {obj.type.lower()} object, not a mesh: select a mesh to export")
    return obj


def _write(path: Path, data: bytes, fsync: bool) -> None:
    """The codec's one atomic write (io_nv3dmm.write_atomic: temporary file, fsync,
    rename, folder fsync; symlinks written through, FIFOs/devices/folders refused,
    nothing left behind whatever interrupts it), its failures as our error."""
    try:
        write_atomic(path, data, fsync=fsync)
    except DestinationError as exc:
        raise NvfBridgeError(exc.strerror or str(exc)) from exc
    except OSError as exc:
        raise NvfBridgeError(f"cannot write {path}: {exc.strerror or exc}") from exc


#: A reconstruction's shape keys (bridge.reconstruction: "ID.00", "EXP.00", ...).
_TDDFA_KEY = re.compile(r"^(ID|EXP)\.(\d+)$")

# --- building the model ------------------------------------------------------------


class _Exporter:
    def __init__(self, obj: Object, mesh: Mesh, options: ExportOptions) -> None:
        self.obj = obj
        self.mesh = mesh
        self.options = options
        self.warnings: list[str] = []
        self.unchanged = True          # every component still the original one
        kept = model_of(self.mesh)
        self.source: bytes | None = None
        self.original: FaceModel | None = None
        self.import_options = ImportOptions()
        self.kept_plan: ImportPlan | None = None
        self.plan: ImportPlan | None = None
        if kept is not None:
            self.source, self.original = kept.data, kept.model
            self.import_options, self.kept_plan = kept.options, kept.plan
        else:
            self.unchanged = False
        if self.original is not None and options.use_import_settings:
            self.scale, self.axes = self.import_options.scale, self.import_options.convert_axes
        else:
            self.scale, self.axes = options.scale, options.convert_axes
        if not self.scale > 0.0:
            raise NvfBridgeError(f"the export scale must be positive, got {self.scale}")

    def changed(self) -> None:
        self.unchanged = False

    # geometry --------------------------------------------------------------------

    def read_geometry(self) -> None:
        mesh = self.mesh
        v_count = len(mesh.vertices)
        if v_count > MAX_VERTICES:
            raise NvfBridgeError(
                f"'{self.obj.name}' has {v_count:,} vertices, over the .nvf limit of {MAX_VERTICES:,} "
                f"vertices (the format's vertex indices are 16-bit). Reduce it, e.g. with a Decimate "
                f"modifier (applied), or split the mesh")
        if len(mesh.polygons) == 0 and not (self.original is not None and self.original.triangle_count == 0):
            raise NvfBridgeError(f"'{self.obj.name}' has no faces: an .nvf model is a triangle mesh")
        self.v_count = v_count
        names, blocks, relative = mesh_reader.read_shape_keys(mesh)
        self.key_names, self.key_blocks, self.key_relative = names, blocks, relative
        basis = blocks[0] if len(names) else mesh_reader.read_positions(mesh)
        matrix = np.array(self.obj.matrix_world, dtype=np.float64)
        if self.options.apply_transform and not np.array_equal(matrix, np.eye(4)):
            linear, offset = matrix[:3, :3], matrix[:3, 3]
            basis = (basis.astype(np.float64) @ linear.T + offset).astype(np.float32)
            if len(names):
                self.key_blocks = (blocks.astype(np.float64) @ linear.T + offset).astype(np.float32)
                basis = self.key_blocks[0]
        self.basis = basis
        self.tris, self.tri_poly = mesh_reader.read_triangles(mesh)
        if self.tris.shape[0] > MAX_TRIANGLES:
            raise NvfBridgeError(
                f"'{self.obj.name}' has {self.tris.shape[0]:,} triangles (after triangulating its "
                f"faces), over the .nvf limit of {MAX_TRIANGLES:,} triangles (the format's edge table "
                f"numbers faces with 16 bits). Reduce it, e.g. with a Decimate modifier (applied), "
                f"or split the mesh")
        self.plan = self.kept_plan
        self.same_vertices = self.plan is not None and self.plan.basis.shape[0] == v_count
        if self.original is not None and not self.same_vertices:
            self.changed()
        # Positions can only be compared with the import's when they are converted
        # the same way (the user may export with other settings on purpose).
        imported = self.import_options
        self.same_conversion = (self.same_vertices and float(np.float32(self.scale)) == float(
            np.float32(imported.scale)) and self.axes == imported.convert_axes)
        if self.original is not None and not self.same_conversion:
            self.changed()

    def mean(self) -> F32:
        converted = to_nvf(self.basis, self.scale, self.axes)
        if not self.same_conversion:
            return converted
        assert self.plan is not None and self.original is not None
        original = self.original.shape.mean
        same = _rows_equal(self.basis, self.plan.basis)
        if bool(same.all()):
            return original
        self.changed()
        return np.where(same[:, None], original, converted).astype(np.float32)

    # shape keys ----------------------------------------------------------------------

    def shape_keys(self) -> tuple[F32, F32, BlendShapes | None]:
        """(modes, eigenvalues, blend shapes) from the shape keys."""
        plan, original = self.plan, self.original
        names = self.key_names[1:]
        if not names and original is not None and self.same_vertices and not self.import_options.shape_keys:
            # Shape keys were not imported: carry the original ones over untouched.
            return original.shape.modes, original.shape.eigenvalues, original.blend_shapes
        if (plan is not None and original is not None and self.same_conversion
                and plan.key_positions is not None and names == plan.key_names
                and not any(self.key_relative[1:]) and self._eigenvalues_kept()
                and _all_same(self.key_blocks[0], plan.basis)
                and _all_same(self.key_blocks[1:], plan.key_positions)):
            # Fast path: no key was touched since import (one comparison of all keys).
            return original.shape.modes, original.shape.eigenvalues, original.blend_shapes
        planned = {name: i for i, name in enumerate(plan.key_names)} if plan is not None else {}
        current = set(names)
        eigen_prop = id_property(self.mesh, PROP_EIGENVALUES)
        eigen_source = as_array(eigen_prop).astype(np.float64) if eigen_prop is not None else np.ones(0)
        modes: list[F32] = []
        mode_eigen: list[float] = []
        mode_sources: list[int | None] = []
        blend_names: list[str] = []
        blend_deltas: list[F32] = []
        blend_sources: list[int | None] = []
        use_plan = plan is not None and self.same_conversion and plan.key_positions is not None
        key_count = len(names)
        positions = self.key_blocks[1:]
        relative_index = np.asarray(self.key_relative[1:], dtype=np.int64)
        relative_is_basis = not bool(relative_index.any())
        relatives = (self.key_blocks[:1] if relative_is_basis or key_count == 0
                     else self.key_blocks[relative_index])

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
        same = np.zeros((key_count, self.v_count), dtype=bool)
        if matched.size:
            assert plan is not None and plan.key_positions is not None
            in_order = matched.size == key_count and np.array_equal(candidates, np.arange(key_count))
            planned_positions = plan.key_positions if in_order else plan.key_positions[candidates[matched]]
            mine = positions if in_order else positions[matched]
            basis_same = _rows_equal(relatives, plan.basis)
            same[matched] = _rows_equal(mine, planned_positions) & basis_same
            partial = matched[~same[matched].all(axis=1)]
            if partial.size:
                # A key moved together with its basis keeps its offset.
                planned_delta = plan.key_positions[candidates[partial]] - plan.basis
                mine_delta = positions[partial] - relatives[partial if not relative_is_basis else [0]]
                same[partial] |= _rows_equal(mine_delta, planned_delta)
        untouched = same.all(axis=1)

        def converted(j: int, where: npt.NDArray[np.intp] | None = None) -> F32:
            relative = relatives[0] if relative_is_basis else relatives[j]
            if where is None:
                return to_nvf(positions[j] - relative, self.scale, self.axes)
            return to_nvf(positions[j][where] - relative[where], self.scale, self.axes)

        identity_keys, divisors = self._reconstruction_keys(names)
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

        v_count = self.v_count
        eigen = np.asarray(mode_eigen, dtype=np.float32)
        if (original is not None and mode_sources == list(range(original.mode_count))
                and np.array_equal(eigen, original.shape.eigenvalues, equal_nan=True)):
            mode_array, eigen = original.shape.modes, original.shape.eigenvalues
        else:
            self.changed()
            mode_array = (np.stack(modes).astype(np.float32) if modes
                          else np.zeros((0, v_count, 3), np.float32))
        blend: BlendShapes | None = None
        original_blend = original.blend_shapes if original is not None else None
        if (original_blend is not None and blend_sources == list(range(len(original_blend.names)))
                and blend_names == list(original_blend.names)):
            blend = original_blend
        elif blend_names:
            self.changed()
            blend = BlendShapes(names=blend_names, deltas=np.stack(blend_deltas).astype(np.float32))
        elif original_blend is not None:
            self.changed()
        return mode_array, eigen, blend

    def _reconstruction_keys(self, names: list[str]) -> tuple[list[bool], list[float]]:
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
        if not has_id_property(self.obj, tddfa.PROP_MARKER):
            return [False] * count, [1.0] * count
        scales = as_array(id_property(self.obj, tddfa.PROP_KEY_SCALES, [])).astype(np.float64).ravel()
        split = id_property(self.obj, tddfa.PROP_SPLIT, None)
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
        return identity, divisors

    def _eigenvalues_kept(self) -> bool:
        assert self.original is not None
        value = id_property(self.mesh, PROP_EIGENVALUES)
        if value is None:
            return False
        return np.array_equal(as_array(value).astype(np.float32), self.original.shape.eigenvalues,
                              equal_nan=True)

    # vertex groups ---------------------------------------------------------------------

    def read_groups(self) -> None:
        names, members = mesh_reader.read_vertex_groups(self.obj, self.mesh)
        self.groups = list(zip(names, members))
        planned = self.plan.groups if (self.plan is not None and self.same_vertices) else []
        self.mine_by_kind = _groups_by_kind(self.groups)
        self.planned_by_kind = _groups_by_kind(planned)

    def _same_groups(self, kind: str) -> bool:
        """Whether the groups of one kind ("IBUG", "NVLM", "MCTR", "PART") are
        exactly the ones the import made (in any order)."""
        mine = self.mine_by_kind.get(kind, {})
        theirs = self.planned_by_kind.get(kind, {})
        if mine.keys() != theirs.keys():
            return False
        if not mine:
            return True
        order = list(theirs)
        if [mine[n].size for n in order] != [theirs[n].size for n in order]:
            return False
        # One comparison of all members instead of one per group.
        return np.array_equal(np.concatenate([mine[n] for n in order]),
                              np.concatenate([theirs[n] for n in order]))

    def _contour_prop(self, key: tuple[str, str], fallback: U16 | None) -> U16 | None:
        value = id_property(self.mesh, PROP_CONTOURS[key])
        if value is None:
            return None
        values = as_array(value).astype(np.int64).ravel()
        if values.size and (values.min() < 0 or values.max() > 0xFFFF):
            raise NvfBridgeError(f"the mesh property '{PROP_CONTOURS[key]}' holds landmark numbers "
                                 f"outside 0..65535")
        array = values.astype(np.uint16)
        if fallback is not None and np.array_equal(array, fallback):
            return fallback
        return array

    def landmarks(self, prefix: str) -> LandmarkSet | None:
        original = self.original
        original_set: LandmarkSet | None = None
        if original is not None:
            original_set = original.ibug if prefix == "IBUG" else original.nvlm
        if original_set is not None and self.same_vertices and not self.import_options.landmarks:
            return original_set
        entries: list[tuple[int, I64]] = []
        for name, members in self.mine_by_kind.get(prefix, {}).items():
            match = LANDMARK_GROUP_PATTERN.match(name)
            if match:
                number = int(match.group(2))
                if number > 0xFFFF:
                    raise NvfBridgeError(f"vertex group '{name}': landmark numbers go up to 65535")
                entries.append((number, members))
        right = self._contour_prop((prefix, "R"), original_set.right_contour if original_set else None)
        left = self._contour_prop((prefix, "L"), original_set.left_contour if original_set else None)
        if original_set is not None and self.same_vertices and self._same_groups(prefix):
            if right is original_set.right_contour and left is original_set.left_contour:
                return original_set
            self.changed()
            return LandmarkSet(pairs=original_set.pairs, right_contour=right, left_contour=left)
        if not entries and right is None and left is None:
            if original_set is not None:
                self.changed()
            return None
        self.changed()
        entries.sort(key=lambda e: e[0])
        pairs = [np.stack([np.full(m.size, n, np.int64), m], axis=1) for n, m in entries if m.size]
        table = np.concatenate(pairs).astype(np.uint16) if pairs else np.zeros((0, 2), np.uint16)
        return LandmarkSet(pairs=table, right_contour=right, left_contour=left)

    def model_contours(self) -> Contours | None:
        original = self.original.model_contours if self.original is not None else None
        if original is not None and self.same_vertices and not self.import_options.landmarks:
            return original
        if original is not None and self.same_vertices and self._same_groups("MCTR"):
            return original
        sides: dict[str, list[tuple[int, I64]]] = {"R": [], "L": []}
        for name, members in self.mine_by_kind.get("MCTR", {}).items():
            match = CONTOUR_GROUP_PATTERN.match(name)
            if match:
                sides[match.group(1)].append((int(match.group(2)), members))
        if not sides["R"] and not sides["L"]:
            if original is not None:
                self.changed()
            return None
        self.changed()
        def line(points: list[tuple[int, I64]]) -> U16 | None:
            if not points:
                return None
            points.sort(key=lambda e: e[0])
            return np.concatenate([m for _, m in points] + [np.zeros(0, np.int64)]).astype(np.uint16)
        return Contours(right=line(sides["R"]), left=line(sides["L"]))

    # partitions -------------------------------------------------------------------------

    def partitions(self) -> tuple[U16, list[Partition] | None]:
        """The triangles in file order and the partitions over them."""
        original, plan = self.original, self.plan
        tris = self.tris
        mesh = self.mesh
        slot_names = [material_nvf_name(m) for m in mesh.materials]
        poly_slots = mesh_reader.read_material_indices(mesh)
        face_attr = mesh_reader.read_face_ints(mesh, PARTITION_ATTRIBUTE)
        part_groups = list(self.mine_by_kind.get("PART", {}).items())
        same_tris = (original is not None and self.same_vertices
                     and tris.shape == original.shape.triangles.shape
                     and np.array_equal(tris, original.shape.triangles))
        if original is not None and same_tris:
            if not part_groups and not slot_names and (
                    original.partitions is None or not self.import_options.partitions):
                return original.shape.triangles, original.partitions
            if (plan is not None and plan.face_slots is not None and slot_names == plan.materials
                    and np.array_equal(poly_slots, plan.face_slots)
                    and face_attr is not None and plan.face_partitions is not None
                    and np.array_equal(face_attr, plan.face_partitions)
                    and self._same_groups("PART")):
                return original.shape.triangles, original.partitions
        self.changed()
        t_count = tris.shape[0]
        slot_count = len(slot_names)
        tri_slots = (np.clip(poly_slots[self.tri_poly], 0, slot_count - 1) if slot_count
                     else np.full(t_count, -1, np.int32))

        # Partition groups ordered by their number (unnumbered ones after, in group order).
        parsed: list[tuple[int, int, int | None, str | None, I64, str]] = []
        for position, (group_name, members) in enumerate(part_groups):
            match = PARTITION_GROUP_PATTERN.match(group_name)
            assert match is not None
            digits = match.group(1)
            number = int(digits) if digits is not None and len(digits) <= 9 else None
            label = match.group(2) if digits is not None else match.group(3)
            parsed.append((number if number is not None else 1 << 40, position, number, label or None, members,
                           group_name))
        parsed.sort(key=lambda p: (p[0], p[1]))
        g_count = len(parsed)
        chosen = np.full(t_count, g_count, dtype=np.int64)     # g_count = no group
        if g_count:
            inside = np.zeros((g_count, t_count), dtype=bool)
            for g, item in enumerate(parsed):
                mask = np.zeros(self.v_count, dtype=bool)
                mask[item[4]] = True
                corners = mask[tris]
                inside[g] = corners[:, 0] & corners[:, 1] & corners[:, 2]
            any_group = inside.any(axis=0)
            chosen = np.where(any_group, inside.argmax(axis=0), g_count)
            if face_attr is not None:
                # Where several groups hold all three corners (partitions share
                # border vertices), the partition the face had at import decides.
                remembered = face_attr[self.tri_poly].astype(np.int64)
                owner = self._partition_owners(parsed)
                valid = (remembered >= 0) & (remembered < owner.size)
                preferred = np.where(valid, owner[np.clip(remembered, 0, max(owner.size - 1, 0))]
                                     if owner.size else -1, -1)
                ok = preferred >= 0
                ok[ok] = inside[preferred[ok], np.flatnonzero(ok)]
                chosen = np.where(ok, preferred, chosen)
        if g_count == 0 and slot_count == 0:
            return tris.astype(np.uint16), None
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
                number, name = parsed[g][2], parsed[g][3]
                if number is not None and original_parts is not None and number < len(original_parts):
                    smoothing = original_parts[number].smoothing_group
            else:
                name = material
            result.append(Partition(index=i, face_start=start, face_count=count, vertex_start=3 * start,
                                    vertex_count=3 * count, smoothing_group=smoothing,
                                    name=name, material=material))
        return tris[order].astype(np.uint16), result

    def _partition_owners(self, parsed: list[tuple[int, int, int | None, str | None, I64, str]]) -> I64:
        """For each partition number stored in `nvf_partition`, the index (in
        `parsed`) of the PART group that is that partition now, -1 if none.

        A group is recognised by its members (exactly the import's: renaming or
        renumbering a group keeps it), else by its imported name, else by its
        number; for meshes not imported from .nvf, by number.
        """
        planned = [(name, members) for name, members in self.planned_by_kind.get("PART", {}).items()]
        if planned:
            by_members: dict[bytes, int] = {}
            for g, item in enumerate(parsed):
                by_members.setdefault(item[4].tobytes(), g)
            by_name = {item[5]: g for g, item in enumerate(parsed)}
            by_number = {item[2]: g for g, item in enumerate(parsed) if item[2] is not None}
            owners = []
            for i, (name, members) in enumerate(planned):
                owners.append(by_members.get(members.tobytes(), by_name.get(name, by_number.get(i, -1))))
            return np.asarray(owners, dtype=np.int64)
        numbers = [item[2] for item in parsed if item[2] is not None and item[2] < 1 << 20]
        owner = np.full(max(numbers, default=-1) + 1, -1, dtype=np.int64)
        for g, item in enumerate(parsed):
            if item[2] is not None and item[2] < owner.size and owner[item[2]] < 0:
                owner[item[2]] = g
        return owner

    # surface attributes ------------------------------------------------------------------

    def texcoords(self) -> F32 | None:
        original = self.original.texcoords if self.original is not None else None
        mesh = self.mesh
        layer = lookup(mesh.uv_layers, UV_MAP_NAME) or mesh.uv_layers.active
        uv = mesh_reader.read_uv_map(mesh, layer.name) if layer is not None else None
        if layer is None or uv is None:
            if original is not None:
                self.changed()
            return None
        corners = mesh_reader.read_corner_vertices(mesh)
        if original is not None and self.same_vertices and np.array_equal(
                uv, np.asarray(original, np.float32)[corners]):
            return original
        self.changed()
        per_vertex = (np.array(original, dtype=np.float32) if original is not None and self.same_vertices
                      else np.zeros((self.v_count, 2), np.float32))
        unique, first = np.unique(corners, return_index=True)
        per_vertex[unique] = uv[first]
        if not np.array_equal(per_vertex[corners], uv):
            self.warnings.append(
                f"UV map '{layer.name}' "
                f"has seams (a vertex with different UVs on different faces); .nvf stores one UV per "
                f"vertex, so each vertex got the UV of its first face corner")
        return per_vertex

    def color(self) -> LinearModel | None:
        original = self.original.color if self.original is not None else None
        colors = mesh_reader.read_point_colors(self.mesh, COLOR_ATTRIBUTE)
        if colors is None:
            if original is not None:
                self.changed()
                self.warnings.append(f"the colour attribute '{COLOR_ATTRIBUTE}' was removed, so the "
                                     f"file's colour model was left out")
            return None
        rgb = np.ascontiguousarray(colors[:, :3])
        if original is not None and self.same_vertices:
            same = _rows_equal(rgb, original.mean)
            if bool(same.all()):
                return original
            self.changed()
            mean = np.where(same[:, None], original.mean, rgb).astype(np.float32)
            return LinearModel(mean=mean, modes=original.modes, eigenvalues=original.eigenvalues,
                               triangles=original.triangles)
        self.changed()
        if original is not None and original.modes.shape[0]:
            self.warnings.append("the vertex count changed, so the colour model's modes were left out "
                                 "(only its mean, from the colour attribute, is written)")
        return LinearModel(mean=rgb.astype(np.float32), modes=np.zeros((0, self.v_count, 3), np.float32),
                           eigenvalues=np.zeros(0, np.float32), triangles=np.zeros((0, 3), np.uint16))

    # all together ---------------------------------------------------------------------------

    def build(self) -> ExportResult:
        self.read_geometry()
        self.read_groups()
        mean = self.mean()
        modes, eigenvalues, blend = self.shape_keys()
        triangles, partitions = self.partitions()
        original = self.original
        same_tris = original is not None and triangles is original.shape.triangles
        if not same_tris:
            _check_manifold(triangles, self.obj.name)
            self.changed()
        topology: Topology | None
        if same_tris and original is not None and original.topology is not None:
            topology = original.topology
        else:
            try:
                topology = build_topology(triangles)
            except NvfError as exc:
                raise NvfBridgeError(f"'{self.obj.name}': {exc}") from exc
        shape = LinearModel(mean=mean, modes=modes, eigenvalues=eigenvalues, triangles=triangles)
        if (original is not None and mean is original.shape.mean and modes is original.shape.modes
                and eigenvalues is original.shape.eigenvalues and same_tris):
            shape = original.shape
        model = FaceModel(
            shape=shape, color=self.color(), texcoords=self.texcoords(),
            ibug=self.landmarks("IBUG"), blend_shapes=blend, model_contours=self.model_contours(),
            topology=topology, nvlm=self.landmarks("NVLM"), partitions=partitions,
            unknown_chunks=list(original.unknown_chunks) if original is not None else [],
            toc=original.toc if original is not None else None,
            source_layout=original.source_layout if original is not None else None)
        names = set(blend.names) if blend is not None else set()
        missing = [name for name in MAXINE_EXPRESSIONS if name not in names]
        if missing:
            self.warnings.append(
                f"{len(missing)} of Maxine's {len(MAXINE_EXPRESSIONS)} expression blend shapes are "
                f"missing ({', '.join(missing)}): Maxine's expression tracker cannot drive this model "
                f"fully. Add shape keys with these names to fix it")
        if self.unchanged and self.source is not None:
            # The original bytes, unless NVIDIA's reader cannot take them as they are (e.g. a
            # BSIS chunk of 0 modes, written by older tools): then they are encoded again.
            problems = maxine_problems(self.source)
            if not problems:
                return ExportResult(data=self.source, model=None, warnings=self.warnings, unchanged=True)
            self.warnings.append(
                f"the original file could not be read by NVIDIA's Maxine reader as it was "
                f"({'; '.join(problems)}), so it was written again in a form Maxine reads")
        model = self._maxine_ready(model)
        try:
            data = to_bytes(model)
        except NvfError as exc:
            raise NvfBridgeError(f"'{self.obj.name}' cannot be written as .nvf: {exc}") from exc
        return ExportResult(data=data, model=model, warnings=self.warnings, unchanged=False)

    def _maxine_ready(self, model: FaceModel) -> FaceModel:
        """`model` as NVIDIA's Maxine reader can read it (io_nv3dmm.maxine_problems).

        Unknown chunks kept from the original file where NVIDIA's reader stops (at
        the top level, or inside PRTS before a PART) are left out, with a warning;
        anything else it cannot read is an error that says what to change, so the
        exporter never writes a file Maxine cannot load.
        """
        problems = maxine_problems(model)
        if not problems:
            return model
        part_count = len(model.partitions or [])
        blocking = [u for u in model.unknown_chunks
                    if u.parent == "" or (u.parent == "PRTS" and u.position < part_count)]
        if blocking:
            kept = [u for u in model.unknown_chunks if all(u is not b for b in blocking)]
            candidate = replace(model, unknown_chunks=kept)
            remaining = maxine_problems(candidate)
            if len(remaining) < len(problems):
                self.warnings.append(
                    f"{len(blocking)} unknown chunk(s) of the original file ("
                    f"{', '.join(repr(u.tag) for u in blocking)}) were left out: NVIDIA's Maxine reader "
                    f"stops at unknown chunks there")
                model, problems = candidate, remaining
        if not problems:
            return model
        hints = []
        if any("IBUG" in problem for problem in problems):
            hints.append(f"the iBUG contours are the mesh properties '{PROP_CONTOURS[('IBUG', 'R')]}' and "
                         f"'{PROP_CONTOURS[('IBUG', 'L')]}': give each at most 8 landmark numbers, or "
                         f"delete an empty one")
        raise NvfBridgeError(
            f"'{self.obj.name}' cannot be exported as a file NVIDIA's Maxine reader reads: "
            + "; ".join(problems) + ("" if not hints else ". To fix it: " + "; ".join(hints)))


def _bits(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """float32 values as their bit patterns (NaN payloads included)."""
    return a.view(np.uint32) if a.dtype == np.float32 else a


def _same(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Element-wise: equal as floats (so -0.0 == 0.0, as Blender may turn one into
    the other without an edit) or bit-identical (so an unedited NaN, which never
    equals itself, is not an edit)."""
    a, b = np.asarray(a), np.asarray(b)
    equal: npt.NDArray[np.bool_] = np.asarray(a == b)
    if a.dtype.kind == "f" and not equal.all():
        equal |= _bits(a) == _bits(b)
    return equal


def _all_same(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> bool:
    """`_same` for every element (the bit comparison only when the float one fails)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    return bool(np.array_equal(a, b) or (a.dtype.kind == "f" and np.array_equal(_bits(a), _bits(b))))


def _rows_equal(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Per (x, y, z) row: all three components the same (see `_same`). (numpy's
    all(axis=-1) over a length-3 axis is ~7x slower than three element-wise ands.)"""
    equal = _same(a, b)
    result: npt.NDArray[np.bool_] = equal[..., 0] & equal[..., 1] & equal[..., 2]
    return result


def _groups_by_kind(groups: list[tuple[str, I64]]) -> dict[str, dict[str, I64]]:
    """Vertex groups sorted by the convention: "IBUG", "NVLM", "MCTR", "PART" (others dropped)."""
    result: dict[str, dict[str, I64]] = {}
    for name, members in groups:
        landmark = LANDMARK_GROUP_PATTERN.match(name)
        if landmark:
            kind = landmark.group(1)
        elif CONTOUR_GROUP_PATTERN.match(name):
            kind = "MCTR"
        elif PARTITION_GROUP_PATTERN.match(name):
            kind = "PART"
        else:
            continue
        result.setdefault(kind, {})[name] = members
    return result


def _check_manifold(triangles: npt.NDArray[Any], name: str) -> None:
    tris = np.asarray(triangles, dtype=np.int64)
    edges = np.stack([tris, tris[:, [1, 2, 0]]], axis=2).reshape(-1, 2)
    edges.sort(axis=1)
    keys = (edges[:, 0] << 32) | edges[:, 1]
    unique, counts = np.unique(keys, return_counts=True)
    bad = unique[counts > 2]
    if bad.size:
        a, b = int(bad[0] >> 32), int(bad[0] & 0xFFFFFFFF)
        raise NvfBridgeError(
            f"'{name}' is non-manifold: {bad.size} edge(s) are shared by more than two faces "
            f"(e.g. between vertices {a} and {b}); the .nvf edge table holds two faces per edge. "
            f"Find them with Select > Select All by Trait > Non Manifold")


def build_export(obj: Object, options: ExportOptions | None = None) -> ExportResult:
    """The .nvf bytes for a mesh object, with warnings (nothing is written)."""
    import bpy

    obj = _resolve_object(obj)
    mesh = object_mesh(obj)
    if not mesh.is_editmode:
        return _Exporter(obj, mesh, options or ExportOptions()).build()
    # In Edit Mode, Mesh.attributes show the edit-mesh layers, which have no bulk
    # access: flush the edits and read a plain copy (removed again, with its keys).
    obj.update_from_editmode()
    copy = mesh.copy()
    try:
        return _Exporter(obj, copy, options or ExportOptions()).build()
    finally:
        bpy.data.meshes.remove(copy)


__all__ = ["ExportOptions", "ExportResult", "build_export", "export_nvf"]
