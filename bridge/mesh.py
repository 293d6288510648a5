# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one place that builds and reads Blender mesh data in bulk.

Import (.nvf) and reconstruction (3DDFA-V3) both build their meshes here; the
exporter reads them back here. Every array crosses the Python/C boundary in
one `foreach_set` / `foreach_get` call (float32 / int32, C-contiguous, the
buffers Blender copies without converting element by element); nothing loops
over vertices in Python except `read_vertex_groups`, where Blender offers no
bulk accessor (see there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from .bpy_typed import lookup, object_mesh, required, typed_attribute

if TYPE_CHECKING:
    # bpy is imported where it is used, so that this module loads without it.
    from bpy.types import Key, Material, Mesh, Object

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]

#: Blender clamps shape-key slider ranges to [-10, 10].
SLIDER_LIMIT = 10.0


def _f32(values: npt.ArrayLike, columns: int | None = None) -> F32:
    array = np.ascontiguousarray(values, dtype=np.float32)
    if columns is not None and (array.ndim != 2 or array.shape[1] != columns):
        raise ValueError(f"expected an (N, {columns}) array, got shape {array.shape}")
    return array


def build_mesh(name: str, positions: npt.ArrayLike, triangles: npt.ArrayLike) -> Mesh:
    """A new Mesh datablock from (V, 3) positions and (T, 3) triangles (0-based).

    Uses the generic attribute fast paths (`position`, `.corner_vert`): about
    3x faster than MeshVertex/MeshLoop `foreach_set` and 10x faster than
    `from_pydata`. Edges are derived by `update(calc_edges=True)`. The caller
    owns the datablock (and removes it if a later step fails).
    """
    import bpy

    coords = _f32(positions, 3)
    tris = np.asarray(triangles)
    if tris.ndim != 2 or tris.shape[1] != 3:
        raise ValueError(f"triangles must have shape (T, 3), got {tris.shape}")
    v_count, t_count = coords.shape[0], tris.shape[0]
    if t_count and (int(tris.min()) < 0 or int(tris.max()) >= v_count):
        raise ValueError(f"triangle indices must lie in 0..{v_count - 1}")
    mesh = bpy.data.meshes.new(name)
    try:
        mesh.vertices.add(v_count)
        mesh.loops.add(3 * t_count)
        mesh.polygons.add(t_count)
        if v_count:
            # A mesh without vertices has no `position` attribute at all.
            typed_attribute(mesh.attributes["position"], bpy.types.FloatVectorAttribute).data.foreach_set(
                "vector", coords.ravel())
        if t_count:
            mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * t_count, 3, dtype=np.int32))
            typed_attribute(mesh.attributes[".corner_vert"], bpy.types.IntAttribute).data.foreach_set(
                "value", np.ascontiguousarray(tris, dtype=np.int32).ravel())
        mesh.update(calc_edges=True)
    except BaseException:
        bpy.data.meshes.remove(mesh)
        raise
    return mesh


#: Fills `out` ((n, V, 3) float32) with the positions of keys first .. first + n - 1.
KeyFill = Callable[[int, F32], None]

#: Bytes of key positions converted at a time when they come from a `KeyFill`:
#: small enough to stay in the CPU cache between conversion and `foreach_set`.
_KEY_CHUNK_BYTES = 1 << 20


