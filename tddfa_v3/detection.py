# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""RetinaFace anchors, box/landmark decoding, NMS and the reference post-processing.

Reproduces the 3DDFA-V3 detector's ``predict_jsons`` (the "ternaus"
RetinaFace wrapper): keep softmax scores > 0.7, sort by score, NMS at IoU 0.4
(torchvision's CPU semantics), truncate boxes to int, un-pad, scale by
max(H, W) / 512 and truncate again. Unlike the reference, an empty result is
an empty `Detections`, not an entry with score -1.

Imports torch (callers import this module lazily).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from .preprocess import DETECTION_THRESHOLD, DETECTOR_SIZE

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Anchor sizes (pixels of the 512 canvas) per pyramid level, and the levels' strides.
MIN_SIZES: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
STEPS: tuple[int, ...] = (8, 16, 32)
VARIANCES: tuple[float, float] = (0.1, 0.2)
NMS_THRESHOLD = 0.4
#: Anchors post-processed per photo first (see `first_faces`): the face kept is
#: the top-scoring anchor unless the reference's skip rule drops it.
DETECTION_TOP_K = 16


@lru_cache(maxsize=8)
def _prior_array(image_size: int, min_sizes: tuple[tuple[int, ...], ...],
                 steps: tuple[int, ...]) -> F32:
    levels = []
    for sizes, step in zip(min_sizes, steps):
        cells = math.ceil(image_size / step)
        rows, cols, size = np.meshgrid(np.arange(cells, dtype=np.float64), np.arange(cells, dtype=np.float64),
                                       np.asarray(sizes, dtype=np.float64), indexing="ij")
        # Same float64 operation order as the reference: (j + 0.5) * step / size.
        cx = (cols + 0.5) * step / image_size
        cy = (rows + 0.5) * step / image_size
        wh = size / image_size
        levels.append(np.stack((cx, cy, wh, wh), axis=-1).reshape(-1, 4))
    result = np.concatenate(levels, axis=0).astype(np.float32)
    result.setflags(write=False)
    return result


def prior_boxes(image_size: int = DETECTOR_SIZE, device: torch.device | str | None = None) -> torch.Tensor:
    """RetinaFace anchors (N, 4) as (cx, cy, w, h), normalised by `image_size`.

    Order: level (strides 8, 16, 32), row, column, then anchor size; N = 10752 for 512.
    """
    if image_size <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    return torch.tensor(_prior_array(int(image_size), MIN_SIZES, STEPS), device=device)


def decode_boxes(loc: torch.Tensor, priors: torch.Tensor,
                 variances: Sequence[float] = VARIANCES) -> torch.Tensor:
    """SSD decoding of (..., N, 4) offsets to (x1, y1, x2, y2), normalised like the priors."""
    centre = priors[..., :2] + loc[..., :2] * variances[0] * priors[..., 2:]
    size = priors[..., 2:] * torch.exp(loc[..., 2:] * variances[1])
    top_left = centre - size / 2
    return torch.cat((top_left, top_left + size), dim=-1)


def decode_landmarks(pre: torch.Tensor, priors: torch.Tensor,
                     variances: Sequence[float] = VARIANCES) -> torch.Tensor:
    """Decoding of (..., N, 10) landmark offsets to 5 (x, y) pairs, normalised like the priors."""
    offsets = pre.reshape(*pre.shape[:-1], 5, 2)
    points = priors[..., None, :2] + offsets * variances[0] * priors[..., None, 2:]
    return points.reshape(pre.shape)


#: Up to this many boxes NMS precomputes the full IoU matrix (count^2 float32 temporaries).
_NMS_MATRIX_LIMIT = 2048


def _pair_iou(x1: F32, y1: F32, x2: F32, y2: F32, areas: F32, rows: Any, cols: Any) -> F32:
    """IoU of boxes `rows` (the higher-scored, kept box) with boxes `cols`, in torchvision's float32 order."""
    width = np.maximum(np.float32(0), np.minimum(x2[rows], x2[cols]) - np.maximum(x1[rows], x1[cols]))
    height = np.maximum(np.float32(0), np.minimum(y2[rows], y2[cols]) - np.maximum(y1[rows], y1[cols]))
    inter = width * height
    result: F32 = inter / (areas[rows] + areas[cols] - inter)
    return result


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression with torchvision's CPU semantics.

    Boxes (K, 4) as (x1, y1, x2, y2); stable descending sort by score; a box
    is dropped when its IoU with a kept, higher-scoring box exceeds the
    threshold; area = (x2 - x1)(y2 - y1) (no +1). Returns the kept indices,
    highest score first. The greedy loop runs once per kept box; each step
    is one vectorised operation over the remaining boxes.
    """
    if boxes.dim() != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"nms expects boxes (K, 4) and scores (K,), got {tuple(boxes.shape)} and {tuple(scores.shape)}")
    count = int(boxes.shape[0])
    if count == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores.detach().cpu(), descending=True, stable=True).indices
    sorted_boxes = boxes.detach().cpu()[order].numpy().astype(np.float32, copy=False)
    x1, y1, x2, y2 = (np.ascontiguousarray(sorted_boxes[:, k]) for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    alive = np.ones(count, dtype=bool)
    kept: list[int] = []
    # torchvision compares the float IoU with the threshold as a double.
    if count <= _NMS_MATRIX_LIMIT:
        everything = np.arange(count)
        suppresses = _pair_iou(x1, y1, x2, y2, areas, everything[:, None], everything[None, :]) \
            .astype(np.float64) > iou_threshold
        current = 0
        while True:
            kept.append(current)
            alive &= ~suppresses[current]
            alive[:current + 1] = False
            if not alive.any():
                break
            current = int(np.argmax(alive))
    else:
        current = 0
        while True:
            kept.append(current)
            alive[current] = False
            rest = current + 1 + np.flatnonzero(alive[current + 1:])
            if rest.size == 0:
                break
            iou = _pair_iou(x1, y1, x2, y2, areas, current, rest)
            alive[rest[iou.astype(np.float64) > iou_threshold]] = False
            if not alive.any():
                break
            current = int(np.argmax(alive))
    return order[torch.as_tensor(kept, dtype=torch.long)].to(boxes.device)


@dataclass
class Detections:
    """Faces found in one photo, best first, in photo pixels (x right, y down).

    Boxes are not clipped to the photo (they can be negative or exceed it),
    as the reference returns them.
    """

    boxes: I64        # (K, 4) x1, y1, x2, y2
    scores: F64       # (K,)
    landmarks: I64    # (K, 5, 2) RetinaFace's own 5 points (unused by 3DDFA-V3)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4), np.int64), np.zeros(0, np.float64), np.zeros((0, 5, 2), np.int64))


@dataclass
class Candidates:
    """Anchors that survived thresholding, sorting and NMS, in padded-canvas pixels (float32)."""

    boxes: torch.Tensor       # (K, 4)
    scores: torch.Tensor      # (K,)
    landmarks: torch.Tensor   # (K, 10)


def _single(tensor: torch.Tensor, last: int, name: str) -> torch.Tensor:
    if tensor.dim() == 3:
        if tensor.shape[0] != 1:
            raise ValueError(f"{name}: pass one image's outputs (N, {last}) or (1, N, {last}); got {tuple(tensor.shape)}")
        tensor = tensor[0]
    if tensor.dim() != 2 or tensor.shape[1] != last:
        raise ValueError(f"{name} must be (N, {last}), got {tuple(tensor.shape)}")
    return tensor


def select_candidates(loc: torch.Tensor, conf: torch.Tensor, landm: torch.Tensor, *,
                      image_size: int = DETECTOR_SIZE, confidence: float = DETECTION_THRESHOLD,
                      nms_iou: float = NMS_THRESHOLD, top_k: int | None = None,
                      priors: torch.Tensor | None = None, stable: bool = False) -> Candidates:
    """Decode one image's raw heads, threshold, sort, optionally cap, and NMS.

    Scores are ``softmax(conf)[:, 1]``; anchors with score > `confidence`
    are sorted by score, descending, the first `top_k` kept if given, then
    NMS at `nms_iou`. Coordinates: pixels of the padded canvas. The sort is,
    as the reference's, torch's default (unstable) CPU sort: tied scores
    come out in its order, not the anchors' (with more than 16 of them the
    two differ), and NMS keeps that order; `stable` sorts ties by anchor.
    """
    loc = _single(loc, 4, "loc")
    conf = _single(conf, 2, "conf")
    landm = _single(landm, 10, "landm")
    if not loc.shape[0] == conf.shape[0] == landm.shape[0]:
        raise ValueError("loc, conf and landm must have the same number of anchors")
    if priors is None:
        priors = prior_boxes(image_size, device=loc.device)
    if priors.shape[0] != loc.shape[0]:
        raise ValueError(f"{loc.shape[0]} anchors in the heads but {priors.shape[0]} priors for a "
                         f"{image_size}x{image_size} input")
    scores = F.softmax(conf, dim=-1)[:, 1]
    valid = scores > confidence
    scores = scores[valid]
    boxes = decode_boxes(loc[valid], priors[valid]) * image_size
    landmarks = decode_landmarks(landm[valid], priors[valid]) * image_size
    # On the CPU whatever the device: the unstable order is the CPU algorithm's.
    order = torch.sort(scores.cpu(), descending=True, stable=stable).indices.to(scores.device)
    if top_k is not None:
        order = order[:top_k]
    boxes, landmarks, scores = boxes[order], landmarks[order], scores[order]
    keep = nms(boxes, scores, nms_iou)
    return Candidates(boxes[keep], scores[keep], landmarks[keep])


def to_photo(candidates: Candidates, pads: Sequence[int] | npt.ArrayLike, image_hw: tuple[int, int],
             image_size: int = DETECTOR_SIZE, *, drop_outside: bool = True) -> Detections:
    """Canvas-pixel candidates to photo pixels, with the reference's integer truncations.

    Boxes: truncated to int32, un-padded, scaled by max(H, W) / `image_size`
    (float64), truncated. Landmarks: un-padded and scaled in float32,
    truncated. With `drop_outside`, boxes whose clipped extent would be empty
    (starting at or past the last column/row) are dropped, the reference's
    skip rule; stored boxes stay unclipped either way.
    """
    pad = np.asarray(pads, dtype=np.int64).reshape(-1)
    if pad.shape != (4,):
        raise ValueError(f"pads must be (x_min, y_min, x_max, y_max), got {pads!r}")
    height, width = int(image_hw[0]), int(image_hw[1])
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {image_hw!r}")
    if candidates.boxes.shape[0] == 0:
        return Detections.empty()
    boxes = candidates.boxes.detach().cpu().to(torch.int32).numpy().astype(np.int64)
    landmarks = candidates.landmarks.detach().cpu().numpy().astype(np.float32).reshape(-1, 5, 2)
    scores = candidates.scores.detach().cpu().numpy().astype(np.float64)
    boxes -= pad[[0, 1, 0, 1]]
    landmarks -= pad[[0, 1]].astype(np.float32)
    coeff = max(height, width) / image_size
    boxes = (boxes * coeff).astype(np.int64)
    landmarks_px = (landmarks * np.float32(coeff)).astype(np.int64)
    x_min = np.clip(boxes[:, 0], 0, width - 1)
    x_max = np.minimum(np.maximum(boxes[:, 2], x_min + 1), width - 1)
    y_min = np.clip(boxes[:, 1], 0, height - 1)
    y_max = np.minimum(np.maximum(boxes[:, 3], y_min + 1), height - 1)
    usable = (x_min < x_max) & (y_min < y_max) if drop_outside else np.ones(len(boxes), dtype=bool)
    return Detections(boxes[usable], scores[usable], landmarks_px[usable])


def postprocess(loc: torch.Tensor, conf: torch.Tensor, landm: torch.Tensor,
                pads: Sequence[int] | npt.ArrayLike, image_hw: tuple[int, int], *,
                image_size: int = DETECTOR_SIZE, confidence: float = DETECTION_THRESHOLD,
                nms_iou: float = NMS_THRESHOLD, top_k: int | None = None,
                priors: torch.Tensor | None = None) -> Detections:
    """The reference's ``predict_jsons`` on one image's raw heads: faces in photo pixels.

    `loc`, `conf`, `landm`: (N, 4|2|10) or (1, N, ...) raw outputs;
    `pads`: (x_min, y_min, x_max, y_max) of the zero padding;
    `image_hw`: the photo's (height, width).
    """
    candidates = select_candidates(loc, conf, landm, image_size=image_size, confidence=confidence,
                                   nms_iou=nms_iou, top_k=top_k, priors=priors)
    return to_photo(candidates, pads, image_hw, image_size)


def detect(network: torch.nn.Module, batch: torch.Tensor, pads: npt.ArrayLike,
           image_hws: Sequence[tuple[int, int]], *, confidence: float = DETECTION_THRESHOLD,
           nms_iou: float = NMS_THRESHOLD) -> list[Detections]:
    """Run RetinaFace on a (B, 3, S, S) batch and post-process each image.

    `pads` is (B, 4); `image_hws` the photos' (height, width). The network
    runs once for the batch; post-processing is per image.
    """
    if batch.dim() != 4 or batch.shape[2] != batch.shape[3]:
        raise ValueError(f"detect expects a (B, 3, S, S) batch, got {tuple(batch.shape)}")
    pad_rows = np.asarray(pads, dtype=np.int64).reshape(-1, 4)
    if pad_rows.shape[0] != batch.shape[0] or len(image_hws) != batch.shape[0]:
        raise ValueError("detect needs one pads row and one image size per batch image")
    size = int(batch.shape[-1])
    with torch.inference_mode():
        loc, conf, landm = network(batch)
        priors = prior_boxes(size, device=loc.device)
        return [postprocess(loc[i], conf[i], landm[i], pad_rows[i], image_hws[i], image_size=size,
                            confidence=confidence, nms_iou=nms_iou, priors=priors)
                for i in range(batch.shape[0])]


def first_faces(loc: "torch.Tensor", conf: "torch.Tensor", landm: "torch.Tensor", priors: "torch.Tensor",
                pads: Sequence[npt.ArrayLike], image_hws: Sequence[tuple[int, int]],
                threshold: float = DETECTION_THRESHOLD,
                top_k: int = DETECTION_TOP_K, image_size: int = DETECTOR_SIZE) -> list[tuple[F64, float] | None]:
    """The reference's first face (box, score) per image from batched raw RetinaFace heads, or None.

    The first face after the reference's threshold, sort and NMS is the
    top-scoring anchor unless its box falls wholly outside the photo (the
    reference's skip rule), so only the `top_k` best anchors of each image go
    to the host (one transfer for the batch) and through the reference's
    post-processing; an image whose top anchors are all skipped, while more
    anchors pass the threshold, or whose top scores tie (the reference's
    unstable sort orders ties over all anchors), is post-processed in full.
    `image_size`: the canvas side the heads were computed on (the priors' too).
    """
    with torch.inference_mode():
        scores = torch.softmax(conf, dim=-1)[..., 1]
        top = min(top_k, int(scores.shape[1]))
        values, order = torch.topk(scores, min(top + 1, int(scores.shape[1])), dim=1)
        tied = ((values[:, 1:] == values[:, :-1]) & (values[:, 1:] > threshold)).any(dim=1).cpu()
        order = order[:, :top]
        pick = order[..., None]
        loc_k = torch.gather(loc, 1, pick.expand(-1, -1, 4)).float().cpu()
        conf_k = torch.gather(conf, 1, pick.expand(-1, -1, 2)).float().cpu()
        landm_k = torch.gather(landm, 1, pick.expand(-1, -1, 10)).float().cpu()
        priors_k = priors.to(order.device)[order].float().cpu()
        above = (scores > threshold).sum(dim=1).cpu()
    found: list[tuple[F64, float] | None] = []
    for row in range(int(loc.shape[0])):
        hw = (int(image_hws[row][0]), int(image_hws[row][1]))
        detections = postprocess(loc_k[row], conf_k[row], landm_k[row], pads[row], hw,
                                 image_size=image_size, confidence=threshold, priors=priors_k[row])
        if bool(tied[row]) or (len(detections) == 0 and int(above[row]) > top):
            detections = postprocess(loc[row].float().cpu(), conf[row].float().cpu(), landm[row].float().cpu(),
                                     pads[row], hw, image_size=image_size, confidence=threshold,
                                     priors=priors.float().cpu())
        if len(detections) == 0:
            found.append(None)
        else:
            found.append((detections.boxes[0].astype(np.float64), float(detections.scores[0])))
    return found
