# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running the reconstruction core off Blender's main thread: `ReconstructionJob`.

The job runs the core (torch) and never touches bpy, so it may run on a worker
thread (`bridge.worker.WorkerJob`). Its result (a `ReconstructionOutput`, or the
error) is held by a `concurrent.futures.Future`; progress and notices go through a
queue. The main thread drains `JobProgress` / `JobNotice` messages, then exactly one
`JobFinished` / `JobFailed` / `JobCancelled`. Scripts call `run_job_sync`, which
raises only `BridgeError`s. A GPU failure is retried on the CPU by the core's one
fallback (`tddfa_v3.devices.with_cpu_fallback`). May import the core, numpy and
`installer.builds` (the dependency table); never bpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Union

import numpy as np
import numpy.typing as npt

from ...installer.builds import DEPENDENCIES
from ...tddfa_v3 import errors as core_errors
from ...tddfa_v3.backbones import BACKBONE_TABLE
from ...tddfa_v3.devices import DEVICE_BY_IDENTIFIER, first_line, with_cpu_fallback
from ...tddfa_v3.result import FaceResult
from ..errors import BridgeError, CancelledError, ReconstructionBridgeError
from ..worker import WorkerJob
from .plan import ModelBases, ReconstructionOutput, ReconstructOptions, bases_from_face_model, plan_shape_keys

U8 = npt.NDArray[np.uint8]

#: Backbone names the core accepts, by operator identifier (the one table, tddfa_v3.backbones).
BACKBONES: dict[str, str] = {b.identifier: b.name for b in BACKBONE_TABLE}
#: Device names the core accepts, by operator identifier (the one table, tddfa_v3.devices).
DEVICES: dict[str, str] = dict(DEVICE_BY_IDENTIFIER)

CANCELLED_TEXT = "the reconstruction was cancelled"


@dataclass(frozen=True)
class JobProgress:
    stage: str
    fraction: float


@dataclass(frozen=True)
class JobNotice:
    text: str


@dataclass(frozen=True)
class JobFinished:
    output: ReconstructionOutput


@dataclass(frozen=True)
class JobFailed:
    message: str
    error: BaseException


@dataclass(frozen=True)
class JobCancelled:
    pass


JobMessage = Union[JobProgress, JobNotice, JobFinished, JobFailed, JobCancelled]
Photo = Union[str, U8]


class ReconstructorLike(Protocol):
    def reconstruct(self, photo: Photo, face_box: npt.ArrayLike | None = None,
                    landmarks5: npt.ArrayLike | None = None, *,
                    progress: Callable[[str, float], None] | None = None,
                    cancel: Callable[[], bool] | None = None) -> FaceResult: ...


ReconstructorFactory = Callable[[str, str, str, Union[str, None]], ReconstructorLike]
BasesGetter = Callable[[ReconstructorLike, ReconstructOptions], ModelBases]


def make_reconstructor(assets_dir: str, device: str, backbone: str,
                       cache_dir: str | None) -> ReconstructorLike:
    """The core's `Reconstructor` (the job's default factory). torch loads here, on the
    worker; the core caches loaded networks per (assets, backbone, device), so building
    a Reconstructor per run is cheap."""
    from ...tddfa_v3.pipeline import Reconstructor
    reconstructor: ReconstructorLike = Reconstructor(assets_dir, device=device, backbone=backbone,
                                                     cache_dir=cache_dir)
    return reconstructor


def default_bases(reconstructor: ReconstructorLike, options: ReconstructOptions) -> ModelBases:
    """The shape model the reconstructor used: the arrays of its face model when it
    keeps them, else the assets' face model (a fast cached load after the first)."""
    model = getattr(reconstructor, "face_model", None)
    for candidate in (model, getattr(model, "arrays", None)):
        if candidate is not None and isinstance(getattr(candidate, "u", None), np.ndarray):
            return bases_from_face_model(candidate)
    from ...tddfa_v3.assets import load_face_model_arrays
    return bases_from_face_model(load_face_model_arrays(options.assets_dir, cache_dir=options.cache_dir))


