# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Video to animation speed: frames per second of the per-photo path against the
video path on the same clip, per backbone, measured side by side in one run.

    .venv/bin/python benchmarks/bench_video.py [--assets DIR] [--device auto|cpu|cuda]
        [--frames 300] [--size 1280x720] [--photo-frames N] [--batch 16]
        [--backbones resnet50,mobilenetv3] [--gpu-batch 256]

- per-photo path: `Reconstructor.reconstruct(frame)` on each frame (detection,
  two landmark passes, alignment, regression of one crop, face model with
  visibility), as photos are reconstructed; timed on the first --photo-frames
  frames (default: all);
- video path: `animation.tracking.track_video` over the whole clip (detection
  on the first frame, then near the tracked face when it is checked or lost,
  one landmark pass from the previous frame's points,
  regression batched by --batch, identity locked, One Euro smoothing; its
  networks with BatchNorm folded into the convolutions), decoding included;
- on a GPU, also frames/s of the video path's regression stage alone (its
  folded network), batched (--gpu-batch crops per pass), against the 500
  frames/s goal.

The clip is drawn by the script (a face moving, turning and scaling, written
as MJPG at --size). Without --assets a synthetic assets folder (random weights
of the real network layouts, a small face model) is used. Its detector does not
see a drawn face, so with it the per-photo path times the detector on the
frame and then reconstructs from the face's box (the same work as a photo
whose face is found), and the video path's detector runs RetinaFace (its full
cost) and answers with the drawn face's box. Random landmark nets wander, so
the video path re-detects more often than with real weights (the detections
and skipped frames are printed): its figure is a lower bound.
With real assets both paths run exactly as users run them.
Goal: the video path at >= 5x the per-photo path's frame rate.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))  # to import checkout_addon
from checkout_addon import import_checkout  # noqa: E402

import cv2  # noqa: E402
import torch  # noqa: E402

import_checkout()
from nv3dmm_face_tools.animation.tracking import NEAR_CANVAS, TrackOptions, track_video  # noqa: E402
from nv3dmm_face_tools.animation.video import FrameRange, VideoSource  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.pipeline import Reconstructor  # noqa: E402

VIDEO_RATIO_GOAL = 5.0
GPU_REGRESSION_GOAL = 500.0


def draw_frame(i: int, width: int, height: int) -> np.ndarray:
    """BGR frame i: a face moving, turning and scaling, the mouth opening and closing."""
    image = np.full((height, width, 3), (160, 120, 90), np.uint8)
    unit = height / 720.0
    s = unit * (1.0 + 0.15 * np.sin(i / 25))
    cx = int(width / 2 + 120 * unit * np.sin(i / 40))
    cy = int(height / 2 + 30 * unit * np.cos(i / 33))
    turn = int(25 * s * np.sin(i / 20))
    cv2.ellipse(image, (cx, cy), (int(150 * s), int(200 * s)), 0, 0, 360, (150, 178, 222), -1)
    for ex in (cx - int(60 * s) + turn, cx + int(60 * s) + turn):
        cv2.ellipse(image, (ex, cy - int(40 * s)), (int(25 * s), int(12 * s)), 0, 0, 360, (250, 250, 250), -1)
        cv2.circle(image, (ex, cy - int(40 * s)), int(9 * s), (60, 110, 70), -1)
    cv2.ellipse(image, (cx + turn, cy + int(90 * s)), (int(50 * s), int((6 + 20 * abs(np.sin(i / 9))) * s)),
                0, 0, 360, (60, 60, 170), -1)
    return image


