# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Import/export speed of .nvf in Blender, against floors and Blender's glTF importer.

    .venv/bin/python benchmarks/bench_blender_nvf.py [model.nvf] [--repeat 9]

The model is the argument, else face_model2.nvf from $NVF_SAMPLES, else the
embedded demo model. Everything is measured side by side in one run, medians
over the repetitions, the variants interleaved (A, B, C, A, B, C, ...); before
every timed import (glTF included) the scene is emptied, orphans are purged
and gc.collect() runs, before every timed export gc.collect() runs, so every
variant starts alike and none pays for another's garbage:

- import floor A: the same mesh and shape keys created with the fastest bpy
  calls (generic-attribute `foreach_set`, `shape_key_add`, `points.foreach_set`)
  from arrays already in Blender space; floor B: A starting from the file
  (read, parse with io_nv3dmm, convert the keys); floor C: A plus everything
  else the import creates, by the fastest calls but without parsing: the file
  read and kept as an ID property, the same vertex groups (in the import's
  order), the materials in their slots, the per-face slot and partition
  attributes; floor D: B and C together, the least work that gives the
  import's end state from the file (what is left above it is our own code:
  naming, checks, colours, the export cache);
- our import: `bridge.nvf_import.import_nvf` (what the operator calls) and the
  operator `bpy.ops.import_scene.nvf` itself;
- glTF: the same mesh with the same morph targets written as a .glb here
  (numpy + struct), loaded with `bpy.ops.import_scene.gltf`;
- export floor: `foreach_get` of the same data (positions, every key block,
  corners, material indices) plus writing the same number of bytes to a file;
  and the same with the file and its folder flushed to disk (`fsync`), as the
  export's atomic write does (`export_nvf(..., fsync=False)` is timed too);
- our export: `bridge.nvf_export.export_nvf` of the unedited import (the path
  that writes the original bytes) and of an edited one (one basis vertex moved:
  the per-vertex merge and a full re-encode).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))  # to import checkout_addon
from checkout_addon import ADDON_ID, import_checkout, load_checkout_addon  # noqa: E402


