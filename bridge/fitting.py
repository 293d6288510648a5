# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make Maxine model: a reconstruction in the scene + an .nvf model -> the person's own
Maxine model object, built exactly as an imported .nvf (so it exports with the .nvf
exporter), placed on the reconstruction so it lines up with the photo camera.

Three steps, so that the work between them can run off Blender's main thread:
`prepare_fit` (main thread: reads the reconstruction's surface and landmarks and the
model), `FitJob` (any thread: the fitting layer, no bpy), `build_personal_model`
(main thread: writes the personal .nvf to a temporary file, imports it with the .nvf
import bridge, sets the fitted expression values and the placement; all or nothing).
`make_maxine_model` runs the three in a row (scripts, background mode).
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import numpy.typing as npt

from .. import fitting
from ..io_nv3dmm import FaceModel, NvfError
from ..io_nv3dmm import write as write_nvf
from .axes import MODEL_AXES, to_nvf
from .bpy_typed import id_property, lookup, object_mesh
from .errors import FittingBridgeError
from .naming import BASIS_NAME, blend_shape_key_name
from .nvf_import import import_nvf, load_model
from .options import ImportOptions
from .original import original_of
from .reconstruction.build import find_reconstruction
from .reconstruction.plan import PROP_LANDMARKS
from .rollback import Created
from .worker import WorkerJob

if TYPE_CHECKING:
    from bpy.types import Context, Object

F64 = npt.NDArray[np.float64]

#: Custom properties written on the personal model object.
PROP_FIT_REPORT = "nv3dmm_fit_report"      # the fit's JSON report (errors, weights, pose)
PROP_FIT_SOURCE = "nv3dmm_fit_source"      # the reconstruction object it was fitted to
#: Written by the reconstruction bridge: the 68 landmark vertex indices, in iBUG order.
RECONSTRUCTION_LANDMARKS = PROP_LANDMARKS + "68"


@dataclass
class MakeModelOptions:
    """What `make_maxine_model` fits and makes.

    model_path: an .nvf file; or model_object: the name of an object imported from one
    (its original file is used). residual: add the smooth detail the modes cannot express.
    landmarks_only: fit the reconstruction's 68 landmarks alone, not its surface.
    name: the new object's name ("" -> "<reconstruction> Maxine").
    """

    model_path: str = ""
    model_object: str = ""
    residual: bool = True
    landmarks_only: bool = False
    name: str = ""


@dataclass
class FitInput:
    """Everything the fit needs, read on the main thread (plain arrays, no bpy)."""

    model: FaceModel
    model_label: str
    vertices: F64                         # reconstruction's local space, NVIDIA axes, centimetres
    triangles: npt.NDArray[np.int64]
    landmarks: dict[int, F64]
    reconstruction: str                   # the reconstruction object's name
    matrix_world: F64                     # its 4x4 world matrix
    options: MakeModelOptions


@dataclass
class FitOutput:
    fit: fitting.Fit
    personal: FaceModel
    seconds: float = 0.0


def _model(options: MakeModelOptions) -> tuple[FaceModel, str]:
    import bpy

    if options.model_object:
        obj = lookup(bpy.data.objects, options.model_object)
        if obj is None or obj.type != 'MESH':
            raise FittingBridgeError(f'no mesh object named "{options.model_object}" to take the .nvf model from')
        original = original_of(object_mesh(obj))
        if original is None:
            raise FittingBridgeError(f'"{obj.name}" was not imported from an .nvf file; choose an imported .nvf '
                                     "model object or an .nvf file")
        return original.model, obj.name
    if not options.model_path:
        raise FittingBridgeError("choose the .nvf model to fit (a file, or an object imported from one)")
    path = Path(bpy.path.abspath(options.model_path))
    _, model = load_model(path)
    return model, path.name


def _surface(context: Context, obj: Object) -> tuple[F64, npt.NDArray[np.int64]]:
    """The reconstruction's current shape (shape keys applied), in its local space."""
    depsgraph = context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        count = len(mesh.vertices)
        positions = np.empty(count * 3, dtype=np.float32)
        mesh.vertices.foreach_get("co", positions)
        mesh.calc_loop_triangles()
        triangles = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int32)
        mesh.loop_triangles.foreach_get("vertices", triangles)
    finally:
        evaluated.to_mesh_clear()
    return positions.reshape(-1, 3).astype(np.float64), triangles.reshape(-1, 3).astype(np.int64)


