# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The network stages on one device, each batched: detection, the 106-point landmarks,
regression and the face model (`NetworkStages`, the base of `pipeline.Reconstructor`);
`regress_batch` is the frame-rate path video uses.

Imports numpy and the core's own modules; torch lazily (`require_torch`).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence, TypeVar

import numpy as np
import numpy.typing as npt

from .dependencies import require_torch
from .devices import describe_device
from .errors import AssetError, Cancelled, FaceBoxError, ReconstructionError
from .loaded import Loaded
from .preprocess import (
    DETECTOR_SIZE, LANDMARK_MEAN, LANDMARK_SIZE, LandmarkCrop, box_around_points, detector_canvas,
    detector_normalisation, landmark_crop, landmark_points_to_photo,
)

if TYPE_CHECKING:
    import torch

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

CancelCallback = Callable[[], bool]

_T = TypeVar("_T")


def batch_ranges(count: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of each batch of at most `size` of `count` items, in order."""
    for start in range(0, count, size):
        yield start, min(count, start + size)


class NetworkStages:
    """The stages of the chain that run networks, on the device of `_models`.

    Holds no state of its own beyond what `pipeline.Reconstructor` sets up: the
    loaded networks (`_models`), whether CUDA runs channels-last, whether the
    networks go through ``torch.compile``, the detector threshold and whether
    visibility is computed.
    """

    _models: Loaded
    _channels_last: bool
    _compile: bool
    _compiled: dict[tuple[str, int], Any]
    detection_threshold: float
    visibility: bool

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

    def _network(self, name: str, folded: bool = False) -> Any:
        """The loaded network `name` ("detector", "landmarker", "regressor"), compiled if asked.

        `folded`: a copy with BatchNorm folded into the convolutions (`networks.fuse_batchnorm`),
        made once per loaded network: the video path's networks (float32-rounding-level
        differences, ~15-20 % less CPU time). The photo path keeps the checkpoint's layers.
        """
        network = getattr(self._models, name)
        if folded:
            network = self._folded_copy(name, network)
        if not self._compile:
            return network
        key = (name, id(network))
        compiled = self._compiled.get(key)
        if compiled is None:
            torch = require_torch()
            compiled = torch.compile(network)
            self._compiled[key] = compiled
        return compiled

    def _folded_copy(self, name: str, network: Any) -> Any:
        import copy

        from .networks import fuse_batchnorm

        cache: dict[str, tuple[Any, Any]] = self.__dict__.setdefault("_folded", {})
        held = cache.get(name)
        if held is None or held[0] is not network:     # reloaded (e.g. moved to the CPU): fold again
            held = (network, fuse_batchnorm(copy.deepcopy(network)))
            cache[name] = held
        return held[1]

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

    # ------------------------------------------------------------------ stages

    def load_detector(self) -> None:
        """Load RetinaFace now rather than on the first photo without a face box (AssetError
        when its file is missing or broken): callers that check everything before writing
        anything call this first."""
        self._models.ensure_detector()

    def detect_faces(self, images: Sequence[U8], cancel: CancelCallback | None = None, *,
                     folded: bool = False, size: int = DETECTOR_SIZE) -> list[tuple[F64, float] | None]:
        """The reference face (box x1, y1, x2, y2 in photo pixels, score) per photo, or None.

        RetinaFace runs on the whole batch; the face kept is the first after
        the reference's threshold (> 0.7), sort, NMS and skip rule. `folded`: BatchNorm
        folded into the convolutions (the video path; see `_network`). `size`: the side of
        the square canvas the photos are fitted into (the reference's 512; the video path
        re-detects near a tracked face on a smaller one, at a fraction of the cost).
        """
        torch = require_torch()
        from .detection import first_faces

        models = self._models
        models.ensure_detector()
        if self.device.type == "cuda" and self._channels_last:
            models.detector.to(memory_format=torch.channels_last)
        if size < 32:
            raise ValueError(f"the detector's canvas must be at least 32 pixels, not {size}")
        priors = models.priors if size == DETECTOR_SIZE else self._priors(size)
        prepared = self._map(functools.partial(detector_canvas, size=size), images)
        found: list[tuple[F64, float] | None] = []
        chunk, _, _ = self._chunk_sizes()
        for start, stop in batch_ranges(len(images), chunk):
            if cancel is not None and cancel():
                raise Cancelled("Face reconstruction cancelled")
            pads = np.stack([p[1] for p in prepared[start:stop]])
            batch = self.detector_batch(np.stack([p[0] for p in prepared[start:stop]]), pads)
            if folded:
                batch = batch.contiguous(memory_format=torch.channels_last)   # as its weights: NHWC convolutions
            with torch.inference_mode():
                loc, conf, landm = self._network("detector", folded)(batch)
                finite = bool(torch.isfinite(conf).all()) and bool(torch.isfinite(loc).all())
            if not finite:
                from .assets import ASSET_SOURCE_HINT, CHECKPOINT_FILES

                raise AssetError(f"{CHECKPOINT_FILES['retinaface']} produced NaN or infinite face scores: its "
                                 f"weights are damaged or not 3DDFA-V3's; download it again from "
                                 f"{ASSET_SOURCE_HINT}, or give a face box.")
            found.extend(first_faces(loc, conf, landm, priors, list(pads),
                                     [(int(im.shape[0]), int(im.shape[1])) for im in images[start:stop]],
                                     self.detection_threshold, image_size=size))
        return found

    def _priors(self, size: int) -> "torch.Tensor":
        """RetinaFace's anchors for a `size` canvas on the device, made once per size."""
        from .detection import prior_boxes

        cache: dict[tuple[int, str], Any] = self.__dict__.setdefault("_priors_by_size", {})
        key = (size, str(self.device))
        if key not in cache:
            cache[key] = prior_boxes(size, device=self.device)
        return cache[key]

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

    def landmark_points(self, crops: U8, cancel: CancelCallback | None = None, *, folded: bool = False) -> F32:
        """(B, 224, 224, 3) uint8 landmark crops -> (B, 106, 2) float32 points in crop pixels.

        `folded`: BatchNorm folded into the convolutions (the video path; see `_network`)."""
        torch = require_torch()
        from .networks import soft_argmax

        _, chunk, _ = self._chunk_sizes()
        out: list[F32] = []
        mean = torch.tensor(LANDMARK_MEAN, dtype=torch.float64, device=self.device).view(1, 3, 1, 1)
        for start, stop in batch_ranges(len(crops), chunk):
            if cancel is not None and cancel():
                raise Cancelled("Face reconstruction cancelled")
            pixels = self._to_device(np.ascontiguousarray(crops[start:stop]), floating=False)
            with torch.inference_mode():
                # (crop - mean) / 255 in float64, then float32: the reference's arithmetic.
                x = ((pixels.permute(0, 3, 1, 2).double() - mean) / 255.0).float()
                if self.device.type == "cuda" and self._channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                points = soft_argmax(self._network("landmarker", folded)(x)) * LANDMARK_SIZE
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

    def regress(self, crops: "torch.Tensor", *, folded: bool = False) -> "torch.Tensor":
        """(B, 3, 224, 224) crops in [0, 1] on the device -> (B, 257) coefficients.

        `folded`: BatchNorm folded into the convolutions (the video path; see `_network`)."""
        torch = require_torch()
        _, _, chunk = self._chunk_sizes()
        out = []
        with torch.inference_mode():
            for start, stop in batch_ranges(int(crops.shape[0]), chunk):
                x = crops[start:stop]
                if folded:
                    x = x.contiguous(memory_format=torch.channels_last)   # as its weights: NHWC convolutions
                out.append(self._network("regressor", folded)(x))
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
