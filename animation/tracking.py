# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tracking a face through a video with 3DDFA-V3: per-frame expression and
head pose, one identity for the whole clip.

- Detection (RetinaFace) runs on the first frame, and again only when the
  face is lost (the landmarks leave the frame or drift away from the box they
  were found in) or every `redetect_every` frames as a check; otherwise the
  previous frame's landmarks give the next crop (one landmark pass). A check,
  or a detection soon after the face was lost, first searches the region
  around the tracked face (twice its size) on a 256 canvas, a quarter of a
  whole-frame detection's cost; only when no whole face is found there does
  the whole frame go through the detector.
- Alignment resamples only the 224 crop window (the photo path resizes the
  whole frame to match the reference bit for bit: most of a 720p frame's time),
  at most 2 grey levels off the photo path's crop.
- Regression runs batched: `batch_size` aligned crops per forward pass.
- The networks run with BatchNorm folded into the convolutions (the
  reconstructor's `folded` copies): the same outputs to float32 rounding.
- The identity is locked to one estimate: the per-coefficient median over
  the tracked frames (robust to a few bad frames), or a chosen frame's.
- Frames where no face is found are reported (`Track.skipped`) and get no
  keys; they never stop the run.
- Expression, angles and translation are smoothed with the One Euro filter.
- Cancelling keeps the frames already done (`Track.cancelled`).

The pose is expressed for one fixed camera, the reference frame's photo
camera: each frame's own crop camera is mapped to it by moving the head along
its viewing ray so its image position and size match (weak perspective).

torch and tddfa_v3 are imported when tracking runs, never at import: the
tddfa_v3 modules are found through the reconstructor's own package, so this
works both inside the add-on and from a clone (where the package names differ).
"""

from __future__ import annotations

import functools
import importlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .errors import Cancelled, TrackingError
from .one_euro import OneEuroParams, smooth
from .video import FrameRange, VideoSource

#: progress(frames done, frames to do, frames per second so far)
ProgressCallback = Callable[[int, int, float], None]
CancelCallback = Callable[[], bool]
#: A face detector: RGB frames -> per frame (box x1, y1, x2, y2, score) or None.
Detector = Callable[[Sequence[np.ndarray]], Sequence[Any]]

EXPRESSION = slice(80, 144)
IDENTITY = slice(0, 80)
ANGLES = slice(224, 227)
TRANSLATION = slice(254, 257)
CAMERA_DISTANCE = 10.0
#: The detector's canvas side for the region around a tracked face (whole frames: 512).
NEAR_CANVAS = 256
#: That region: the tracked face's box, centred, this many times its larger side.
NEAR_REGION = 2.0
#: A face lost for more frames than this is searched for in the whole frame at once.
NEAR_LOST_FRAMES = 15


@dataclass(frozen=True)
class TrackOptions:
    """How to track. identity_frame: a video frame index whose identity is used
    (None: the median over all tracked frames). face_box: the face on the first
    frame (x1, y1, x2, y2 pixels), skipping detection there. smoothing: None for raw values."""

    frames: FrameRange = FrameRange()
    batch_size: int = 16
    smoothing: OneEuroParams | None = OneEuroParams()
    identity_frame: int | None = None
    redetect_every: int = 30
    min_overlap: float = 0.4
    face_box: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.redetect_every < 0 or not 0 <= self.min_overlap < 1:
            raise TrackingError(f"tracking needs batch_size >= 1, redetect_every >= 0 and 0 <= min_overlap < 1: {self}")


@dataclass
class Track:
    """The tracked clip. N = tracked frames (frames with a face).

    frames: (N,) video frame indices; times: (N,) seconds. coefficients: (N, 257)
    raw network outputs. identity: (80,) the locked identity. expression (N, 64),
    angles (N, 3) pitch/yaw/roll radians, translation (N, 3) model units in the
    reference camera: smoothed. camera: (4,) fx, fy, cx, cy of the reference
    frame's photo camera; reference_frame: its index; reference_landmarks5:
    (5, 2) its alignment points (photo pixels, y down).
    """

    source: str
    fps: float
    width: int
    height: int
    frame_count: int
    frames: np.ndarray
    times: np.ndarray
    coefficients: np.ndarray
    trans_params: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    angles: np.ndarray
    translation: np.ndarray
    camera: np.ndarray
    reference_frame: int
    reference_landmarks5: np.ndarray
    skipped: list[int] = field(default_factory=list)
    detections: int = 0
    cancelled: bool = False
    seconds: float = 0.0

    def __len__(self) -> int:
        return int(len(self.frames))

    def rotations(self) -> np.ndarray:
        """(N, 3, 3) rotation matrices of the (smoothed) angles, row-vector convention (p @ R)."""
        return rotation_matrices(self.angles)

    def save_npz(self, path: str) -> None:
        np.savez_compressed(
            path, frames=self.frames, times=self.times, coefficients=self.coefficients,
            trans_params=self.trans_params, identity=self.identity, expression=self.expression,
            angles=self.angles, translation=self.translation, camera=self.camera,
            reference_frame=self.reference_frame, reference_landmarks5=self.reference_landmarks5,
            skipped=np.asarray(self.skipped, dtype=np.int64), fps=self.fps,
            size=np.array([self.width, self.height]), frame_count=self.frame_count)


def rotation_matrices(angles: np.ndarray) -> np.ndarray:
    """3DDFA-V3's rotation of (pitch, yaw, roll): (Rz Ry Rx)^T, for row vectors."""
    a = np.asarray(angles, dtype=np.float64).reshape(-1, 3)
    cx, cy, cz = np.cos(a).T
    sx, sy, sz = np.sin(a).T
    one, zero = np.ones_like(cx), np.zeros_like(cx)
    rx = np.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], axis=1).reshape(-1, 3, 3)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], axis=1).reshape(-1, 3, 3)
    rz = np.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], axis=1).reshape(-1, 3, 3)
    return np.transpose(rz @ ry @ rx, (0, 2, 1))


