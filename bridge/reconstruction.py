# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""3DDFA-V3 reconstructions in Blender: running the core off the main thread, and
turning its `FaceResult` into Blender data.

Two halves:

- `ReconstructionJob` runs the reconstruction core (torch) and never touches
  bpy, so it may run on a worker thread; it reports through a queue of
  `JobProgress` / `JobNotice` / `JobFinished` / `JobFailed` / `JobCancelled`
  messages that the main thread drains.
- `build_reconstruction` runs on the main thread and turns a finished
  `ReconstructionOutput` into one object (created or updated), a camera, a
  material and the photo image, all or nothing.

Coordinates. The face model's space is x to the image right, y up, z towards
the camera, in decimetres; Blender's is z up, metres, and a face that looks
down -Y faces Blender's front view. The mapping is

    (x, y, z)_model  ->  (x, -z, y) * 0.1   (`MODEL_TO_BLENDER`)

a proper rotation (determinant +0.001) so triangle winding is preserved.

Shape keys. The basis is the model's mean shape; one key per identity
component ("ID.00".."ID.79") and per expression component ("EXP.00".."EXP.63")
holds mean + scale * component, with value = coefficient / scale, so the
evaluated mesh is mean + id @ a_id + exp @ a_exp = `vertices_model`. The scale
is 1 unless a coefficient lies outside Blender's widest slider range (-10..10);
the scales are stored on the object (`tddfa_key_scales`).
"""

from __future__ import annotations

import math
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, TypeVar, Union

import numpy as np
import numpy.typing as npt

from ..tddfa_v3 import errors as core_errors
from ..tddfa_v3.backbones import BACKBONE_TABLE
from ..tddfa_v3.preprocess import check_photo_size
from ..tddfa_v3.result import PART_NAMES, FaceResult
from .bpy_typed import (has_id_property, id_property, image_pixels, lookup, new_node, object_camera,
                        object_mesh, required)

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

if TYPE_CHECKING:
    # bpy is imported inside the Blender-side functions only: the worker half of this
    # module runs (and is tested) without it.
    from bpy.types import Camera, Collection, Context, Image, Material, Mesh, Object, ShaderNodeTexImage

#: Model space (decimetres, y up, z to the camera) -> Blender (metres, z up).
MODEL_TO_BLENDER: npt.NDArray[np.float64] = 0.1 * np.array(
    [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
#: The rotation part alone (no unit change), for orientations.
_AXES = MODEL_TO_BLENDER * 10.0

#: Blender clamps a shape key's slider range to [-10, 10].
SLIDER_LIMIT = 10.0

#: Backbone names the core accepts, by operator identifier (the one table, tddfa_v3.backbones).
BACKBONES: dict[str, str] = {b.identifier: b.name for b in BACKBONE_TABLE}
#: Device names the core accepts, by operator identifier.
DEVICES: dict[str, str] = {"AUTO": "auto", "CUDA": "cuda", "MPS": "mps", "CPU": "cpu"}

#: Custom properties written on a reconstructed object (read back by scripts).
PROP_MARKER = "tddfa_v3"
PROP_COEFFICIENTS = "tddfa_coefficients"
PROP_SPLIT = "tddfa_coefficient_split"
PROP_TRANS_PARAMS = "tddfa_trans_params"
PROP_SOURCE = "tddfa_source"
PROP_PHOTO_SIZE = "tddfa_photo_size"
PROP_FACE_BOX = "tddfa_face_box"
PROP_KEY_SCALES = "tddfa_key_scales"
PROP_CAMERA = "tddfa_camera"
PROP_LANDMARKS = "tddfa_landmarks_"   # + "68" / "106" / "134": ordered vertex indices

#: Where each part of the 257-vector lies (start, stop), as the core splits it.
COEFFICIENT_SPLIT: dict[str, tuple[int, int]] = {
    "identity": (0, 80), "expression": (80, 144), "albedo": (144, 224),
    "angles": (224, 227), "lighting": (227, 254), "translation": (254, 257),
}

UV_MAP_NAME = "photo"
ALBEDO_ATTRIBUTE = "albedo"
LIT_ATTRIBUTE = "lit"
VISIBLE_NAME = "visible"
LANDMARK_GROUP = "landmarks_"   # + "68" / "106" / "134"
IDENTITY_KEY = "ID.{:02d}"
EXPRESSION_KEY = "EXP.{:02d}"


class BridgeError(core_errors.ReconstructionError):
    """Turning a reconstruction into Blender data failed; the scene is unchanged."""


def model_to_blender(points: npt.ArrayLike) -> F32:
    """Model-space points (..., 3) in Blender coordinates, float32 C-contiguous.

    The mapping is an axis permutation with one sign flip and a scale, so it is
    applied per column (no matrix product, no float64 copy of large arrays).
    """
    array = np.asarray(points)
    if array.shape[-1:] != (3,):
        raise BridgeError(f"expected points of shape (..., 3), got {array.shape}")
    out = np.empty(array.shape, dtype=np.float32)
    out[..., 0] = array[..., 0] * 0.1
    out[..., 1] = array[..., 2] * -0.1
    out[..., 2] = array[..., 1] * 0.1
    return out


def pose_matrix(result: FaceResult) -> npt.NDArray[np.float64]:
    """The 4x4 object matrix that poses the model-space mesh (in Blender units).

    The core poses with row vectors, p_posed = p @ rotation + t; in Blender
    coordinates that is world = A R^T A^-1 local + 0.1 A t (A = the axis swap).
    """
    rotation_columns = np.asarray(result.rotation, dtype=np.float64).T
    matrix = np.eye(4)
    matrix[:3, :3] = _AXES @ rotation_columns @ _AXES.T
    matrix[:3, 3] = MODEL_TO_BLENDER @ np.asarray(result.coefficients.translation, dtype=np.float64)
    return matrix


@dataclass(frozen=True)
class CameraSettings:
    """Blender camera and render settings that reproduce `FaceResult.camera`.

    Derived (and checked against `world_to_camera_view`): with a horizontal
    sensor fit the focal in pixels is lens / sensor_width * width, the shifts
    are in units of the width, and unequal fx / fy become a pixel aspect.
    Photo pixel coordinates put integers at pixel centres (as `photo_uv`
    does) while Blender's frame runs from the left edge of the first pixel, so
    the principal point moves by half a pixel: a photo point (x, y) lands at
    frame coordinates ((x + 0.5) / W, 1 - (y + 0.5) / H).
    """

    lens: float
    sensor_width: float
    shift_x: float
    shift_y: float
    pixel_aspect_x: float
    pixel_aspect_y: float
    resolution: tuple[int, int]
    location: tuple[float, float, float]
    rotation_euler: tuple[float, float, float]


def camera_settings(result: FaceResult, sensor_width: float = 36.0) -> CameraSettings:
    """Blender camera parameters for the photo camera of `result`."""
    cam = result.camera
    width, height = int(cam.width), int(cam.height)
    if width <= 0 or height <= 0 or cam.fx <= 0 or cam.fy <= 0:
        raise BridgeError(f"the reconstruction's photo camera is invalid ({width}x{height}, "
                          f"fx={cam.fx}, fy={cam.fy})")
    cx, cy = float(cam.cx) + 0.5, float(cam.cy) + 0.5
    smaller = min(cam.fx, cam.fy)
    aspect_x, aspect_y = cam.fy / smaller, cam.fx / smaller
    location = MODEL_TO_BLENDER @ np.array([0.0, 0.0, float(cam.distance)])
    return CameraSettings(
        lens=float(cam.fx) * sensor_width / width,
        sensor_width=sensor_width,
        shift_x=(width / 2.0 - cx) / width,
        shift_y=(cy - height / 2.0) / width * aspect_y / aspect_x,
        pixel_aspect_x=float(aspect_x),
        pixel_aspect_y=float(aspect_y),
        resolution=(width, height),
        location=(float(location[0]), float(location[1]), float(location[2])),
        # Looking down Blender's +Y (the model's -z) with +Z up.
        rotation_euler=(math.pi / 2.0, 0.0, 0.0),
    )


# ---------------------------------------------------------------------------
# The worker half: no bpy below until `build_reconstruction`.

@dataclass(frozen=True)
class ModelBases:
    """The face model's linear shape model, in model space (decimetres)."""

    mean: F32          # (V, 3)
    identity: F32      # (80, V, 3)
    expression: F32    # (64, V, 3)


