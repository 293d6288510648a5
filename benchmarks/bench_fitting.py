# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fitting speed on the CPU: fit_model for a Maxine model against a target the size of a
real 3DDFA-V3 mesh (35,709 vertices), and fit_expressions per frame (goals: <= 0.5 s and
<= 2 ms per frame), with the accuracy of each run against the known answer.

    python benchmarks/bench_fitting.py [--model face_model2.nvf] [--runs 5] [--blas-threads N]

Without --model it uses $NVF_SAMPLES/face_model2.nvf, else the demo model. Prints one
line per figure: the median time, the goal and their ratio (< 1 meets the goal).
--blas-threads sets OpenBLAS/MKL/OpenMP threads before numpy loads (the solves here are
small: on a busy machine one thread is often faster than many).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))  # to import checkout_addon
from checkout_addon import import_checkout  # noqa: E402


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="an .nvf model (default: $NVF_SAMPLES/face_model2.nvf, else the demo model)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of fit_model (median printed)")
    parser.add_argument("--frames", type=int, default=200, help="frames for the per-frame figures")
    parser.add_argument("--target-vertices", type=int, default=35709, help="target size (3DDFA-V3: 35,709)")
    parser.add_argument("--blas-threads", type=int, help="BLAS / OpenMP threads (set before numpy loads)")
    return parser.parse_args()


