# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""A hand-made, self-consistent reconstruction for the Blender tests: a `FaceResult`
built from the synthetic 3DDFA-V3 face model with the documented formulas, wrapped
in the bridge's `ReconstructionOutput` (no torch, no photo). Used by
test_blender_reconstruct.py and test_blender_nvf_maxine.py."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nv3dmm_face_tools.tddfa_v3.result import Coefficients, FaceResult, PhotoCamera


def _bridge_module() -> Any:
    """bridge.reconstruction, as the add-on imports it (relative imports)."""
    import importlib
    return importlib.import_module("nv3dmm_face_tools.bridge.reconstruction")


def _rotation(angles: np.ndarray) -> np.ndarray:
    """R = Rz Ry Rx as the core builds it, returned in the row-vector convention (R^T)."""
    x, y, z = (float(a) for a in angles)
    rx = np.array([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    return (rz @ ry @ rx).T


def make_output(seed: int = 3, width: int = 320, height: int = 240, big: bool = False) -> Any:
    """A self-consistent `ReconstructionOutput` from the synthetic face model."""
    from nv3dmm_face_tools.tddfa_v3.synthetic_face import generate_face_model_dict

    bridge = _bridge_module()
    model = generate_face_model_dict(seed=1)
    rng = np.random.default_rng(seed)
    n = model["u"].shape[0] // 3
    alpha = rng.normal(0.0, 1.0, 257).astype(np.float32)
    if big:
        alpha[3] = 23.5     # beyond Blender's slider limit of 10
        alpha[85] = -14.0
    alpha[224:227] = [0.1, -0.25, 0.05]
    alpha[254:257] = [0.05, -0.08, 0.3]
    bases = bridge.bases_from_face_model(model)
    shape = (bases.mean + np.tensordot(alpha[0:80], bases.identity, 1)
             + np.tensordot(alpha[80:144], bases.expression, 1)).astype(np.float32)
    rotation = _rotation(alpha[224:227]).astype(np.float32)
    posed = shape.astype(np.float64) @ rotation + alpha[254:257]
    camera_space = posed.copy()
    camera_space[:, 2] = 10.0 - posed[:, 2]
    fx, fy, cx, cy = 1015.0 * 1.4, 1015.0 * 1.41, width / 2 + 7.5, height / 2 - 4.25
    photo = np.stack([fx * camera_space[:, 0] / camera_space[:, 2] + cx,
                      fy * -camera_space[:, 1] / camera_space[:, 2] + cy], 1).astype(np.float32)
    uv = np.stack([(photo[:, 0] + 0.5) / width, 1.0 - (photo[:, 1] + 0.5) / height], 1).astype(np.float32)
    colors = rng.random((n, 3)).astype(np.float32)
    indices = {k: np.asarray(model[f"ldm{k}"], dtype=np.int64) for k in ("68", "106", "134")}
    visible = rng.random(n) > 0.3
    parts = [np.asarray(a, dtype=np.int64) for a in model["annotation"]]
    result = FaceResult(
        photo_size=(width, height), face_box=np.array([100.0, 60.0, 220.0, 190.0]), face_score=1.0,
        landmarks106_detected=np.zeros((106, 2)), trans_params=np.array([width, height, 1.2, 160.0, 120.0]),
        coefficients=Coefficients(identity=alpha[0:80], expression=alpha[80:144], albedo=alpha[144:224],
                                  angles=alpha[224:227], lighting=alpha[227:254],
                                  translation=alpha[254:257], raw=alpha),
        rotation=rotation, triangles=np.asarray(model["tri"], dtype=np.int64),
        vertices_model=shape, vertices_camera=camera_space.astype(np.float32),
        projection_crop=np.zeros((n, 2), np.float32), projection_photo=photo,
        normals=np.zeros((n, 3), np.float32), normals_rotated=np.zeros((n, 3), np.float32),
        albedo=colors, colors=colors[:, ::-1].copy(),
        landmarks_crop={}, landmarks_photo={}, landmark_indices=indices,
        camera=PhotoCamera(width=width, height=height, fx=fx, fy=fy, cx=cx, cy=cy),
        photo_uv=uv, visible=visible, part_vertices=parts,
        part_visible=[p[visible[p]] for p in parts], source="")
    return bridge.ReconstructionOutput(result=result, bases=bases, device="cpu", backbone="resnet50")