@dataclass(frozen=True)
class ShapeKeyPlan:
    """The shape keys of a reconstruction, in Blender coordinates (numpy only, so the
    worker thread computes it and the main thread only copies it into Blender)."""

    names: list[str]       # "ID.00".., "EXP.00"..
    basis: F32             # (V, 3) the mean shape
    positions: F32         # (K, V, 3) mean + scale * component
    values: F32            # (K,) coefficient / scale
    scales: F32            # (K,)


def plan_shape_keys(result: FaceResult, bases: ModelBases) -> ShapeKeyPlan:
    """Key positions and values whose blend equals `result.vertices_model`."""
    coefficients = result.coefficients
    identity = np.asarray(coefficients.identity, dtype=np.float32)
    expression = np.asarray(coefficients.expression, dtype=np.float32)
    if identity.shape[0] != bases.identity.shape[0] or expression.shape[0] != bases.expression.shape[0]:
        raise BridgeError(f"{identity.shape[0]} identity / {expression.shape[0]} expression coefficients "
                          f"for a model with {bases.identity.shape[0]} / {bases.expression.shape[0]} components")
    both = np.concatenate([identity, expression])
    scales = key_scales(both)
    components = np.concatenate([bases.identity, bases.expression], axis=0)      # (K, V, 3)
    positions = model_to_blender(bases.mean[None] + components * scales[:, None, None])
    names = ([IDENTITY_KEY.format(i) for i in range(identity.shape[0])]
             + [EXPRESSION_KEY.format(i) for i in range(expression.shape[0])])
    return ShapeKeyPlan(names=names, basis=model_to_blender(bases.mean), positions=positions,
                        values=(both / scales).astype(np.float32), scales=scales)


