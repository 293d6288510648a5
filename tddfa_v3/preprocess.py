# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Image-side steps of 3DDFA-V3: detector input, landmark crops, 5-point alignment (photo
loading is `tddfa_v3.photos`; its functions are re-exported here).

Everything here is numpy + Pillow + OpenCV and reproduces the reference
implementation's arithmetic (integer truncations, dtypes, resampling filters),
so that its recorded numbers are met exactly where they are integers and to
float precision elsewhere. No torch.

Coordinate conventions (see `result.py`): photo pixels x right, y down, integer
values at pixel centres; "flipped" 5 points are (x, H - 1 - y); crop
coordinates are u right, v up in the 224x224 aligned crop (row = 223 - v).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

from .crop import CROP_SIZE, crop_geometry
from .dependencies import require_cv2, require_pil_image
from .errors import FaceBoxError, ReconstructionError
from .photos import (  # noqa: F401 - photo loading is reached through preprocess too
    as_rgb_uint8, check_photo_size, load_photo, photo_name, reduction_factor,
)

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Side of the RetinaFace input canvas.
DETECTOR_SIZE = 512
#: ImageNet statistics of the RetinaFace normalisation (of value / 255).
DETECTOR_MEAN = (0.485, 0.456, 0.406)
DETECTOR_STD = (0.229, 0.224, 0.225)
#: The reference's detector score threshold (softmax face score above it).
DETECTION_THRESHOLD = 0.7

#: Side of the landmark net's input crop and its square-box enlargement.
LANDMARK_SIZE = 224
LANDMARK_BOX_SCALE = 1.35
#: The landmark net's means: BGR-ordered ImageNet means that the reference
#: subtracts from RGB channels (and pads with); the weights expect it.
LANDMARK_MEAN = (103.94, 116.78, 123.68)

#: 106-point indices of the 5 alignment points: image-left eye centre,
#: image-right eye centre, nose tip, image-left / image-right mouth corner.
FIVE_POINT_INDICES = (74, 83, 54, 84, 90)

#: The scale the template is brought to (the aligned crop's side is `crop.CROP_SIZE`).
RESCALE_FACTOR = 102.0


# --------------------------------------------------------------------------- detector input

@dataclass
class DetectorInput:
    """One photo prepared for RetinaFace."""

    tensor: F32          # (3, 512, 512) normalised, zero-padded, centred
    pads: I64            # (4,) x_min_pad, y_min_pad, x_max_pad, y_max_pad
    resized_hw: tuple[int, int]
    scale: float         # max(H, W) / 512: canvas pixels to photo pixels


def detector_canvas(image: U8, size: int = DETECTOR_SIZE) -> tuple[U8, I64]:
    """The photo resized for RetinaFace and placed centred on a black size x size canvas.

    Longest side to `size` (new side = Python ``round(dim * size / max(H, W))``,
    cv2 bilinear, as albumentations' LongestMaxSize); the odd pixel of padding
    goes to the bottom/right. Returns (canvas uint8 (size, size, 3), pads
    (x_min, y_min, x_max, y_max)). Normalising it (`normalise_detector_canvas`)
    and zeroing the pads gives the network input.
    """
    cv2 = require_cv2()
    height, width = image.shape[:2]
    longest = max(height, width)
    new_h = int(round(height * size / longest))
    new_w = int(round(width * size / longest))
    if (new_h, new_w) != (height, width):
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    else:
        resized = image
    y_min = (size - new_h) // 2
    x_min = (size - new_w) // 2
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[y_min:y_min + new_h, x_min:x_min + new_w] = resized
    pads = np.array([x_min, y_min, size - new_w - x_min, size - new_h - y_min], dtype=np.int64)
    return canvas, pads


def detector_normalisation() -> tuple[F32, F32]:
    """(mean * 255, 1 / (std * 255)) per channel in float32: input = (pixel - a) * b."""
    mean = np.asarray(DETECTOR_MEAN, dtype=np.float32) * np.float32(255.0)
    inv_std = np.float32(1.0) / (np.asarray(DETECTOR_STD, dtype=np.float32) * np.float32(255.0))
    return mean, inv_std


