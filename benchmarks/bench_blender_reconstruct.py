# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""How long the main thread is blocked when a reconstruction lands in Blender.

    .venv/bin/python benchmarks/bench_blender_reconstruct.py [--columns 173 --rows 207]

A synthetic face model at the real model's size (default 173 x 207 grid =
35,811 vertices, ~70k triangles, 80 + 64 components) and a hand-made result
go through `bridge.reconstruction`:
- plan: the shape-key positions in Blender space (numpy; runs on the worker);
- build with the plan ready: what the main thread does after the worker ends
  (mesh, 144 shape keys, UVs, colours, groups, material, camera);
- build without a plan: the same with the planning on the main thread.
Prints median times of a few runs and the ratio, measured side by side.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))  # to import checkout_addon
from checkout_addon import load_checkout_addon  # noqa: E402


def make_output(bridge: Any, columns: int, rows: int) -> Any:
    from nv3dmm_face_tools.tddfa_v3.result import Coefficients, FaceResult, PhotoCamera
    from nv3dmm_face_tools.tddfa_v3.synthetic_face import generate_face_model_dict

    model = generate_face_model_dict(seed=1, columns=columns, rows=rows)
    bases = bridge.bases_from_face_model(model)
    n = bases.mean.shape[0]
    rng = np.random.default_rng(0)
    alpha = rng.normal(0.0, 1.0, 257).astype(np.float32)
    shape = (bases.mean + np.tensordot(alpha[:80], bases.identity, 1)
             + np.tensordot(alpha[80:144], bases.expression, 1)).astype(np.float32)
    zeros2 = np.zeros((n, 2), np.float32)
    result = FaceResult(
        photo_size=(640, 480), face_box=np.array([200.0, 100.0, 440.0, 380.0]), face_score=1.0,
        landmarks106_detected=np.zeros((106, 2)), trans_params=np.array([640.0, 480.0, 1.0, 320.0, 240.0]),
        coefficients=Coefficients(alpha[:80], alpha[80:144], alpha[144:224], alpha[224:227],
                                  alpha[227:254], alpha[254:257], alpha),
        rotation=np.eye(3, dtype=np.float32), triangles=np.asarray(model["tri"], np.int64),
        vertices_model=shape, vertices_camera=shape, projection_crop=zeros2, projection_photo=zeros2,
        normals=np.zeros((n, 3), np.float32), normals_rotated=np.zeros((n, 3), np.float32),
        albedo=rng.random((n, 3)).astype(np.float32), colors=rng.random((n, 3)).astype(np.float32),
        landmarks_crop={}, landmarks_photo={},
        landmark_indices={k: np.asarray(model[f"ldm{k}"], np.int64) for k in ("68", "106", "134")},
        camera=PhotoCamera(640, 480, 1400.0, 1400.0, 320.0, 240.0), photo_uv=rng.random((n, 2)).astype(np.float32),
        visible=rng.random(n) > 0.3, part_vertices=[np.asarray(a, np.int64) for a in model["annotation"]])
    return bridge.ReconstructionOutput(result=result, bases=bases, device="cpu", backbone="resnet50")


def median_time(function: Callable[[], Any], runs: int, before: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, default=173)
    parser.add_argument("--rows", type=int, default=207)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()

    import bpy
    load_checkout_addon()
    import nv3dmm_face_tools.bridge.reconstruction as bridge

    output = make_output(bridge, options.columns, options.rows)
    result = output.result
    print(f"model: {result.vertex_count} vertices, {result.triangles.shape[0]} triangles, "
          f"{output.bases.identity.shape[0]} + {output.bases.expression.shape[0]} shape keys")
    planned = bridge.ReconstructionOutput(result=result, bases=output.bases, device="cpu", backbone="resnet50",
                                          shape_keys=bridge.plan_shape_keys(result, output.bases))
    reset = lambda: bpy.ops.wm.read_homefile(use_empty=True)  # noqa: E731
    options_value = bridge.ReconstructOptions(assets_dir="", update_existing=False)
    plan = median_time(lambda: bridge.plan_shape_keys(result, output.bases), options.runs)
    with_plan = median_time(lambda: bridge.build_reconstruction(bpy.context, planned, options_value),
                            options.runs, reset)
    without_plan = median_time(lambda: bridge.build_reconstruction(bpy.context, output, options_value),
                               options.runs, reset)
    print(f"plan shape keys (worker thread):         {plan * 1000:8.1f} ms")
    print(f"build, plan ready (main thread):          {with_plan * 1000:8.1f} ms")
    print(f"build, planning on the main thread:       {without_plan * 1000:8.1f} ms")
    print(f"main-thread time saved by planning on the worker: x{without_plan / with_plan:.2f}")


if __name__ == "__main__":
    main()
