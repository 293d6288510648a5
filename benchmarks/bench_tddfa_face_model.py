# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Face-model asset loading and per-vertex visibility, on a mesh the size of the real model.

    .venv/bin/python benchmarks/bench_tddfa_face_model.py [--device cpu|cuda] [--repeat N]

Prints, measured side by side in one run:
- loading face_model.npy: the safe pickle path (restricted unpickler + validation),
  numpy's own (unsafe) np.load for comparison, and the plain-array .npz cache;
- `vertex_visibility` (software z-buffer) for a 35,709-vertex / 70,789-triangle
  mesh at B = 1 and B = 8, and the whole `ParametricFaceModel.reconstruct`.
The face model is synthetic (a 189 x 189 grid with the real model's basis sizes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))  # to import checkout_addon
from checkout_addon import import_checkout  # noqa: E402

import_checkout()
from nv3dmm_face_tools.tddfa_v3 import assets, synthetic_face  # noqa: E402

REAL_VERTICES, REAL_TRIANGLES = 35_709, 70_789


def best_of(repeat: int, run: Callable[[], Any]) -> float:
    """Best wall time of `repeat` runs (the least disturbed by other processes)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def best_cpu_of(repeat: int, run: Callable[[], Any]) -> float:
    """Best process CPU time of `repeat` runs (all threads; robust on a busy machine)."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times)


def real_sized_mesh(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A dome mesh with exactly the real model's vertex and triangle counts."""
    rng = np.random.default_rng(seed)
    vertices = synthetic_face.grid_vertices(189, 189)           # 35,721 vertices
    tri = synthetic_face.grid_triangles(189, 189)                # 70,688 triangles
    keep = vertices.shape[0] - (vertices.shape[0] - REAL_VERTICES)
    tri = tri[np.all(tri < keep, axis=1)]
    vertices = vertices[:keep] + rng.normal(0, 0.002, (keep, 3))
    extra = tri[rng.integers(0, tri.shape[0], REAL_TRIANGLES - tri.shape[0])]
    return vertices, np.concatenate([tri, extra])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)

    from nv3dmm_face_tools.tddfa_v3.face_model import ParametricFaceModel
    from nv3dmm_face_tools.tddfa_v3.visibility import auto_visibility_resolution, vertex_visibility

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_dict = synthetic_face.generate_face_model_dict(seed=1, columns=189, rows=189)
        print(f"face_model.npy: {model_dict['point_buf'].shape[0]} vertices, {model_dict['tri'].shape[0]} triangles")
        for label, source_dict in (("float32 source", model_dict),
                                   ("float64 source", {k: (v.astype(np.float64) if isinstance(v, np.ndarray)
                                                           and v.dtype == np.float32 else v)
                                                       for k, v in model_dict.items()})):
            npy = synthetic_face.write_face_model_npy(folder / label.replace(" ", "_") / "face_model.npy",
                                                      source_dict)
            cache = folder / "cache"
            safe = best_of(args.repeat, lambda: assets.load_face_model_arrays(npy, use_cache=False))
            unsafe = best_of(args.repeat, lambda: np.load(npy, allow_pickle=True).item())
            first = best_of(1, lambda: assets.load_face_model_arrays(npy, cache_dir=cache))
            cached = best_of(args.repeat, lambda: assets.load_face_model_arrays(npy, cache_dir=cache))
            assert assets.load_face_model_arrays(npy, cache_dir=cache).loaded_from == "cache"
            print(f"  {label}, {npy.stat().st_size / 1e6:.0f} MB:")
            print(f"    safe pickle load + validation   : {safe * 1e3:8.1f} ms")
            print(f"    np.load(allow_pickle=True)      : {unsafe * 1e3:8.1f} ms  (unsafe, unvalidated; for reference)")
            print(f"    first load (parse + write cache): {first * 1e3:8.1f} ms")
            print(f"    cache load (.npz)               : {cached * 1e3:8.1f} ms  "
                  f"-> {safe / cached:.1f}x faster than the safe pickle path")

        device = torch.device(args.device)
        vertices, tri = real_sized_mesh()
        resolution = auto_visibility_resolution(tri.shape[0])
        print(f"\nvisibility, {vertices.shape[0]} vertices / {tri.shape[0]} triangles, z-buffer {resolution}px, "
              f"{device}, {torch.get_num_threads()} threads")
        angles = np.radians([10.0, 35.0, 5.0])
        cx, cy, cz = np.cos(angles)
        sx, sy, sz = np.sin(angles)
        rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
        posed = vertices @ (rz @ ry @ rx).T
        cam = posed.copy()
        cam[:, 2] = 10.0 - posed[:, 2]
        tri_t = torch.as_tensor(tri, device=device)
        v = torch.as_tensor(posed, dtype=torch.float32, device=device)
        face_normals = torch.cross(v[tri_t[:, 0]] - v[tri_t[:, 1]], v[tri_t[:, 1]] - v[tri_t[:, 2]], dim=-1)
        summed = torch.zeros_like(v).index_add_(0, tri_t.reshape(-1), face_normals.repeat_interleave(3, 0))
        normals = torch.nn.functional.normalize(summed, dim=-1)[None]
        v3d = torch.as_tensor(cam, dtype=torch.float32, device=device)[None]
        for batch in (1, 8):
            vb, nb = v3d.expand(batch, -1, -1).contiguous(), normals.expand(batch, -1, -1).contiguous()

            def run() -> None:
                vertex_visibility(vb, nb, tri_t, resolution)
                if device.type == "cuda":
                    torch.cuda.synchronize()
            run()
            elapsed = best_of(args.repeat, run)
            cpu = best_cpu_of(args.repeat, run)
            visible = vertex_visibility(vb, nb, tri_t, resolution)[0]
            print(f"  B={batch}: {elapsed * 1e3:7.1f} ms wall ({elapsed / batch * 1e3:6.1f} ms per face), "
                  f"{cpu * 1e3:7.1f} ms CPU; {int(visible.sum())} of {vertices.shape[0]} visible at yaw 35 deg")

        model = ParametricFaceModel(assets.face_model_arrays_from_dict(model_dict), device)
        print()
        coefficients = np.zeros((8, 257), dtype=np.float32)
        coefficients[:, 225] = np.linspace(-0.6, 0.6, 8)
        for batch in (1, 8):
            coeffs = coefficients[:batch]
            model.reconstruct(coeffs)
            with_vis = best_of(args.repeat, lambda: model.reconstruct(coeffs))
            without = best_of(args.repeat, lambda: model.reconstruct(coeffs, visibility=False))
            cpu_without = best_cpu_of(args.repeat, lambda: model.reconstruct(coeffs, visibility=False))
            print(f"reconstruct ({model.vertex_count} vertices), B={batch}: {with_vis * 1e3:.1f} ms with "
                  f"visibility, {without * 1e3:.1f} ms without ({cpu_without * 1e3:.1f} ms CPU)")


if __name__ == "__main__":
    main()