def add_shape_keys(obj_or_mesh: Object | Mesh, names: Sequence[str],
                   positions: npt.ArrayLike | KeyFill, basis_name: str = "Basis",
                   slider_ranges: Sequence[tuple[float, float]] | None = None) -> list[str]:
    """Adds a basis key (the mesh's current positions) and one key per name.

    positions: (K, V, 3) absolute positions, one block per name, or a `KeyFill`
    that writes them a run of keys at a time into a reused buffer (no (K, V, 3)
    array is made). Every new key has value 0 (Blender 5 starts new keys at
    1.0) and, when given, its slider range set BEFORE the value (the value is
    clamped to the range). Returns the names Blender actually gave the keys
    (it renames duplicates, e.g. "x.001").
    """
    import bpy

    mesh = object_mesh(obj_or_mesh) if isinstance(obj_or_mesh, bpy.types.Object) else obj_or_mesh
    v_count = len(mesh.vertices)
    fill: KeyFill | None = None
    data: F32 | None = None
    if callable(positions):
        fill = positions
    else:
        data = _f32(positions)
        if data.ndim != 3 or data.shape[0] != len(names) or data.shape[1:] != (v_count, 3):
            raise ValueError(f"shape-key positions must have shape ({len(names)}, {v_count}, 3), "
                             f"got {data.shape}")
    if slider_ranges is not None and len(slider_ranges) != len(names):
        raise ValueError("one slider range per shape key is needed")
    # Mesh has no shape_key_add; the Object API is the only creator, so a
    # throwaway object carries the calls when we were given a bare mesh.
    holder = obj_or_mesh if isinstance(obj_or_mesh, bpy.types.Object) else None
    temporary = holder is None
    if holder is None:
        holder = bpy.data.objects.new("__nvf_shape_key_holder", mesh)
    given: list[str] = []
    try:
        if mesh.shape_keys is None:
            holder.shape_key_add(name=basis_name, from_mix=False).value = 0.0
        add = holder.shape_key_add
        chunk = max(1, min(len(names), _KEY_CHUNK_BYTES // max(1, 12 * v_count)))
        buffer = np.empty((chunk, v_count, 3), np.float32) if fill is not None else None
        for start in range(0, len(names), chunk):
            count = min(chunk, len(names) - start)
            if fill is not None:
                assert buffer is not None
                part = buffer[:count]
                fill(start, part)
            else:
                assert data is not None
                part = data[start:start + count]
            for i in range(count):
                block = add(name=names[start + i], from_mix=False)
                block.points.foreach_set("co", part[i].ravel())
                given.append(block.name)
        _set_ranges_and_values(required(mesh.shape_keys, f'shape keys on "{mesh.name}"'), len(names),
                               slider_ranges)
    finally:
        if temporary:
            bpy.data.objects.remove(holder)
    return given


def _set_ranges_and_values(key: Key, count: int, slider_ranges: Sequence[tuple[float, float]] | None) -> None:
    """Slider ranges, then value 0, of the last `count` key blocks: one
    `foreach_set` per property over all blocks (the others keep theirs), in
    that order, since a value is clamped to its range."""
    blocks = key.key_blocks
    total = len(blocks)
    first = total - count
    if count == 0:
        return
    if slider_ranges is not None:
        ranges = np.asarray(slider_ranges, dtype=np.float32).reshape(count, 2)
        for column, prop, bound in ((0, "slider_min", -SLIDER_LIMIT), (1, "slider_max", SLIDER_LIMIT)):
            current = np.empty(total, np.float32)
            blocks.foreach_get(prop, current)
            current[first:] = np.maximum(ranges[:, 0], bound) if column == 0 else np.minimum(ranges[:, 1], bound)
            blocks.foreach_set(prop, current)
    values = np.empty(total, np.float32)
    blocks.foreach_get("value", values)
    values[first:] = 0.0
    blocks.foreach_set("value", values)
    # foreach_set does not tag Blender's update as attribute assignment does.
    key.update_tag()


def set_vertex_groups(obj: Object, groups: Mapping[str, npt.ArrayLike] | Iterable[tuple[str, npt.ArrayLike]],
                      weight: float = 1.0) -> list[str]:
    """Creates one vertex group per (name, vertex indices), all with `weight`.

    One `VertexGroup.add` call per group (it takes a whole index list), never
    one per vertex. Returns the names Blender gave the groups (duplicates get
    ".001"-style suffixes).
    """
    items = groups.items() if isinstance(groups, Mapping) else groups
    given: list[str] = []
    new = obj.vertex_groups.new
    for name, indices in items:
        group = new(name=name)
        array = indices if isinstance(indices, np.ndarray) and indices.dtype.kind in "iu" else \
            np.asarray(indices, dtype=np.int64)
        index_list = array.ravel().tolist()
        if index_list:
            group.add(index_list, weight, 'REPLACE')
        given.append(group.name)
    return given


def set_uv_map(mesh: Mesh, name: str, uv: npt.ArrayLike) -> None:
    """A UV map from per-vertex (V, 2) coordinates (spread to every corner)."""
    coords = _f32(uv, 2)
    if coords.shape[0] != len(mesh.vertices):
        raise ValueError(f"expected {len(mesh.vertices)} UV pairs, got {coords.shape[0]}")
    layer = mesh.uv_layers.new(name=name, do_init=False)
    corners = read_corner_vertices(mesh)
    layer.uv.foreach_set("vector", np.ascontiguousarray(coords[corners]).ravel())


def set_point_colors(mesh: Mesh, name: str, colors: npt.ArrayLike) -> None:
    """A float colour attribute on points from (V, 3) RGB or (V, 4) RGBA values."""
    values = np.asarray(colors, dtype=np.float32)
    if values.ndim != 2 or values.shape[0] != len(mesh.vertices) or values.shape[1] not in (3, 4):
        raise ValueError(f"colours must have shape ({len(mesh.vertices)}, 3 or 4), got {values.shape}")
    if values.shape[1] == 3:
        values = np.concatenate([values, np.ones((values.shape[0], 1), np.float32)], axis=1)
    import bpy

    attribute = typed_attribute(mesh.color_attributes.new(name=name, type='FLOAT_COLOR', domain='POINT'),
                                bpy.types.FloatColorAttribute)
    attribute.data.foreach_set("color", np.ascontiguousarray(values).ravel())


def set_face_ints(mesh: Mesh, name: str, values: npt.ArrayLike) -> None:
    """An INT attribute on faces (one value per polygon)."""
    import bpy

    data = np.ascontiguousarray(values, dtype=np.int32).ravel()
    attribute = typed_attribute(mesh.attributes.new(name=name, type='INT', domain='FACE'), bpy.types.IntAttribute)
    attribute.data.foreach_set("value", data)


def set_materials(mesh: Mesh, materials: Sequence[Material | None],
                  face_slots: npt.ArrayLike) -> None:
    """Material slots in order (None = an empty slot) and each face's slot index."""
    import bpy

    slots = np.ascontiguousarray(face_slots, dtype=np.int32).ravel()
    if slots.shape[0] != len(mesh.polygons):
        raise ValueError(f"expected {len(mesh.polygons)} face slot indices, got {slots.shape[0]}")
    for material in materials:
        mesh.materials.append(material)
    # The generic attribute takes the buffer in one copy; `polygons.foreach_set`
    # goes through RNA per face (measured 30x slower on 4,048 faces).
    found = lookup(mesh.attributes, "material_index")
    if found is None:
        found = mesh.attributes.new(name="material_index", type='INT', domain='FACE')
    typed_attribute(found, bpy.types.IntAttribute).data.foreach_set("value", slots)


# --- readers (export) ---------------------------------------------------------


def read_positions(mesh: Mesh) -> F32:
    """(V, 3) float32 vertex positions."""
    import bpy

    out = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    if len(out):      # a mesh without vertices has no `position` attribute
        typed_attribute(mesh.attributes["position"], bpy.types.FloatVectorAttribute).data.foreach_get(
            "vector", out)
    return out.reshape(-1, 3)


def read_corner_vertices(mesh: Mesh) -> I32:
    """(L,) int32 vertex index of every face corner (loop)."""
    import bpy

    out = np.empty(len(mesh.loops), dtype=np.int32)
    if len(out):
        typed_attribute(mesh.attributes[".corner_vert"], bpy.types.IntAttribute).data.foreach_get("value", out)
    return out


def read_triangles(mesh: Mesh) -> tuple[I32, I32]:
    """Triangles (T, 3) int32 and the polygon each came from (T,), winding kept.

    A mesh made only of triangles is read straight from its corners (the
    exact polygon order and first corner); otherwise Blender's loop-triangle
    tessellation is used (a runtime cache; the mesh data is not changed).
    """
    poly_count = len(mesh.polygons)
    if poly_count and len(mesh.loops) == 3 * poly_count:
        # Faces are consecutive corner ranges (Blender >= 4.0 stores only their
        # offsets), so with 3 corners on every face they are the corner list in threes.
        totals = np.empty(poly_count, dtype=np.int32)
        mesh.polygons.foreach_get("loop_total", totals)
        if bool(np.all(totals == 3)):
            return read_corner_vertices(mesh).reshape(-1, 3), np.arange(poly_count, dtype=np.int32)
    mesh.calc_loop_triangles()
    count = len(mesh.loop_triangles)
    tris = np.empty(count * 3, dtype=np.int32)
    polys = np.empty(count, dtype=np.int32)
    if count:
        mesh.loop_triangles.foreach_get("vertices", tris)
        mesh.loop_triangles.foreach_get("polygon_index", polys)
    return tris.reshape(-1, 3), polys


def read_material_indices(mesh: Mesh) -> I32:
    """(P,) int32 material slot index per polygon (the `material_index` attribute;
    all 0 when the mesh has none)."""
    import bpy

    out = np.zeros(len(mesh.polygons), dtype=np.int32)
    attribute = lookup(mesh.attributes, "material_index")
    if isinstance(attribute, bpy.types.IntAttribute) and attribute.domain == 'FACE' and len(out):
        attribute.data.foreach_get("value", out)
    return out


def read_face_ints(mesh: Mesh, name: str) -> I32 | None:
    """An INT face attribute, or None when the mesh has none of that name/type."""
    import bpy

    attribute = lookup(mesh.attributes, name)
    if not isinstance(attribute, bpy.types.IntAttribute) or attribute.domain != 'FACE':
        return None
    out = np.empty(len(mesh.polygons), dtype=np.int32)
    attribute.data.foreach_get("value", out)
    return out


def read_shape_keys(mesh: Mesh) -> tuple[list[str], F32, list[int]]:
    """Names, (K, V, 3) positions and relative-key index of every key block.

    Index 0 is the reference (basis) key. Empty lists/arrays when the mesh has
    no shape keys.
    """
    key = mesh.shape_keys
    v_count = len(mesh.vertices)
    if key is None or len(key.key_blocks) == 0:
        return [], np.empty((0, v_count, 3), np.float32), []
    blocks = key.key_blocks
    names = [block.name for block in blocks]
    index_of = {name: i for i, name in enumerate(names)}
    relative = [index_of.get(block.relative_key.name, 0) for block in blocks]
    data = np.empty((len(blocks), v_count * 3), dtype=np.float32)
    for i, block in enumerate(blocks):
        block.points.foreach_get("co", data[i])
    return names, data.reshape(len(blocks), v_count, 3), relative


def read_uv_map(mesh: Mesh, name: str | None = None) -> F32 | None:
    """(L, 2) float32 UVs per corner of the named (default: active) UV map."""
    layers = mesh.uv_layers
    layer = lookup(layers, name) if name else layers.active
    if layer is None:
        return None
    out = np.empty(len(mesh.loops) * 2, dtype=np.float32)
    if len(out):
        layer.uv.foreach_get("vector", out)
    return out.reshape(-1, 2)


def read_point_colors(mesh: Mesh, name: str) -> F32 | None:
    """(V, 4) float32 RGBA of a point-domain colour attribute, or None."""
    import bpy

    attribute = lookup(mesh.color_attributes, name)
    if not isinstance(attribute, (bpy.types.FloatColorAttribute, bpy.types.ByteColorAttribute)) \
            or attribute.domain != 'POINT':
        return None
    out = np.empty(len(mesh.vertices) * 4, dtype=np.float32)
    attribute.data.foreach_get("color", out)
    return out.reshape(-1, 4)


def read_vertex_groups(obj: Object, mesh: Mesh | None = None) -> tuple[list[str], list[npt.NDArray[np.int64]]]:
    """Group names and, per group, the sorted vertex indices with weight > 0.

    `mesh` defaults to the object's own (pass a copy of it to read that instead).

    Blender has no bulk accessor for vertex-group weights (they are not in
    `Mesh.attributes` and `MeshVertex.groups` has no `foreach_get`), so this
    walks each vertex's group list once, O(V + memberships), and sorts the
    result with numpy. Measured at ~1 us per vertex; a geometry-nodes
    round trip (store each group as an attribute, read it back) was ~10x slower.
    """
    names = [group.name for group in obj.vertex_groups]
    if not names:
        return [], []
    if mesh is None:
        mesh = object_mesh(obj)
    pairs = [(g.group, i) for i, v in enumerate(mesh.vertices) for g in v.groups if g.weight > 0.0]
    if not pairs:
        return names, [np.empty(0, np.int64) for _ in names]
    table = np.asarray(pairs, dtype=np.int64)
    order = np.lexsort((table[:, 1], table[:, 0]))
    table = table[order]
    bounds = np.searchsorted(table[:, 0], np.arange(len(names) + 1))
    return names, [table[bounds[i]:bounds[i + 1], 1] for i in range(len(names))]