def to_reference_camera(translation: np.ndarray, cameras: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-frame translations (N, 3) seen by per-frame cameras (N, 4: fx, fy, cx, cy) -> the
    translations that put the head at the same image position and size for the reference camera."""
    t = np.asarray(translation, dtype=np.float64)
    fx, fy, cx, cy = np.asarray(cameras, dtype=np.float64).T
    depth = CAMERA_DISTANCE - t[:, 2]
    u = fx * t[:, 0] / depth + cx
    v = -fy * t[:, 1] / depth + cy
    rfx, rfy, rcx, rcy = (float(x) for x in reference)
    new_depth = depth * rfx / fx
    out = np.empty_like(t)
    out[:, 0] = (u - rcx) * new_depth / rfx
    out[:, 1] = -(v - rcy) * new_depth / rfy
    out[:, 2] = CAMERA_DISTANCE - new_depth
    return out


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (x1, y1, x2, y2)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def core_module(reconstructor: Any, name: str) -> Any:
    """The tddfa_v3 submodule `name` of the package the reconstructor comes from."""
    package = type(reconstructor).__module__.rpartition(".")[0]
    return importlib.import_module(f"{package}.{name}")


class _Tracker:
    def __init__(self, reconstructor: Any, detector: Detector | None, options: TrackOptions) -> None:
        self.rec = reconstructor
        self.pre = core_module(reconstructor, "preprocess")
        self.cv2 = core_module(reconstructor, "dependencies").require_cv2()
        errors = core_module(reconstructor, "errors")
        self.face_box_error = errors.FaceBoxError
        self.reconstruction_error = errors.ReconstructionError
        # The video path's networks have BatchNorm folded into the convolutions (`folded`:
        # float32-rounding-level differences, ~15-20 % less CPU time than the photo path's).
        if detector is None:
            self.detector: Detector = functools.partial(reconstructor.detect_faces, folded=True)
            self.near_detector: Detector = functools.partial(
                reconstructor.detect_faces, folded=True, size=NEAR_CANVAS)
        else:
            self.detector = self.near_detector = detector
        self.options = options
        self.detections = 0
        self.last_found: np.ndarray | None = None      # the last face box the detector gave

    def detect(self, image: np.ndarray, near: np.ndarray | None = None) -> np.ndarray | None:
        """The face box of one detection: first, when `near` (the tracked face's box) is
        given, in the region around it and the last detected face (landmarks that
        collapse or drift leave a box that no longer frames the face); else, or when no
        whole face is found there, in the whole frame."""
        self.detections += 1
        box = None
        if near is not None:
            if self.last_found is not None:
                near = np.concatenate([np.minimum(near[:2], self.last_found[:2]),
                                       np.maximum(near[2:], self.last_found[2:])])
            box = self.detect_near(image, near)
        if box is None:
            box = _box_of(list(self.detector([image]))[0])
        if box is not None:
            self.last_found = box
        return box

    def detect_near(self, image: np.ndarray, near: np.ndarray) -> np.ndarray | None:
        """The face in the region NEAR_REGION times `near`'s size around it, handed to the
        detector at most NEAR_CANVAS pixels wide; None when there is none, or it touches the
        region's edge inside the frame (a face cut by the region)."""
        height, width = image.shape[:2]
        half = NEAR_REGION * max(float(near[2] - near[0]), float(near[3] - near[1]), 8.0) / 2
        cx, cy = (float(near[0]) + float(near[2])) / 2, (float(near[1]) + float(near[3])) / 2
        x0, y0 = max(int(cx - half), 0), max(int(cy - half), 0)
        x1, y1 = min(int(np.ceil(cx + half)), width), min(int(np.ceil(cy + half)), height)
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        region = image[y0:y1, x0:x1]
        scale = min(NEAR_CANVAS / max(x1 - x0, y1 - y0), 1.0)
        if scale < 1.0:
            size = (max(int(round((x1 - x0) * scale)), 1), max(int(round((y1 - y0) * scale)), 1))
            region = self.cv2.resize(region, size, interpolation=self.cv2.INTER_AREA)
        box = _box_of(list(self.near_detector([np.ascontiguousarray(region)]))[0])
        if box is None:
            return None
        inner_h, inner_w = region.shape[:2]
        margin = 2.0
        if ((x0 > 0 and box[0] < margin) or (y0 > 0 and box[1] < margin)
                or (x1 < width and box[2] > inner_w - 1 - margin) or (y1 < height and box[3] > inner_h - 1 - margin)):
            return None
        sx, sy = (x1 - x0) / inner_w, (y1 - y0) / inner_h
        return np.array([box[0] * sx + x0, box[1] * sy + y0, box[2] * sx + x0, box[3] * sy + y0])

    def landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """One landmark pass in `box`; None when the box or the points leave the frame."""
        try:
            made = self.pre.landmark_crop(image, box)
        except self.face_box_error:
            return None
        points = self.rec.landmark_points(made.crop[None], folded=True)[0]
        found = self.pre.landmark_points_to_photo(points, made.params)
        height, width = image.shape[:2]
        if not np.isfinite(found).all():
            return None
        inside = ((found[:, 0] >= 0) & (found[:, 0] < width) & (found[:, 1] >= 0) & (found[:, 1] < height)).mean()
        return found if inside >= 0.5 else None

    def align(self, image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lm5, flipped = self.pre.five_points(points, image.shape[0])
        # Only the 224 window is resampled (full_resize_limit=0), not the whole frame: the
        # photo path's whole-frame bicubic resize is ~190 ms at 720p; the window's pixels are
        # at most 2 levels off it.
        aligned = self.pre.align_photo(image, flipped, self.rec.template5, full_resize_limit=0)
        return aligned.crop, np.asarray(aligned.trans_params, dtype=np.float64), lm5


def track_video(source: VideoSource, reconstructor: Any, options: TrackOptions = TrackOptions(), *,
                detector: Detector | None = None, progress: ProgressCallback | None = None,
                cancel: CancelCallback | None = None) -> Track:
    """Tracks the face of `source` with a `tddfa_v3.pipeline.Reconstructor`.

    `detector` replaces the reconstructor's RetinaFace (same call shape as
    `Reconstructor.detect_faces`). Raises TrackingError when no frame has a
    face; a cancel keeps what was done (Track.cancelled), unless nothing was.
    """
    photo_camera_intrinsics = core_module(reconstructor, "face_model").photo_camera_intrinsics
    tracker = _Tracker(reconstructor, detector, options)
    wanted = options.frames.indices(source.frame_count)
    total = len(wanted)
    started = time.perf_counter()
    frames: list[int] = []
    skipped: list[int] = []
    alphas: list[np.ndarray] = []
    trans: list[np.ndarray] = []
    five: list[np.ndarray] = []
    pending: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []   # index, crop, trans, lm5
    cancelled = False
    done = 0

    def flush() -> None:
        if not pending:
            return
        crops = np.stack([crop for _, crop, _, _ in pending])
        alpha = reconstructor.regress(reconstructor.crops_to_tensor(crops), folded=True)
        alphas.append(np.asarray(alpha.detach().cpu().numpy(), dtype=np.float64))
        trans.extend(t for _, _, t, _ in pending)
        five.extend(lm5 for _, _, _, lm5 in pending)
        frames.extend(index for index, _, _, _ in pending)
        pending.clear()

    previous: np.ndarray | None = None
    last_box: np.ndarray | None = None      # the last tracked face's box, and frames since then
    since_tracked = 0
    since_detection = 0
    first = True
    for index, image in source.frames(options.frames):
        if cancel is not None and cancel():
            cancelled = True
            break
        points: np.ndarray | None = None
        check = options.redetect_every > 0 and since_detection >= options.redetect_every
        if previous is not None and not check:
            box = tracker.pre.box_around_points(previous)
            points = tracker.landmarks(image, box)
            if points is not None and _overlap(box, tracker.pre.box_around_points(points)) < options.min_overlap:
                points = None       # drifted: find the face again
        if points is None:
            box = None
            if first and options.face_box is not None:
                box = np.asarray(options.face_box, dtype=np.float64)
            else:
                near = last_box if since_tracked <= NEAR_LOST_FRAMES else None
                box = tracker.detect(image, near)
            since_detection = 0
            if box is not None:
                points = tracker.landmarks(image, box)
                if points is not None:
                    # The detector's box is loose: a second pass in the points' own box.
                    points = _second_pass(tracker, image, points)
        first = False
        done += 1
        aligned = None
        if points is not None:
            try:
                aligned = tracker.align(image, points)
            except tracker.reconstruction_error:
                aligned = None     # landmarks that give no usable crop: as if no face was found
        if points is None or aligned is None:
            skipped.append(index)
            previous = None
            since_tracked += 1
        else:
            since_detection += 1
            previous = points
            last_box = tracker.pre.box_around_points(points)
            since_tracked = 0
            pending.append((index, *aligned))
            if len(pending) >= options.batch_size:
                flush()
        if progress is not None:
            elapsed = time.perf_counter() - started
            progress(done, total, done / elapsed if elapsed > 0 else 0.0)
    flush()
    if not frames:
        if cancelled:
            raise Cancelled("tracking was cancelled before any frame was done")
        raise TrackingError(f"no face was found in any of the {done} frames read from {source.path.name}: "
                            "check the frame range, or give the face box of the first frame")
    coefficients = np.concatenate(alphas, axis=0)
    trans_params = np.stack(trans)
    cameras = photo_camera_intrinsics(trans_params)
    frame_array = np.asarray(frames, dtype=np.int64)
    times = source.times(frame_array)
    median_identity = np.median(coefficients[:, IDENTITY], axis=0)
    if options.identity_frame is not None:
        if options.identity_frame not in frames:
            raise TrackingError(f"frame {options.identity_frame} was not tracked (skipped, or outside the range): "
                                "choose another identity frame")
        reference = frames.index(options.identity_frame)
        identity = coefficients[reference, IDENTITY].copy()
    else:
        reference = int(np.argmin(np.linalg.norm(coefficients[:, IDENTITY] - median_identity, axis=1)))
        identity = median_identity
    translation = to_reference_camera(coefficients[:, TRANSLATION], cameras, cameras[reference])
    expression = coefficients[:, EXPRESSION].copy()
    angles = coefficients[:, ANGLES].copy()
    if options.smoothing is not None and len(frames) > 1:
        expression = smooth(expression, times, options.smoothing)
        angles = smooth(angles, times, options.smoothing)
        translation = smooth(translation, times, options.smoothing)
    return Track(
        source=str(source.path), fps=source.fps, width=source.width, height=source.height,
        frame_count=source.frame_count, frames=frame_array, times=times, coefficients=coefficients,
        trans_params=trans_params, identity=identity, expression=expression, angles=angles,
        translation=translation, camera=cameras[reference], reference_frame=frames[reference],
        reference_landmarks5=five[reference], skipped=skipped, detections=tracker.detections,
        cancelled=cancelled, seconds=time.perf_counter() - started)


def _box_of(hit: Any) -> np.ndarray | None:
    """A detector's answer for one image ((box, score), a box, or None) as a float64 box."""
    if hit is None:
        return None
    return np.asarray(hit[0] if isinstance(hit, tuple) else hit, dtype=np.float64)[:4]


def _second_pass(tracker: _Tracker, image: np.ndarray, points: np.ndarray) -> np.ndarray:
    refined = tracker.landmarks(image, tracker.pre.box_around_points(points))
    return points if refined is None else refined
