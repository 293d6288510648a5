# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The project demo: build the embedded face model, write it as .nvf, import it
headless with the add-on, pose an expression, save a .blend and render a PNG.

    .venv/bin/python tools/demo.py --out out        (or: bash tools/demo.sh)

Writes out/demo_face.nvf (+ demo_face.mtl with the material colours),
out/demo_face_export.nvf (the imported object exported again: byte-identical),
out/demo.blend and out/demo.png (Cycles on the CPU). Needs only numpy and the
bpy module; no GPU, no network, no data files.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/, for checkout_addon (blender -P does not add it)
from checkout_addon import import_checkout, load_checkout_addon  # noqa: E402

#: Kd colours written to the companion .mtl (linear RGB), by material name.
MATERIAL_COLORS = {
    "Face": (0.62, 0.34, 0.24),
    "Sclera": (0.85, 0.83, 0.80),
    "Iris": (0.05, 0.12, 0.20),
    "MouthSocket": (0.25, 0.04, 0.05),
}

#: The expression shown: shape key -> value.
EXPRESSION = {
    "mouthSmile_L": 0.9,
    "mouthSmile_R": 0.9,
    "cheekSquint_L": 0.5,
    "cheekSquint_R": 0.5,
    "browInnerUp_L": 0.6,
    "browInnerUp_R": 0.6,
    "eyeSquint_L": 0.3,
    "eyeSquint_R": 0.3,
}


def write_mtl(path: Path, names: list[str]) -> None:
    lines = []
    for name in names:
        r, g, b = MATERIAL_COLORS.get(name, (0.7, 0.7, 0.7))
        lines += [f"newmtl {name}", "illum 4", f"Kd {r:.2f} {g:.2f} {b:.2f}", ""]
    path.write_text("\n".join(lines))


def setup_scene(obj: Any, size: int, samples: int) -> None:
    """World, three lights, a camera framing the face, Cycles on the CPU."""
    import bpy
    from mathutils import Vector

    scene = bpy.context.scene
    world = bpy.data.worlds.new("Demo World")
    world.color = (0.05, 0.06, 0.08)
    if world.node_tree is None:
        world.use_nodes = True
    background = next((n for n in world.node_tree.nodes if n.type == 'BACKGROUND'), None)
    if background is not None:
        background.inputs["Color"].default_value = (0.045, 0.055, 0.075, 1.0)
        background.inputs["Strength"].default_value = 1.0
    scene.world = world

    corners = [obj.matrix_world @ Vector(c) for c in obj.bound_box]
    low = Vector((min(c.x for c in corners), min(c.y for c in corners), min(c.z for c in corners)))
    high = Vector((max(c.x for c in corners), max(c.y for c in corners), max(c.z for c in corners)))
    center = (low + high) / 2
    height = high.z - low.z

    def add_light(name: str, kind: str, energy: float, offset: tuple[float, float, float], size_m: float,
                  color: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> None:
        light = bpy.data.lights.new(name, kind)
        light.energy = energy
        light.color = color
        if kind == 'AREA':
            light.size = size_m
        node = bpy.data.objects.new(name, light)
        node.location = center + Vector(offset)
        node.rotation_euler = (center - node.location).to_track_quat('-Z', 'Y').to_euler()
        scene.collection.objects.link(node)

    add_light("Key", 'AREA', 22.0, (-0.45, -0.55, 0.35), 0.5, (1.0, 0.95, 0.88))
    add_light("Fill", 'AREA', 5.0, (0.55, -0.45, 0.0), 0.8, (0.8, 0.88, 1.0))
    add_light("Rim", 'AREA', 30.0, (0.35, 0.4, 0.35), 0.3, (0.85, 0.92, 1.0))

    camera_data = bpy.data.cameras.new("Camera")
    camera_data.lens = 85.0
    camera = bpy.data.objects.new("Camera", camera_data)
    distance = height * 85.0 / 36.0 * 1.2            # fits the head's height with a margin
    direction = Vector((0.28, -1.0, 0.1)).normalized()
    camera.location = center + direction * distance
    camera.rotation_euler = (center - camera.location).to_track_quat('-Z', 'Y').to_euler()
    scene.collection.objects.link(camera)
    scene.camera = camera

    scene.render.engine = 'CYCLES'
    scene.cycles.device = 'CPU'
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = True
    scene.cycles.max_bounces = 4
    try:
        scene.cycles.use_denoising = True
        scene.cycles.denoiser = 'OPENIMAGEDENOISE'
    except (AttributeError, TypeError):
        scene.cycles.use_denoising = False
    scene.render.resolution_x = size
    scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = 'PNG'
    scene.view_settings.view_transform = 'AgX'
    try:
        scene.view_settings.look = 'AgX - Punchy'
    except TypeError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description="Build, import and render the demo face model.")
    parser.add_argument("--out", default="out", help="output folder (default: out)")
    parser.add_argument("--size", type=int, default=480, help="image width and height in pixels")
    parser.add_argument("--samples", type=int, default=24, help="Cycles samples per pixel")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    import_checkout()
    import nv3dmm_face_tools.io_nv3dmm as io_nv3dmm
    from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model

    model = build_demo_model()
    nvf_path = out / "demo_face.nvf"
    io_nv3dmm.write(model, nvf_path)
    materials = sorted({p.material for p in model.partitions or [] if p.material})
    write_mtl(nvf_path.with_suffix(".mtl"), materials)
    print(f"wrote {nvf_path} ({nvf_path.stat().st_size:,} bytes): {model.vertex_count:,} vertices, "
          f"{model.triangle_count:,} triangles, {model.mode_count} shape modes, "
          f"{len(model.blend_shapes.names) if model.blend_shapes else 0} blend shapes, "
          f"{len(model.partitions or [])} partitions")

    import bpy
    load_checkout_addon()
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_scene.nvf(filepath=str(nvf_path))
    obj = bpy.context.active_object
    blocks = obj.data.shape_keys.key_blocks
    for name, value in EXPRESSION.items():
        if name in blocks:
            blocks[name].value = value
    print(f"imported '{obj.name}': {len(blocks)} shape keys, {len(obj.vertex_groups)} vertex groups, "
          f"{len(obj.data.materials)} materials; expression: "
          + ", ".join(f"{k} {v}" for k, v in EXPRESSION.items()))

    exported = out / "demo_face_export.nvf"
    bpy.ops.export_scene.nvf(filepath=str(exported))
    same = exported.read_bytes() == nvf_path.read_bytes()
    print(f"exported {exported}: {'byte-identical to' if same else 'DIFFERENT from'} {nvf_path.name}")
    if not same:
        return 1
    from nv3dmm_face_tools.io_nv3dmm.maxine import maxine_problems
    problems = maxine_problems(exported)
    print("Maxine check (io_nv3dmm.maxine): " + ("; ".join(problems) if problems
                                                 else "nothing in it that NVIDIA's reader cannot take"))
    if problems:
        return 1

    setup_scene(obj, args.size, args.samples)
    blend_path = out / "demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend_path))
    print(f"saved {blend_path}")

    png_path = out / "demo.png"
    scene = bpy.context.scene
    scene.render.filepath = str(png_path)
    render_start = time.perf_counter()
    bpy.ops.render.render(write_still=True)
    print(f"rendered {png_path} ({args.size}x{args.size}, Cycles CPU, {args.samples} samples) "
          f"in {time.perf_counter() - render_start:.1f} s; total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
