# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tracking a video off Blender's main thread: `VideoJob` (a `bridge.worker.WorkerJob`)
runs the core's tracker (and, for a Maxine model, the per-frame blend-shape solve) on
a worker thread; `drain()` gives `VideoProgress` messages, then one `VideoFinished`
or `VideoFailed`; `run_video_sync` runs it on this thread and raises only
`BridgeError`s. Never touches bpy: may import the core (`animation`, `tddfa_v3`,
`fitting`) and the reconstruction's numpy half.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import AnimationBridgeError, BridgeError
from ..reconstruction.job import default_bases, make_reconstructor
from ..reconstruction.plan import ReconstructionOutput, ReconstructOptions, plan_shape_keys
from ..worker import WorkerJob
from .boundary import raise_as_bridge_error


@dataclass(frozen=True)
class VideoOptions:
    """What `animate_from_video` does; the operator fills it from its properties.

    start/stop/stride: the video frames to track (stop None: to the end).
    identity_frame: the video frame whose identity is used (None: the median
    over the clip). min_cutoff/beta: the One Euro smoother (smoothing False: raw).
    sequence_fps: the frame rate of an image sequence. face_box: the face on
    the first frame (x1, y1, x2, y2 pixels, y down), skipping detection there.
    """

    filepath: str
    assets_dir: str
    device: str = "auto"
    backbone: str = "resnet50"
    cache_dir: str | None = None
    start: int = 0
    stop: int | None = None
    stride: int = 1
    batch_size: int = 16
    smoothing: bool = True
    min_cutoff: float = 1.0
    beta: float = 5.0
    identity_frame: int | None = None
    sequence_fps: float = 30.0
    set_scene: bool = True
    camera_background: bool = True
    face_box: tuple[float, float, float, float] | None = None

    def track_options(self) -> Any:
        from ...animation.one_euro import OneEuroParams
        from ...animation.tracking import TrackOptions
        from ...animation.video import FrameRange

        try:
            smoothing = OneEuroParams(self.min_cutoff, self.beta) if self.smoothing else None
        except ValueError as error:
            raise AnimationBridgeError(str(error)) from None
        return TrackOptions(frames=FrameRange(self.start, self.stop, self.stride), batch_size=self.batch_size,
                            smoothing=smoothing, identity_frame=self.identity_frame, face_box=self.face_box)


@dataclass(frozen=True)
class VideoProgress:
    done: int
    total: int
    fps: float


@dataclass(frozen=True)
class VideoFinished:
    track: Any                     # animation.tracking.Track
    reference: Any                 # bridge.reconstruction.ReconstructionOutput, or None
    maxine: Any = None             # animation.maxine.MaxineAnimation for a Maxine target


@dataclass(frozen=True)
class MaxineTarget:
    """What a Maxine model object gives the worker: its .nvf model, its identity (the
    PCA.* key values) and the shape-key name of each blend shape."""

    model: Any
    identity: np.ndarray
    key_names: list[str]


@dataclass(frozen=True)
class VideoFailed:
    message: str
    error: BaseException


VideoMessage = VideoProgress | VideoFinished | VideoFailed


def _video_reconstructor(options: VideoOptions) -> Any:
    return make_reconstructor(options.assets_dir, options.device, options.backbone, options.cache_dir)