@dataclass
class ReconstructOptions:
    """What to reconstruct and what to create; the operator fills it from its properties."""

    assets_dir: str
    device: str = "auto"             # "auto" | "cuda" | "mps" | "cpu"
    backbone: str = "resnet50"       # "resnet50" | "mobilenetv3"
    cache_dir: str | None = None
    face_box: tuple[float, float, float, float] | None = None
    create_texture: bool = True
    create_landmarks: bool = True
    create_segmentation: bool = True
    create_camera: bool = True
    update_existing: bool = True
    name: str = ""


@dataclass
class ReconstructionOutput:
    """What the worker hands to the main thread."""

    result: FaceResult
    bases: ModelBases
    device: str
    backbone: str
    shape_keys: ShapeKeyPlan | None = None     # computed on the worker when it ran there


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
BasesGetter = Callable[[ReconstructorLike, "ReconstructOptions"], ModelBases]


def _default_factory(assets_dir: str, device: str, backbone: str,
                     cache_dir: str | None) -> ReconstructorLike:
    # torch loads here, on the worker; the core caches loaded networks per
    # (assets, backbone, device), so building a Reconstructor per run is cheap.
    from ..tddfa_v3.pipeline import Reconstructor
    reconstructor: ReconstructorLike = Reconstructor(assets_dir, device=device, backbone=backbone,
                                                     cache_dir=cache_dir)
    return reconstructor


def _default_bases(reconstructor: ReconstructorLike, options: "ReconstructOptions") -> ModelBases:
    """The shape model the reconstructor used: the arrays of its face model when it
    keeps them, else the assets' face model (a fast cached load after the first)."""
    model = getattr(reconstructor, "face_model", None)
    for candidate in (model, getattr(model, "arrays", None)):
        if candidate is not None and isinstance(getattr(candidate, "u", None), np.ndarray):
            return bases_from_face_model(candidate)
    from ..tddfa_v3.assets import load_face_model_arrays
    return bases_from_face_model(load_face_model_arrays(options.assets_dir, cache_dir=options.cache_dir))


def bases_from_face_model(model: object) -> ModelBases:
    """`ModelBases` from face-model arrays named as in face_model.npy (u, id, exp;
    flat 3V arrays) or a dict of them."""
    def pick(name: str) -> np.ndarray:
        value = model.get(name) if isinstance(model, dict) else getattr(model, name, None)
        if value is None:
            raise BridgeError(f"the face model has no {name!r} array")
        return np.asarray(value, dtype=np.float32)

    mean = pick("u").reshape(-1, 3)
    count = mean.shape[0]

    def components(name: str) -> F32:
        basis = pick(name)
        if basis.ndim != 2 or basis.shape[0] != 3 * count:
            raise BridgeError(f"the face model's {name!r} basis has shape {basis.shape}, "
                              f"expected ({3 * count}, K)")
        return np.ascontiguousarray(basis.T.reshape(-1, count, 3))

    return ModelBases(mean=np.ascontiguousarray(mean), identity=components("id"),
                      expression=components("exp"))


def _is_cancelled(error: BaseException) -> bool:
    return isinstance(error, core_errors.Cancelled)


def is_gpu_failure(error: BaseException) -> bool:
    """True for CUDA out-of-memory and other CUDA or MPS failures (anywhere in the cause chain)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, core_errors.DeviceError) or type(current).__name__ == "OutOfMemoryError":
            return True   # torch.cuda.OutOfMemoryError, matched by name: torch is not imported here
        text = str(current)
        if any(word in text for word in ("CUDA", "cuDNN", "CUBLAS", "cublas", "NCCL", "MPS")):
            return True
        current = current.__cause__ or current.__context__
    return False


def clear_reconstructor_cache() -> None:
    """Forget the core's loaded networks (before a CPU retry frees GPU memory)."""
    try:
        from ..tddfa_v3 import pipeline
    except ImportError:
        return
    pipeline.clear_cache()