def detector_input(image: U8, size: int = DETECTOR_SIZE) -> DetectorInput:
    """RetinaFace input of one RGB photo (numpy; the pipeline does the same on the device).

    `detector_canvas`, then ``(value - 255 mean) / (255 std)`` per channel in
    float32 inside the photo and 0 in the padding.
    """
    canvas, pads = detector_canvas(image, size)
    x_min, y_min, x_max, y_max = (int(v) for v in pads)
    new_h, new_w = size - y_min - y_max, size - x_min - x_max
    mean, inv_std = detector_normalisation()
    region = canvas[y_min:y_min + new_h, x_min:x_min + new_w]
    tensor = np.zeros((3, size, size), dtype=np.float32)
    tensor[:, y_min:y_min + new_h, x_min:x_min + new_w] = ((region.astype(np.float32) - mean) * inv_std).transpose(2, 0, 1)
    height, width = image.shape[:2]
    return DetectorInput(tensor, pads, (new_h, new_w), max(height, width) / size)


# --------------------------------------------------------------------------- landmark crops

@dataclass
class LandmarkCrop:
    """The landmark net's crop of one box, and how to map its points back."""

    crop: U8       # (224, 224, 3) RGB
    params: F64    # (11,) sz, x0, y0, row_start, row_end, col_start, col_end, pad_top, pad_bottom, pad_left, pad_right

    @property
    def side(self) -> float:
        return float(self.params[0])

    @property
    def origin(self) -> tuple[float, float]:
        return float(self.params[1]), float(self.params[2])


def check_face_box(box: Sequence[float] | npt.ArrayLike, width: int, height: int) -> F64:
    """A face box (x1, y1, x2, y2) as float64, checked against the photo size."""
    values = np.asarray(box, dtype=np.float64).reshape(-1)
    if values.shape != (4,) or not np.isfinite(values).all():
        raise FaceBoxError(f"A face box is 4 finite numbers x1, y1, x2, y2; got {np.asarray(box).tolist()}")
    x1, y1, x2, y2 = values
    if x2 <= x1 or y2 <= y1:
        raise FaceBoxError(f"Face box {values.tolist()} is empty: it needs x2 > x1 and y2 > y1 (x1, y1 top-left)")
    if x2 < 0 or y2 < 0 or x1 >= width or y1 >= height:
        raise FaceBoxError(f"Face box {values.tolist()} lies outside the {width} x {height} photo")
    return values


def landmark_crop(image: U8, box: Sequence[float] | npt.ArrayLike) -> LandmarkCrop:
    """The reference's square crop around a box for the 106-point net.

    w = x2 - x1 + 1, h = y2 - y1 + 1, side 1.35 max(w, h) around the box centre;
    the in-image part is cut with int() truncation, the rest padded with the
    constant (103.94, 116.78, 123.68) (uint8: 104, 117, 124), and the result
    resized to 224 x 224 with cv2 bilinear.
    """
    cv2 = require_cv2()
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    box_w = x2 - x1 + 1
    box_h = y2 - y1 + 1
    centre_x = (x1 + x2) / 2
    centre_y = (y1 + y2) / 2
    side = max(box_w, box_h) * LANDMARK_BOX_SCALE
    x0 = centre_x - side / 2
    y0 = centre_y - side / 2
    row_start, row_end = int(max(0, y0)), int(min(height, y0 + side))
    col_start, col_end = int(max(0, x0)), int(min(width, x0 + side))
    if row_end <= row_start or col_end <= col_start:
        raise FaceBoxError(f"Face box {[x1, y1, x2, y2]} does not overlap the {width} x {height} photo")
    pad_top = int(max(0, -y0))
    pad_bottom = int(max(0, y0 + side - height))
    pad_left = int(max(0, -x0))
    pad_right = int(max(0, x0 + side - width))
    patch = image[row_start:row_end, col_start:col_end]
    if pad_top or pad_bottom or pad_left or pad_right:
        patch = cv2.copyMakeBorder(patch, pad_top, pad_bottom, pad_left, pad_right,
                                   cv2.BORDER_CONSTANT, value=LANDMARK_MEAN)
    crop = cv2.resize(patch, (LANDMARK_SIZE, LANDMARK_SIZE))
    params = np.array([side, x0, y0, row_start, row_end, col_start, col_end,
                       pad_top, pad_bottom, pad_left, pad_right], dtype=np.float64)
    return LandmarkCrop(np.ascontiguousarray(crop, dtype=np.uint8), params)


