# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""A synthetic, deterministic demo face model (pure numpy, no data files).

`build_demo_model()` returns a `FaceModel` with every object the format has:
a stylised head mask (nose, brows, cheeks, lips with an open mouth slit,
eye holes) with two eyeballs and a mouth socket as separate sub-meshes,
smooth PCA shape modes, the 53 Maxine expression blend shapes, iBUG-68 and
NVLM landmarks, model contours, partitions with materials, texture
coordinates and optionally a colour model. It is meant for demos and tests;
it is not a statistical model of real faces.

Coordinates are NVIDIA model space: centimetres, +Y up, +Z out of the nose,
+X towards the model's left ear. "_L" shapes act on the +X side.

Here: the landmarks, the colour model and the assembly into a `FaceModel`;
the geometry lives in demo_geometry, the shape modes and blend shapes in
demo_deformations. Dev-only: `python -m io_nv3dmm demo`, tools/demo.py and the
tests use it; the add-on never imports io_nv3dmm/demo_*.py and its zip leaves
them out (blender_manifest.toml).

May import: numpy, the standard library, io_nv3dmm.model and the demo_* modules.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import numpy.typing as npt

from .demo_deformations import expression_deltas, identity_modes
from .demo_geometry import (
    EYE_HALF_H, EYE_HALF_W, EYE_X, EYE_Y, F64, MOUTH_Y, RX, RY, Mesh, assemble, gauss,
)
from .model import (
    MAXINE_EXPRESSIONS, BlendShapes, Contours, FaceModel, LandmarkSet, LinearModel, Partition,
)


def _nearest(candidates: npt.NDArray[np.int64], points: F64, targets: F64) -> npt.NDArray[np.int64]:
    """For each (x, y) target, the candidate vertex nearest to it in the front view."""
    d = ((points[candidates, None, :2] - targets[None, :, :]) ** 2).sum(-1)
    result: npt.NDArray[np.int64] = candidates[np.argmin(d, axis=0)]
    return result


def _jaw_curve(count: int) -> F64:
    """Points along the jaw from the right ear (-X) past the chin to the left ear."""
    s = np.linspace(0.0, np.pi, count)
    return np.stack([-6.6 * np.cos(s), 0.6 - 9.4 * np.sin(s) ** 0.95], -1)


def _ibug_targets() -> F64:
    ex, ey, hw, hh = EYE_X, EYE_Y, EYE_HALF_W, EYE_HALF_H
    right_eye = [(-ex - hw, ey), (-ex - 0.45, ey + hh), (-ex + 0.45, ey + hh), (-ex + hw, ey),
                 (-ex + 0.45, ey - hh), (-ex - 0.45, ey - hh)]
    left_eye = [(ex - hw, ey), (ex - 0.45, ey + hh), (ex + 0.45, ey + hh), (ex + hw, ey),
                (ex + 0.45, ey - hh), (ex - 0.45, ey - hh)]
    my = MOUTH_Y
    outer_lips = [(-2.3, my), (-1.4, my + 0.5), (-0.5, my + 0.75), (0.0, my + 0.65), (0.5, my + 0.75),
                  (1.4, my + 0.5), (2.3, my), (1.4, my - 0.7), (0.5, my - 1.0), (0.0, my - 1.05),
                  (-0.5, my - 1.0), (-1.4, my - 0.7)]
    brows = [(-5.0, 3.1), (-4.1, 3.5), (-3.1, 3.7), (-2.1, 3.6), (-1.2, 3.4),
             (1.2, 3.4), (2.1, 3.6), (3.1, 3.7), (4.1, 3.5), (5.0, 3.1)]
    nose = [(0.0, 2.2), (0.0, 0.9), (0.0, -0.4), (0.0, -1.9),
            (-1.1, -2.8), (-0.55, -2.95), (0.0, -3.0), (0.55, -2.95), (1.1, -2.8)]
    return np.concatenate([_jaw_curve(17), np.array(brows + nose + right_eye + left_eye + outer_lips)])


def _landmarks(mesh: Mesh) -> tuple[LandmarkSet, LandmarkSet, Contours]:
    p = mesh.points
    front_face = np.flatnonzero(mesh.face & (p[:, 2] > 0.5) & ~mesh.slit_lower)
    targets = _ibug_targets()                                          # landmarks 1..60
    vertices = _nearest(front_face, p, targets)
    # Inner lips 61..68: on the slit's edges, upper edge for 61..65, lower for 66..68.
    my = MOUTH_Y
    upper = _nearest(np.flatnonzero(mesh.slit_upper), p,
                     np.array([(-2.0, my), (-0.8, my), (0.0, my), (0.8, my), (2.0, my)]))
    lower = _nearest(np.flatnonzero(mesh.slit_lower), p, np.array([(0.8, my), (0.0, my), (-0.8, my)]))
    ibug_vertices = np.concatenate([vertices, upper, lower])
    numbers = np.arange(1, 69)
    ibug = LandmarkSet(
        pairs=np.stack([numbers, ibug_vertices], -1).astype(np.uint16),
        right_contour=np.arange(1, 9, dtype=np.uint16),
        left_contour=np.arange(10, 18, dtype=np.uint16))

    # NVLM: a 33-point contour (1..16 right, 17 chin, 18..33 left), then the
    # inner iBUG points 18..68 numbered on from 34 (the demo's own scheme).
    contour = _nearest(front_face, p, _jaw_curve(33))
    nvlm_vertices = np.concatenate([contour, ibug_vertices[17:]])
    nvlm = LandmarkSet(
        pairs=np.stack([np.arange(1, nvlm_vertices.size + 1), nvlm_vertices], -1).astype(np.uint16),
        right_contour=np.arange(1, 17, dtype=np.uint16),
        left_contour=np.arange(18, 34, dtype=np.uint16))

    # MCTR: 16 vertices per side, from the ear towards the chin.
    curve = _jaw_curve(35)
    right = _nearest(front_face, p, curve[:16])
    left = _nearest(front_face, p, curve[::-1][:16])
    return ibug, nvlm, Contours(right=right.astype(np.uint16), left=left.astype(np.uint16))