def prepare_fit(context: Context, options: MakeModelOptions, reconstruction: Object | None = None) -> FitInput:
    """Reads the reconstruction (the active object unless given) and the model. Raises
    FittingBridgeError (or NvfBridgeError for an unreadable .nvf) with what to do."""
    obj = reconstruction or find_reconstruction(context)
    if obj is None:
        raise FittingBridgeError("make a reconstruction active first (Reconstruct from Photo makes one)")
    if obj.type != 'MESH':
        raise FittingBridgeError(f'"{obj.name}" is not a mesh')
    model, label = _model(options)
    if model.blend_shapes is None or not len(model.blend_shapes.names):
        label += " (no blend shapes: only the identity is fitted)"
    local, triangles = _surface(context, obj)
    if local.shape[0] < 3 or triangles.shape[0] == 0:
        raise FittingBridgeError(f'"{obj.name}" has no surface to fit to')
    # Blender local (metres, Z up) -> NVIDIA's axes (Y up, Z to the camera), centimetres.
    vertices = to_nvf(local, 0.01, True).astype(np.float64)
    indices = np.asarray(id_property(obj, RECONSTRUCTION_LANDMARKS, []) or [], dtype=np.int64).ravel()
    if indices.size and (indices.min() < 0 or indices.max() >= vertices.shape[0]):
        raise FittingBridgeError(f'the landmark indices kept on "{obj.name}" do not fit its mesh '
                                 "(was it edited after the reconstruction?)")
    landmarks = {number: vertices[index] for number, index in enumerate(indices.tolist(), start=1)}
    if options.landmarks_only and len(landmarks) < 3:
        raise FittingBridgeError(f'"{obj.name}" keeps no 68 landmarks to fit alone; fit its surface instead')
    matrix = np.array(obj.matrix_world, dtype=np.float64)
    return FitInput(model=model, model_label=label, vertices=vertices, triangles=triangles, landmarks=landmarks,
                    reconstruction=obj.name, matrix_world=matrix, options=options)


def compute_fit(data: FitInput, progress: Callable[[str, float], None] | None = None) -> FitOutput:
    """The fit and the personal model (no bpy: runs on any thread). Raises only
    FittingBridgeError (the core's message, or the type and text of anything unexpected)."""
    import time

    started = time.perf_counter()
    options = fitting.FitOptions(residual=data.options.residual)
    try:
        if progress is not None:
            progress("fitting the model", 0.1)
        if data.options.landmarks_only:
            fit = fitting.fit_model(data.model, None, None, data.landmarks, options)
        else:
            fit = fitting.fit_model(data.model, data.vertices, data.triangles, data.landmarks or None, options)
        if progress is not None:
            progress("making the personal model", 0.8)
        personal = fitting.personal_model(data.model, fit)
    except fitting.FittingError as error:
        raise FittingBridgeError(f"fitting {data.model_label} to \"{data.reconstruction}\" failed: {error}") from error
    except Exception as error:  # noqa: BLE001 - one clear message for the user, on any thread
        raise FittingBridgeError(f"the fit failed: {type(error).__name__}: {error}") from error
    return FitOutput(fit=fit, personal=personal, seconds=time.perf_counter() - started)


def placement(fit: fitting.Fit, reconstruction_world: F64) -> F64:
    """The 4x4 world matrix of the imported personal model: the fit's similarity (NVIDIA
    axes, centimetres) expressed in Blender's axes and metres, after the reconstruction's own
    world matrix, so the model sits where the reconstruction is and lines up with its camera."""
    axes = MODEL_AXES     # NVIDIA's axes -> Blender's: the same quarter turn as the reconstruction's
    local = np.eye(4)
    local[:3, :3] = fit.scale * axes @ fit.rotation @ axes.T
    local[:3, 3] = 0.01 * axes @ fit.translation
    result: F64 = reconstruction_world @ local
    return result


_UNSAFE = re.compile(r"[^\w.\- ]+")


