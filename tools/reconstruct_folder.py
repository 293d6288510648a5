# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reconstruct every photo of a folder into one .blend file, one face object per photo.

Runs inside Blender or with Blender as a Python module (`pip install bpy`, as in
this repository's .venv):

    blender -b --python-exit-code 1 -P tools/reconstruct_folder.py -- \\
        --photos DIR --assets DIR --out result.blend
    .venv/bin/python tools/reconstruct_folder.py --photos DIR --assets DIR --out result.blend

Each photo gets its own collection (named after the file) holding the face
object (shape keys, pose, photo material, groups) and, unless --no-camera, its
photo camera. Everything that would stop every photo is checked first (the
reconstruction packages, the assets loaded with their face detector, the
output's folder): then the run fails once, with one message, and writes
nothing. A photo that fails (no face, unreadable) is reported on one line and
skipped; the .blend is written when at least one photo was reconstructed.
Exit status: 0 every photo done, 1 some photos failed (or none found),
2 bad arguments, 3 assets missing or broken, 4 a package missing.
Uses the add-on from this checkout (no installation needed), through the same
core and bridge functions as its operator object.reconstruct_face.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/, for checkout_addon (blender -P does not add it)
from checkout_addon import load_checkout_addon  # noqa: E402

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_ASSETS, EXIT_DEPENDENCY = 0, 1, 2, 3, 4


def script_arguments(argv: list[str]) -> list[str]:
    """The arguments meant for this script: after "--" inside Blender, else all."""
    return argv[argv.index("--") + 1:] if "--" in argv else argv[1:]


def parse(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", required=True, type=Path, help="folder of photos")
    parser.add_argument("--assets", required=True, type=Path, help="3DDFA-V3 assets folder")
    parser.add_argument("--out", required=True, type=Path, help=".blend file to write")
    parser.add_argument("--device", default="AUTO", choices=["AUTO", "CUDA", "CPU"])
    parser.add_argument("--backbone", default="RESNET50", type=str.upper, choices=["RESNET50", "MOBILENETV3"])
    parser.add_argument("--no-texture", action="store_true", help="skip the photo material")
    parser.add_argument("--no-camera", action="store_true", help="skip the photo cameras")
    return parser.parse_args(args)


def addon_module(name: str) -> ModuleType:
    """A module of the registered add-on (this checkout's, or the installed extension's)."""
    import bpy

    operator = getattr(bpy.types, "OBJECT_OT_reconstruct_face")
    root = operator.__module__.rsplit(".operators.", 1)[0]
    return importlib.import_module(f"{root}.{name}")


def fail(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def main(argv: list[str]) -> int:
    options = parse(script_arguments(argv))
    photos = sorted(p for p in options.photos.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES) \
        if options.photos.is_dir() else []
    if not photos:
        return fail(f"no photos ({', '.join(sorted(PHOTO_SUFFIXES))}) in {options.photos}", EXIT_SOME_FAILED)
    out = options.out.resolve()
    folder = next((p for p in out.parents if p.exists()), None)
    if out.is_dir() or folder is None or not folder.is_dir() or not os.access(folder, os.W_OK):
        return fail(f"cannot write {options.out}: {'it is a folder' if out.is_dir() else 'its folder is not writable'}",
                    EXIT_USAGE)

    import bpy

    load_checkout_addon()
    preferences = addon_module("preferences")
    bridge = addon_module("bridge.reconstruction")
    bridge_errors = addon_module("bridge.errors")
    errors = addon_module("tddfa_v3.errors")
    readiness = addon_module("bridge.readiness")
    missing = readiness.missing_dependencies()
    if missing:
        return fail(f"3DDFA-V3 needs {', '.join(missing)}; install with: {readiness.pip_command(missing)}",
                    EXIT_DEPENDENCY)
    assets = str(options.assets.resolve())
    settings = bridge.ReconstructOptions(
        assets_dir=assets, device=bridge.DEVICES[options.device], backbone=bridge.BACKBONES[options.backbone],
        cache_dir=preferences.cache_dir(), create_texture=not options.no_texture,
        create_camera=not options.no_camera, update_existing=False)
    # Load the networks (the face detector too) before anything is made: the operator's
    # reconstructions below reuse them (the core caches them per folder, backbone and device).
    try:
        started = time.perf_counter()
        pipeline = addon_module("tddfa_v3.pipeline")
        assets_module = addon_module("tddfa_v3.assets")
        assets_module.check_assets(assets).raise_unless_ok_for(settings.backbone, detector=True)
        reconstructor: Any = pipeline.Reconstructor(assets, device=settings.device, backbone=settings.backbone,
                                                    cache_dir=settings.cache_dir)
        reconstructor.load_detector()
    except errors.ReconstructionError as error:
        status = EXIT_DEPENDENCY if isinstance(error, errors.DependencyError) else EXIT_ASSETS
        return fail(str(error), status)
    print(f"loaded {settings.backbone} on {reconstructor.device_name} in {time.perf_counter() - started:.1f} s")

    bpy.ops.wm.read_homefile(use_empty=True)
    context = bpy.context
    scene = context.scene
    failures = 0
    for photo in photos:
        started = time.perf_counter()
        collection = bpy.data.collections.new(photo.stem)
        scene.collection.children.link(collection)
        layer = context.view_layer.layer_collection.children[collection.name]
        context.view_layer.active_layer_collection = layer
        try:
            job = bridge.ReconstructionJob(settings, str(photo.resolve()))
            output = bridge.run_job_sync(job)
            face = bridge.build_reconstruction(context, output, settings, photo_path=str(photo.resolve()))
        except bridge_errors.BridgeError as error:
            failures += 1
            bpy.data.collections.remove(collection)
            print(f"{photo.name}: FAILED: {error}", file=sys.stderr)
            continue
        print(f"{photo.name}: {face.name} ({time.perf_counter() - started:.2f} s)")
    done = len(photos) - failures
    if done == 0:
        return fail(f"no photo was reconstructed; nothing written to {options.out}", EXIT_SOME_FAILED)
    out.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(out), check_existing=False)
    print(f"wrote {options.out} ({done} of {len(photos)} photos reconstructed)")
    return EXIT_SOME_FAILED if failures else EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv))