def _interleaved_ms(runs: dict[str, Callable[[], Any]], repeat: int,
                    before: Callable[[], Any] | None = None) -> dict[str, float]:
    """Median milliseconds of each run, measured round-robin (run A, B, C, A, B, C...)
    so that load from other processes hits every variant alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            if before is not None:
                before()
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1000.0 for name, values in times.items()}


def _clean() -> None:
    import bpy
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.outliner.orphans_purge(do_recursive=True)
    # Collect the previous run's garbage now, so no run pays for another's.
    gc.collect()


def _write_glb(path: Path, positions: np.ndarray, triangles: np.ndarray, targets: np.ndarray,
               names: list[str]) -> None:
    """A minimal glTF 2.0 binary: one mesh, one primitive, morph targets as position deltas."""
    # glTF is +Y up; our Blender-space arrays are +Z up: (x, y, z) -> (x, z, -y).
    def to_gltf(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.stack([a[..., 0], a[..., 2], -a[..., 1]], axis=-1), np.float32)
    base = to_gltf(positions)
    deltas = to_gltf(targets - positions[None])
    indices = np.ascontiguousarray(triangles, np.uint16).ravel()
    chunks: list[bytes] = []
    views: list[dict[str, Any]] = []
    accessors: list[dict[str, Any]] = []
    offset = 0

    def add(data: bytes, accessor: dict[str, Any], target: int) -> int:
        nonlocal offset
        pad = (-len(data)) % 4
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(data), "target": target})
        accessors.append(dict(accessor, bufferView=len(views) - 1))
        chunks.append(data + b"\0" * pad)
        offset += len(data) + pad
        return len(accessors) - 1

    def vec3(a: np.ndarray) -> dict[str, Any]:
        return {"componentType": 5126, "count": int(a.shape[0]), "type": "VEC3",
                "min": a.min(0).tolist(), "max": a.max(0).tolist()}

    position = add(base.tobytes(), vec3(base), 34962)
    index = add(indices.tobytes(), {"componentType": 5123, "count": int(indices.size), "type": "SCALAR"}, 34963)
    morphs = [{"POSITION": add(d.tobytes(), vec3(d), 34962)} for d in deltas]
    binary = b"".join(chunks)
    doc = {
        "asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": position}, "indices": index,
                                    "targets": morphs}],
                    "weights": [0.0] * len(morphs), "extras": {"targetNames": names}}],
        "buffers": [{"byteLength": len(binary)}], "bufferViews": views, "accessors": accessors,
    }
    text = json.dumps(doc).encode()
    text += b" " * ((-len(text)) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    path.write_bytes(struct.pack("<III", 0x46546C67, 2, total) + struct.pack("<I4s", len(text), b"JSON") + text
                     + struct.pack("<I4s", len(binary), b"BIN\0") + binary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", help="an .nvf file (default: $NVF_SAMPLES/face_model2.nvf or the demo)")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    import bpy
    tmp = Path(tempfile.mkdtemp(prefix="bench_nvf_"))
    load_checkout_addon()
    import_checkout()  # the checkout's packages, also when an installed extension is the one registered
    import importlib
    io_nv3dmm = importlib.import_module(f"{ADDON_ID}.io_nv3dmm")
    nvf_import = importlib.import_module(f"{ADDON_ID}.bridge.nvf_import")
    nvf_export = importlib.import_module(f"{ADDON_ID}.bridge.nvf_export")
    try:  # the homes of the import plan, options and axes
        plan_module = importlib.import_module(f"{ADDON_ID}.bridge.import_plan")
        options_module = importlib.import_module(f"{ADDON_ID}.bridge.options")
        axes = importlib.import_module(f"{ADDON_ID}.bridge.axes")
    except ImportError:  # an older checkout: all three in bridge.nvf_mapping
        plan_module = options_module = axes = importlib.import_module(f"{ADDON_ID}.bridge.nvf_mapping")

    if args.model:
        source = Path(args.model)
    elif os.environ.get("NVF_SAMPLES") and (Path(os.environ["NVF_SAMPLES"]) / "face_model2.nvf").exists():
        source = Path(os.environ["NVF_SAMPLES"]) / "face_model2.nvf"
    else:
        from importlib import import_module
        demo = import_module(f"{ADDON_ID}.io_nv3dmm.demo_model")
        source = tmp / "demo_face.nvf"
        io_nv3dmm.write(demo.build_demo_model(), source)
    model = io_nv3dmm.read(source)
    plan = plan_module.plan_import(model, options_module.ImportOptions())
    basis = plan.basis
    keys = plan.key_positions
    tris = plan.triangles
    v_count, t_count, k_count = basis.shape[0], tris.shape[0], keys.shape[0]
    print(f"model: {source.name}: {v_count:,} vertices, {t_count:,} triangles, {k_count} shape keys "
          f"({model.mode_count} modes + {k_count - model.mode_count} blend shapes), "
          f"{source.stat().st_size:,} bytes; median of {args.repeat}")

    # --- import --------------------------------------------------------------------------------
    flat_basis = np.ascontiguousarray(basis).ravel()
    flat_keys = [np.ascontiguousarray(k).ravel() for k in keys]
    loop_start = np.arange(0, 3 * t_count, 3, dtype=np.int32)
    corners = np.ascontiguousarray(tris, np.int32).ravel()

    def floor_import() -> None:
        mesh = bpy.data.meshes.new("floor")
        mesh.vertices.add(v_count)
        mesh.loops.add(3 * t_count)
        mesh.polygons.add(t_count)
        mesh.attributes["position"].data.foreach_set("vector", flat_basis)
        mesh.polygons.foreach_set("loop_start", loop_start)
        mesh.attributes[".corner_vert"].data.foreach_set("value", corners)
        mesh.update(calc_edges=True)
        obj = bpy.data.objects.new("floor", mesh)
        bpy.context.scene.collection.objects.link(obj)
        obj.shape_key_add(name="Basis", from_mix=False)
        for i in range(k_count):
            block = obj.shape_key_add(name=f"k{i}", from_mix=False)
            block.value = 0.0
            block.points.foreach_set("co", flat_keys[i])

    group_lists = [(name, members.tolist()) for name, members in plan.groups]
    slot_names = [name or "none" for name in plan.materials]
    face_slots = plan.face_slots if plan.face_slots is not None else np.zeros(t_count, np.int32)

    def floor_from_file() -> None:
        # The same mesh and keys, but starting from the file: read, parse, convert.
        parsed = io_nv3dmm.read(source.read_bytes())
        mean = np.asarray(parsed.shape.mean)
        axes.to_blender(mean, 0.01, True)
        axes.offsets_to_blender(np.asarray(parsed.shape.modes), mean, 0.01, True)
        if parsed.blend_shapes is not None:
            axes.offsets_to_blender(np.asarray(parsed.blend_shapes.deltas), mean, 0.01, True)
        floor_import()

    face_parts = (plan.face_partitions if plan.face_partitions is not None
                  else np.zeros(t_count, np.int32))

    def floor_content() -> None:
        # Everything else the import must create, by the fastest calls: the file's
        # bytes read and kept as an ID property, the vertex groups (one
        # VertexGroup.add per group, in the import's order), the materials in
        # their slots, the per-face slot and partition attributes.
        data = source.read_bytes()
        floor_import()
        obj = bpy.data.objects["floor"]
        mesh = obj.data
        for name, members in group_lists:
            obj.vertex_groups.new(name=name).add(members, 1.0, 'REPLACE')
        for name in slot_names:
            mesh.materials.append(bpy.data.materials.new(name))
        mesh.attributes.new("material_index", 'INT', 'FACE').data.foreach_set("value", face_slots)
        mesh.attributes.new("nvf_partition", 'INT', 'FACE').data.foreach_set("value", face_parts)
        mesh["nvf_source"] = data

    def floor_everything() -> None:
        # B and C together: read and parse the file, then build everything,
        # converting the keys a cache-sized run at a time straight into
        # points.foreach_set (the fastest conversion found: no (K, V, 3) array).
        data = source.read_bytes()
        parsed = io_nv3dmm.read(data)
        mean = np.asarray(parsed.shape.mean, np.float32)
        blocks = [np.asarray(parsed.shape.modes)]
        if parsed.blend_shapes is not None:
            blocks.append(np.asarray(parsed.blend_shapes.deltas))
        mesh = bpy.data.meshes.new("floor")
        mesh.vertices.add(v_count)
        mesh.loops.add(3 * t_count)
        mesh.polygons.add(t_count)
        mesh.attributes["position"].data.foreach_set("vector", axes.to_blender(mean, 0.01, True).ravel())
        mesh.polygons.foreach_set("loop_start", loop_start)
        mesh.attributes[".corner_vert"].data.foreach_set(
            "value", np.ascontiguousarray(parsed.shape.triangles, np.int32).ravel())
        mesh.update(calc_edges=True)
        obj = bpy.data.objects.new("floor", mesh)
        bpy.context.scene.collection.objects.link(obj)
        obj.shape_key_add(name="Basis", from_mix=False)
        chunk = np.empty((max(1, (1 << 20) // (12 * v_count)), v_count, 3), np.float32)
        i = 0
        for block in blocks:
            for start in range(0, block.shape[0], chunk.shape[0]):
                part = block[start:start + chunk.shape[0]]
                out = chunk[:part.shape[0]]
                axes.offsets_to_blender(part, mean, 0.01, True, out=out)
                for row in out:
                    key_block = obj.shape_key_add(name=f"k{i}", from_mix=False)
                    key_block.value = 0.0
                    key_block.points.foreach_set("co", row.ravel())
                    i += 1
        for name, members in group_lists:
            obj.vertex_groups.new(name=name).add(members, 1.0, 'REPLACE')
        for name in slot_names:
            mesh.materials.append(bpy.data.materials.new(name))
        mesh.attributes.new("material_index", 'INT', 'FACE').data.foreach_set("value", face_slots)
        mesh.attributes.new("nvf_partition", 'INT', 'FACE').data.foreach_set("value", face_parts)
        mesh["nvf_source"] = data

    glb = tmp / "same.glb"
    _write_glb(glb, basis, tris, keys, list(plan.key_names))
    _clean()
    bpy.ops.import_scene.gltf(filepath=str(glb))
    gltf_obj = next(o for o in bpy.data.objects if o.type == 'MESH')
    assert len(gltf_obj.data.shape_keys.key_blocks) == k_count + 1

    medians = _interleaved_ms({
        "floor": floor_import,
        "floor_file": floor_from_file,
        "floor_all": floor_content,
        "floor_everything": floor_everything,
        "ours": lambda: nvf_import.import_nvf(bpy.context, source),
        "operator": lambda: bpy.ops.import_scene.nvf(filepath=str(source)),
        "gltf": lambda: bpy.ops.import_scene.gltf(filepath=str(glb)),
    }, args.repeat, _clean)
    floor, floor_all, ours = medians["floor"], medians["floor_all"], medians["ours"]
    floor_file, floor_d = medians["floor_file"], medians["floor_everything"]
    operator, gltf = medians["operator"], medians["gltf"]

    print("\nimport")
    print(f"  floor A: mesh + {k_count} keys, fastest bpy calls, arrays ready       {floor:8.2f} ms")
    print(f"  floor B: A from the file (read, parse, convert the keys)            {floor_file:8.2f} ms")
    print(f"  floor C: A + the file read and kept as an ID property, the same {len(group_lists)} vertex "
          f"groups,\n           {len(slot_names)} materials in slots, face attributes "
          f"(everything the import makes, no parsing)   {floor_all:8.2f} ms   {floor_all / floor:5.2f} x floor A")
    print(f"  floor D: B and C together (the file read, parsed, converted; everything built from it) "
          f"{floor_d:8.2f} ms   {floor_d / floor:5.2f} x floor A")
    print(f"  import_nvf (core function)                {ours:8.2f} ms   {ours / floor:5.2f} x floor A "
          f"(target <= 2.5), {ours / floor_d:5.2f} x floor D")
    print(f"  bpy.ops.import_scene.nvf (operator)       {operator:8.2f} ms   {operator / floor:5.2f} x floor A, "
          f"{operator / floor_d:5.2f} x floor D")
    print(f"  bpy.ops.import_scene.gltf, same content   {gltf:8.2f} ms   {gltf / ours:5.2f} x slower than "
          f"import_nvf (target >= 4), {gltf / operator:5.2f} x the operator")

    # Extra, labelled: the same two operators measured without emptying or purging between
    # runs (one clean start, then interleaved imports that pile up in one scene, no gc.collect):
    # checks how the glTF figure depends on the purging above. Both sides are treated alike.
    _clean()
    piled = _interleaved_ms({
        "operator": lambda: bpy.ops.import_scene.nvf(filepath=str(source)),
        "gltf": lambda: bpy.ops.import_scene.gltf(filepath=str(glb)),
    }, args.repeat)
    print(f"  [extra: no purge/empty between runs, imports piling up in one scene]\n"
          f"    bpy.ops.import_scene.nvf {piled['operator']:8.2f} ms, bpy.ops.import_scene.gltf "
          f"{piled['gltf']:8.2f} ms: glTF {piled['gltf'] / piled['operator']:5.2f} x the operator")

    # --- export ----------------------------------------------------------------------------------
    _clean()
    obj = nvf_import.import_nvf(bpy.context, source)
    mesh = obj.data
    data_size = source.stat().st_size
    payload = os.urandom(data_size)
    sink = tmp / "floor.bin"
    positions = np.empty(v_count * 3, np.float32)
    key_out = np.empty((k_count + 1, v_count * 3), np.float32)
    corner_out = np.empty(3 * t_count, np.int32)
    slots_out = np.empty(t_count, np.int32)

    def floor_export() -> None:
        mesh.attributes["position"].data.foreach_get("vector", positions)
        for i, block in enumerate(mesh.shape_keys.key_blocks):
            block.points.foreach_get("co", key_out[i])
        mesh.attributes[".corner_vert"].data.foreach_get("value", corner_out)
        mesh.polygons.foreach_get("material_index", slots_out)
        with open(sink, "wb") as stream:
            stream.write(payload)

    def floor_export_fsync() -> None:
        # The same, made durable as the export is (file and folder flushed to disk).
        floor_export()
        with open(sink, "rb+") as stream:
            os.fsync(stream.fileno())
        folder = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    mesh_reader = importlib.import_module(f"{ADDON_ID}.bridge.mesh")
    target = tmp / "out.nvf"
    export_medians = _interleaved_ms({
        "floor": floor_export,
        "floor_fsync": floor_export_fsync,
        "groups": lambda: mesh_reader.read_vertex_groups(obj),
        "unedited": lambda: nvf_export.export_nvf(obj, target),
        "unedited_nofsync": lambda: nvf_export.export_nvf(obj, target, fsync=False),
        "operator": lambda: bpy.ops.export_scene.nvf(filepath=str(target)),
    }, args.repeat, gc.collect)
    floor_out, groups = export_medians["floor"], export_medians["groups"]
    floor_fsync, nofsync = export_medians["floor_fsync"], export_medians["unedited_nofsync"]
    unedited, operator_out = export_medians["unedited"], export_medians["operator"]
    assert target.read_bytes() == source.read_bytes()
    block = mesh.shape_keys.key_blocks[0]
    co = np.empty(v_count * 3, np.float32)
    block.points.foreach_get("co", co)
    co[0] += 0.001
    block.points.foreach_set("co", co)
    edited = _interleaved_ms({"edited": lambda: nvf_export.export_nvf(obj, target)}, args.repeat,
                             gc.collect)["edited"]
    print("\nexport")
    print(f"  floor (foreach_get of the same data + write {data_size:,} bytes) {floor_out:8.2f} ms")
    print(f"  (vertex groups read, no bulk accessor in Blender: {groups:.2f} ms, not in the floor)")
    print(f"  floor + fsync of the file and its folder (as the export)   {floor_fsync:8.2f} ms")
    print(f"  export_nvf, unedited import, fsync=False  {nofsync:8.2f} ms   {nofsync / floor_out:5.2f} x floor "
          f"(target <= 3)")
    print(f"  export_nvf, unedited import (fsync)       {unedited:8.2f} ms   {unedited / floor_fsync:5.2f} x floor "
          f"+ fsync")
    print(f"  bpy.ops.export_scene.nvf, unedited        {operator_out:8.2f} ms   "
          f"{operator_out / floor_fsync:5.2f} x floor + fsync")
    print(f"  export_nvf, one basis vertex moved        {edited:8.2f} ms   {edited / floor_fsync:5.2f} x floor "
          f"+ fsync")


if __name__ == "__main__":
    main()
