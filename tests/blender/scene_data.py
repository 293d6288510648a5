# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the Blender .nvf tests share: a small synthetic model with every object the
format has (`dome_model`, and the `dome_file` fixture that writes it with a .mtl),
a snapshot of bpy.data's names, shape-key arrays and vertex-group members.
Imports the real bpy module (lazily) and the add-on's packages."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nv3dmm_face_tools import io_nv3dmm
from nv3dmm_face_tools.io_nv3dmm import (
    BlendShapes, Contours, FaceModel, LandmarkSet, LinearModel, Partition, build_topology,
)

ADDON = "nv3dmm_face_tools"


def _bridge(name: str) -> Any:
    return importlib.import_module(f"{ADDON}.bridge.{name}")


# --- a small synthetic model --------------------------------------------------------


def dome_model(seed: int = 0, n: int = 6) -> FaceModel:
    """A (n x n)-vertex dome facing +Z with modes, blend shapes, landmarks,
    contours, two partitions, texture coordinates and a colour model."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float32)
    x = (xs - (n - 1) / 2) * 2.0
    y = (ys - (n - 1) / 2) * 2.0
    z = 8.0 - 0.1 * (x * x + y * y)
    mean = np.stack([x, y, z], axis=-1).reshape(-1, 3).astype(np.float32)
    v = mean.shape[0]
    cells = np.arange(n * n).reshape(n, n)[:-1, :-1].ravel()
    a, b, c = cells, cells + 1, cells + n
    d = c + 1
    tris = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)]).astype(np.uint16)
    t = tris.shape[0]
    half = t // 2 + 3
    return FaceModel(
        shape=LinearModel(mean=mean, modes=rng.normal(0, 0.3, (3, v, 3)).astype(np.float32),
                          eigenvalues=np.array([0.5, 2.0, 1.0], np.float32), triangles=tris),
        color=LinearModel(mean=rng.uniform(0, 1, (v, 3)).astype(np.float32),
                          modes=rng.normal(0, 0.1, (1, v, 3)).astype(np.float32),
                          eigenvalues=np.array([1.0], np.float32), triangles=np.zeros((0, 3), np.uint16)),
        texcoords=np.stack([xs.ravel() / (n - 1), ys.ravel() / (n - 1)], 1).astype(np.float32),
        ibug=LandmarkSet(pairs=np.array([[9, 3], [31, 14], [37, 20]], np.uint16),
                         right_contour=np.array([1, 2, 3], np.uint16),
                         left_contour=np.array([15, 16, 17], np.uint16)),
        blend_shapes=BlendShapes(names=["jawOpen", "mouthSmile_L", "eyeBlink_R"],
                                 deltas=rng.normal(0, 0.2, (3, v, 3)).astype(np.float32)),
        model_contours=Contours(right=np.array([0, n, 2 * n], np.uint16),
                                left=np.array([n - 1, 2 * n - 1], np.uint16)),
        topology=build_topology(tris),
        nvlm=LandmarkSet(pairs=np.array([[1, 0], [17, 5]], np.uint16),
                         right_contour=np.array([1], np.uint16), left_contour=np.array([18], np.uint16)),
        partitions=[Partition(0, 0, half, 0, 3 * half, -1, "Skin", "Skin"),
                    Partition(1, half, t - half, 3 * half, 3 * (t - half), 2, "Lips", "LipMat")],
    )


@pytest.fixture()
def dome_file(tmp_path: Path) -> Path:
    path = tmp_path / "dome.nvf"
    io_nv3dmm.write(dome_model(), path)
    (tmp_path / "dome.mtl").write_text("newmtl Skin\nKd 0.8 0.6 0.5\n\nnewmtl LipMat\nKd 0.6 0.2 0.2\n")
    return path


def data_snapshot() -> dict[str, list[str]]:
    import bpy
    return {name: sorted(item.name for item in getattr(bpy.data, name))
            for name in ("objects", "meshes", "materials", "shape_keys", "collections", "node_groups",
                         "images")}


def key_array(obj: Any, name: str) -> np.ndarray:
    block = obj.data.shape_keys.key_blocks[name]
    out = np.empty(len(obj.data.vertices) * 3, np.float32)
    block.points.foreach_get("co", out)
    return out.reshape(-1, 3)


def set_key_array(obj: Any, name: str, values: np.ndarray) -> None:
    obj.data.shape_keys.key_blocks[name].points.foreach_set(
        "co", np.ascontiguousarray(values, dtype=np.float32).ravel())


def group_members(obj: Any) -> dict[str, list[int]]:
    names, members = _bridge("mesh").read_vertex_groups(obj)
    return {n: m.tolist() for n, m in zip(names, members)}
