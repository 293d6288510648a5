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

Here: the chain over photos (jobs, errors per photo, progress, the CPU fallback
through `devices.with_cpu_fallback`). The network stages are `stages.NetworkStages`,
the loaded-network cache `loaded`, device choice `devices`. Imports numpy and the
core's own modules; torch lazily.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import numpy.typing as npt

from .backbones import DEFAULT_BACKBONE, find_backbone
from .dependencies import require_torch
from .devices import DEFAULT_DEVICE, resolve_device, set_tf32, with_cpu_fallback
from .errors import AssetError, Cancelled, FaceBoxError, NoFaceError, ReconstructionError
from .loaded import Loaded, load
from .photos import load_photo, photo_name
from .preprocess import (
    DETECTION_THRESHOLD, Alignment, align_photo, box_around_points, check_face_box, five_points,
)
from .result import FaceResult
from .stages import CancelCallback, NetworkStages, batch_ranges

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

ProgressCallback = Callable[[str, float], None]
PhotoInput = Any  # a path (str / PathLike) or an H x W x C array


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

class Reconstructor(NetworkStages):
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

    def __init__(self, assets_dir: str | os.PathLike[str], device: str = DEFAULT_DEVICE, backbone: str = DEFAULT_BACKBONE,
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

    @property
    def cache_dir(self) -> str | None:
        return self._cache_dir

    # ------------------------------------------------------------------ public API

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
        for start, stop in batch_ranges(len(live), chunk):
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
