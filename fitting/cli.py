# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Command line: a photo (or a saved reconstruction) + an .nvf model -> a personal .nvf.

    python -m fitting PHOTO --model face_model2.nvf --assets DIR --out me.nvf
                      [--device auto|cuda|mps|cpu] [--backbone resnet50|mobilenetv3] [--box X1,Y1,X2,Y2]
                      [--report fit.json] [--no-residual] [--landmarks-only] [--cache-dir DIR]
    python -m fitting RESULT.npz --model face_model2.nvf --out me.nvf

PHOTO is reconstructed with 3DDFA-V3 (needs torch and the assets folder); an .npz is
a reconstruction `python -m tddfa_v3` saved (its `vertices_model`, `triangles` and
`landmark_indices_68`), fitted without torch. The model is fitted to the
reconstruction's surface and iBUG-68 landmarks, the personal model is written
atomically to --out, and a JSON report of the fit (scale, pose, coefficients,
expression weights, landmark and surface errors, in the reconstruction's units) goes
to stdout and, with --report, to a file. Nothing is written unless everything
succeeds. Exit status: 0 done, 1 the fit or the files failed, 2 bad arguments,
3 reconstruction assets missing or broken, 4 a dependency missing, 5 no face found or
the device failed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import DependencyError, FittingError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ASSETS = 3
EXIT_DEPENDENCY = 4
EXIT_RECONSTRUCTION = 5


class CliError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _package(name: str) -> Any:
    """A sibling package (io_nv3dmm, tddfa_v3): the add-on's own inside Blender, the clone's
    top-level one from the command line. (animation.maxine.sibling is the same for the
    animation package: sharing one would make animation import fitting, or the format
    package hold a package finder, at load time.)"""
    if __package__ and "." in __package__:
        return importlib.import_module(f"..{name}", __package__)
    return importlib.import_module(name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fitting",
        description="Fit an NVIDIA 3DMM (.nvf) face model to a photo's 3DDFA-V3 reconstruction (or a saved "
                    "one, .npz) and write the person's own .nvf model.")
    parser.add_argument("input", help="a photo (reconstructed with 3DDFA-V3) or a reconstruction .npz "
                                      "written by `python -m tddfa_v3`")
    parser.add_argument("--model", required=True, help="the .nvf face model to fit (e.g. face_model2.nvf)")
    parser.add_argument("--out", required=True, help="where to write the personal .nvf model")
    parser.add_argument("--assets", help="3DDFA-V3 assets folder (needed for a photo)")
    arguments = _package("tddfa_v3.arguments")        # --device, --backbone, --box: the core's own
    arguments.network_arguments(parser, note="photo only")
    parser.add_argument("--box", type=arguments.face_box, metavar=arguments.BOX_FORMAT,
                        help="face box in photo pixels (skips detection)")
    parser.add_argument("--cache-dir", help="cache folder for the 3DDFA-V3 face model")
    parser.add_argument("--report", help="also write the JSON report to this file")
    parser.add_argument("--no-residual", action="store_true",
                        help="leave out the smooth non-rigid residual (modes and expressions only)")
    parser.add_argument("--landmarks-only", action="store_true", help="fit the landmarks alone, not the surface")
    parser.add_argument("--force", action="store_true", help="overwrite --out when it exists")
    return parser


def load_reconstruction(path: Path) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """(vertices, triangles, {iBUG number: point}) from a `python -m tddfa_v3` .npz."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in ("vertices_model", "triangles", "landmark_indices_68") if key not in data]
            if missing:
                raise CliError(f"{path.name} is not a 3DDFA-V3 result (no {', '.join(missing)}); give a photo or "
                               "an .npz written by `python -m tddfa_v3`", EXIT_USAGE)
            vertices = np.asarray(data["vertices_model"], dtype=np.float64)
            triangles = np.asarray(data["triangles"])
            indices = np.asarray(data["landmark_indices_68"]).astype(np.int64).ravel()
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}", EXIT_FAILED) from exc
    return vertices, triangles, reconstruction_landmarks(vertices, indices)


def reconstruction_landmarks(vertices: np.ndarray, indices: np.ndarray) -> dict[int, np.ndarray]:
    """{iBUG-68 number: vertex position} from a reconstruction's 68 landmark vertex indices."""
    if indices.size and (indices.min() < 0 or indices.max() >= vertices.shape[0]):
        raise CliError("the reconstruction's landmark indices point outside its vertices", EXIT_FAILED)
    return {number: vertices[index] for number, index in enumerate(indices.tolist(), start=1)}


def _reconstruct(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    if not args.assets:
        raise CliError("a photo needs --assets (the 3DDFA-V3 assets folder); or give a reconstruction .npz",
                       EXIT_USAGE)
    try:
        errors = _package("tddfa_v3.errors")
    except ImportError as exc:
        raise CliError(f"the 3DDFA-V3 package cannot be imported: {exc}", EXIT_DEPENDENCY) from exc
    try:
        pipeline = _package("tddfa_v3.pipeline")
        reconstructor = pipeline.Reconstructor(args.assets, device=args.device, backbone=args.backbone,
                                               cache_dir=args.cache_dir)
        result = reconstructor.reconstruct(args.input, face_box=args.box)
    except errors.DependencyError as exc:
        raise CliError(str(exc), EXIT_DEPENDENCY) from exc
    except ImportError as exc:
        raise CliError(f"a reconstruction dependency is missing ({exc}); install torch, pillow, "
                       "opencv-python-headless and scipy", EXIT_DEPENDENCY) from exc
    except errors.AssetError as exc:
        raise CliError(str(exc), EXIT_ASSETS) from exc
    except errors.ReconstructionError as exc:
        raise CliError(str(exc), EXIT_RECONSTRUCTION) from exc
    vertices = np.asarray(result.vertices_model, dtype=np.float64)
    indices = np.asarray(result.landmark_indices.get("68", np.zeros(0)), dtype=np.int64).ravel()
    return vertices, np.asarray(result.triangles), reconstruction_landmarks(vertices, indices)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Everything the command does; returns the report. Raises CliError."""
    codec = _package("io_nv3dmm")
    from .fit import fit_model
    from .personal import personal_model
    from .result import FitOptions

    source, model_path, out = Path(args.input), Path(args.model), Path(args.out)
    if not source.is_file():
        raise CliError(f"{source} does not exist or is not a file", EXIT_USAGE)
    if not model_path.is_file():
        raise CliError(f"the model {model_path} does not exist or is not a file", EXIT_USAGE)
    if out.exists() and not args.force:
        raise CliError(f"{out} exists; pass --force to overwrite it", EXIT_USAGE)
    if not out.parent.is_dir():
        raise CliError(f"the folder of --out ({out.parent}) does not exist", EXIT_USAGE)
    try:
        model = codec.read(model_path)
    except codec.NvfError as exc:
        raise CliError(f"{model_path.name}: {exc}", EXIT_FAILED) from exc
    except OSError as exc:
        raise CliError(f"cannot read {model_path}: {exc}", EXIT_FAILED) from exc

    started = time.perf_counter()
    if source.suffix.lower() == ".npz":
        vertices, triangles, landmarks = load_reconstruction(source)
    else:
        vertices, triangles, landmarks = _reconstruct(args)
    reconstructed = time.perf_counter()
    options = FitOptions(residual=not args.no_residual)
    if args.landmarks_only:
        fit = fit_model(model, None, None, landmarks, options)
    else:
        fit = fit_model(model, vertices, triangles, landmarks, options)
    personal = personal_model(model, fit)
    fitted = time.perf_counter()
    try:
        codec.write(personal, out)
    except (codec.NvfError, OSError) as exc:
        raise CliError(f"cannot write {out}: {exc}", EXIT_FAILED) from exc
    report = {"input": str(source), "model": str(model_path), "out": str(out),
              "target_vertices": int(vertices.shape[0]), "target_triangles": int(np.asarray(triangles).shape[0]),
              "seconds": {"reconstruction": round(reconstructed - started, 3), "fit": round(fitted - reconstructed, 3)},
              "fit": fit.report()}
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        report = run(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except DependencyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DEPENDENCY
    except FittingError as exc:
        print(f"error: the fit failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    text = json.dumps(report, indent=2)
    if args.report:
        try:
            Path(args.report).write_text(text + "\n")
        except OSError as exc:
            print(f"error: cannot write the report {args.report}: {exc}", file=sys.stderr)
            return EXIT_FAILED
    print(text)
    return EXIT_OK
