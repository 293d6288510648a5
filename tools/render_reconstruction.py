# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make docs/images/reconstruction.png: a photo reconstruction rendered in Blender.

    .venv/bin/python tools/render_reconstruction.py [--out docs/images/reconstruction.png]

Everything here is SYNTHETIC, and the picture says so: the face model and the
four networks are the deterministic synthetic stand-ins of
tddfa_v3.synthetic_face (random weights, a small dome-shaped face model), and
the photo is drawn procedurally. The shape therefore does not resemble the
drawing; the picture shows what the add-on builds (photo camera, photo
material through the reconstruction's UVs, shading) and that the camera
reproduces the photo's framing. With the real 3DDFA-V3 assets the same steps
give a real reconstruction.

Panels: the photo; the reconstruction rendered with Cycles (CPU) through the
reconstructed camera and laid over the photo; the same mesh from a three-quarter
view.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/, for checkout_addon (blender -P does not add it)
from checkout_addon import import_checkout, load_checkout_addon  # noqa: E402

WIDTH, HEIGHT = 320, 256
FACE_BOX = (104.0, 56.0, 216.0, 196.0)


def draw_photo(path: Path) -> None:
    """A procedurally drawn portrait: background gradient, skin ellipse, eyes, brows, nose, mouth."""
    from PIL import Image, ImageDraw, ImageFilter

    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    background = np.stack([60 + 60 * x / WIDTH, 90 + 40 * y / HEIGHT, 140 + 0 * x], -1)
    image = Image.fromarray(background.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    cx, cy = 160, 128
    draw.ellipse((cx - 58, cy - 78, cx + 58, cy + 80), fill=(222, 178, 150))          # face
    draw.ellipse((cx - 62, cy - 96, cx + 62, cy - 30), fill=(70, 48, 35))             # hair
    draw.ellipse((cx - 58, cy - 52, cx + 58, cy + 80), fill=(222, 178, 150))
    for side in (-1, 1):
        ex = cx + side * 24
        draw.ellipse((ex - 11, cy - 20, ex + 11, cy - 8), fill=(250, 250, 250))       # eye
        draw.ellipse((ex - 5, cy - 19, ex + 5, cy - 9), fill=(70, 110, 60))
        draw.line((ex - 14, cy - 30, ex + 12, cy - 33 + 2 * side), fill=(80, 55, 40), width=4)
    draw.polygon([(cx, cy - 8), (cx - 9, cy + 18), (cx + 9, cy + 18)], fill=(205, 155, 128))
    draw.chord((cx - 22, cy + 24, cx + 22, cy + 48), 0, 180, fill=(170, 70, 75))
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    image.save(path)


def setup_world_and_light(bpy: Any, scene: Any) -> None:
    world = bpy.data.worlds.new("Studio")
    world.color = (0.35, 0.35, 0.38)
    scene.world = world
    if bpy.app.version < (5, 0, 0):
        world.use_nodes = True
    background = world.node_tree.nodes.get("Background")
    if background is not None:
        background.inputs["Color"].default_value = (0.55, 0.55, 0.6, 1.0)
        background.inputs["Strength"].default_value = 0.6
    light_data = bpy.data.lights.new("Key light", 'AREA')
    light_data.energy = 60.0
    light_data.size = 1.0
    light = bpy.data.objects.new("Key light", light_data)
    light.location = (0.6, -1.4, 0.8)
    light.rotation_euler = (math.radians(60), 0.0, math.radians(25))
    scene.collection.objects.link(light)


def render(bpy: Any, scene: Any, camera: Any, path: Path, transparent: bool) -> np.ndarray:
    scene.camera = camera
    scene.render.engine = 'CYCLES'
    scene.cycles.device = 'CPU'
    scene.cycles.samples = 24
    scene.cycles.use_denoising = False
    scene.render.film_transparent = transparent
    scene.render.image_settings.file_format = 'PNG'
    scene.render.image_settings.color_mode = 'RGBA'
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    from PIL import Image
    return np.asarray(Image.open(path).convert("RGBA"))


def compose(photo: np.ndarray, overlay: np.ndarray, side: np.ndarray, out: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    alpha = overlay[..., 3:4].astype(np.float64) / 255.0
    laid = (overlay[..., :3] * alpha + photo[..., :3] * (1.0 - alpha)).astype(np.uint8)
    gap, caption_height, title_height = 8, 44, 22
    canvas = Image.new("RGB", (3 * WIDTH + 4 * gap, HEIGHT + 2 * gap + caption_height + title_height),
                       (250, 250, 250))
    titles = ("photo (drawn)", "render through the reconstructed camera", "three-quarter view")
    try:
        font = ImageFont.load_default(size=14)
        small = ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1
        font = small = ImageFont.load_default()
    draw = ImageDraw.Draw(canvas)
    for i, (panel, title) in enumerate(zip((photo[..., :3], laid, side[..., :3]), titles)):
        x = gap + i * (WIDTH + gap)
        canvas.paste(Image.fromarray(np.ascontiguousarray(panel)), (x, gap + title_height))
        draw.text((x, gap), title, fill=(30, 30, 30), font=font)
    text_y = gap + title_height + HEIGHT + 6
    draw.text((gap, text_y), "SYNTHETIC WEIGHTS: random stand-in networks and a synthetic face model, "
              "not the 3DDFA-V3 release;", fill=(170, 20, 20), font=small)
    draw.text((gap, text_y + 17), "the shape does not resemble the photo. Blender 5.0 Cycles (CPU), "
              "NV3DMM Face Tools reconstruction.", fill=(170, 20, 20), font=small)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "images" / "reconstruction.png")
    parser.add_argument("--fixtures", type=Path, default=os.environ.get("TDDFA_V3_FIXTURES") or None,
                        help="reference fixtures (optional: the synthetic model is generated otherwise)")
    options = parser.parse_args(argv[argv.index("--") + 1:] if "--" in argv else argv[1:])

    import bpy
    from PIL import Image

    import_checkout()
    from nv3dmm_face_tools.tddfa_v3.synthetic_face import write_synthetic_assets

    load_checkout_addon()
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        write_synthetic_assets(work / "assets", seed=1, fixtures_dir=options.fixtures)
        photo_path = work / "photo.png"
        draw_photo(photo_path)
        bpy.ops.wm.read_homefile(use_empty=True)
        scene = bpy.context.scene
        bpy.ops.object.reconstruct_face(filepath=str(photo_path), assets_dir=str(work / "assets"),
                                        device='CPU', face_box=FACE_BOX, update_existing=False)
        face = bpy.context.view_layer.objects.active
        photo_camera = scene.camera
        setup_world_and_light(bpy, scene)
        overlay = render(bpy, scene, photo_camera, work / "overlay.png", transparent=True)

        # A three-quarter view: the same lens, orbiting the face's centre by 35 degrees.
        side_data = photo_camera.data.copy()
        side_data.shift_x = side_data.shift_y = 0.0
        side = bpy.data.objects.new("Three-quarter camera", side_data)
        scene.collection.objects.link(side)
        target = face.matrix_world.translation.copy()
        distance = (photo_camera.matrix_world.translation - target).length * 0.55
        angle = math.radians(35.0)
        side.location = (target.x - distance * math.sin(angle), target.y - distance * math.cos(angle),
                         target.z + 0.02)
        direction = target - side.location
        side.rotation_euler = direction.to_track_quat('-Z', 'Y').to_euler()
        scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
        three_quarter = render(bpy, scene, side, work / "side.png", transparent=False)
        photo = np.asarray(Image.open(photo_path).convert("RGBA"))
        compose(photo, overlay, three_quarter, options.out)
    print(f"wrote {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