def describe_error(error: BaseException) -> str:
    """A one-line message for the user: our own errors as they are, others with their type."""
    if isinstance(error, (core_errors.ReconstructionError, BridgeError)):
        return str(error) or type(error).__name__
    if isinstance(error, ImportError):
        names = [dependency.pip for dependency in DEPENDENCIES]     # the one table, installer.builds
        return (f"a reconstruction dependency is missing ({error}); install {', '.join(names[:-1])} and "
                f"{names[-1]} into Blender's Python (see the add-on preferences)")
    if isinstance(error, MemoryError):
        return "out of memory while reconstructing; close other programs or use a smaller photo"
    return f"reconstruction failed: {type(error).__name__}: {first_line(error)}"


class ReconstructionJob(WorkerJob[ReconstructionOutput, JobMessage]):
    """One reconstruction (`bridge.worker.WorkerJob`): the body never touches bpy.

    Interactive use: `start()` runs it on a daemon thread; the main thread polls
    `drain()` on a timer (progress and notices, then one `JobFinished` /
    `JobFailed` / `JobCancelled`) and calls `cancel()` on Esc. Scripts call
    `run_job_sync`. A GPU failure with device "auto" is retried on the CPU.
    """

    thread_name = "tddfa-v3 reconstruction"

    def __init__(self, options: ReconstructOptions, photo: Photo,
                 factory: ReconstructorFactory | None = None,
                 bases_getter: BasesGetter | None = None) -> None:
        super().__init__()
        self.options = options
        self.photo = photo
        self._factory = factory or make_reconstructor
        self._bases_getter = bases_getter or default_bases

    def _final(self) -> JobMessage:
        error = self.future.exception()
        if error is None:
            return JobFinished(self.future.result())
        if isinstance(error, core_errors.Cancelled):
            return JobCancelled()
        return JobFailed(describe_error(error), error)

    def _work(self) -> ReconstructionOutput:
        return with_cpu_fallback(self._attempt, self.options.device,
                                 on_retry=lambda text: self.messages.put(JobNotice(text)))

    def _attempt(self, device: str) -> ReconstructionOutput:
        self.messages.put(JobProgress("loading networks", 0.0))
        opts = self.options
        reconstructor = self._factory(opts.assets_dir, device, opts.backbone, opts.cache_dir)
        if self.cancel_requested:
            raise core_errors.Cancelled(CANCELLED_TEXT)
        box = None if opts.face_box is None else np.asarray(opts.face_box, dtype=np.float64)
        result = reconstructor.reconstruct(
            self.photo, face_box=box,
            progress=lambda stage, fraction: self.messages.put(JobProgress(stage, float(fraction))),
            cancel=self._cancel.is_set)
        if self.cancel_requested:
            raise core_errors.Cancelled(CANCELLED_TEXT)
        if getattr(reconstructor, "fell_back_to_cpu", False):
            # The core already retried on the CPU after a GPU failure.
            self.messages.put(JobNotice("The GPU failed; the face was reconstructed on the CPU"))
        # What "auto" turned out to be (a torch.device), for the report and the object.
        device = str(getattr(getattr(reconstructor, "device", None), "type", device))
        bases = self._bases_getter(reconstructor, opts)
        if bases.mean.shape[0] != result.vertex_count:
            raise ReconstructionBridgeError(f"the face model has {bases.mean.shape[0]} vertices but the "
                                            f"reconstruction {result.vertex_count}")
        self.messages.put(JobProgress("preparing shape keys", 0.95))
        return ReconstructionOutput(result=result, bases=bases, device=device,
                                    backbone=opts.backbone, shape_keys=plan_shape_keys(result, bases))


def run_job_sync(job: ReconstructionJob,
                 on_message: Callable[[JobMessage], None] | None = None) -> ReconstructionOutput:
    """Run `job` on this thread; return its output. Raises `CancelledError` when it was
    cancelled and `ReconstructionBridgeError` (the core's message) when it failed."""
    job.run()
    for message in job.drain():
        if on_message is not None:
            on_message(message)
    error = job.future.exception()
    if error is None:
        return job.future.result()
    if isinstance(error, core_errors.Cancelled):
        raise CancelledError(CANCELLED_TEXT) from error
    if isinstance(error, BridgeError):
        raise error
    raise ReconstructionBridgeError(describe_error(error)) from error