class ReconstructionJob:
    """One reconstruction. `run()` is the worker body: it never touches bpy.

    Interactive use: `start()` runs it on a daemon thread; the main thread polls
    `drain()` on a timer and calls `cancel()` on Esc. Scripts call `run()` and
    then `drain()` on the same thread.
    """

    def __init__(self, options: ReconstructOptions, photo: Photo,
                 factory: ReconstructorFactory | None = None,
                 bases_getter: BasesGetter | None = None) -> None:
        self.options = options
        self.photo = photo
        self.messages: queue.Queue[JobMessage] = queue.Queue()
        self._cancel = threading.Event()
        self._factory = factory or _default_factory
        self._bases_getter = bases_getter or _default_bases
        self.thread: threading.Thread | None = None

    # -- main-thread side
    def start(self) -> threading.Thread:
        """Run the job on a new daemon thread."""
        self.thread = threading.Thread(target=self.run, name="tddfa-v3 reconstruction", daemon=True)
        self.thread.start()
        return self.thread

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def drain(self) -> list[JobMessage]:
        """Every message posted so far, oldest first (never blocks)."""
        drained: list[JobMessage] = []
        while True:
            try:
                drained.append(self.messages.get_nowait())
            except queue.Empty:
                return drained

    @property
    def finished(self) -> bool:
        return self.thread is not None and not self.thread.is_alive()

    # -- worker side
    def _attempt(self, device: str) -> ReconstructionOutput:
        self.messages.put(JobProgress("loading networks", 0.0))
        opts = self.options
        reconstructor = self._factory(opts.assets_dir, device, opts.backbone, opts.cache_dir)
        if self._cancel.is_set():
            raise core_errors.Cancelled("the reconstruction was cancelled")
        box = None if self.options.face_box is None else np.asarray(self.options.face_box, dtype=np.float64)
        result = reconstructor.reconstruct(
            self.photo, face_box=box,
            progress=lambda stage, fraction: self.messages.put(JobProgress(stage, float(fraction))),
            cancel=self._cancel.is_set)
        if self._cancel.is_set():
            raise core_errors.Cancelled("the reconstruction was cancelled")
        if getattr(reconstructor, "fell_back_to_cpu", False):
            # The core already retried on the CPU after a GPU failure.
            self.messages.put(JobNotice("The GPU failed; the face was reconstructed on the CPU"))
        # What "auto" turned out to be (a torch.device), for the report and the object.
        device = str(getattr(getattr(reconstructor, "device", None), "type", device))
        bases = self._bases_getter(reconstructor, self.options)
        if bases.mean.shape[0] != result.vertex_count:
            raise BridgeError(f"the face model has {bases.mean.shape[0]} vertices but the "
                              f"reconstruction {result.vertex_count}")
        self.messages.put(JobProgress("preparing shape keys", 0.95))
        return ReconstructionOutput(result=result, bases=bases, device=device,
                                    backbone=self.options.backbone, shape_keys=plan_shape_keys(result, bases))

    def run(self) -> None:
        """Reconstruct, posting progress and exactly one final message. Never raises."""
        device = self.options.device
        try:
            try:
                output = self._attempt(device)
            except BaseException as error:  # noqa: BLE001 - every failure is reported
                if _is_cancelled(error) or not is_gpu_failure(error):
                    raise
                if device != "auto":
                    raise BridgeError(
                        f"the GPU failed ({_first_line(error)}); choose the CPU or Auto device, "
                        "or close other programs using the GPU") from error
                self.messages.put(JobNotice(
                    f"The GPU failed ({_first_line(error)}); retrying on the CPU"))
                clear_reconstructor_cache()
                _free_cuda_memory()
                output = self._attempt("cpu")
            self.messages.put(JobFinished(output))
        except BaseException as error:  # noqa: BLE001
            if _is_cancelled(error):
                self.messages.put(JobCancelled())
            else:
                self.messages.put(JobFailed(describe_error(error), error))


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _free_cuda_memory() -> None:
    try:
        import sys
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort before the CPU retry
        pass


def describe_error(error: BaseException) -> str:
    """A one-line message for the user: our own errors as they are, others with their type."""
    if isinstance(error, core_errors.ReconstructionError):
        return str(error) or type(error).__name__
    if isinstance(error, ImportError):
        return (f"a reconstruction dependency is missing ({error}); install torch, pillow, "
                "opencv-python-headless and scipy into Blender's Python (see the add-on preferences)")
    if isinstance(error, MemoryError):
        return "out of memory while reconstructing; close other programs or use a smaller photo"
    return f"reconstruction failed: {type(error).__name__}: {_first_line(error)}"


def run_job_sync(job: ReconstructionJob,
                 on_message: Callable[[JobMessage], None] | None = None) -> ReconstructionOutput:
    """Run `job` on this thread; return its output or raise its error."""
    job.run()
    final: JobMessage | None = None
    for message in job.drain():
        if on_message is not None:
            on_message(message)
        if isinstance(message, (JobFinished, JobFailed, JobCancelled)):
            final = message
    if isinstance(final, JobFinished):
        return final.output
    if isinstance(final, JobFailed):
        if isinstance(final.error, core_errors.ReconstructionError):
            raise final.error
        raise BridgeError(final.message) from final.error
    raise BridgeError("the reconstruction was cancelled")


# ---------------------------------------------------------------------------
# Photos held by Blender