def landmark_net_input(crops: U8) -> F32:
    """(B, 224, 224, 3) uint8 crops -> (B, 3, 224, 224) float32 ``(crop - mean) / 255``.

    Computed in float64 and cast once, as the reference does.
    """
    crops = np.asarray(crops)
    if crops.ndim == 3:
        crops = crops[None]
    values = (crops.astype(np.float64) - np.asarray(LANDMARK_MEAN, dtype=np.float64)) / 255.0
    return np.ascontiguousarray(values.transpose(0, 3, 1, 2).astype(np.float32))


def landmark_points_to_photo(points_crop: npt.ArrayLike, params: F64) -> F64:
    """Points in 224-crop pixels -> photo pixels: point * (side / 224) + (x0, y0), float64."""
    points = np.asarray(points_crop).astype(np.float64)
    side, x0, y0 = float(params[0]), float(params[1]), float(params[2])
    return points * (side / LANDMARK_SIZE) + np.array([x0, y0], dtype=np.float64)


def box_around_points(points: npt.ArrayLike) -> F64:
    """(x_min, y_min, x_max, y_max) of a point set: the second landmark pass's box."""
    values = np.asarray(points, dtype=np.float64)
    return np.concatenate([values.min(axis=0), values.max(axis=0)])


def five_points(landmarks106: npt.ArrayLike, height: int) -> tuple[F32, F32]:
    """The 5 alignment points of 106 landmarks: (photo y down, flipped y up), float32.

    Flipped = (x, H - 1 - y), what the alignment receives.
    """
    points = np.asarray(landmarks106)[list(FIVE_POINT_INDICES)].astype(np.float32)
    flipped = points.copy()
    flipped[:, 1] = np.float32(height - 1) - flipped[:, 1]
    return points, flipped


# --------------------------------------------------------------------------- alignment

def pos_fit(points_2d: npt.ArrayLike, template_3d: npt.ArrayLike) -> tuple[F64, float]:
    """Scaled-orthographic fit of the 3-D template to 2-D points (the reference's ``POS``).

    Solves the 2N x 8 system rows [X Y Z 1 0 0 0 0] and [0 0 0 0 X Y Z 1]
    against (x1, y1, x2, y2, ...) by least squares. Returns the translation
    (sTx, sTy) and the scale (|R1| + |R2|) / 2.
    """
    xp = np.asarray(points_2d, dtype=np.float64)
    xt = np.asarray(template_3d, dtype=np.float64)
    count = xp.shape[0]
    system = np.zeros((2 * count, 8), dtype=np.float64)
    system[0::2, 0:3] = xt
    system[0::2, 3] = 1.0
    system[1::2, 4:7] = xt
    system[1::2, 7] = 1.0
    target = xp.reshape(2 * count, 1)
    solution = np.linalg.lstsq(system, target, rcond=None)[0][:, 0]
    scale = (np.linalg.norm(solution[0:3]) + np.linalg.norm(solution[4:7])) / 2.0
    return np.array([solution[3], solution[7]], dtype=np.float64), float(scale)


@dataclass
class Alignment:
    """The aligned 224 x 224 crop of a photo and the numbers to undo it."""

    trans_params: F64          # (5,) w0, h0, s, tx, ty
    resized_wh: tuple[int, int]
    left_up: tuple[int, int]
    crop: U8                   # (224, 224, 3) RGB
    lm_new: F64                # (5, 2) the 5 points in crop coordinates, v up

    def tensor(self) -> F32:
        """The regressor input: (1, 3, 224, 224) float32 crop / 255."""
        return crop_tensor(self.crop[None])