class VideoJob(WorkerJob[VideoFinished, VideoMessage]):
    """Tracking a video (`bridge.worker.WorkerJob`) on a worker thread (`start`), or on
    this one (`run`); never touches bpy.

    `drain()` gives `VideoProgress` messages and then exactly one `VideoFinished` or
    `VideoFailed`. A cancel keeps the frames already tracked (the finished track says
    `cancelled`). With `reconstruct_reference`, the face is also reconstructed from
    the clip's reference frame with the clip's identity (for a new object).
    """

    thread_name = "video tracking"

    def __init__(self, options: VideoOptions, reconstruct_reference: bool,
                 reconstructor_factory: Any = None, detector: Any = None,
                 maxine: MaxineTarget | None = None) -> None:
        super().__init__()
        self.options = options
        self.reconstruct_reference = reconstruct_reference
        self._factory = reconstructor_factory or _video_reconstructor
        self._detector = detector
        self.maxine = maxine

    def _final(self) -> VideoMessage:
        error = self.future.exception()
        if error is None:
            return self.future.result()
        return VideoFailed(str(error) or type(error).__name__, error)

    def _work(self) -> VideoFinished:
        from ...animation.tracking import track_video
        from ...animation.video import FrameRange, VideoSource

        source = VideoSource(self.options.filepath, sequence_fps=self.options.sequence_fps)
        track_options = self.options.track_options()
        reconstructor = self._factory(self.options)
        track = track_video(source, reconstructor, track_options, detector=self._detector,
                            progress=lambda d, t, f: self.messages.put(VideoProgress(d, t, f)),
                            cancel=self._cancel.is_set)
        reference = None
        if self.reconstruct_reference or self.maxine is not None:
            frame = track.reference_frame
            image = next(img for _, img in source.frames(FrameRange(frame, frame + 1)))
            reference = _reference_output(reconstructor, self.options, image, track)
        maxine = None
        if self.maxine is not None:
            maxine = self._solve_maxine(track, reference)
            reference = None
        return VideoFinished(track, reference, maxine)

    def _solve_maxine(self, track: Any, reference: Any) -> Any:
        """The Maxine weights per frame (fitting on the clip's reconstruction)."""
        from ... import fitting
        from ...animation.maxine import FaceShapes, solve_maxine
        from ...animation.one_euro import OneEuroParams

        assert self.maxine is not None
        result, bases = reference.result, reference.bases
        shapes = FaceShapes(mean=bases.mean, identity=bases.identity, expression=bases.expression,
                            triangles=np.asarray(result.triangles),
                            landmarks68=np.asarray(result.landmark_indices["68"]))
        smoothing = OneEuroParams(self.options.min_cutoff, self.options.beta) if self.options.smoothing else None
        return solve_maxine(self.maxine.model, self.maxine.identity, track, shapes, smoothing=smoothing,
                            cancel=self._cancel.is_set, fitting=fitting)


def _reference_output(reconstructor: Any, options: VideoOptions, image: np.ndarray,
                      track: Any) -> ReconstructionOutput:
    """The reconstruction of the reference frame, with the clip's locked identity."""
    result = reconstructor.reconstruct(image, landmarks5=track.reference_landmarks5)
    identity = np.asarray(track.identity, dtype=np.float32)
    result = dataclasses.replace(result, coefficients=dataclasses.replace(result.coefficients, identity=identity))
    result.source = options.filepath
    bases = default_bases(reconstructor, ReconstructOptions(options.assets_dir, cache_dir=options.cache_dir))
    device = str(getattr(getattr(reconstructor, "device", None), "type", options.device))
    return ReconstructionOutput(result=result, bases=bases, device=device, backbone=options.backbone,
                                shape_keys=plan_shape_keys(result, bases))


def run_video_sync(job: VideoJob) -> VideoFinished:
    """Runs `job` on this thread; its finished message. Its error is raised as a
    `BridgeError` (`AnimationBridgeError` with the core's message, `CancelledError`); any
    other failure (torch's, say) as `AnimationBridgeError` with the text the interactive
    run reports (`VideoFailed.message`), so the operator never ends in a traceback."""
    job.run()
    for message in job.drain():
        if isinstance(message, VideoFinished):
            return message
        if isinstance(message, VideoFailed):
            if isinstance(message.error, Exception):
                try:
                    raise_as_bridge_error(message.error)
                except BridgeError:
                    raise
                except Exception as error:  # noqa: BLE001 - not the core's: reported by its text
                    raise AnimationBridgeError(message.message) from error
            raise AnimationBridgeError(message.message)
    raise AnimationBridgeError("the video job ended without a result")