def main() -> None:
    args = _args()
    if args.blas_threads:
        for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
            os.environ[var] = str(args.blas_threads)
    import numpy as np

    import_checkout()
    import nv3dmm_face_tools.fitting as fitting
    import nv3dmm_face_tools.io_nv3dmm as io_nv3dmm
    from nv3dmm_face_tools.fitting.ground_truth import make_target
    from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model

    if args.model:
        model, label = io_nv3dmm.read(args.model), Path(args.model).name
    elif os.environ.get("NVF_SAMPLES") and (Path(os.environ["NVF_SAMPLES"]) / "face_model2.nvf").is_file():
        model, label = io_nv3dmm.read(Path(os.environ["NVF_SAMPLES"]) / "face_model2.nvf"), "face_model2.nvf"
    else:
        model, label = build_demo_model(), "demo model"
    print(f"model: {label}: {model.vertex_count} vertices, {model.mode_count} modes, "
          f"{len(model.blend_shapes.names) if model.blend_shapes else 0} blend shapes; "
          f"CPU threads: {os.cpu_count()}, BLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")

    # A target of the requested size: the front grid's spacing scales as 1/sqrt(count).
    spacing = 0.3
    truth = make_target(model, 0, spacing=spacing)
    for _ in range(4):
        spacing *= float(np.sqrt(truth.vertices.shape[0] / args.target_vertices))
        truth = make_target(model, 0, spacing=spacing)
    print(f"target: {truth.vertices.shape[0]} vertices, {truth.triangles.shape[0]} triangles "
          f"(grid spacing {spacing:.3f} cm), 68 landmarks, 0.03 cm noise, 2% outliers")

    def median_time(run, count: int) -> tuple[float, float, object]:
        """(median wall seconds, median CPU seconds of this process, the last result). On a
        shared machine the CPU time is the fairer figure: the wall time includes waiting."""
        walls, cpus, result = [], [], None
        for _ in range(count):
            started, cpu = time.perf_counter(), time.process_time()
            result = run()
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
        return float(np.median(walls)), float(np.median(cpus)), result

    def timed(run):
        started, cpu = time.perf_counter(), time.process_time()
        result = run()
        return time.perf_counter() - started, time.process_time() - cpu, result

    def error(fit: fitting.Fit, answer) -> float:
        return float(np.linalg.norm(answer.to_model(fit.vertices) - answer.truth, axis=1).mean())

    fitting.fit_model(model, truth.vertices, truth.triangles, truth.landmarks)       # warm caches
    for residual in (True, False):
        options = fitting.FitOptions(residual=residual)
        seconds, cpu, fit = median_time(lambda: fitting.fit_model(model, truth.vertices, truth.triangles,
                                                                  truth.landmarks, options), args.runs)
        print(f"fit_model (residual {'on' if residual else 'off'}): wall {seconds:.3f} s, cpu {cpu:.3f} s  "
              f"goal 0.5 s  ratio (wall) {seconds / 0.5:.2f} (cpu) {cpu / 0.5:.2f}  "
              f"mean vertex error {error(fit, truth):.3f} cm")
    seconds, cpu, fit = median_time(lambda: fitting.fit_model(model, None, None, truth.landmarks), args.runs)
    print(f"fit_model (landmarks only): wall {seconds:.3f} s, cpu {cpu:.3f} s  "
          f"mean vertex error {error(fit, truth):.3f} cm")

    # Per frame: the same identity, expressions changing over a clip.
    full = fitting.fit_model(model, truth.vertices, truth.triangles, truth.landmarks)
    rng = np.random.default_rng(1)
    basis_count = len(truth.weights)
    frames = []
    for index in range(args.frames):
        weights = np.clip(truth.weights * (0.5 + 0.5 * np.cos(index / 9.0)) + rng.uniform(0, 0.05, basis_count), 0, 1)
        frames.append(weights)
    own = make_target(model, 1, own_topology=True, outliers=0.0, coefficients=truth.coefficients)
    own_frames = [own.same_topology(model, w, seed=i) for i, w in enumerate(frames)]
    fitter = fitting.ExpressionFitter(model, truth.coefficients)
    fitter.fit(own_frames[0].vertices, own_frames[0].triangles)
    wall, cpu, results = timed(lambda: [fitter.fit(frame.vertices, frame.triangles) for frame in own_frames])
    per_frame, per_cpu = wall / len(own_frames) * 1e3, cpu / len(own_frames) * 1e3
    weight_error = float(np.mean([np.abs(r.weights - f.weights).mean() for r, f in zip(results, own_frames)]))
    print(f"fit_expressions, model's own topology: wall {per_frame:.2f} ms/frame, cpu {per_cpu:.2f} ms/frame  "
          f"goal 2 ms  ratio (wall) {per_frame / 2:.2f} (cpu) {per_cpu / 2:.2f}  weight error {weight_error:.4f}")

    remeshed = [truth.same_topology(model, w, seed=i) for i, w in enumerate(frames)]
    gather = fitting.ExpressionFitter(model, full)
    gather.fit(remeshed[0].vertices, remeshed[0].triangles, correspondence=full.correspondence)
    wall, cpu, results = timed(lambda: [gather.fit(frame.vertices, frame.triangles,
                                                   correspondence=full.correspondence) for frame in remeshed])
    per_frame, per_cpu = wall / len(remeshed) * 1e3, cpu / len(remeshed) * 1e3
    vertex_error = float(np.mean([error(r, f) for r, f in zip(results, remeshed)]))
    print(f"fit_expressions, {truth.vertices.shape[0]}-vertex target via the correspondence: wall {per_frame:.2f} "
          f"ms/frame, cpu {per_cpu:.2f} ms/frame  goal 2 ms  ratio (wall) {per_frame / 2:.2f} (cpu) {per_cpu / 2:.2f}  "
          f"mean vertex error {vertex_error:.3f} cm")

    count = min(5, len(remeshed))
    wall, cpu, results = timed(lambda: [fitting.ExpressionFitter(model, full).fit(f.vertices, f.triangles, f.landmarks)
                                        for f in remeshed[:count]])
    vertex_error = float(np.mean([error(r, f) for r, f in zip(results, remeshed)]))
    print(f"fit_expressions, closest points (no correspondence): wall {wall / count * 1e3:.1f} ms/frame, "
          f"cpu {cpu / count * 1e3:.1f} ms/frame  mean vertex error {vertex_error:.3f} cm")


if __name__ == "__main__":
    main()
