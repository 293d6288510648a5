# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""3DDFA-V3 speed: per-stage and end-to-end time per photo, batch throughput.

    .venv/bin/python benchmarks/bench_tddfa.py [--device auto|cpu|cuda] [--batch N]
        [--assets DIR] [--backbone resnet50|mobilenetv3] [--photo FILE] [--tf32] [--compile]
        [--repeat N] [--skip-cpu] [--mesh real|small] [--cpu-threads N] [--cpu-batch N]

Prints, for the CPU and (when CUDA is available and --device is not cpu) the
GPU: warm per-stage times for one photo (detection, landmarks x2, alignment,
regression, face model + extras) and end to end, photos/s end to end (with
detection) for a batch (--cpu-batch on the CPU, --batch on the GPU), and
frames/s for batched regression + face model (the CPU batch; B = 64/128/256
crops on the GPU). Targets are printed next to the figures.

Without --assets a synthetic assets folder (random weights of the real
network layouts, a small synthetic face model) is written to a temporary
folder: network timings are those of the real architectures; the face-model
stage is cheaper than with the real 35,709-vertex model. With
TDDFA_V3_FIXTURES set, its key lists and face model are used.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))  # to import checkout_addon
from checkout_addon import import_checkout  # noqa: E402

import torch  # noqa: E402

import_checkout()
from nv3dmm_face_tools.tddfa_v3 import preprocess as P  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.backbones import BACKBONE_NAMES, DEFAULT_BACKBONE  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.errors import NoFaceError  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.loaded import clear_cache  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.pipeline import Reconstructor  # noqa: E402

CPU_TARGET_S = 1.0
GPU_PHOTOS_TARGET = 100.0
GPU_FRAMES_TARGET = 500.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: Process CPU seconds of the last `_timed` call's median run (all threads together).
LAST_CPU_SECONDS = [0.0]


def _timed(function: Callable[[], Any], device: torch.device, repeat: int) -> tuple[float, Any]:
    """Median wall time of `repeat` warm runs (after one warm-up) and the last result.

    Also records the process CPU time of the median run in LAST_CPU_SECONDS: on
    a machine shared with other work, CPU time far below wall time x threads
    shows the wall figure is inflated by contention.
    """
    result = function()
    _sync(device)
    runs = []
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = function()
        _sync(device)
        runs.append((time.perf_counter() - start, time.process_time() - cpu_start))
    runs.sort()
    wall, cpu = runs[len(runs) // 2]
    LAST_CPU_SECONDS[0] = cpu
    return wall, result


def _photo(args: argparse.Namespace) -> tuple[np.ndarray, str]:
    if args.photo:
        return P.load_photo(args.photo), args.photo
    fixtures = os.environ.get("TDDFA_V3_FIXTURES")
    if fixtures and (Path(fixtures) / "retinaface.npz").is_file():
        with np.load(Path(fixtures) / "retinaface.npz") as data:
            return np.ascontiguousarray(data["image_uint8"]), "the fixtures' 640x480 photo"
    # A smooth 640x480 pattern with a bright oval where a face would be.
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float64)
    oval = np.exp(-(((xx - 320) / 90) ** 2 + ((yy - 220) / 120) ** 2))
    image = np.stack([90 + 140 * oval + 20 * np.sin(xx / 23), 70 + 110 * oval + 20 * np.cos(yy / 17),
                      60 + 90 * oval + 10 * np.sin((xx + yy) / 31)], axis=2)
    return np.clip(image, 0, 255).astype(np.uint8), "a generated 640x480 pattern"


def _assets(args: argparse.Namespace, workdir: Path) -> tuple[str, str]:
    if args.assets:
        return args.assets, f"assets {args.assets}"
    from nv3dmm_face_tools.tddfa_v3.synthetic_face import generate_face_model_dict, write_face_model_npy, write_synthetic_assets

    fixtures = os.environ.get("TDDFA_V3_FIXTURES") or None
    if fixtures and not Path(fixtures).is_dir():
        fixtures = None
    folder = workdir / "assets"
    write_synthetic_assets(folder, seed=1, fixtures_dir=fixtures)
    what = "synthetic assets (random weights of the real layouts" + (", fixtures' key lists" if fixtures else "")
    if args.mesh == "real":
        # A mesh as large as the real model, so the face-model stage costs what it will.
        model = generate_face_model_dict(1, 189, 189)
        write_face_model_npy(folder / "face_model.npy", model)
        what += f"; synthetic face model of real size: {model['point_buf'].shape[0]} vertices, " \
                f"{model['tri'].shape[0]} triangles)"
    else:
        what += "; small synthetic face model)"
    return str(folder), what


