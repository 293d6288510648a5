# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The regressor's 224 x 224 crop and its pinhole camera: the crop size, the focal length
and camera distance of the reference, and where the crop window lies in the resized photo
(`crop_geometries`, the one formula; `crop_geometry` one photo's in integers).

Imports numpy only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: The reference's camera: focal length (crop pixels) and distance of the model origin.
FOCAL = 1015.0
CAMERA_DISTANCE = 10.0
#: Aligned crop side and its centre.
CROP_SIZE = 224
CROP_CENTRE = 112.0


def crop_geometries(trans_params: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(B, 4) [w, h, left, up] of the resized photo and crop window, per row of (B, 5)
    trans_params [w0, h0, s, tx, ty], computed as the reference's alignment does (float64,
    truncation toward zero like Python's int())."""
    params = np.asarray(trans_params, dtype=np.float64).reshape(-1, 5)
    w0, h0, scale, tx, ty = params.T
    w = np.trunc(w0 * scale)
    h = np.trunc(h0 * scale)
    left = np.trunc(w / 2 - CROP_CENTRE + (tx - w0 / 2) * scale)
    up = np.trunc(h / 2 - CROP_CENTRE + (h0 / 2 - ty) * scale)
    return np.stack([w, h, left, up], axis=1)


def crop_geometry(trans_params: npt.ArrayLike) -> tuple[int, int, int, int]:
    """(w, h, left, up) of one photo's resized size and crop window, as the reference computes
    them (integers): the row of `crop_geometries`."""
    w, h, left, up = crop_geometries(trans_params)[0]
    return int(w), int(h), int(left), int(up)


def identity_trans_params(batch: int) -> npt.NDArray[np.float64]:
    """trans_params for which the photo IS the 224 crop (w0 = h0 = 224, s = 1, no offset)."""
    return np.tile(np.array([CROP_SIZE, CROP_SIZE, 1.0, CROP_CENTRE, CROP_CENTRE]), (batch, 1))


def photo_camera_intrinsics(trans_params: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(B, 4) [fx, fy, cx, cy] of the photo camera (pixels; integer = pixel centre).

    From x = (u + left) w0 / w with u = 1015 X / Z + 112, and
    y = (223 - v + up) h0 / h with v = 1015 Y / Z + 112:
    fx = 1015 w0 / w, fy = 1015 h0 / h, cx = (112 + left) w0 / w, cy = (111 + up) h0 / h.
    """
    params = np.asarray(trans_params, dtype=np.float64).reshape(-1, 5)
    w, h, left, up = crop_geometries(params).T
    w0, h0 = params[:, 0], params[:, 1]
    return np.stack([FOCAL * w0 / w, FOCAL * h0 / h, (CROP_CENTRE + left) * w0 / w,
                     (CROP_SIZE - 1 - CROP_CENTRE + up) * h0 / h], axis=1)