def image_to_rgb(image: Image) -> U8:
    """An Image datablock's pixels as an (H, W, 3) uint8 RGB array, top row first."""
    width, height = int(image.size[0]), int(image.size[1])
    if width == 0 or height == 0:
        raise BridgeError(f'the image "{image.name}" has no pixels (is its file missing?)')
    # The core's one size rule and message, before reading the pixels.
    check_photo_size(width, height, f'the image "{image.name}"')
    channels = int(image.channels)
    buffer = np.empty(width * height * channels, dtype=np.float32)
    image_pixels(image).foreach_get(buffer)
    pixels = buffer.reshape(height, width, channels)[::-1]
    if channels == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    rgb = np.clip(pixels[:, :, :3], 0.0, 1.0)
    colorspace = image.colorspace_settings
    if image.is_float and (colorspace is None or colorspace.name != "Non-Color"):
        # Float images hold scene-linear values; the networks expect sRGB-encoded photos.
        rgb = np.where(rgb <= 0.0031308, rgb * 12.92, 1.055 * np.power(rgb, 1.0 / 2.4) - 0.055)
    return np.ascontiguousarray(np.round(rgb * 255.0).astype(np.uint8))


# ---------------------------------------------------------------------------
# The main-thread half: Blender data.

@dataclass
class _Created:
    """Datablocks made so far, removed again if anything fails."""

    objects: list[Object] = field(default_factory=list)
    meshes: list[Mesh] = field(default_factory=list)
    cameras: list[Camera] = field(default_factory=list)
    materials: list[Material] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    #: Undo steps for changes to existing data (an updated face), run first on rollback.
    restore: list[Callable[[], None]] = field(default_factory=list)

    def rollback(self) -> None:
        import bpy
        for step in reversed(self.restore):
            step()
        self.restore.clear()
        _remove_each(bpy.data.objects.remove, self.objects)
        _remove_each(bpy.data.meshes.remove, self.meshes)
        _remove_each(bpy.data.cameras.remove, self.cameras)
        _remove_each(bpy.data.materials.remove, self.materials)
        _remove_each(bpy.data.images.remove, self.images)


_Datablock = TypeVar("_Datablock")


def _remove_each(remove: Callable[[_Datablock], None], items: list[_Datablock]) -> None:
    """Remove `items` newest first, skipping any already gone, and forget them."""
    for item in reversed(items):
        try:
            remove(item)
        except ReferenceError:
            pass
    items.clear()


def key_scales(coefficients: npt.ArrayLike, limit: float = SLIDER_LIMIT) -> F32:
    """Per-key scale so that coefficient / scale fits Blender's slider range."""
    magnitude = np.abs(np.asarray(coefficients, dtype=np.float64))
    return np.maximum(1.0, np.ceil(magnitude / limit)).astype(np.float32)


def find_reconstruction(context: Context) -> Object | None:
    """The object a re-run should update: the active object if it is a reconstruction."""
    obj = context.view_layer.objects.active if context.view_layer is not None else None
    if obj is not None and obj.type == 'MESH' and has_id_property(obj, PROP_MARKER):
        return obj
    return None


def find_image(filepath: str) -> Image | None:
    """An Image datablock already showing `filepath`, if any."""
    import bpy
    wanted = os.path.normcase(os.path.abspath(filepath))
    for image in bpy.data.images:
        if image.filepath and os.path.normcase(os.path.abspath(bpy.path.abspath(image.filepath))) == wanted:
            return image
    return None


def exif_orientation(path: str) -> int:
    """The EXIF orientation of an image file (1 = as stored, 2..8 = flipped / turned), 1 when
    there is none or the file cannot be read here."""
    try:
        from PIL import Image as PILImage
        with PILImage.open(path) as opened:
            value = opened.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - unreadable here: Blender loads (or refuses) it as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright_photo_image(path: str, created: _Created) -> Image:
    """A new Image of the photo as the core read it (EXIF orientation applied), packed into
    the .blend, for photos that Blender would show sideways or mirrored."""
    import bpy

    from ..tddfa_v3.preprocess import load_photo
    pixels = load_photo(path)
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    image = bpy.data.images.new(Path(path).name, width, height, alpha=False)
    created.images.append(image)
    rgba = np.ones((height, width, 4), dtype=np.float32)
    rgba[:, :, :3] = pixels[::-1] * np.float32(1.0 / 255.0)      # Blender stores the bottom row first
    image_pixels(image).foreach_set(rgba.ravel())
    image.pack()
    return image


