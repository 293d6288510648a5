# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Command line: reconstruct faces from photos, or check an assets folder.

    python -m tddfa_v3 PHOTO [PHOTO ...] --assets DIR --out DIR
                       [--device auto|cuda|mps|cpu] [--backbone resnet50|mobilenetv3]
                       [--box X1,Y1,X2,Y2] [--batch N] [--space posed|model]
                       [--no-copy-photo] [--cache-dir DIR] [--quiet]
    python -m tddfa_v3 check-assets DIR [--quick] [--cache-dir DIR]

Per photo it writes into --out: ``<name>.npz`` (every array of the result,
keys in `tddfa_v3.export.NPZ_KEY_DOCS`), ``<name>.obj`` + ``<name>.mtl``
(the face mesh with the photo as texture through per-vertex UVs) and
``<name>_landmarks.json`` (landmarks in photo pixels). Every argument, the
assets (loaded, with the face detector unless --box is given) and the output
folder are checked before anything is written. Exit status: 0 all photos
done, 1 some photos failed (no face, unreadable or unusable image: each is one
line on stderr), 2 bad arguments, 3 assets missing or broken, 4 a dependency
missing, 5 device failure or cancelled, 130 interrupted. Errors are one line,
never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from .arguments import BOX_FORMAT, face_box, network_arguments
from .errors import (
    AssetError, Cancelled, DependencyError, DeviceError, FaceBoxError, NoFaceError, PhotoError, ReconstructionError,
)

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_ASSETS = 3
EXIT_DEPENDENCY = 4
EXIT_DEVICE = 5
EXIT_INTERRUPTED = 130

_PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _reconstruct_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tddfa_v3",
        description="3DDFA-V3 face reconstruction: photo(s) in, face mesh, coefficients, landmarks out. "
                    "Use 'python -m tddfa_v3 check-assets DIR' to check an assets folder.",
    )
    parser.add_argument("photos", nargs="+", metavar="PHOTO", help="photo files (JPEG, PNG, ...) or folders of photos")
    parser.add_argument("--assets", required=True, metavar="DIR",
                        help="the 3DDFA-V3 assets folder (face_model.npy, net_recon.pth, ...)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    network_arguments(parser)
    parser.add_argument("--box", type=face_box, metavar=BOX_FORMAT,
                        help="face box in photo pixels for every photo (skips the face detector)")
    parser.add_argument("--batch", type=_positive_int, default=1, metavar="N",
                        help="photos reconstructed together (faster on a GPU; default 1)")
    parser.add_argument("--space", choices=("posed", "model"), default="posed",
                        help="OBJ vertices: posed model space as the reference writes them (default) "
                             "or the unposed shape")
    parser.add_argument("--no-copy-photo", action="store_true",
                        help="let the MTL point at the original photo instead of a copy next to the OBJ")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="where the converted face model is cached (default: $XDG_CACHE_HOME/nv3dmm_face_tools, "
                             "else ~/.cache/nv3dmm_face_tools)")
    parser.add_argument("--quiet", action="store_true", help="print only errors")
    return parser


def _check_assets_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tddfa_v3 check-assets",
        description="Check a 3DDFA-V3 assets folder: every file present and loaded as a reconstruction loads it "
                    "(checkpoints fitted to their networks, weights finite, face model validated), so a folder "
                    "that passes will load.")
    parser.add_argument("folder", metavar="DIR")
    parser.add_argument("--quick", action="store_true",
                        help="only look at names, sizes and file headers (what the add-on's preferences show)")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="where the converted face model is cached (default: the user cache folder)")
    args = parser.parse_args(argv)
    from .assets import check_assets

    try:
        report = check_assets(args.folder, load=not args.quick, cache_dir=args.cache_dir)
    except AssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ASSETS
    except DependencyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DEPENDENCY
    for status in report.files.values():
        state = "loads" if status.ok and not args.quick else status.state
        detail = f": {status.reason}" if status.reason else ""
        print(f"  {state:<9s} {status.name}{detail}")
    print(report.message)
    return EXIT_OK if report.ok else EXIT_ASSETS


