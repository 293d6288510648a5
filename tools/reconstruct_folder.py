"""Reconstruct every photo of a folder into one .blend file, one face object per photo.

Runs inside Blender or with Blender as a Python module:

    blender -b --python-exit-code 1 -P tools/reconstruct_folder.py -- \\
        --photos DIR --assets DIR --out result.blend
    .venv/bin/python tools/reconstruct_folder.py --photos DIR --assets DIR --out result.blend

Each photo gets its own collection (named after the file) holding the face
object (shape keys, pose, photo material, groups) and, unless --no-camera, its
photo camera. A photo that fails (no face, unreadable) is reported and
skipped; the exit status is 1 when any photo failed or none was found.
Uses the add-on from this checkout (no installation needed): the operator
object.reconstruct_face with an explicit assets folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/ (blender -P does not add it)
from checkout_addon import load_checkout_addon  # noqa: E402

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def script_arguments(argv: list[str]) -> list[str]:
    """The arguments meant for this script: after "--" inside Blender, else all."""
    return argv[argv.index("--") + 1:] if "--" in argv else argv[1:]


def parse(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", required=True, type=Path, help="folder of photos")
    parser.add_argument("--assets", required=True, type=Path, help="3DDFA-V3 assets folder")
    parser.add_argument("--out", required=True, type=Path, help=".blend file to write")
    parser.add_argument("--device", default="AUTO", choices=["AUTO", "CUDA", "CPU"])
    parser.add_argument("--backbone", default="RESNET50", choices=["RESNET50", "MOBILENETV3"])
    parser.add_argument("--no-texture", action="store_true", help="skip the photo material")
    parser.add_argument("--no-camera", action="store_true", help="skip the photo cameras")
    return parser.parse_args(args)


def main(argv: list[str]) -> int:
    options = parse(script_arguments(argv))
    import bpy

    photos = sorted(p for p in options.photos.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES) \
        if options.photos.is_dir() else []
    if not photos:
        print(f"no photos ({', '.join(sorted(PHOTO_SUFFIXES))}) in {options.photos}", file=sys.stderr)
        return 1
    load_checkout_addon()
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    failures = 0
    for photo in photos:
        collection = bpy.data.collections.new(photo.stem)
        scene.collection.children.link(collection)
        layer = bpy.context.view_layer.layer_collection.children[collection.name]
        bpy.context.view_layer.active_layer_collection = layer
        started = time.perf_counter()
        try:
            bpy.ops.object.reconstruct_face(
                filepath=str(photo.resolve()), assets_dir=str(options.assets.resolve()),
                device=options.device, backbone=options.backbone,
                create_texture=not options.no_texture, create_camera=not options.no_camera,
                update_existing=False)
        except RuntimeError as error:
            failures += 1
            bpy.data.collections.remove(collection)
            print(f"{photo.name}: FAILED: {str(error).strip()}", file=sys.stderr)
            continue
        face = bpy.context.view_layer.objects.active
        print(f"{photo.name}: {face.name} ({time.perf_counter() - started:.2f} s)")
    options.out.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(options.out.resolve()), check_existing=False)
    print(f"wrote {options.out} ({len(photos) - failures} of {len(photos)} photos reconstructed)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