def _colors(mesh: Mesh, modes: int) -> LinearModel:
    p = mesh.points
    skin = np.array([0.78, 0.60, 0.52])
    color = np.tile(skin, (p.shape[0], 1))
    lips = (gauss(p[:, 0], p[:, 1], 0.0, MOUTH_Y, 2.2, 0.7) * mesh.face)[:, None]
    color = color * (1.0 - lips) + np.array([0.72, 0.38, 0.38]) * lips
    color[mesh.eye != 0] = [0.92, 0.92, 0.90]
    # The iris colour: the front cap of each eyeball (blended out to the Iris partition's edge).
    eye_z = np.full(p.shape[0], -np.inf)
    for side in (-1, 1):
        mine = mesh.eye == side
        if mine.any():
            eye_z[mine] = p[mine, 2] - p[mine, 2].max()
    iris = (mesh.eye != 0) & (eye_z > -0.1)
    color[iris] = [0.25, 0.38, 0.52]
    color[mesh.socket] = [0.45, 0.2, 0.2]
    y = p[:, 1] / RY
    fields = [np.ones_like(y), y, p[:, 0] / RX, lips[:, 0], y ** 2]
    tints = [np.array([0.08, 0.06, 0.05]), np.array([0.03, -0.01, -0.02]), np.array([0.02, 0.02, 0.0]),
             np.array([0.06, -0.03, -0.02]), np.array([-0.02, 0.01, 0.02])]
    color_modes = np.stack([f[:, None] * t for f, t in zip(fields, tints)])[:modes]
    return LinearModel(
        mean=color.astype(np.float32), modes=color_modes.astype(np.float32),
        eigenvalues=np.ones(color_modes.shape[0], np.float32),
        triangles=np.zeros((0, 3), np.uint16))   # NVIDIA leaves the colour TRNG empty


def build_demo_model(
    *,
    shape_modes: int = 20,
    true_variances: bool = False,
    with_color: bool = False,
    color_modes: int = 5,
    blend_shape_names: Sequence[str] | None = None,
    resolution: tuple[int, int] = (61, 57),
    seed: int = 0,
) -> FaceModel:
    """A deterministic synthetic face model with every .nvf object.

    shape_modes: number of identity modes (offsets in cm). With
    true_variances False they are pre-scaled and every eigenvalue is 1.0
    (NVIDIA's convention); with True each mode has unit norm and its
    eigenvalue is the variance (squared scale), largest first.
    with_color: add a per-vertex colour model (RGB in 0..1, `color_modes`
    modes, empty colour TRNG as NVIDIA writes it).
    blend_shape_names: which expression shapes, in that order (default: all
    53 MAXINE_EXPRESSIONS).
    resolution: (columns, rows) of the face surface grid; the default gives
    about 3,600 vertices.
    Landmarks are placed on the nearest face vertices to iBUG-68 positions;
    partitions are Face, Sclera_R, Iris_R, Sclera_L, Iris_L, MouthSocket.
    The topology is left None (the writer rebuilds TOPO).
    """
    columns, rows = resolution
    if columns < 21 or rows < 21:
        raise ValueError("resolution must be at least (21, 21) for the features to exist")
    if shape_modes < 0:
        raise ValueError("shape_modes must be >= 0")
    mesh, parts = assemble(columns, rows)
    modes = identity_modes(mesh, shape_modes, seed) if shape_modes else np.zeros((0, mesh.points.shape[0], 3))
    if true_variances and shape_modes:
        scale = np.sqrt((modes ** 2).sum(axis=(1, 2)))
        order = np.argsort(-scale, kind="stable")
        scale = scale[order]
        modes = modes[order] / scale[:, None, None]
        eigenvalues = scale ** 2
    else:
        eigenvalues = np.ones(modes.shape[0])
    names = list(MAXINE_EXPRESSIONS if blend_shape_names is None else blend_shape_names)
    deltas = expression_deltas(mesh, names)
    ibug, nvlm, contours = _landmarks(mesh)
    partitions = [
        Partition(index=i, face_start=start, face_count=n, vertex_start=3 * start, vertex_count=3 * n,
                  smoothing_group=group, name=name, material=material)
        for i, (name, material, start, n, group) in enumerate(parts)]
    triangles = mesh.triangles.astype(np.uint16)
    return FaceModel(
        shape=LinearModel(mean=mesh.points.astype(np.float32), modes=modes.astype(np.float32),
                          eigenvalues=eigenvalues.astype(np.float32), triangles=triangles),
        color=_colors(mesh, color_modes) if with_color else None,
        texcoords=mesh.uv.astype(np.float32),
        ibug=ibug, blend_shapes=BlendShapes(names=names, deltas=deltas.astype(np.float32)),
        model_contours=contours, topology=None, nvlm=nvlm, partitions=partitions)
