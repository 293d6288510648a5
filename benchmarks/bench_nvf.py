# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Speed of the .nvf codec, measured side by side in one run.

    python benchmarks/bench_nvf.py [FILE] [--repeat N] [--rounds R] [--cpu C|none]

Everything runs on one CPU (C, default the first this process may use; NVIDIA's
harness, a child process, inherits it) where the OS allows it (Linux): moves
between CPUs cost both sides cold caches at random, and made single rounds up
to 1.45x slower on a 2-CPU machine. `--cpu none` leaves the placement to the OS.

Part 1, side by side with NVIDIA's own C++ reader and writer (FaceIO.cpp, built
from $NVIDIA_FACEIO or ../shared/tools/nvidia-faceio with its build.sh; skipped,
saying why, without it or g++): for face_model2.nvf (or FILE) and a
partition-heavy model built here (134 partitions with MTRL only sharing a dozen
materials, names without NUL padding, 51 IBUG pairs), R rounds that each time N
reads and N writes to memory with NVIDIA's `nvf_check time` and then N of ours
(io_nv3dmm.read(path) interleaved with a bare read of the file's bytes, and
to_bytes); times are medians over rounds of per-round medians, ratios to NVIDIA
medians over rounds of each round's ratio (with the rounds' quartiles: the
machine's speed drifts between rounds, both sides within one). Goals:
read <= 1.0x NVIDIA's and <= 2x a bare read, write to memory <= 1.0x NVIDIA's
(its writer writes to /dev/shm).

Part 2, the codec alone on FILE:
FILE defaults to $NVF_SAMPLES/face_model2.nvf when NVF_SAMPLES is set, else the
synthetic demo model written to a temporary file. Prints medians over many
repetitions (page cache warm) of: a bare read of the file's bytes, io_nv3dmm.read
from the path and from bytes, to_bytes, write to a file object and write to a
path (atomic: temporary file, fsync, os.replace), and the read / bare-read ratio
against the 2x target, and the ratios to NVIDIA's reader and writer as measured
in part 1 (without the harness: earlier figures, 0.45 ms and 1.9 ms for
face_model2.nvf).
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))  # to import checkout_addon
from checkout_addon import import_checkout  # noqa: E402

import_checkout()
import nv3dmm_face_tools.io_nv3dmm as nvf  # noqa: E402

NVIDIA_READ_MS = 0.45
NVIDIA_WRITE_MS = 1.9
REPO_ROOT = Path(__file__).resolve().parent.parent


def _nvidia_binary() -> tuple[Path | None, str]:
    """NVIDIA's reader/writer harness, built (idempotent), or None and why not."""
    folder = Path(os.environ.get("NVIDIA_FACEIO") or REPO_ROOT.parent / "shared" / "tools" / "nvidia-faceio")
    if not (folder / "build.sh").is_file():
        return None, f"no NVIDIA harness at {folder} (set NVIDIA_FACEIO)"
    if shutil.which("g++") is None:
        return None, "no C++ compiler (g++) to build NVIDIA's reader"
    build_dir = Path(tempfile.gettempdir()) / "nvidia-faceio-build"
    run = subprocess.run(["bash", str(folder / "build.sh"), str(build_dir)], capture_output=True, text=True)
    if run.returncode != 0:
        return None, f"building NVIDIA's reader failed: {run.stderr[-300:]}"
    return Path(run.stdout.split()[-1]), ""