def write_clip(path: Path, frames: int, width: int, height: int, fps: float = 30.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for i in range(frames):
        writer.write(draw_frame(i, width, height))
    writer.release()
    return path


def _sync(rec: Reconstructor) -> None:
    if rec.device.type == "cuda":
        torch.cuda.synchronize(rec.device)


def face_box(i: int, width: int, height: int) -> tuple[float, float, float, float]:
    """The drawn face's box on frame i (what a detector that sees it would give)."""
    mask = np.abs(draw_frame(i, width, height).astype(np.int32) - np.array([150, 178, 222])).sum(axis=2) < 10
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def per_photo_fps(rec: Reconstructor, source: VideoSource, count: int, synthetic: bool) -> float:
    frames = [image for _, image in source.frames(FrameRange(0, count))]

    def one(i: int, image: np.ndarray) -> None:
        if not synthetic:
            rec.reconstruct(image)
            return
        rec.detect_faces([image])
        rec.reconstruct(image, face_box=face_box(i, source.width, source.height))

    one(0, frames[0])                                # warm-up
    _sync(rec)
    start = time.perf_counter()
    for i, image in enumerate(frames):
        one(i, image)
    _sync(rec)
    return len(frames) / (time.perf_counter() - start)


def drawn_face_detector(rec: Reconstructor, frame_hw: tuple[int, int]) -> Any:
    """For synthetic weights: runs the video path's RetinaFace (folded; its full cost: a 512 canvas
    for whole frames, a NEAR_CANVAS one for the regions near a tracked face, anything smaller than
    a `frame_hw` frame) and answers with the drawn face's box."""
    def detect(images: Any) -> list[Any]:
        near = any(tuple(image.shape[:2]) != tuple(frame_hw) for image in images)
        rec.detect_faces(list(images), folded=True, **({"size": NEAR_CANVAS} if near else {}))
        found = []
        for image in images:
            mask = np.abs(image.astype(np.int32) - np.array([222, 178, 150])).sum(axis=2) < 40
            ys, xs = np.nonzero(mask)
            found.append((np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float64), 1.0)
                         if xs.size else None)
        return found
    return detect


def video_fps(rec: Reconstructor, source: VideoSource, batch: int, synthetic: bool) -> tuple[float, Any]:
    detector = drawn_face_detector(rec, (source.height, source.width)) if synthetic else None
    options = TrackOptions(batch_size=batch)
    warm = TrackOptions(frames=FrameRange(0, min(batch, source.frame_count)), batch_size=batch)
    track_video(source, rec, warm, detector=detector)
    _sync(rec)
    start = time.perf_counter()
    track = track_video(source, rec, options, detector=detector)
    _sync(rec)
    return source.frame_count / (time.perf_counter() - start), track


def regression_fps(rec: Reconstructor, batch: int, repeat: int = 5) -> float:
    """Frames/s of the video path's regression stage alone (its folded network), `batch` crops a pass."""
    crops = torch.rand(batch, 3, 224, 224, device=rec.device)
    rec.regress(crops, folded=True)
    _sync(rec)
    start = time.perf_counter()
    for _ in range(repeat):
        rec.regress(crops, folded=True)
    _sync(rec)
    return batch * repeat / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", default=None)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--photo-frames", type=int, default=0, help="frames timed on the per-photo path (0: all)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument("--backbones", default="resnet50,mobilenetv3")
    parser.add_argument("--cpu-threads", type=int, default=0, help="torch threads on the CPU (0: torch's default)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        assets = args.assets
        synthetic = assets is None
        if assets is None:
            from nv3dmm_face_tools.tddfa_v3.synthetic_face import write_synthetic_assets
            assets = str(folder / "assets")
            write_synthetic_assets(assets, seed=7, fixtures_dir=None)
            print("assets: synthetic (random weights of the real network layouts, small face model)")
        clip = write_clip(folder / "clip.avi", args.frames, width, height)
        source = VideoSource(clip)
        print(f"clip: {source.frame_count} frames, {source.width}x{source.height}, {source.fps:g} fps (MJPG)")
        photo_frames = args.photo_frames or source.frame_count
        for backbone in args.backbones.split(","):
            rec = Reconstructor(assets, device=args.device, backbone=backbone, cache_dir=folder / "cache")
            device = rec.device_name if hasattr(rec, "device_name") else str(rec.device)
            photo = per_photo_fps(rec, source, min(photo_frames, source.frame_count), synthetic)
            video, track = video_fps(rec, source, args.batch, synthetic)
            ratio = video / photo
            print(f"{backbone} on {device}: per-photo path {photo:.2f} frames/s ({min(photo_frames, source.frame_count)} "
                  f"frames) | video path {video:.2f} frames/s ({source.frame_count} frames, batch {args.batch}, "
                  f"{track.detections} detection(s), {len(track.skipped)} skipped) | ratio {ratio:.1f}x "
                  f"(goal >= {VIDEO_RATIO_GOAL:g}x: {'met' if ratio >= VIDEO_RATIO_GOAL else 'NOT met'})")
            if rec.device.type == "cuda":
                fps = regression_fps(rec, args.gpu_batch)
                print(f"{backbone} regression stage batched ({args.gpu_batch} crops): {fps:.0f} frames/s "
                      f"(goal >= {GPU_REGRESSION_GOAL:g}: {'met' if fps >= GPU_REGRESSION_GOAL else 'NOT met'})")
            else:
                fps = regression_fps(rec, args.batch, repeat=2)
                print(f"{backbone} regression stage batched ({args.batch} crops, CPU): {fps:.1f} frames/s "
                      "(the GPU goal is printed on a GPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