def _crop_of_resized(image: U8, w: int, h: int, left: int, up: int) -> U8:
    """The 224 window at (left, up) of the photo resized to (w, h), resampling only that window.

    Pillow's ``resize(box=...)`` over the matching source region: the same
    bicubic filter and scale, but its border and weight rounding differ from
    a whole-image resize by up to 2 levels. Used only when the whole resized
    photo would be huge (a small face in a large photo).
    """
    Image = require_pil_image()
    height, width = image.shape[:2]
    x0, y0 = max(left, 0), max(up, 0)
    x1, y1 = min(left + CROP_SIZE, w), min(up + CROP_SIZE, h)
    crop = np.zeros((CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    if x1 <= x0 or y1 <= y0:
        return crop
    sx, sy = width / w, height / h
    box = (x0 * sx, y0 * sy, min(width, x1 * sx), min(height, y1 * sy))
    part = Image.fromarray(image).resize((x1 - x0, y1 - y0), resample=Image.BICUBIC, box=box)
    crop[y0 - up:y1 - up, x0 - left:x1 - left] = np.asarray(part, dtype=np.uint8)
    return crop


def _crop_by_passes(image: U8, w: int, h: int, left: int, up: int) -> U8:
    """The 224 window at (left, up) of the photo resized to (w, h), identical to the whole resize.

    Pillow resizes in two passes, across then down, and each column of the
    second pass depends only on that column; so the first pass runs on the
    whole photo (w x H pixels, not w x h) and the second on the window's
    columns only.
    """
    Image = require_pil_image()
    height = image.shape[0]
    crop = np.zeros((CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    x0, y0 = max(left, 0), max(up, 0)
    x1, y1 = min(left + CROP_SIZE, w), min(up + CROP_SIZE, h)
    if x1 <= x0 or y1 <= y0:
        return crop
    across = Image.fromarray(image).resize((w, height), resample=Image.BICUBIC)
    strip = across.crop((x0, 0, x1, height)).resize((x1 - x0, h), resample=Image.BICUBIC)
    crop[y0 - up:y1 - up, x0 - left:x1 - left] = np.asarray(strip, dtype=np.uint8)[y0:y1]
    return crop


#: Above this many pixels of resized photo, the photo is resized across only (`_crop_by_passes`,
#: exact) or, when even that is too big, only the crop window is resampled (`_crop_of_resized`).
FULL_RESIZE_LIMIT = 36_000_000


def align_photo(image: U8, lm5_flipped: npt.ArrayLike, template_3d: npt.ArrayLike,
                full_resize_limit: int = FULL_RESIZE_LIMIT) -> Alignment:
    """The reference's ``align_img``: POS fit, whole-photo bicubic resize, 224 crop.

    `lm5_flipped` are the 5 points with y up ((x, H - 1 - y)); `template_3d`
    the 5 x 3 template. Outside the resized photo the crop is black. When the
    resized photo would exceed `full_resize_limit` pixels (a small face in a
    big photo: the reference would build a gigapixel image), it is resized
    across only and the window's columns down, with the same pixels; when even
    the photo resized across is too big, only the crop window is resampled,
    at most 2 levels off the reference's pixels.
    """
    Image = require_pil_image()
    height, width = image.shape[:2]
    points = np.asarray(lm5_flipped)
    translation, pos_scale = pos_fit(points, template_3d)
    if not np.isfinite(pos_scale) or pos_scale <= 0:
        raise ReconstructionError("The 5 face points are degenerate (all in one place); give another face box")
    scale = RESCALE_FACTOR / pos_scale
    trans_params = np.array([width, height, scale, translation[0], translation[1]], dtype=np.float64)
    w, h, left, up = crop_geometry(trans_params)
    if w < 1 or h < 1 or w > 200_000 or h > 200_000:
        raise ReconstructionError(
            f"The face points give an unusable crop scale ({scale:.4g}); the landmarks are probably wrong: "
            "give a tighter face box or a clearer photo")
    if w * height <= full_resize_limit < w * h:
        crop = _crop_by_passes(image, w, h, left, up)
    elif w * h > full_resize_limit:
        crop = _crop_of_resized(image, w, h, left, up)
    else:
        resized = Image.fromarray(image).resize((w, h), resample=Image.BICUBIC)
        crop = np.asarray(resized.crop((left, up, left + CROP_SIZE, up + CROP_SIZE)), dtype=np.uint8)
    half = CROP_SIZE / 2.0
    pts = points.astype(np.float64)
    lm_new = np.stack([pts[:, 0] - translation[0] + width / 2,
                       pts[:, 1] - translation[1] + height / 2], axis=1) * scale
    lm_new = lm_new - np.array([w / 2 - half, h / 2 - half])
    return Alignment(trans_params, (w, h), (left, up), np.ascontiguousarray(crop), lm_new)


def crop_tensor(crops: U8) -> F32:
    """(B, 224, 224, 3) uint8 crops -> (B, 3, 224, 224) float32 crop / 255 (computed in float64)."""
    crops = np.asarray(crops)
    if crops.ndim == 3:
        crops = crops[None]
    return np.ascontiguousarray((crops.transpose(0, 3, 1, 2) / 255.0).astype(np.float32))


def crop_to_photo(points_yup: npt.ArrayLike, trans_params: npt.ArrayLike) -> npt.NDArray[Any]:
    """Crop coordinates (u right, v up) -> photo pixels (x right, y down).

    x = (u + left) w0 / w, y = (223 - v + up) h0 / h, computed in the input's
    floating dtype step by step (float32 in, float32 out, as the reference's
    ``back_resize_ldms`` does with numpy 1.x promotion).
    """
    points = np.asarray(points_yup)
    if not np.issubdtype(points.dtype, np.floating):
        points = points.astype(np.float64)
    dtype = points.dtype.type
    w0, h0 = float(np.asarray(trans_params).reshape(5)[0]), float(np.asarray(trans_params).reshape(5)[1])
    w, h, left, up = crop_geometry(trans_params)
    rows = dtype(CROP_SIZE - 1) - points[..., 1]
    out = np.empty(points.shape, dtype=points.dtype)
    out[..., 0] = (points[..., 0] + dtype(left)) / dtype(w) * dtype(w0)
    out[..., 1] = (rows + dtype(up)) / dtype(h) * dtype(h0)
    return out


def rowdown_crop_to_photo(points_rowdown: npt.ArrayLike, trans_params: npt.ArrayLike) -> npt.NDArray[Any]:
    """Crop pixels (column, row down) -> photo pixels: the reference's ``back_resize_ldms``."""
    points = np.asarray(points_rowdown)
    if not np.issubdtype(points.dtype, np.floating):
        points = points.astype(np.float64)
    dtype = points.dtype.type
    flipped = points.copy()
    flipped[..., 1] = dtype(CROP_SIZE - 1) - points[..., 1]
    return crop_to_photo(flipped, trans_params)


def paste_crop_back(crop: U8, trans_params: npt.ArrayLike, photo: U8) -> U8:
    """Paste a 224 x 224 crop-aligned image back onto a photo (the reference's ``back_resize_crop_img``).

    The photo is resized to the alignment scale, the crop pasted at the crop
    window, and the result resized back to the photo size, both bicubic.
    """
    Image = require_pil_image()
    w0, h0 = (int(v) for v in np.asarray(trans_params, dtype=np.float64).reshape(5)[:2])
    w, h, left, up = crop_geometry(trans_params)
    canvas = Image.fromarray(as_rgb_uint8(photo)).resize((w, h), resample=Image.BICUBIC)
    canvas.paste(Image.fromarray(as_rgb_uint8(crop, what="the crop")), (left, up, left + CROP_SIZE, up + CROP_SIZE))
    return np.asarray(canvas.resize((w0, h0), resample=Image.BICUBIC), dtype=np.uint8)
