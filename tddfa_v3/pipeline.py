# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Photo(s) in, `FaceResult`(s) out: the whole 3DDFA-V3 chain, batched on one device.

Stages, as the reference runs them:
1. detection: RetinaFace on the photo padded to 512; the highest-scoring face
   (the first after NMS) is the one reconstructed. A given face box skips it;
2. landmarks: the 106-point net, twice (the second pass re-boxes the first's points);
3. alignment: 5 of those points fit to the template, the photo is resized
   and cropped to 224 x 224 around the face;
4. regression: ResNet-50 (or MobileNet-V3) gives 257 coefficients;
5. face model: shape, pose, projection, colours, landmarks, photo UVs, visibility.

`Reconstructor` loads the networks and the face model once (cached per assets
folder, backbone and device for the life of the process) and runs every stage
on whole batches: one detector call for all photos, one landmark-net call per
pass, one regressor + face-model call. Image resampling stays on the CPU with
the reference's exact libraries (OpenCV, Pillow), so results match it.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence, TypeVar

import numpy as np
import numpy.typing as npt

from .backbones import find_backbone
from .dependencies import require_torch
from .devices import describe_device, resolve_device, set_tf32, with_cpu_fallback
from .errors import AssetError, Cancelled, FaceBoxError, NoFaceError, ReconstructionError
from .loaded import Loaded, clear_cache, load  # noqa: F401 - clear_cache: callers reach it here too
from .preprocess import (
    LANDMARK_MEAN, LANDMARK_SIZE, Alignment, LandmarkCrop, align_photo, box_around_points, check_face_box,
    detector_canvas, detector_normalisation, five_points, landmark_crop, landmark_points_to_photo, load_photo,
    photo_name,
)
from .result import FaceResult

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

ProgressCallback = Callable[[str, float], None]
CancelCallback = Callable[[], bool]
PhotoInput = Any  # a path (str / PathLike) or an H x W x C array

#: The reference's detector threshold.
DETECTION_THRESHOLD = 0.7
#: Anchors post-processed per photo first (see `first_faces`): the face kept is
#: the top-scoring anchor unless the reference's skip rule drops it.
DETECTION_TOP_K = 16

_T = TypeVar("_T")

#: Result fields that must be finite (NaN there means the networks are broken, not the photo).
_FINITE_FIELDS = ("vertices_model", "vertices_camera", "projection_photo", "photo_uv", "rotation")


# --------------------------------------------------------------------------- helpers

@dataclass
class _Job:
    """One photo moving through the stages."""

    image: U8
    source: str
    name: str
    box: F64 | None = None
    score: float = 1.0
    lm106: F64 | None = None
    lm5: F32 | None = None
    lm5_flipped: F32 | None = None
    alignment: Alignment | None = None
    error: ReconstructionError | None = None


def _chunks(count: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, count, size):
        yield start, min(count, start + size)


class _Stages:
    """Progress reporting and cancellation between (and inside) the stages."""

    def __init__(self, progress: ProgressCallback | None, cancel: CancelCallback | None,
                 weights: dict[str, float]) -> None:
        self.progress = progress
        self.cancel = cancel
        total = sum(weights.values()) or 1.0
        self.spans: dict[str, tuple[float, float]] = {}
        start = 0.0
        for name, weight in weights.items():
            self.spans[name] = (start / total, (start + weight) / total)
            start += weight

    def check(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("Face reconstruction cancelled")

    def report(self, stage: str, within: float = 0.0) -> None:
        self.check()
        if self.progress is not None:
            lo, hi = self.spans.get(stage, (1.0, 1.0))
            self.progress(stage, lo + (hi - lo) * min(max(within, 0.0), 1.0))


# --------------------------------------------------------------------------- the reconstructor

class Reconstructor:
    """3DDFA-V3 reconstruction with networks loaded once.

    `assets_dir`: the user's assets folder (or the downloaded dataset's root).
    `device`: "auto" (CUDA when available), "cuda" or "cpu".
    `backbone`: "resnet50" (default) or "mobilenetv3".
    `cache_dir`: where the converted face model is cached.
    `fallback_to_cpu`: with device="auto", a CUDA failure (out of memory,
    driver error) reruns the work on the CPU instead of raising `DeviceError`.
    `tf32`: allow TF32 matrix maths on Ampere+ GPUs (faster, ~1e-2 px less exact); off by default.
    `channels_last`: run the CNNs in channels-last memory format on CUDA (faster, same maths).
    `visibility`: compute per-vertex visibility (a z-buffer); False marks every vertex visible.
    `detection_threshold`: the detector's score threshold (the reference's 0.7).
    `compile_networks`: run the three CNNs through ``torch.compile`` (experimental: the first
    call per batch shape compiles for a minute or more; outputs move by ~1e-6).
    """

    def __init__(self, assets_dir: str | os.PathLike[str], device: str = "auto", backbone: str = "resnet50",
                 cache_dir: str | os.PathLike[str] | None = None, *, fallback_to_cpu: bool = True,
                 tf32: bool = False, channels_last: bool = True, visibility: bool = True,
                 detection_threshold: float = DETECTION_THRESHOLD, compile_networks: bool = False) -> None:
        torch = require_torch()
        chosen = find_backbone(backbone)   # ValueError naming the accepted names
        self.requested_device = device
        self.backbone = chosen.name
        self.fallback_to_cpu = fallback_to_cpu
        self.detection_threshold = float(detection_threshold)
        self.visibility = visibility
        self.assets_dir = Path(assets_dir).expanduser()
        self._cache_dir = None if cache_dir is None else str(cache_dir)
        self._channels_last = channels_last
        self._compile = compile_networks
        self._compiled: dict[tuple[str, int], Any] = {}
        self.fell_back_to_cpu = False
        device_obj = resolve_device(device)
        if device_obj.type == "cuda":
            set_tf32(tf32)
            torch.backends.cudnn.benchmark = True

        def load_on(name: str) -> Loaded:
            on = device_obj if name == device else resolve_device(name)
            models = load(self.assets_dir, chosen.kind, on, self._cache_dir)
            self.fell_back_to_cpu = on.type == "cpu" and device_obj.type != "cpu"
            return models

        if device_obj.type == "cpu":
            self._models = load_on(device)
        else:
            self._models = with_cpu_fallback(load_on, device, on_retry=log.warning, fallback=fallback_to_cpu)
        if self._models.device.type == "cuda" and channels_last:
            self._to_channels_last(self._models)

    # ------------------------------------------------------------------ properties

    @property
    def device(self) -> "torch.device":
        return self._models.device

    @property
    def device_name(self) -> str:
        """A readable device description, e.g. "CUDA (NVIDIA H100 80GB HBM3)" or "CPU"."""
        return describe_device(self.device)

    @property
    def face_model(self) -> Any:
        """The face model's plain arrays (`assets.FaceModelArrays`: u, id, exp, tri, ...)."""
        return self._models.arrays

    @property
    def parametric_model(self) -> Any:
        """The torch `ParametricFaceModel` on the device."""
        return self._models.face_model

    @property
    def template5(self) -> F64:
        """The (5, 3) alignment template of the assets."""
        return self._models.template5

    @property
    def cache_dir(self) -> str | None:
        return self._cache_dir

    def _network(self, name: str) -> Any:
        """The loaded network `name` ("detector", "landmarker", "regressor"), compiled if asked."""
        network = getattr(self._models, name)
        if not self._compile:
            return network
        key = (name, id(network))
        compiled = self._compiled.get(key)
        if compiled is None:
            torch = require_torch()
            compiled = torch.compile(network)
            self._compiled[key] = compiled
        return compiled

    def _chunk_sizes(self) -> tuple[int, int, int]:
        """(detector, landmark net, regressor) batch sizes for the device."""
        if self.device.type == "cuda":
            return 32, 256, 256
        return 4, 32, 16

    def _to_channels_last(self, models: Loaded) -> None:
        torch = require_torch()
        for net in (models.regressor, models.landmarker, models.detector):
            if net is not None:
                net.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ public API

    def load_detector(self) -> None:
        """Load RetinaFace now rather than on the first photo without a face box (AssetError
        when its file is missing or broken): callers that check everything before writing
        anything call this first."""
        self._models.ensure_detector()

    def reconstruct(self, photo: PhotoInput, face_box: Sequence[float] | npt.ArrayLike | None = None,
                    landmarks5: npt.ArrayLike | None = None, *, progress: ProgressCallback | None = None,
                    cancel: CancelCallback | None = None) -> FaceResult:
        """Reconstruct the main face of one photo.

        `photo`: a file path or an H x W x 3 RGB uint8 array. `face_box`
        (x1, y1, x2, y2, photo pixels) skips the detector; `landmarks5`
        ((5, 2) photo pixels, y down: image-left eye, image-right eye, nose
        tip, image-left and image-right mouth corner) skips detector and
        landmark net. `progress(stage, fraction)` is called as stages run;
        `cancel()` returning True aborts with `Cancelled`.
        Raises NoFaceError when no face is found.
        """
        boxes = None if face_box is None else [face_box]
        points = None if landmarks5 is None else [landmarks5]
        return self.reconstruct_batch([photo], boxes, points, progress=progress, cancel=cancel)[0]

    def reconstruct_batch(self, photos: Sequence[PhotoInput],
                          face_boxes: Sequence[Sequence[float] | npt.ArrayLike | None] | None = None,
                          landmarks5: Sequence[npt.ArrayLike | None] | None = None, *,
                          sources: Sequence[str] | None = None, progress: ProgressCallback | None = None,
                          cancel: CancelCallback | None = None) -> list[FaceResult]:
        """Reconstruct several photos, every stage batched; raises the first photo's error."""
        outcomes = self.try_reconstruct_batch(photos, face_boxes, landmarks5, sources=sources,
                                              progress=progress, cancel=cancel)
        results: list[FaceResult] = []
        for outcome in outcomes:
            if isinstance(outcome, ReconstructionError):
                raise outcome
            results.append(outcome)
        return results

    def try_reconstruct_batch(self, photos: Sequence[PhotoInput],
                              face_boxes: Sequence[Sequence[float] | npt.ArrayLike | None] | None = None,
                              landmarks5: Sequence[npt.ArrayLike | None] | None = None, *,
                              sources: Sequence[str] | None = None, progress: ProgressCallback | None = None,
                              cancel: CancelCallback | None = None) -> list[FaceResult | ReconstructionError]:
        """Like `reconstruct_batch`, but a photo that fails (no face, unreadable) gives its
        error in its place instead of stopping the others. Cancellation and device
        failures still raise."""
        count = len(photos)
        for name, values in (("face_boxes", face_boxes), ("landmarks5", landmarks5), ("sources", sources)):
            if values is not None and len(values) != count:
                raise ValueError(f"{name} has {len(values)} entries for {count} photos")
        if self.device.type == "cpu":
            return self._run(photos, face_boxes, landmarks5, sources, progress, cancel)

        def run_on(name: str) -> list[FaceResult | ReconstructionError]:
            if name == "cpu" and self.device.type != "cpu":
                self._switch_to_cpu()
            return self._run(photos, face_boxes, landmarks5, sources, progress, cancel)

        return with_cpu_fallback(run_on, self.requested_device, on_retry=log.warning, fallback=self.fallback_to_cpu)

    def _switch_to_cpu(self) -> None:
        torch = require_torch()
        self._models = load(self.assets_dir, self._models.backbone_kind, torch.device("cpu"), self._cache_dir)
        self.fell_back_to_cpu = True
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ stages

    def detect_faces(self, images: Sequence[U8], cancel: CancelCallback | None = None) -> list[tuple[F64, float] | None]:
        """The reference face (box x1, y1, x2, y2 in photo pixels, score) per photo, or None.

        RetinaFace runs on the whole batch; the face kept is the first after
        the reference's threshold (> 0.7), sort, NMS and skip rule.
        """
        torch = require_torch()
        models = self._models
        models.ensure_detector()
        if self.device.type == "cuda" and self._channels_last:
            models.detector.to(memory_format=torch.channels_last)
        prepared = self._map(detector_canvas, images)
        found: list[tuple[F64, float] | None] = []
        chunk, _, _ = self._chunk_sizes()
        for start, stop in _chunks(len(images), chunk):
            if cancel is not None and cancel():
                raise Cancelled("Face reconstruction cancelled")
            pads = np.stack([p[1] for p in prepared[start:stop]])
            batch = self.detector_batch(np.stack([p[0] for p in prepared[start:stop]]), pads)
            with torch.inference_mode():
                loc, conf, landm = self._network("detector")(batch)
                finite = bool(torch.isfinite(conf).all()) and bool(torch.isfinite(loc).all())
            if not finite:
                from .assets import ASSET_SOURCE_HINT, CHECKPOINT_FILES

                raise AssetError(f"{CHECKPOINT_FILES['retinaface']} produced NaN or infinite face scores: its "
                                 f"weights are damaged or not 3DDFA-V3's; download it again from "
                                 f"{ASSET_SOURCE_HINT}, or give a face box.")
            found.extend(first_faces(loc, conf, landm, models.priors, list(pads),
                                     [(int(im.shape[0]), int(im.shape[1])) for im in images[start:stop]],
                                     self.detection_threshold))
        return found

    def detector_batch(self, canvases: U8, pads: npt.ArrayLike) -> "torch.Tensor":
        """(B, S, S, 3) uint8 canvases (`preprocess.detector_canvas`) -> the normalised,
        zero-padded (B, 3, S, S) float32 RetinaFace input on the device.

        Only bytes cross to the device; the float32 arithmetic is the same as
        `preprocess.detector_input`'s.
        """
        torch = require_torch()
        mean, inv_std = detector_normalisation()
        pixels = self._to_device(np.ascontiguousarray(canvases))
        pad_rows = torch.as_tensor(np.asarray(pads, dtype=np.int64).reshape(-1, 4), device=self.device)
        with torch.inference_mode():
            size = int(pixels.shape[1])
            a = torch.as_tensor(mean, device=self.device).view(1, 3, 1, 1)
            b = torch.as_tensor(inv_std, device=self.device).view(1, 3, 1, 1)
            x = (pixels.permute(0, 3, 1, 2).float() - a) * b
            index = torch.arange(size, device=self.device)[None, :]
            rows = (index >= pad_rows[:, 1:2]) & (index < size - pad_rows[:, 3:4])
            cols = (index >= pad_rows[:, 0:1]) & (index < size - pad_rows[:, 2:3])
            inside = (rows[:, :, None] & cols[:, None, :])[:, None]
            x = torch.where(inside, x, torch.zeros((), dtype=x.dtype, device=self.device))
            memory = torch.channels_last if (self.device.type == "cuda" and self._channels_last) \
                else torch.contiguous_format
            return x.contiguous(memory_format=memory)

    def landmarks106(self, images: Sequence[U8], boxes: Sequence[F64],
                     cancel: CancelCallback | None = None) -> list[F64]:
        """The two-pass 106-point landmarks (photo pixels, float64) of one box per photo."""
        found = self._landmarks106(images, boxes, cancel)
        for item in found:
            if isinstance(item, ReconstructionError):
                raise item
        return [item for item in found if not isinstance(item, ReconstructionError)]

    def _landmarks106(self, images: Sequence[U8], boxes: Sequence[F64],
                      cancel: CancelCallback | None) -> list[F64 | ReconstructionError]:
        """Two passes of the landmark net, batched; a photo whose box leaves it gets its error."""
        def crop(pair: tuple[U8, F64]) -> LandmarkCrop | ReconstructionError:
            try:
                return landmark_crop(pair[0], pair[1])
            except FaceBoxError as exc:
                return exc

        results: list[F64 | ReconstructionError] = [ReconstructionError("internal: no landmarks")] * len(images)
        current: list[F64 | ReconstructionError] = list(boxes)
        for pass_index in range(2):
            rows = [i for i, value in enumerate(current) if not isinstance(value, ReconstructionError)]
            crops = self._map(crop, [(images[i], current[i]) for i in rows])
            for i, made in zip(rows, crops):
                if isinstance(made, ReconstructionError):
                    current[i] = made
            usable = [(i, made) for i, made in zip(rows, crops) if isinstance(made, LandmarkCrop)]
            if usable:
                points = self.landmark_points(np.stack([made.crop for _, made in usable]), cancel)
                for (i, made), found in zip(usable, points):
                    current[i] = landmark_points_to_photo(found, made.params)
            if pass_index == 0:
                # The second pass boxes the first pass's points.
                current = [value if isinstance(value, ReconstructionError) else box_around_points(value)
                           for value in current]
        for i, value in enumerate(current):
            results[i] = value
        return results

    def landmark_points(self, crops: U8, cancel: CancelCallback | None = None) -> F32:
        """(B, 224, 224, 3) uint8 landmark crops -> (B, 106, 2) float32 points in crop pixels."""
        torch = require_torch()
        from .networks import soft_argmax

        _, chunk, _ = self._chunk_sizes()
        out: list[F32] = []
        mean = torch.tensor(LANDMARK_MEAN, dtype=torch.float64, device=self.device).view(1, 3, 1, 1)
        for start, stop in _chunks(len(crops), chunk):
            if cancel is not None and cancel():
                raise Cancelled("Face reconstruction cancelled")
            pixels = self._to_device(np.ascontiguousarray(crops[start:stop]), floating=False)
            with torch.inference_mode():
                # (crop - mean) / 255 in float64, then float32: the reference's arithmetic.
                x = ((pixels.permute(0, 3, 1, 2).double() - mean) / 255.0).float()
                if self.device.type == "cuda" and self._channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                points = soft_argmax(self._network("landmarker")(x)) * LANDMARK_SIZE
            out.append(points.float().cpu().numpy())
        found = np.concatenate(out, axis=0).astype(np.float32, copy=False)
        if not np.isfinite(found).all():
            from .assets import ASSET_SOURCE_HINT, CHECKPOINT_FILES

            raise AssetError(f"{CHECKPOINT_FILES['landmark106']} produced NaN or infinite landmarks: its "
                             f"weights are damaged or not 3DDFA-V3's; download it again from {ASSET_SOURCE_HINT}.")
        return found

    def crops_to_tensor(self, crops: U8) -> "torch.Tensor":
        """(B, 224, 224, 3) uint8 aligned crops -> (B, 3, 224, 224) float32 / 255 on the device."""
        torch = require_torch()
        pixels = self._to_device(np.ascontiguousarray(crops), floating=False)
        with torch.inference_mode():
            x = (pixels.permute(0, 3, 1, 2).double() / 255.0).float()
            memory = torch.channels_last if (self.device.type == "cuda" and self._channels_last) \
                else torch.contiguous_format
            return x.contiguous(memory_format=memory)

    def regress(self, crops: "torch.Tensor") -> "torch.Tensor":
        """(B, 3, 224, 224) crops in [0, 1] on the device -> (B, 257) coefficients."""
        torch = require_torch()
        _, _, chunk = self._chunk_sizes()
        out = []
        with torch.inference_mode():
            for start, stop in _chunks(int(crops.shape[0]), chunk):
                out.append(self._network("regressor")(crops[start:stop]))
        return torch.cat(out, dim=0)

    def face_model_outputs(self, alpha: "torch.Tensor", trans_params: npt.ArrayLike | None = None) -> Any:
        """The face model (with photo mapping and visibility) on (B, 257) coefficients,
        every tensor moved to the host in one transfer per field: a `FaceModelOutput` on the CPU."""
        torch = require_torch()
        with torch.inference_mode():
            output = self._models.face_model.reconstruct(alpha, trans_params, visibility=self.visibility)
            return _to_host(output)

    def regress_batch(self, crops: "torch.Tensor") -> Any:
        """Batched regression + face model on the device, no host transfer: the frame-rate path.

        `crops`: (B, 3, 224, 224) float32 in [0, 1] (on any device). Returns
        the device-side `FaceModelOutput` (coefficients in `.coefficients`).
        """
        torch = require_torch()
        with torch.inference_mode():
            x = crops.to(self.device, non_blocking=True)
            if self.device.type == "cuda" and self._channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            alpha = self.regress(x)
            return self._models.face_model.reconstruct(alpha, None, visibility=self.visibility)

    # ------------------------------------------------------------------ the chain

    def _run(self, photos: Sequence[PhotoInput],
             face_boxes: Sequence[Sequence[float] | npt.ArrayLike | None] | None,
             landmarks5: Sequence[npt.ArrayLike | None] | None, sources: Sequence[str] | None,
             progress: ProgressCallback | None, cancel: CancelCallback | None) -> list[FaceResult | ReconstructionError]:
        stages = _Stages(progress, cancel, {"load": 0.5, "detect": 3.0, "landmarks": 1.5, "align": 1.0,
                                            "regress": 2.0, "face model": 1.0, "done": 0.0})
        results: dict[int, FaceResult] = {}
        stages.report("load")
        jobs = self._make_jobs(photos, face_boxes, landmarks5, sources)
        live = [job for job in jobs if job.error is None]

        need_detection = [job for job in live if job.box is None and job.lm5 is None]
        if need_detection:
            stages.report("detect")
            found = self.detect_faces([job.image for job in need_detection], cancel=cancel)
            for job, hit in zip(need_detection, found):
                if hit is None:
                    job.error = NoFaceError(
                        f"No face found in {job.name}: the detector saw nothing above its {self.detection_threshold} "
                        "confidence. Try a clearer, frontal, well-lit photo, or give a face box.")
                else:
                    job.box, job.score = hit
        live = [job for job in live if job.error is None]

        need_landmarks = [job for job in live if job.lm5 is None]
        if need_landmarks:
            stages.report("landmarks")
            lm106 = self._landmarks106([job.image for job in need_landmarks],
                                       [job.box for job in need_landmarks if job.box is not None], cancel)
            for job, points in zip(need_landmarks, lm106):
                if isinstance(points, ReconstructionError):
                    job.error = type(points)(f"{job.name}: the face landmarks left the photo ({points}); "
                                             "give a face box around the face")
                    continue
                job.lm106 = points
                job.lm5, job.lm5_flipped = five_points(points, job.image.shape[0])
            live = [job for job in live if job.error is None]

        stages.report("align")
        template = self._models.template5

        def align(job: _Job) -> Alignment | ReconstructionError:
            assert job.lm5_flipped is not None
            try:
                return align_photo(job.image, job.lm5_flipped, template)
            except ReconstructionError as exc:
                return exc

        for job, aligned in zip(live, self._map(align, live)):
            if isinstance(aligned, ReconstructionError):
                job.error = type(aligned)(f"{job.name}: {aligned}")
            else:
                job.alignment = aligned
        live = [job for job in live if job.error is None]
        if not live:
            stages.report("done", 1.0)
            return [job.error if job.error is not None else ReconstructionError("internal: no result")
                    for job in jobs]

        stages.report("regress")
        crops = np.stack([job.alignment.crop for job in live if job.alignment is not None])
        trans = np.stack([job.alignment.trans_params for job in live if job.alignment is not None])
        _, _, chunk = self._chunk_sizes()
        for start, stop in _chunks(len(live), chunk):
            stages.report("regress", start / len(live))
            alpha = self.regress(self.crops_to_tensor(crops[start:stop]))
            if not bool(require_torch().isfinite(alpha).all()):
                raise self._non_finite(find_backbone(self.backbone).checkpoint, "coefficients", live[start:stop])
            stages.report("face model", start / len(live))
            host = self.face_model_outputs(alpha, trans[start:stop])
            for row, job in enumerate(live[start:stop]):
                result = self._assemble(job, host, row)
                if not all(np.isfinite(getattr(result, key)).all() for key in _FINITE_FIELDS):
                    raise self._non_finite(f"{find_backbone(self.backbone).checkpoint} with face_model.npy",
                                           "face geometry", [job])
                results[id(job)] = result
        stages.report("done", 1.0)
        return [results[id(job)] if job.error is None else job.error for job in jobs]

    @staticmethod
    def _non_finite(asset: str, what: str, jobs: Sequence[_Job]) -> AssetError:
        """The error for NaN / infinite network output: the weights, not the photo, are at fault."""
        from .assets import ASSET_SOURCE_HINT

        names = ", ".join(job.name for job in jobs[:3]) + (" ..." if len(jobs) > 3 else "")
        return AssetError(f"{asset} produced NaN or infinite {what} (for {names}): its weights are damaged "
                          f"or not 3DDFA-V3's; download it again from {ASSET_SOURCE_HINT}.")

    def _make_jobs(self, photos: Sequence[PhotoInput],
                   face_boxes: Sequence[Sequence[float] | npt.ArrayLike | None] | None,
                   landmarks5: Sequence[npt.ArrayLike | None] | None,
                   sources: Sequence[str] | None) -> list[_Job]:
        def load(index: int) -> _Job:
            photo = photos[index]
            source = sources[index] if sources is not None else (
                str(photo) if isinstance(photo, (str, os.PathLike)) else "")
            name = photo_name(photo, index) if not source else Path(source).name
            try:
                image = load_photo(photo)
            except ReconstructionError as exc:
                return _Job(np.zeros((2, 2, 3), np.uint8), source, name, error=exc)
            job = _Job(image, source, name)
            height, width = image.shape[:2]
            box = face_boxes[index] if face_boxes is not None else None
            points = landmarks5[index] if landmarks5 is not None else None
            try:
                if points is not None:
                    lm5 = np.asarray(points, dtype=np.float32)
                    if lm5.shape != (5, 2) or not np.isfinite(lm5).all():
                        raise FaceBoxError(f"5 face points are a (5, 2) array of finite photo pixels, "
                                           f"got shape {lm5.shape}")
                    flipped = lm5.copy()
                    flipped[:, 1] = np.float32(height - 1) - flipped[:, 1]
                    job.lm5, job.lm5_flipped = lm5, flipped
                    job.box = box_around_points(lm5) if box is None else check_face_box(box, width, height)
                elif box is not None:
                    job.box = check_face_box(box, width, height)
            except FaceBoxError as exc:
                job.error = FaceBoxError(f"{name}: {exc}")
            return job

        return self._map(load, list(range(len(photos))))

    def _assemble(self, job: _Job, output: Any, row: int) -> FaceResult:
        """One FaceResult from row `row` of a host-side `FaceModelOutput`."""
        assert job.alignment is not None and job.box is not None
        height, width = job.image.shape[:2]
        fields = output.result_fields(row)
        # The index arrays would otherwise share memory with the model's own buffers (per-vertex
        # arrays are views of this batch's fresh host tensors, which is fine).
        for key in ("part_vertices", "landmark_indices"):
            fields[key] = _copied(fields[key])
        return FaceResult(
            photo_size=(int(width), int(height)),
            face_box=np.asarray(job.box, dtype=np.float64),
            face_score=float(job.score),
            landmarks106_detected=(job.lm106 if job.lm106 is not None
                                   else np.full((106, 2), np.nan, dtype=np.float64)),
            trans_params=job.alignment.trans_params.astype(np.float64),
            triangles=np.array(self._models.arrays.tri, dtype=np.int64),
            source=job.source,
            **fields,
        )

    # ------------------------------------------------------------------ plumbing

    def _map(self, function: Callable[[Any], _T], items: Sequence[Any]) -> list[_T]:
        """Apply a CPU image step to each item; threads for batches (OpenCV and Pillow release the GIL)."""
        if len(items) < 4:
            return [function(item) for item in items]
        workers = min(len(items), max(1, (os.cpu_count() or 2)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(function, items))

    def _to_device(self, array: np.ndarray, floating: bool = True) -> "torch.Tensor":
        torch = require_torch()
        if not array.flags.writeable:
            array = array.copy()
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor


def first_faces(loc: "torch.Tensor", conf: "torch.Tensor", landm: "torch.Tensor", priors: "torch.Tensor",
                pads: Sequence[npt.ArrayLike], image_hws: Sequence[tuple[int, int]],
                threshold: float = DETECTION_THRESHOLD,
                top_k: int = DETECTION_TOP_K) -> list[tuple[F64, float] | None]:
    """The reference's first face (box, score) per image from batched raw RetinaFace heads, or None.

    The first face after the reference's threshold, sort and NMS is the
    top-scoring anchor unless its box falls wholly outside the photo (the
    reference's skip rule), so only the `top_k` best anchors of each image go
    to the host (one transfer for the batch) and through the reference's
    post-processing; an image whose top anchors are all skipped, while more
    anchors pass the threshold, or whose top scores tie (the reference's
    unstable sort orders ties over all anchors), is post-processed in full.
    """
    torch = require_torch()
    from .detection import postprocess

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
                                 confidence=threshold, priors=priors_k[row])
        if bool(tied[row]) or (len(detections) == 0 and int(above[row]) > top):
            detections = postprocess(loc[row].float().cpu(), conf[row].float().cpu(), landm[row].float().cpu(),
                                     pads[row], hw, confidence=threshold, priors=priors.float().cpu())
        if len(detections) == 0:
            found.append(None)
        else:
            found.append((detections.boxes[0].astype(np.float64), float(detections.scores[0])))
    return found


def _copied(value: Any) -> Any:
    """`value` with every numpy array in it (in dicts, lists, dataclasses) copied."""
    import dataclasses

    if isinstance(value, np.ndarray):
        return value.copy()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _copied(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


def _to_host(value: Any) -> Any:
    """A copy of `value` (tensor, dict, list or dataclass of them) with every tensor on the CPU."""
    import dataclasses

    torch = require_torch()
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {key: _to_host(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_host(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _to_host(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    return value