def _collect_photos(items: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The photo files named (folders expanded) and an error line for each item that is none."""
    photos: list[Path] = []
    problems: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _PHOTO_SUFFIXES)
            if not found:
                problems.append(f"The folder {path} holds no photos ({', '.join(sorted(_PHOTO_SUFFIXES))})")
            photos.extend(found)
        elif path.is_file():
            photos.append(path)
        else:
            problems.append(f"Photo not found: {path}")
    return photos, problems


def _output_stems(photos: Sequence[Path]) -> list[str]:
    """Output names: the photo's stem, made unique when two photos share one."""
    stems: list[str] = []
    seen: dict[str, int] = {}
    for photo in photos:
        stem = photo.stem or "photo"
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        stems.append(stem if count == 0 else f"{stem}_{count + 1}")
    return stems


def _write_outputs(result: object, photo: Path, image: object, out_dir: Path, stem: str,
                   space: str, copy_photo: bool) -> list[Path]:
    from . import export
    from .result import FaceResult

    assert isinstance(result, FaceResult)
    written: list[Path] = []
    try:
        written.append(export.save_npz(result, out_dir / f"{stem}.npz"))
        texture: Path
        if export.photo_needs_rewrite(photo):
            # EXIF-rotated (or unusual) files: store the pixels the UVs refer to.
            texture = export.save_texture(image, out_dir / f"{stem}_photo.png")  # type: ignore[arg-type]
            written.append(texture)
        elif copy_photo:
            texture = out_dir / f"{stem}_photo{photo.suffix.lower()}"
            if texture.resolve() != photo.resolve():
                written.append(export.copy_file(photo, texture))
        else:
            texture = photo
        written.extend(export.save_obj(result, out_dir / f"{stem}.obj", texture=texture,
                                       space=space))  # type: ignore[arg-type]
        written.append(export.save_landmarks(result, out_dir / f"{stem}_landmarks.json"))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


#: Exit status for an error that stops the whole run (first match wins).
_EXIT_FOR: tuple[tuple[type[ReconstructionError], int], ...] = (
    (AssetError, EXIT_ASSETS),
    (DependencyError, EXIT_DEPENDENCY),
    (DeviceError, EXIT_DEVICE),
    (Cancelled, EXIT_DEVICE),
    (FaceBoxError, EXIT_USAGE),
    (PhotoError, EXIT_SOME_FAILED),
    (NoFaceError, EXIT_SOME_FAILED),
)


def _exit_status(error: ReconstructionError) -> int:
    return next((status for kind, status in _EXIT_FOR if isinstance(error, kind)), EXIT_SOME_FAILED)


def _output_folder_problem(out_dir: Path) -> str:
    """Why `out_dir` cannot become the output folder, or "" (nothing is created here)."""
    if out_dir.exists():
        if not out_dir.is_dir():
            return f"the output {out_dir} exists and is not a folder"
        return "" if os.access(out_dir, os.W_OK | os.X_OK) else f"the output folder {out_dir} is not writable"
    parent = next((p for p in out_dir.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir():
        return f"cannot create the output folder {out_dir}: {parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create the output folder {out_dir}: {parent} is not writable"
    return ""


def _reconstruct_main(argv: Sequence[str]) -> int:
    args = _reconstruct_parser().parse_args(argv)
    say = (lambda text: None) if args.quiet else (lambda text: print(text, flush=True))
    photos, problems = _collect_photos(args.photos)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not photos:
        return EXIT_SOME_FAILED
    out_dir = Path(args.out)
    problem = _output_folder_problem(out_dir)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE

    # Everything is checked (the assets loaded, the detector too when it will be needed)
    # before the output folder is made: a run that cannot work leaves nothing behind.
    try:
        from .assets import check_assets
        from .pipeline import Reconstructor
        from .photos import load_photo

        check_assets(args.assets).raise_unless_ok_for(args.backbone, detector=args.box is None)
        started = time.perf_counter()
        reconstructor = Reconstructor(args.assets, device=args.device, backbone=args.backbone,
                                      cache_dir=args.cache_dir)
        if args.box is None:
            reconstructor.load_detector()
        say(f"loaded {args.backbone} on {reconstructor.device_name} in {time.perf_counter() - started:.1f} s")
    except ReconstructionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _exit_status(exc)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: cannot create the output folder {out_dir}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE

    stems = _output_stems(photos)
    failures = len(problems)
    done = 0
    try:
        for first in range(0, len(photos), args.batch):
            group = list(range(first, min(first + args.batch, len(photos))))
            images: dict[int, object] = {}
            for index in group:
                try:
                    images[index] = load_photo(photos[index])
                except PhotoError as exc:
                    failures += 1
                    print(f"error: {exc}", file=sys.stderr)
            ready = [i for i in group if i in images]
            if not ready:
                continue
            started = time.perf_counter()
            boxes = [args.box] * len(ready) if args.box is not None else None
            outcomes = reconstructor.try_reconstruct_batch(
                [images[i] for i in ready], face_boxes=boxes, sources=[str(photos[i]) for i in ready])
            elapsed = time.perf_counter() - started
            for index, outcome in zip(ready, outcomes):
                if isinstance(outcome, ReconstructionError):
                    failures += 1
                    print(f"error: {outcome}", file=sys.stderr)
                    continue
                _write_outputs(outcome, photos[index], images[index], out_dir, stems[index],
                               args.space, not args.no_copy_photo)
                done += 1
                say(f"{photos[index].name}: {stems[index]}.obj, .npz, _landmarks.json "
                    f"({elapsed / len(ready):.2f} s)")
    except KeyboardInterrupt:
        print("interrupted; files of finished photos are complete, nothing half-written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ReconstructionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _exit_status(exc)
    say(f"{done} of {len(photos) + len(problems)} photo(s) reconstructed into {out_dir}")
    return EXIT_OK if failures == 0 else EXIT_SOME_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "check-assets":
        return _check_assets_main(args[1:])
    return _reconstruct_main(args)


if __name__ == "__main__":
    sys.exit(main())