def build_reconstruction(context: Context, output: ReconstructionOutput,
                         options: ReconstructOptions,
                         photo_image: Image | None = None,
                         photo_path: str | None = None) -> Object:
    """Create (or update) the reconstructed face object and what goes with it.

    All or nothing: when anything fails every datablock made here is removed
    and the error is raised as `BridgeError`. `photo_image` is an Image
    datablock of the photo; when None and `photo_path` is given, the file is
    loaded (or an Image already showing it is reused).
    """
    import bpy

    scene, view_layer, collection = context.scene, context.view_layer, context.collection
    if scene is None or view_layer is None or collection is None:
        raise BridgeError("building a reconstruction needs a scene, a view layer and a collection "
                          "in the context (run it with a scene open)")
    created = _Created()
    result = output.result
    target = find_reconstruction(context) if options.update_existing else None
    old_mesh = object_mesh(target) if target is not None else None
    if target is not None and old_mesh is not None and len(old_mesh.vertices) != result.vertex_count:
        # Another model: make a new object rather than break this one.
        target, old_mesh = None, None
    try:
        image = photo_image
        if image is None and photo_path and (options.create_texture or options.create_camera):
            # Blender shows a file as stored; the core turned a phone's sideways portrait upright.
            image = upright_photo_image(photo_path, created) if exif_orientation(photo_path) != 1 \
                else find_image(photo_path)
            if image is None:
                try:
                    image = bpy.data.images.load(photo_path)
                except RuntimeError as error:
                    raise BridgeError(f"Blender cannot load the photo {photo_path!r}: {error}") from error
                created.images.append(image)
        name = options.name or _name_from(result, photo_path, photo_image)
        mesh = _build_face_mesh(name, output, options, created)
        material = None
        photo_node = None
        if options.create_texture:
            # An updated face keeps its photo material (and the user's edits to it).
            material = _reusable_material(old_mesh) or _build_material(name, image, created)
            photo_node = _photo_node(material)
            mesh.materials.append(material)
        camera_obj = None
        camera = None
        if options.create_camera:
            candidate = lookup(bpy.data.objects, str(id_property(target, PROP_CAMERA, ""))) \
                if target is not None else None
            camera_obj = candidate if candidate is not None and candidate.type == 'CAMERA' \
                else _new_camera_object(collection, f"{name} camera", created)
            camera = object_camera(camera_obj)
        obj = _place_object(collection, name, mesh, target, created)
        add_vertex_groups(obj, result, options)
    except BridgeError:
        created.rollback()
        raise
    except Exception as error:  # noqa: BLE001 - nothing half-built, whatever failed
        created.rollback()
        raise BridgeError(f"building the reconstruction in Blender failed: {type(error).__name__}: "
                          f"{error}") from error

    # Nothing below can fail on valid data: it only sets values on data that exists.
    if old_mesh is not None and old_mesh.users == 0:
        bpy.data.meshes.remove(old_mesh)
    if photo_node is not None:
        photo_node.image = image
    _write_properties(obj, output, photo_path or (photo_image.filepath if photo_image else ""))
    matrix = pose_matrix(result)
    import mathutils
    obj.matrix_world = mathutils.Matrix(matrix.tolist())
    if camera_obj is not None and camera is not None:
        settings = camera_settings(result)
        _configure_camera(camera_obj, camera, settings, image)
        obj[PROP_CAMERA] = camera_obj.name
        render = scene.render
        render.resolution_x, render.resolution_y = settings.resolution
        render.resolution_percentage = 100
        render.pixel_aspect_x = settings.pixel_aspect_x
        render.pixel_aspect_y = settings.pixel_aspect_y
        scene.camera = camera_obj
    for other in view_layer.objects:
        other.select_set(False)
    obj.select_set(True)
    view_layer.objects.active = obj
    return obj


def _name_from(result: FaceResult, photo_path: str | None,
               photo_image: Image | None) -> str:
    if photo_path:
        return Path(photo_path).stem or "Face"
    if photo_image is not None:
        return Path(photo_image.name).stem or "Face"
    return Path(result.source).stem if result.source else "Face"


def _build_face_mesh(name: str, output: ReconstructionOutput, options: ReconstructOptions,
                     created: _Created) -> Mesh:
    import bpy

    from . import mesh as mesh_builder

    result = output.result
    plan = output.shape_keys if output.shape_keys is not None else plan_shape_keys(result, output.bases)
    key_names, values = plan.names, plan.values

    mesh: Mesh = mesh_builder.build_mesh(name, plan.basis, np.asarray(result.triangles, dtype=np.int64))
    created.meshes.append(mesh)
    given = mesh_builder.add_shape_keys(mesh, key_names, plan.positions, basis_name="Basis",
                                        slider_ranges=[(-SLIDER_LIMIT, SLIDER_LIMIT)] * len(key_names))
    if mesh.shape_keys is None:
        raise BridgeError(f'the mesh "{mesh.name}" got no shape keys')
    key_blocks = mesh.shape_keys.key_blocks
    for name, value in zip(given, values.tolist()):
        key_blocks[name].value = value

    if options.create_texture:
        mesh_builder.set_uv_map(mesh, UV_MAP_NAME, np.asarray(result.photo_uv, dtype=np.float32))
        mesh_builder.set_point_colors(mesh, ALBEDO_ATTRIBUTE, np.asarray(result.albedo, dtype=np.float32))
        mesh_builder.set_point_colors(mesh, LIT_ATTRIBUTE, np.asarray(result.colors, dtype=np.float32))
    visible = np.asarray(result.visible, dtype=bool)
    attribute = mesh.attributes.new(VISIBLE_NAME, 'FLOAT', 'POINT')
    if not isinstance(attribute, bpy.types.FloatAttribute):
        raise BridgeError(f"a new float attribute is a {type(attribute).__name__}")
    attribute.data.foreach_set("value", visible.astype(np.float32))
    return mesh


