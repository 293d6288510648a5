# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The value a 3DDFA-V3 reconstruction returns: plain numpy arrays, no torch.

Coordinate frames (the same as the reference implementation):
- model space: the face model's frame (decimetres for the real BFM model),
  x to the image right, y up, z towards the camera;
- camera space (`vertices_camera`): x, y as model space, z_cam = 10 - z
  (the camera sits at z = 10 looking down -z);
- crop coordinates: the 224x224 aligned crop, u right, v UP (pixel row = 223 - v);
- photo coordinates: the original photo's pixels, x right, y DOWN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: The 8 face parts of the model's annotation, in the model's order.
PART_NAMES: tuple[str, ...] = (
    "right_eye", "left_eye", "right_eyebrow", "left_eyebrow",
    "nose", "up_lip", "down_lip", "skin",
)


@dataclass
class Coefficients:
    """The 257-vector split as the reference's `split_alpha` does."""

    identity: F32      # (80,)
    expression: F32    # (64,)
    albedo: F32        # (80,)
    angles: F32        # (3,) pitch x, yaw y, roll z in radians
    lighting: F32      # (27,) SH, 3 colours x 9, R first
    translation: F32   # (3,) tx, ty, tz in model units
    raw: F32           # (257,) the network output as is


@dataclass
class PhotoCamera:
    """A pinhole camera that reproduces the photo's framing of the reconstruction.

    Camera-space vertices project to photo pixels as
    x = fx * X / Z + cx, y = fy * (-Y) / Z + cy with Z = z_cam (> 0),
    i.e. the camera sits at model-space (0, 0, 10) looking down -z, +y up.
    """

    width: int           # photo width in pixels
    height: int          # photo height in pixels
    fx: float            # focal length in pixels, horizontal
    fy: float            # focal length in pixels, vertical
    cx: float            # principal point, photo pixels (x right)
    cy: float            # principal point, photo pixels (y down)
    distance: float = 10.0   # camera z in model space


@dataclass
class FaceResult:
    """One reconstructed face. V vertices, T triangles of the face model."""

    photo_size: tuple[int, int]          # (width, height)
    face_box: F64                        # (4,) x1, y1, x2, y2 in photo pixels
    face_score: float                    # detector score (1.0 for a given box)
    landmarks106_detected: F64           # (106, 2) two-pass landmark net, photo pixels
    trans_params: F64                    # (5,) w0, h0, s, tx, ty (alignment)
    coefficients: Coefficients
    rotation: F32                        # (3, 3) row-vector convention: p_rot = p @ rotation
    triangles: I64                       # (T, 3) 0-based, counter-clockwise outside
    vertices_model: F32                  # (V, 3) identity + expression shape, unposed
    vertices_camera: F32                 # (V, 3) posed, camera space (z_cam = 10 - z)
    projection_crop: F32                 # (V, 2) crop coordinates, v up
    projection_photo: F32                # (V, 2) photo pixels, y down
    normals: F32                         # (V, 3) unrotated vertex normals
    normals_rotated: F32                 # (V, 3)
    albedo: F32                          # (V, 3) in [0, 1]
    colors: F32                          # (V, 3) SH-lit, clipped to [0, 1]
    landmarks_crop: dict[str, F32]       # "68", "106", "106_2d", "134" -> (n, 2) crop, v up
    landmarks_photo: dict[str, F32]      # same keys -> (n, 2) photo pixels, y down
    landmark_indices: dict[str, I64]     # "68", "106", "134" -> vertex indices
    camera: PhotoCamera
    photo_uv: F32                        # (V, 2) where each vertex lands in the photo, in [0, 1], v up (OpenGL/Blender UV)
    visible: BoolArray                   # (V,) faces the camera and is not occluded
    part_vertices: list[I64] = field(default_factory=list)   # 8 vertex-index arrays, PART_NAMES order
    part_visible: list[I64] = field(default_factory=list)    # the visible subset of each part
    source: str = ""                     # the photo's path, when known

    @property
    def vertex_count(self) -> int:
        return int(self.vertices_model.shape[0])
