"""Speed of the .nvf codec, measured side by side in one run.

    python benchmarks/bench_nvf.py [FILE] [--repeat N]

FILE defaults to $NVF_SAMPLES/face_model2.nvf when NVF_SAMPLES is set, else the
synthetic demo model written to a temporary file. Prints medians over many
repetitions (page cache warm) of: a bare read of the file's bytes, io_nv3dmm.read
from the path and from bytes, to_bytes, write to a file object and write to a
path (atomic: temporary file, fsync, os.replace), and the read / bare-read ratio
against the 2x target. NVIDIA's C++ reader and writer (FaceIO.cpp) take about
0.45 ms and 1.9 ms for face_model2.nvf on the project's machines.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import io_nv3dmm as nvf  # noqa: E402

NVIDIA_READ_MS = 0.45
NVIDIA_WRITE_MS = 1.9


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", help="an .nvf file (default: see above)")
    parser.add_argument("--repeat", type=int, default=300, help="repetitions per measurement (default 300)")
    args = parser.parse_args()

    temp_dir = tempfile.TemporaryDirectory()
    if args.file:
        path = args.file
        source = "given file"
    elif os.environ.get("NVF_SAMPLES") and (Path(os.environ["NVF_SAMPLES"]) / "face_model2.nvf").is_file():
        path = str(Path(os.environ["NVF_SAMPLES"]) / "face_model2.nvf")
        source = "NVF_SAMPLES"
    else:
        from io_nv3dmm.demo_model import build_demo_model

        path = os.path.join(temp_dir.name, "demo.nvf")
        nvf.write(build_demo_model(), path)
        source = "synthetic demo model"
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
    bare, ours = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        _bare_read(path)
        middle = time.perf_counter()
        nvf.read(path)
        ended = time.perf_counter()
        bare.append(middle - started)
        ours.append(ended - middle)
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
    print(f"python {sys.version.split()[0]}, {repeat} repetitions, medians")
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
    print(f"NVIDIA's C++ FaceIO (published for face_model2.nvf): read {NVIDIA_READ_MS} ms, "
          f"write {NVIDIA_WRITE_MS} ms")
    print(f"  read(path) vs NVIDIA read:  {read_ms / NVIDIA_READ_MS:.2f}x its time")
    print(f"  to_bytes vs NVIDIA write:   {to_bytes_ms / NVIDIA_WRITE_MS:.2f}x its time; "
          f"write(path, fsync=False) {nosync_ms / NVIDIA_WRITE_MS:.2f}x; with fsync {path_ms / NVIDIA_WRITE_MS:.2f}x")
    temp_dir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