def _photo_node(material: Material) -> ShaderNodeTexImage:
    """The "Photo" image texture node of a photo material."""
    import bpy

    node = lookup(material.node_tree.nodes, "Photo") if material.node_tree is not None else None
    if not isinstance(node, bpy.types.ShaderNodeTexImage):
        raise BridgeError(f'the material "{material.name}" has no "Photo" image texture node')
    return node


def _reusable_material(mesh: Mesh | None) -> Material | None:
    """The photo material of a face being updated (kept, with any edits, for the new fit)."""
    if mesh is None:
        return None
    for material in mesh.materials:
        if material is not None and has_id_property(material, PROP_MARKER) \
                and material.node_tree is not None and lookup(material.node_tree.nodes, "Photo") is not None:
            return material
    return None


def _build_material(name: str, image: Image | None, created: _Created) -> Material:
    """Photo projected through the reconstruction's UVs where the face is visible,
    the model's albedo elsewhere."""
    import bpy
    from bpy import types as bt

    material = bpy.data.materials.new(f"{name} photo")
    created.materials.append(material)
    material[PROP_MARKER] = 1
    if bpy.app.version < (5, 0, 0):
        material.use_nodes = True   # always on (and deprecated) from Blender 5.0
    tree = material.node_tree
    if tree is None:
        raise BridgeError(f'the material "{material.name}" has no node tree')
    nodes, links = tree.nodes, tree.links
    bsdf = next((node for node in nodes if isinstance(node, bt.ShaderNodeBsdfPrincipled)), None)
    if bsdf is None:
        bsdf = new_node(nodes, bt.ShaderNodeBsdfPrincipled)
        output_node = next(node for node in nodes if isinstance(node, bt.ShaderNodeOutputMaterial))
        links.new(required(bsdf.outputs, "BSDF outputs")["BSDF"],
                  required(output_node.inputs, "material output inputs")["Surface"])
    bsdf_inputs = required(bsdf.inputs, "BSDF inputs")
    bsdf_inputs["Roughness"].default_value = 0.6

    uv = new_node(nodes, bt.ShaderNodeUVMap)
    uv.uv_map = UV_MAP_NAME
    uv.location = (-900, 300)
    texture = new_node(nodes, bt.ShaderNodeTexImage)
    texture.name = texture.label = "Photo"
    texture.image = image
    texture.extension = 'EXTEND'
    texture.location = (-650, 300)
    links.new(required(uv.outputs, "UV map outputs")["UV"],
              required(texture.inputs, "image texture inputs")["Vector"])

    albedo = new_node(nodes, bt.ShaderNodeVertexColor)
    albedo.layer_name = ALBEDO_ATTRIBUTE
    albedo.label = "Model albedo"
    albedo.location = (-650, 0)
    visible = new_node(nodes, bt.ShaderNodeAttribute)
    visible.attribute_name = VISIBLE_NAME
    visible.label = "Visible in the photo"
    visible.location = (-650, 550)

    mix = new_node(nodes, bt.ShaderNodeMix)
    mix.data_type = 'RGBA'
    mix.label = "Photo where visible"
    mix.location = (-300, 250)
    mix_inputs = required(mix.inputs, "mix inputs")
    links.new(required(visible.outputs, "attribute outputs")["Fac"], mix_inputs["Factor"])
    links.new(required(albedo.outputs, "colour attribute outputs")["Color"], mix_inputs[6])  # A (colour)
    links.new(required(texture.outputs, "image texture outputs")["Color"], mix_inputs[7])    # B (colour)
    links.new(required(mix.outputs, "mix outputs")[2], bsdf_inputs["Base Color"])           # Result (colour)
    return material


def _new_camera_object(collection: Collection, name: str, created: _Created) -> Object:
    import bpy

    camera = bpy.data.cameras.new(name)
    created.cameras.append(camera)
    camera_obj = bpy.data.objects.new(name, camera)
    created.objects.append(camera_obj)
    collection.objects.link(camera_obj)
    return camera_obj