def build_personal_model(context: Context, data: FitInput, output: FitOutput) -> Object:
    """Creates the personal model object (main thread). All or nothing: raises
    FittingBridgeError and leaves the scene unchanged on failure."""
    import bpy
    import mathutils

    reconstruction = lookup(bpy.data.objects, data.reconstruction)
    name = data.options.name or f"{data.reconstruction} Maxine"
    file_stem = _UNSAFE.sub("_", name).strip() or "Maxine"
    with tempfile.TemporaryDirectory(prefix="nv3dmm_fit_") as folder:
        path = Path(folder) / f"{file_stem}.nvf"
        try:
            write_nvf(output.personal, path)
        except (NvfError, OSError) as error:
            raise FittingBridgeError(f"the personal model cannot be written: {error}") from error
        obj = import_nvf(context, path, ImportOptions())
    try:
        obj.name = name
        mesh = object_mesh(obj)
        mesh.name = name
        keys = mesh.shape_keys
        blend = output.personal.blend_shapes
        if keys is not None and blend is not None:
            blocks = keys.key_blocks
            for index, (blend_name, value) in enumerate(zip(blend.names, output.fit.expression_weights.values())):
                block = lookup(blocks, blend_shape_key_name(blend_name, index))
                if block is not None and block.name != BASIS_NAME:
                    block.value = float(value)
        world = data.matrix_world if reconstruction is None else \
            np.array(reconstruction.matrix_world, dtype=np.float64)
        obj.matrix_world = mathutils.Matrix(placement(output.fit, world).tolist())
        report = output.fit.report()
        report["seconds"] = round(output.seconds, 3)
        report["model"] = data.model_label
        obj[PROP_FIT_REPORT] = json.dumps(report)
        obj[PROP_FIT_SOURCE] = data.reconstruction
    except Exception as error:  # noqa: BLE001 - nothing half-built, whatever failed
        _imported(obj).rollback()
        raise FittingBridgeError(f"building the personal model failed: {type(error).__name__}: {error}") from error
    return obj


def _imported(obj: Object) -> Created:
    """What the .nvf import made for `obj` (the object, its mesh and the materials only it
    uses), to remove again."""
    import bpy

    mesh = obj.data
    materials = [m for m in getattr(mesh, "materials", []) if m is not None and m.users == 1]
    meshes = [mesh] if isinstance(mesh, bpy.types.Mesh) and mesh.users == 1 else []
    return Created(objects=[obj], meshes=meshes, materials=materials)


def make_maxine_model(context: Context, options: MakeModelOptions, reconstruction: Object | None = None) -> Object:
    """Fit the model to the reconstruction and build the personal model object, on this
    thread (scripts, background mode). Raises FittingBridgeError / NvfBridgeError."""
    data = prepare_fit(context, options, reconstruction)
    return build_personal_model(context, data, compute_fit(data))


# ------------------------------------------------------------------------------ the worker

class FitJob(WorkerJob[FitOutput, None]):
    """The fit on a worker thread (a `bridge.worker.WorkerJob`): `future` holds the
    FitOutput or the error; `stage` / `fraction` report progress; `cancel()` drops the
    result (the fit itself, under a second for Maxine's models, runs to its end)."""

    thread_name = "nv3dmm-fit"

    def __init__(self, data: FitInput) -> None:
        super().__init__()
        self.data = data
        self.stage = "starting"
        self.fraction = 0.0

    def _work(self) -> FitOutput:
        return compute_fit(self.data, self._progress)

    def _final(self) -> None:
        return None     # the operator polls `done` and `result()`, not messages

    def _progress(self, stage: str, fraction: float) -> None:
        self.stage, self.fraction = stage, fraction

    @property
    def done(self) -> bool:
        return self.finished

    def result(self) -> FitOutput:
        """The output; raises the worker's error (compute_fit raises only FittingBridgeError)."""
        if self.thread is None and not self.future.done():
            raise FittingBridgeError("the fit was never started")
        return self.future.result()


def describe(output: FitOutput) -> str:
    """A one-line summary for the status bar (distances in centimetres on the reconstruction)."""
    fit = output.fit
    parts = [f"{output.seconds:.2f} s"]
    if np.isfinite(fit.mean_dense_error):
        parts.append(f"mean surface distance {fit.mean_dense_error:.3f} cm")
    if fit.landmark_errors:
        parts.append(f"mean landmark distance {fit.mean_landmark_error:.3f} cm")
    return ", ".join(parts)