def _stage_times(rec: Reconstructor, image: np.ndarray, repeat: int) -> dict[str, float]:
    """Warm per-stage times for one photo, each stage fed by the previous one's real output."""
    device = rec.device
    times: dict[str, tuple[float, float]] = {}
    wall, found = _timed(lambda: rec.detect_faces([image]), device, repeat)
    times["detection"] = (wall, LAST_CPU_SECONDS[0])
    height, width = image.shape[:2]
    box = found[0][0] if found[0] is not None else np.array([width * 0.3, height * 0.2, width * 0.7, height * 0.75])
    wall, lm106 = _timed(lambda: rec.landmarks106([image], [box]), device, repeat)
    times["landmarks x2"] = (wall, LAST_CPU_SECONDS[0])
    _, flipped = P.five_points(lm106[0], height)
    wall, aligned = _timed(lambda: P.align_photo(image, flipped, rec.template5), device, repeat)
    times["alignment"] = (wall, LAST_CPU_SECONDS[0])
    wall, alpha = _timed(lambda: rec.regress(rec.crops_to_tensor(aligned.crop[None])), device, repeat)
    times["regression"] = (wall, LAST_CPU_SECONDS[0])
    params = aligned.trans_params[None]
    wall, _ = _timed(lambda: rec.face_model_outputs(alpha, params), device, repeat)
    times["face model + extras"] = (wall, LAST_CPU_SECONDS[0])
    return times


def _e2e(rec: Reconstructor, images: list[np.ndarray], repeat: int) -> tuple[float, str]:
    """Median time of one reconstruct_batch over `images`, with detection when it finds faces."""
    try:
        rec.reconstruct_batch(images[:1])
        boxes = None
        note = "with detection"
    except NoFaceError:
        height, width = images[0].shape[:2]
        boxes = [np.array([width * 0.3, height * 0.2, width * 0.7, height * 0.75])] * len(images)
        note = "detector found no face in this photo: given box, detection time added"
    seconds, _ = _timed(lambda: rec.reconstruct_batch(images, boxes), rec.device, repeat)
    if boxes is not None:
        cpu = LAST_CPU_SECONDS[0]
        extra, _ = _timed(lambda: rec.detect_faces(images), rec.device, repeat)
        seconds += extra
        LAST_CPU_SECONDS[0] += cpu
    return seconds, note


def _print_stages(title: str, times: dict[str, tuple[float, float]], e2e: float, e2e_cpu: float, note: str,
                  target: str) -> None:
    print(f"\n{title}")
    print(f"  {'stage':<22s} {'wall':>9s}    {'process CPU':>11s}")
    for name, (seconds, cpu) in times.items():
        print(f"  {name:<22s} {seconds * 1000:9.1f} ms {cpu * 1000:9.1f} ms")
    total = sum(wall for wall, _ in times.values())
    total_cpu = sum(cpu for _, cpu in times.values())
    print(f"  {'sum of stages':<22s} {total * 1000:9.1f} ms {total_cpu * 1000:9.1f} ms")
    print(f"  {'end to end':<22s} {e2e * 1000:9.1f} ms {e2e_cpu * 1000:9.1f} ms / photo ({note})")
    print(f"  target {target}")