def _configure_camera(camera_obj: Object, camera: Camera, settings: CameraSettings,
                      image: Image | None) -> None:
    """Lens, shift, placement and background photo of the photo camera."""
    camera.type = 'PERSP'
    camera.lens_unit = 'MILLIMETERS'
    camera.sensor_fit = 'HORIZONTAL'
    camera.sensor_width = settings.sensor_width
    camera.lens = settings.lens
    camera.shift_x = settings.shift_x
    camera.shift_y = settings.shift_y
    camera.clip_start = 0.01
    camera.clip_end = 100.0
    camera_obj.location = settings.location
    camera_obj.rotation_mode = 'XYZ'
    camera_obj.rotation_euler = settings.rotation_euler
    camera_obj.scale = (1.0, 1.0, 1.0)
    if image is not None:
        camera.background_images.clear()
        background = camera.background_images.new()
        background.image = image
        background.alpha = 1.0
        background.display_depth = 'BACK'
        camera.show_background_images = True


def _place_object(collection: Collection, name: str, mesh: Mesh,
                  target: Object | None, created: _Created) -> Object:
    import bpy

    if target is None:
        obj = bpy.data.objects.new(name, mesh)
        created.objects.append(obj)
        collection.objects.link(obj)
        return obj
    old_mesh = object_mesh(target)
    old_key, new_key = old_mesh.shape_keys, mesh.shape_keys
    old_action = old_key.animation_data.action \
        if old_key is not None and old_key.animation_data is not None else None
    if old_action is not None and new_key is not None:
        # Keep keyframes on the coefficients when the sliders are re-fitted.
        animation = new_key.animation_data_create()
        if animation is not None:
            animation.action = old_action
            # Blender 4.4+ actions hold per-datablock slots: the new key datablock has
            # another name, so no slot is picked for it and nothing would play.
            old_slot = getattr(old_key.animation_data, "action_slot", None) if old_key is not None else None
            if old_slot is not None and getattr(animation, "action_slot", None) is None:
                setattr(animation, "action_slot", old_slot)
    # Vertex group names live on the mesh (Blender 3.0+): swapping the mesh swaps
    # the groups too, and swapping back restores them untouched.
    created.restore.append(lambda: setattr(target, "data", old_mesh))
    target.data = mesh
    return target


def _write_properties(obj: Object, output: ReconstructionOutput, photo_path: str) -> None:
    """Custom properties a script can read back, and the landmark / part vertex groups."""
    result = output.result
    coefficients = result.coefficients
    obj[PROP_MARKER] = 1
    obj[PROP_COEFFICIENTS] = np.asarray(coefficients.raw, dtype=np.float64).tolist()
    obj[PROP_SPLIT] = {name: list(span) for name, span in COEFFICIENT_SPLIT.items()}
    obj[PROP_TRANS_PARAMS] = np.asarray(result.trans_params, dtype=np.float64).tolist()
    obj[PROP_SOURCE] = photo_path or result.source
    obj[PROP_PHOTO_SIZE] = [int(result.photo_size[0]), int(result.photo_size[1])]
    obj[PROP_FACE_BOX] = np.asarray(result.face_box, dtype=np.float64).tolist()
    obj["tddfa_backbone"] = output.backbone
    obj["tddfa_device"] = output.device
    scales = key_scales(np.concatenate([np.asarray(coefficients.identity), np.asarray(coefficients.expression)]))
    obj[PROP_KEY_SCALES] = scales.astype(np.float64).tolist()
    for set_name, indices in result.landmark_indices.items():
        obj[PROP_LANDMARKS + set_name] = np.asarray(indices, dtype=np.int64).ravel().tolist()


def add_vertex_groups(obj: Object, result: FaceResult, options: ReconstructOptions) -> None:
    """Landmark, face-part and visibility vertex groups (weight 1).

    The 68 landmarks follow the iBUG-68 numbering, so they get the .nvf
    bridge's per-landmark groups ("IBUG.001".."IBUG.068"), which the .nvf
    exporter writes as the model's IBUG landmarks; the 106- and 134-point sets
    get one group each ("landmarks_106", "landmarks_134") and their ordered
    vertex indices as custom properties.
    """
    from . import mesh as mesh_builder
    from .nvf_mapping import IBUG_GROUP

    groups: list[tuple[str, npt.NDArray[np.int64]]] = [
        (VISIBLE_NAME, np.flatnonzero(np.asarray(result.visible, dtype=bool)).astype(np.int64))]
    if options.create_landmarks:
        for set_name in ("68", "106", "134"):
            if set_name not in result.landmark_indices:
                continue
            ordered = np.asarray(result.landmark_indices[set_name], dtype=np.int64).ravel()
            if set_name == "68":
                groups.extend((IBUG_GROUP.format(number), ordered[number - 1:number])
                              for number in range(1, ordered.shape[0] + 1))
            else:
                groups.append((LANDMARK_GROUP + set_name, np.unique(ordered)))
    if options.create_segmentation:
        groups.extend((part_name, np.asarray(indices, dtype=np.int64))
                      for part_name, indices in zip(PART_NAMES, result.part_vertices))
    mesh_builder.set_vertex_groups(obj, groups)
