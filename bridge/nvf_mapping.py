# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""How an .nvf `FaceModel` maps onto Blender data, and back (no bpy here).

Both directions share this module so that the exporter can recompute, from
the original file kept on the mesh, exactly what the importer produced, and
compare it with what is in Blender now: whatever still matches is written
with the original values (byte-identical), whatever differs was edited.

Naming convention (what the importer creates and the exporter reads):

shape keys
    ``Basis``: the mean shape (the reference key).
    ``PCA.000``, ``PCA.001``, ...: one key per shape mode (``PCA.<number>``,
    the number is the mode's index in the file and picks its eigenvalue).
    Any other key: a named blend shape, the key's name is the shape's name.
vertex groups
    ``IBUG.031``: the vertices of iBUG-68 landmark 31 (1-based, as in the file).
    ``NVLM.031``: the vertices of NVIDIA 126-point landmark 31.
    ``MCTR.R.00``, ``MCTR.L.00``, ...: the model's right / left face contour,
    one group per contour point, in contour order (ear to chin).
    ``PART.000.Face``: the vertices of partition 0 (named "Face"); the number
    orders partitions on export, the text after it is the partition's name.
    The import lists the PART groups first, then IBUG, NVLM, MCTR; the
    exporter reads groups by name, in any order.
materials
    One slot per distinct partition material; a material's .nvf name is its
    ``nvf_material`` property (kept when Blender adds a ".001" suffix), else
    its Blender name. An empty slot means "no material".

Coordinates: NVIDIA's space is centimetres, +Y up, +Z out of the nose.
With the default options a point maps to Blender as (x, y, z) -> (x, -z, y) *
0.01 (metres, +Z up, the face looking down -Y, Blender's front view); a
proper rotation, so triangle winding (counter-clockwise from outside) is kept.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..io_nv3dmm import FaceModel, LandmarkSet
from .bpy_typed import id_property

if TYPE_CHECKING:
    from bpy.types import Material

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

BASIS_NAME = "Basis"
MODE_KEY = "PCA.{:03d}"
MODE_KEY_PATTERN = re.compile(r"^PCA\.(\d+)$")
IBUG_GROUP = "IBUG.{:03d}"
NVLM_GROUP = "NVLM.{:03d}"
LANDMARK_GROUP_PATTERN = re.compile(r"^(IBUG|NVLM)\.(\d+)$")
CONTOUR_GROUP = "MCTR.{side}.{:02d}"
CONTOUR_GROUP_PATTERN = re.compile(r"^MCTR\.([RL])\.(\d+)$")
PARTITION_GROUP_PATTERN = re.compile(r"^PART\.(?:(\d+)(?:\.(.*))?|(.+))$")
UV_MAP_NAME = "UVMap"
COLOR_ATTRIBUTE = "nvf_color"
PARTITION_ATTRIBUTE = "nvf_partition"

#: Custom properties on the Mesh (ID properties survive .blend save/reload).
PROP_SOURCE = "nvf_source"              # the original file's bytes
PROP_SOURCE_NAME = "nvf_source_name"    # its file name, for messages
PROP_IMPORT = "nvf_import"              # the ImportOptions used (a group)
PROP_EIGENVALUES = "nvf_eigenvalues"    # float per shape mode
PROP_CONTOURS = {                       # landmark-number contours of IBUG / NVLM
    ("IBUG", "R"): "nvf_ibug_right_contour", ("IBUG", "L"): "nvf_ibug_left_contour",
    ("NVLM", "R"): "nvf_nvlm_right_contour", ("NVLM", "L"): "nvf_nvlm_left_contour",
}
#: Custom property on a Material: its name in the .nvf file.
PROP_MATERIAL = "nvf_material"

MODE_SLIDER = (-10.0, 10.0)
BLEND_SLIDER = (0.0, 1.0)

#: Blender names hold at most 63 bytes of UTF-8.
_MAX_NAME_BYTES = 63


#: Most vertex groups an import creates (a real model needs about 200).
MAX_VERTEX_GROUPS = 4096


class NvfBridgeError(Exception):
    """A Blender-side problem importing or exporting .nvf (message is for the user)."""


@dataclass
class ImportOptions:
    """What `import_nvf` creates and how it converts coordinates.

    scale: centimetres -> Blender units (0.01: metres). convert_axes: +Y up ->
    +Z up ((x, y, z) -> (x, -z, y)). The other flags switch parts off; a part
    that was not imported is carried over unchanged from the original file on
    export.
    """

    scale: float = 0.01
    convert_axes: bool = True
    shape_keys: bool = True
    landmarks: bool = True
    partitions: bool = True
    mtl_colors: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"scale": float(self.scale), "convert_axes": bool(self.convert_axes),
                "shape_keys": bool(self.shape_keys), "landmarks": bool(self.landmarks),
                "partitions": bool(self.partitions), "mtl_colors": bool(self.mtl_colors)}

    @classmethod
    def from_dict(cls, values: Any) -> "ImportOptions":
        # `values`: the options as stored in a custom property (whatever a script left there).
        defaults = cls()
        def get(key: str, default: Any) -> Any:
            try:
                return values[key]
            except (KeyError, TypeError, IndexError):
                return default
        return cls(scale=float(get("scale", defaults.scale)),
                   convert_axes=bool(get("convert_axes", defaults.convert_axes)),
                   shape_keys=bool(get("shape_keys", True)), landmarks=bool(get("landmarks", True)),
                   partitions=bool(get("partitions", True)), mtl_colors=bool(get("mtl_colors", True)))


# --- coordinates ----------------------------------------------------------------


def to_blender(points: npt.ArrayLike, scale: float, convert_axes: bool) -> F32:
    """NVIDIA model space -> Blender, float32; works on (..., 3) arrays.

    The axis swap and sign are exact; only the scale rounds, the same way every
    time, so import and the exporter's comparison agree bit for bit.
    """
    p = np.asarray(points, dtype=np.float32)
    return offsets_to_blender(p.reshape(1, -1, 3), None, scale, convert_axes).reshape(p.shape)


def offsets_to_blender(offsets: npt.NDArray[np.float32], base: npt.NDArray[np.float32] | None,
                       scale: float, convert_axes: bool, out: F32 | None = None) -> F32:
    """(K, V, 3) NVIDIA offsets (+ base (V, 3), rounded to float32 first) -> Blender.

    Every output is one float32 source value (offset + base) times +-scale,
    rounded once, so the exporter's comparison with a fresh conversion is exact.
    Done in place in `out` (C-contiguous float32, may be a slice of a larger
    buffer) as three passes over memory: the add, the scale (contiguous, one
    scalar) and the axis swap. The swap (y, z) -> (-z, y) is a multiplication of
    each (y, z) pair, viewed as one complex64 number y + iz, by i: the products
    with 0 and 1 are exact, so it moves values and flips a sign without rounding
    (measured 2-3x faster than a (3, 3) matrix product or column copies).
    Arrays with non-finite values (inf * 0 would give NaN) take a column-copy path.
    """
    if out is None:
        out = np.empty(offsets.shape, dtype=np.float32)
    if not out.flags.c_contiguous or out.dtype != np.float32 or out.shape[-1:] != (3,):
        raise ValueError("the output must be a C-contiguous float32 (..., 3) array")
    if base is None:
        np.copyto(out, offsets, casting="same_kind")
    else:
        np.add(offsets, base, out=out, dtype=np.float32)
    flat = out.reshape(-1)
    # max/min propagate NaN and show +-inf: two fast reductions, no temporary.
    finite = flat.size == 0 or bool(np.isfinite(flat.max()) and np.isfinite(flat.min()))
    np.multiply(flat, np.float32(scale), out=flat)
    if not convert_axes or flat.size == 0:
        return out
    rows = flat.size // 3
    if finite:
        pairs: npt.NDArray[np.complex64] = np.ndarray(shape=(rows,), dtype=np.complex64, buffer=out,
                                                      offset=4, strides=(12,))
        np.multiply(pairs, np.complex64(1j), out=pairs)
        return out
    columns = flat.reshape(rows, 3)
    y = columns[:, 1].copy()
    np.negative(columns[:, 2], out=columns[:, 1])
    columns[:, 2] = y
    return out


def to_nvf(points: npt.ArrayLike, scale: float, convert_axes: bool) -> F32:
    """Blender -> NVIDIA model space (the exact inverse map, computed in float64)."""
    p = np.asarray(points, dtype=np.float64)
    if convert_axes:
        out = p[..., [0, 2, 1]] * np.array([1.0, 1.0, -1.0])
    else:
        out = p.copy()
    out /= float(np.float32(scale))
    return np.ascontiguousarray(out, dtype=np.float32)


# --- names ----------------------------------------------------------------------


def blender_name(name: str) -> str:
    """`name` as Blender stores it: at most 63 bytes of UTF-8, cut on a character."""
    data = name.encode("utf-8")
    if len(data) <= _MAX_NAME_BYTES:
        return name
    return data[:_MAX_NAME_BYTES].decode("utf-8", errors="ignore")


def unique_names(names: list[str], taken: set[str] | None = None) -> list[str]:
    """Blender-style de-duplication ("x", "x.001", ...) of names in order."""
    if (len(set(names)) == len(names) and not (taken and taken.intersection(names))
            and all(len(name) <= _MAX_NAME_BYTES // 4 or len(name.encode("utf-8")) <= _MAX_NAME_BYTES
                    for name in names)):
        return list(names)      # the common case: distinct and short enough (<= 4 bytes per char)
    used = set(taken or ())
    result: list[str] = []
    for name in names:
        base = blender_name(name)
        candidate = base
        number = 0
        while candidate in used:
            number += 1
            suffix = f".{number:03d}"
            candidate = blender_name(base[:max(0, _MAX_NAME_BYTES - len(suffix))]) + suffix
            if len(candidate.encode("utf-8")) > _MAX_NAME_BYTES:
                candidate = base.encode("utf-8")[:_MAX_NAME_BYTES - len(suffix)].decode(
                    "utf-8", errors="ignore") + suffix
        used.add(candidate)
        result.append(candidate)
    return result


def blend_shape_key_name(name: str, index: int) -> str:
    """The shape-key name of blend shape `index`; collisions with the convention get a prefix."""
    if not name:
        return f"BLND.{index:03d}"
    if MODE_KEY_PATTERN.match(name) or name == BASIS_NAME:
        return f"BLND.{name}"
    return name


def partition_label(index: int, name: str | None, material: str | None) -> str:
    label = name if name else (material or "")
    return f"PART.{index:03d}.{label}" if label else f"PART.{index:03d}"


def material_nvf_name(material: Material | None) -> str | None:
    """The .nvf material name of a Blender material (None for an empty slot)."""
    if material is None:
        return None
    original = id_property(material, PROP_MATERIAL)
    name = str(material.name)
    if isinstance(original, str) and original:
        stored = blender_name(original)
        # Blender appends ".001" when the name is taken (truncating a long one).
        base = re.sub(r"\.\d{3}$", "", name)
        if name == stored or base == stored or (base and len(name.encode("utf-8")) >= 60
                                                 and stored.startswith(base)):
            return original
    return name


# --- what the importer creates ---------------------------------------------------


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


# --- the .mtl companion -------------------------------------------------------------


class NotRegularFileError(OSError):
    """The path names something other than a regular file (a FIFO, device, socket
    or folder), which an import never reads: a FIFO would block forever."""


#: The largest .mtl companion read (real ones are a few hundred bytes).
MAX_MTL_BYTES = 1 << 20


def _kind_of(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def read_regular_file(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file at `path` (symlinks followed).

    Anything else (FIFO, device, socket, folder) raises NotRegularFileError
    without reading, and never blocks: the file is opened non-blocking (a FIFO
    with no writer would otherwise hang `open` itself) and checked with fstat
    on the open descriptor, so a file swapped for a FIFO after a stat cannot
    slip through. `limit`: a larger file raises OSError(EFBIG) unread.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFileError(f"{os.fspath(path)!s} is {_kind_of(info.st_mode)}, not a regular file")
        if limit is not None and info.st_size > limit:
            import errno
            raise OSError(errno.EFBIG, f"larger than {limit:,} bytes ({info.st_size:,})")
        with os.fdopen(fd, "rb", closefd=True) as stream:
            fd = -1
            return stream.read()
    finally:
        if fd >= 0:
            os.close(fd)


def read_mtl_colors(nvf_path: str | Path) -> dict[str, tuple[float, float, float]]:
    """`Kd` colours by material name from the .mtl with the .nvf's base name (if any).

    A missing, unreadable, oversized or non-regular file (a FIFO would block
    forever) gives {}; unreadable lines are skipped (the .mtl is a hint, never
    a reason to fail an import).
    """
    path = Path(nvf_path).with_suffix(".mtl")
    try:
        text = read_regular_file(path, MAX_MTL_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return {}
    colors: dict[str, tuple[float, float, float]] = {}
    current: str | None = None
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "newmtl" and len(parts) >= 2:
            current = line.strip()[len("newmtl"):].strip()
        elif parts[0] == "Kd" and current is not None and len(parts) >= 4:
            try:
                rgb = tuple(min(1.0, max(0.0, float(v))) for v in parts[1:4])
            except ValueError:
                continue
            colors[current] = (rgb[0], rgb[1], rgb[2])
    return colors
