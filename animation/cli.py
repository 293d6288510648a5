# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Command line: a video to per-frame expression and head pose, and Live Link Face checks.

    python -m animation video CLIP --assets DIR --out ANIM.npz [--model FACE.nvf --csv TAKE.csv]
                        [--device auto|cuda|mps|cpu] [--backbone resnet50|mobilenetv3]
                        [--start N] [--stop N] [--stride N] [--batch N]
                        [--no-smooth] [--min-cutoff HZ] [--beta B] [--identity-frame N]
                        [--sequence-fps FPS] [--box X1,Y1,X2,Y2]
    python -m animation check-csv TAKE.csv [--fps 30|60]

`video` tracks the clip (see animation.tracking) and writes an .npz with the
tracked frames, the locked identity, per-frame expression / angles /
translation, the skipped frames and the camera; it prints a JSON summary
(frames, skipped, detections, frames per second). With --model and --csv it
also solves the .nvf model's blend shapes per frame (animation.maxine, the
person's identity fitted on the reference frame) and writes them as a Live
Link Face CSV (ARKit columns, head yaw/pitch/roll). Run from a clone's root with
the reconstruction requirements installed. Exit status: 0 done, 1 the input
cannot be used (video, CSV, no face anywhere), 2 bad arguments, 3 assets or a
dependency missing, 130 interrupted. Errors are one line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from .errors import AnimationError
from .live_link import read_csv

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_SETUP, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _parser() -> argparse.ArgumentParser:
    from .maxine import sibling

    parser = argparse.ArgumentParser(prog="python -m animation", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    video = sub.add_parser("video", help="track a video into per-frame expression and head pose (.npz)")
    video.add_argument("clip", help="movie file, image-sequence folder or one image of a sequence")
    video.add_argument("--assets", required=True, help="the 3DDFA-V3 assets folder")
    video.add_argument("--out", required=True, help="the .npz to write")
    arguments = sibling("tddfa_v3.arguments")       # --device, --backbone, --box: the core's own
    arguments.network_arguments(video)
    video.add_argument("--cache-dir", default=None, help="where the converted face model is cached")
    video.add_argument("--start", type=int, default=0, help="first video frame (0-based)")
    video.add_argument("--stop", type=int, default=None, help="stop before this frame (default: the end)")
    video.add_argument("--stride", type=int, default=1, help="track every n-th frame")
    video.add_argument("--batch", type=int, default=16, help="frames per regression pass")
    video.add_argument("--no-smooth", action="store_true", help="raw per-frame values, no One Euro filter")
    video.add_argument("--min-cutoff", type=float, default=1.0, help="One Euro min cutoff (Hz)")
    video.add_argument("--beta", type=float, default=5.0, help="One Euro speed coefficient")
    video.add_argument("--identity-frame", type=int, default=None,
                       help="frame whose identity is used (default: the median over the clip)")
    video.add_argument("--sequence-fps", type=float, default=30.0, help="frame rate of an image sequence")
    video.add_argument("--box", type=arguments.face_box, default=None, metavar=arguments.BOX_FORMAT,
                       help="the face on the first frame, in frame pixels (skips detection there)")
    video.add_argument("--model", default=None, help="an .nvf model whose blend shapes are solved per frame")
    video.add_argument("--csv", default=None, help="write the solved frames as a Live Link Face CSV (needs --model)")
    check = sub.add_parser("check-csv", help="read a Live Link Face CSV whole and describe it")
    check.add_argument("csv")
    check.add_argument("--fps", type=float, default=60.0, help="the take's timecode rate")
    return parser


def _video(args: argparse.Namespace) -> int:
    from .maxine import sibling
    from .one_euro import OneEuroParams
    from .tracking import TrackOptions, track_video
    from .video import FrameRange, VideoSource

    out = os.path.abspath(args.out)
    for given in (args.out, args.csv):
        folder = os.path.dirname(os.path.abspath(given)) if given else ""
        if given and not os.path.isdir(folder):
            print(f"error: the folder of {given} ({folder}) does not exist", file=sys.stderr)
            return EXIT_USAGE
    if args.csv and not args.model:
        print("error: --csv needs --model: the CSV's ARKit columns come from an .nvf model's blend shapes",
              file=sys.stderr)
        return EXIT_USAGE
    model = None
    if args.model:
        io_nv3dmm = sibling("io_nv3dmm")
        try:
            model = io_nv3dmm.read(args.model)
        except (OSError, ValueError) as error:
            print(f"error: {args.model}: {error}", file=sys.stderr)
            return EXIT_INPUT
    try:
        smoothing = None if args.no_smooth else OneEuroParams(args.min_cutoff, args.beta)
        options = TrackOptions(frames=FrameRange(args.start, args.stop, args.stride), batch_size=args.batch,
                               smoothing=smoothing, identity_frame=args.identity_frame, face_box=args.box)
    except (ValueError, AnimationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        source = VideoSource(args.clip, sequence_fps=args.sequence_fps)
        errors = sibling("tddfa_v3.errors")  # the tddfa_v3 beside this package, under its name
        pipeline = sibling("tddfa_v3.pipeline")
    except AnimationError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    except ImportError as error:
        print(f"error: {error} (run from the repository root with requirements-reconstruction.txt installed)",
              file=sys.stderr)
        return EXIT_SETUP
    try:
        reconstructor = pipeline.Reconstructor(args.assets, device=args.device, backbone=args.backbone,
                                               cache_dir=args.cache_dir)
    except (errors.AssetError, errors.DependencyError, errors.DeviceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_SETUP
    try:
        track = track_video(source, reconstructor, options)
    except (AnimationError, errors.ReconstructionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    summary = {"out": out, "frames": len(track), "skipped": track.skipped, "detections": track.detections,
               "reference_frame": track.reference_frame, "video_fps": track.fps,
               "frames_per_second": round((len(track) + len(track.skipped)) / max(track.seconds, 1e-9), 2)}
    take = None
    if model is not None:
        from .maxine import face_shapes, solve_maxine
        from .live_link import write_csv

        frame = track.reference_frame
        try:
            image = next(img for _, img in source.frames(FrameRange(frame, frame + 1)))
            result = reconstructor.reconstruct(image, landmarks5=track.reference_landmarks5)
            solved = solve_maxine(model, None, track, face_shapes(reconstructor, result), smoothing=smoothing)
        except (AnimationError, errors.ReconstructionError) as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_INPUT
        take = solved.take(track)
        summary["model_fit"] = {k: v for k, v in solved.fit_report.items() if isinstance(v, (int, float, str))}
    track.save_npz(out)
    if take is not None and args.csv:
        write_csv(take, args.csv)
        summary["csv"] = os.path.abspath(args.csv)
    print(json.dumps(summary))
    return EXIT_OK


def _check_csv(args: argparse.Namespace) -> int:
    try:
        take = read_csv(args.csv)
        frames = take.frames(args.fps)
    except AnimationError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    print(json.dumps({"rows": len(take), "first": take.timecodes[0], "last": take.timecodes[-1],
                      "seconds": round(float(frames[-1] - frames[0]) / args.fps, 3), "decimals": take.decimals}))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _video(args) if args.command == "video" else _check_csv(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