def _nvidia_time(binary: Path, path: str, n: int) -> tuple[float, float | None]:
    """Median ms of n NVIDIA reads and n NVIDIA writes (None when its writer cannot write the model)."""
    run = subprocess.run([str(binary), "time", path, str(n)], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(run.stdout)
    write = result.get("write_us")
    return result["read_us"]["median"] / 1e3, (write["median"] / 1e3 if write else None)


def _partition_model(base: "nvf.FaceModel") -> "nvf.FaceModel":
    """`base` with 134 partitions (MTRL only, a dozen shared materials whose names fill
    whole 4-byte words, so no NUL padding) and 51 IBUG pairs."""
    import dataclasses

    triangles = base.triangle_count
    materials = [f"Material{i:04d}" for i in range(12)]          # 12 bytes: no NUL
    count = 134
    step = max(triangles // count, 1)
    parts = []
    for i in range(count):
        start = min(i * step, triangles)
        faces = step if i < count - 1 else max(triangles - start, 0)
        faces = min(faces, triangles - start)
        parts.append(nvf.Partition(index=i, face_start=start, face_count=faces, vertex_start=3 * start,
                                   vertex_count=3 * faces, smoothing_group=i % 4, name=None,
                                   material=materials[i % len(materials)]))
    ibug = base.ibug
    if ibug is not None:
        ibug = nvf.LandmarkSet(pairs=ibug.pairs[:51], right_contour=ibug.right_contour,
                               left_contour=ibug.left_contour)
    return dataclasses.replace(base, partitions=parts, ibug=ibug, source_layout=None, toc=None)


def _interleaved(path: str, n: int) -> tuple[list[float], list[float]]:
    """n bare reads of the file's bytes each followed by io_nv3dmm.read(path), in seconds.
    Each result is freed after its clock reading (NVIDIA's harness likewise stops its
    clock before its model is destroyed)."""
    bare, ours = [], []
    for _ in range(n):
        started = time.perf_counter()
        data = _bare_read(path)
        middle = time.perf_counter()
        del data
        restarted = time.perf_counter()
        model = nvf.read(path)
        ended = time.perf_counter()
        del model
        bare.append(middle - started)
        ours.append(ended - restarted)
    return bare, ours


def _quartiles(values: list[float]) -> str:
    low, _, high = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return f"{low:.2f}-{high:.2f}"


def _side_by_side(binary: Path, path: str, label: str, n: int, rounds: int) -> dict[str, float]:
    model = nvf.read(path)
    for _ in range(20):
        _bare_read(path)
        nvf.read(path)
        nvf.to_bytes(model)
    keys = ("nv_read", "nv_write", "read", "bare", "ratio", "write", "read_vs_nv", "write_vs_nv")
    per_round: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(rounds):
        nv_read, nv_write = _nvidia_time(binary, path, n)
        gc.collect()
        bare, ours = _interleaved(path, n)
        read = statistics.median(ours) * 1e3
        write = _median_ms(lambda: nvf.to_bytes(model), n)
        per_round["nv_read"].append(nv_read)
        per_round["bare"].append(statistics.median(bare) * 1e3)
        per_round["read"].append(read)
        per_round["ratio"].append(statistics.median([o / b for o, b in zip(ours, bare)]))
        per_round["write"].append(write)
        per_round["read_vs_nv"].append(read / nv_read)
        if nv_write is not None:
            per_round["nv_write"].append(nv_write)
            per_round["write_vs_nv"].append(write / nv_write)
    figures = {k: statistics.median(v) for k, v in per_round.items() if v}
    size = os.path.getsize(path)
    parts = len(model.partitions or [])
    print(f"{label}: {size:,} bytes, {model.vertex_count:,} vertices, {parts} partitions, "
          f"{len(model.blend_shapes.names) if model.blend_shapes else 0} blend shapes")
    read_vs_nv = figures["read_vs_nv"]
    print(f"  NVIDIA read          {figures['nv_read']:8.3f} ms")
    print(f"  io_nv3dmm.read(path) {figures['read']:8.3f} ms   {read_vs_nv:.2f}x NVIDIA's "
          f"(goal <= 1.0x: {'met' if read_vs_nv <= 1.0 else 'NOT met'}; rounds' quartiles "
          f"{_quartiles(per_round['read_vs_nv'])}), {figures['ratio']:.2f}x a bare read "
          f"(goal <= 2x: {'met' if figures['ratio'] <= 2.0 else 'NOT met'})")
    print(f"  bare read            {figures['bare']:8.3f} ms")
    if "nv_write" in figures:
        write_vs_nv = figures["write_vs_nv"]
        print(f"  NVIDIA write (tmpfs) {figures['nv_write']:8.3f} ms")
        print(f"  io_nv3dmm.to_bytes   {figures['write']:8.3f} ms   {write_vs_nv:.2f}x NVIDIA's "
              f"(goal <= 1.0x: {'met' if write_vs_nv <= 1.0 else 'NOT met'})")
    else:
        print(f"  io_nv3dmm.to_bytes   {figures['write']:8.3f} ms   (NVIDIA's writer cannot write this model)")
    return figures


def _part1(path: str, n: int, rounds: int, temp: str, placement: str) -> dict[str, float] | None:
    """Part 1; FILE's side-by-side figures, or None when NVIDIA's reader is not there."""
    binary, why = _nvidia_binary()
    if binary is None:
        print(f"side by side with NVIDIA's reader: skipped ({why})")
        return None
    print(f"side by side with NVIDIA's FaceIO.cpp ({binary}), {rounds} rounds of {n}, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, {placement}")
    figures = _side_by_side(binary, path, os.path.basename(path), n, rounds)
    heavy = os.path.join(temp, "partitions.nvf")
    nvf.write(_partition_model(nvf.read(path)), heavy, fsync=False)
    _side_by_side(binary, heavy, "partition-heavy model", n, rounds)
    print()
    return figures


def _median_ms(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e3


def _bare_read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _pin(choice: str) -> str:
    """Pins this process (and the harness it starts) to one CPU; says where it runs."""
    allowed = getattr(os, "sched_getaffinity", None)
    if choice == "none" or allowed is None:
        return "CPUs chosen by the OS"
    cpus = sorted(allowed(0))
    try:
        cpu = cpus[0] if choice == "first" else int(choice)
    except ValueError:
        raise SystemExit(f"--cpu {choice}: give a CPU number, 'first' or 'none'") from None
    if cpu not in cpus:
        raise SystemExit(f"--cpu {cpu}: this process may only use CPUs {cpus}")
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", help="an .nvf file (default: see above)")
    parser.add_argument("--repeat", type=int, default=300, help="repetitions per measurement (default 300)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds side by side with NVIDIA (default 15)")
    parser.add_argument("--nvidia-only", action="store_true", help="only part 1 (side by side with NVIDIA)")
    parser.add_argument("--cpu", default="first",
                        help="the CPU to run on: a number, 'first' (default) or 'none' (no pinning)")
    args = parser.parse_args()
    placement = _pin(args.cpu)

    temp_dir = tempfile.TemporaryDirectory()
    if args.file:
        path = args.file
        source = "given file"
    elif os.environ.get("NVF_SAMPLES") and (Path(os.environ["NVF_SAMPLES"]) / "face_model2.nvf").is_file():
        path = str(Path(os.environ["NVF_SAMPLES"]) / "face_model2.nvf")
        source = "NVF_SAMPLES"
    else:
        from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model

        path = os.path.join(temp_dir.name, "demo.nvf")
        nvf.write(build_demo_model(), path)
        source = "synthetic demo model"
    side = _part1(path, max(args.repeat // 3, 20), max(args.rounds, 1), temp_dir.name, placement)
    if args.nvidia_only:
        temp_dir.cleanup()
        return 0
    data = _bare_read(path)
    model = nvf.read(path)
    out_path = os.path.join(temp_dir.name, "out.nvf")
    repeat = args.repeat

    for _ in range(20):                         # warm the page cache and the code paths
        _bare_read(path)
        nvf.read(path)
        nvf.to_bytes(model)

    gc.collect()
    # Interleave bare and codec reads so both see the same machine state.
    bare, ours = _interleaved(path, repeat)
    bare_ms = statistics.median(bare) * 1e3
    read_ms = statistics.median(ours) * 1e3
    ratio = statistics.median([o / b for o, b in zip(ours, bare)])
    parse_ms = _median_ms(lambda: nvf.read(data), repeat)
    to_bytes_ms = _median_ms(lambda: nvf.to_bytes(model), repeat)
    stream_ms = _median_ms(lambda: nvf.write(model, io.BytesIO()), repeat)
    path_ms = _median_ms(lambda: nvf.write(model, out_path), max(20, repeat // 10))
    nosync_ms = _median_ms(lambda: nvf.write(model, out_path, fsync=False), max(50, repeat // 3))
    plain_path = os.path.join(temp_dir.name, "plain.nvf")

    def bare_write() -> None:
        with open(plain_path, "wb") as handle:
            handle.write(data)
    bare_write_ms = _median_ms(bare_write, max(50, repeat // 3))

    def read_and_gather() -> None:
        loaded = nvf.read(path)
        if loaded.blend_shapes is not None:
            loaded.blend_shapes.deltas
    gather_ms = _median_ms(read_and_gather, repeat)
    identical = nvf.to_bytes(model) == data

    print(f"file: {path} ({source}), {len(data):,} bytes, {model.vertex_count:,} vertices, "
          f"{model.mode_count} modes, {len(model.blend_shapes.names) if model.blend_shapes else 0} blend shapes")
    print(f"python {sys.version.split()[0]}, {repeat} repetitions, medians, {placement}")
    print(f"  bare read (open + read)          {bare_ms:8.3f} ms")
    print(f"  io_nv3dmm.read(path)             {read_ms:8.3f} ms   ratio to bare read {ratio:.2f}x "
          f"(target <= 2x: {'met' if ratio <= 2.0 else 'NOT met'})")
    print(f"  io_nv3dmm.read(bytes) (parse)    {parse_ms:8.3f} ms")
    print(f"  read(path) + first use of the blend-shape deltas (their one copy) "
          f"{gather_ms:.3f} ms, {gather_ms / bare_ms:.2f}x bare read")
    print(f"  io_nv3dmm.to_bytes(model)        {to_bytes_ms:8.3f} ms")
    print(f"  io_nv3dmm.write(model, BytesIO)  {stream_ms:8.3f} ms")
    print(f"  io_nv3dmm.write(model, path)     {path_ms:8.3f} ms   (atomic: temp file + fsync + os.replace)")
    print(f"  write(model, path, fsync=False)  {nosync_ms:8.3f} ms   (atomic, no flush to disk)")
    print(f"  bare write of the same bytes     {bare_write_ms:8.3f} ms   (open + write, for scale: "
          f"the file system dominates file writes)")
    print(f"  byte-identical round trip: {identical}")
    if side is not None and "nv_write" in side:
        nv_read, nv_write, where = side["nv_read"], side["nv_write"], "measured in part 1 of this run"
    else:
        nv_read, nv_write, where = NVIDIA_READ_MS, NVIDIA_WRITE_MS, "earlier figures for face_model2.nvf"
    print(f"NVIDIA's C++ FaceIO ({where}): read {nv_read:.3f} ms, write {nv_write:.3f} ms")
    print(f"  read(path) vs NVIDIA read:  {read_ms / nv_read:.2f}x its time")
    print(f"  to_bytes vs NVIDIA write:   {to_bytes_ms / nv_write:.2f}x its time; "
          f"write(path, fsync=False) {nosync_ms / nv_write:.2f}x; with fsync {path_ms / nv_write:.2f}x")
    temp_dir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