def _throughput(rec: Reconstructor, image: np.ndarray, batch: int, crop_batches: tuple[int, ...], repeat: int,
                targets: tuple[float, float] | None) -> None:
    """Photos/s end to end (with detection) for a batch of copies of `image`, and frames/s of
    batched regression + face model on random crops, with the targets when given."""
    def verdict(value: float, target: float | None) -> str:
        if target is None:
            return ""
        return f"   target >= {target:.0f}  [{'met' if value >= target else 'NOT met'}]"

    images = [image.copy() for _ in range(batch)]
    seconds, note = _e2e(rec, images, repeat)
    rate = batch / seconds
    print(f"\n  end to end, batch of {batch}: {seconds:.3f} s -> {rate:8.1f} photos/s ({note})"
          + verdict(rate, targets[0] if targets else None))
    generator = torch.Generator(device="cpu").manual_seed(0)
    for size in crop_batches:
        crops = torch.rand((size, 3, 224, 224), generator=generator).to(rec.device)
        seconds, _ = _timed(lambda: rec.regress_batch(crops), rec.device, repeat)
        fps = size / seconds
        print(f"  batched regression + face model, B={size:3d}: {seconds * 1000:8.1f} ms -> "
              f"{fps:8.1f} frames/s" + verdict(fps, targets[1] if targets else None))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--batch", type=int, default=128, help="photos per batch for the GPU throughput figure")
    parser.add_argument("--cpu-batch", type=int, default=8, help="photos / crops per batch for the CPU throughput")
    parser.add_argument("--assets", help="a real 3DDFA-V3 assets folder (default: synthetic)")
    parser.add_argument("--backbone", choices=BACKBONE_NAMES, default=DEFAULT_BACKBONE)
    parser.add_argument("--mesh", choices=("real", "small"), default="real",
                        help="synthetic face model size: real (~35.7k vertices, default) or small (2009)")
    parser.add_argument("--photo", help="photo to time (default: the fixtures' photo or a generated one)")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 on the GPU (faster, less exact)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the networks on the GPU (experimental; compiling takes minutes)")
    parser.add_argument("--skip-cpu", action="store_true", help="with a GPU, time only the GPU")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure (median)")
    parser.add_argument("--cpu-threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)

    image, photo_what = _photo(args)
    with tempfile.TemporaryDirectory(prefix="bench_tddfa_") as tmp:
        assets, assets_what = _assets(args, Path(tmp))
        print("3DDFA-V3 benchmark")
        print(f"  torch {torch.__version__}, {torch.get_num_threads()} CPU threads, backbone {args.backbone}")
        print(f"  {assets_what}")
        print(f"  photo: {photo_what}, {image.shape[1]}x{image.shape[0]}")

        want_cuda = args.device in ("auto", "cuda") and torch.cuda.is_available()
        if args.device == "cuda" and not want_cuda:
            print("error: --device cuda but no CUDA GPU is available", file=sys.stderr)
            return 2

        if args.device == "cpu" or (args.device == "auto" and not (args.skip_cpu and want_cuda)):
            started = time.perf_counter()
            rec = Reconstructor(assets, device="cpu", backbone=args.backbone, cache_dir=Path(tmp) / "cache")
            load = time.perf_counter() - started
            times = _stage_times(rec, image, args.repeat)
            e2e, note = _e2e(rec, [image], args.repeat)
            e2e_cpu = LAST_CPU_SECONDS[0]
            threads = torch.get_num_threads()
            _print_stages(f"CPU (loaded in {load:.1f} s), one photo, warm, median of {args.repeat}:",
                          times, e2e, e2e_cpu, note, f"<= {CPU_TARGET_S:.1f} s wall  "
                          f"[{'met' if e2e <= CPU_TARGET_S else 'NOT met'}]")
            if e2e_cpu < 0.6 * e2e * min(threads, os.cpu_count() or 1):
                print(f"  note: process CPU time is well below wall time x {threads} threads: the machine is "
                      "busy with other work, so wall times are inflated")
            cpu_batch = max(1, args.cpu_batch)
            _throughput(rec, image, cpu_batch, (cpu_batch,), args.repeat, None)
            del rec
            clear_cache()

        if want_cuda:
            rec = Reconstructor(assets, device="cuda", backbone=args.backbone, cache_dir=Path(tmp) / "cache",
                                tf32=args.tf32, fallback_to_cpu=False, compile_networks=args.compile)
            print(f"\nGPU: {rec.device_name}, TF32 {'on' if args.tf32 else 'off'}, channels_last, cudnn.benchmark"
                  f"{', torch.compile' if args.compile else ''}")
            times = _stage_times(rec, image, args.repeat)
            e2e, note = _e2e(rec, [image], args.repeat)
            _print_stages("GPU, one photo, warm:", times, e2e, LAST_CPU_SECONDS[0], note,
                          "(latency; throughput below)")

            _throughput(rec, image, max(1, args.batch), (64, 128, 256), args.repeat,
                        (GPU_PHOTOS_TARGET, GPU_FRAMES_TARGET))
            print(f"  peak GPU memory: {torch.cuda.max_memory_allocated(rec.device) / 2**30:.2f} GiB")
        elif args.device == "auto":
            print("\nGPU: none available (CUDA figures skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
