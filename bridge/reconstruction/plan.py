# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a reconstruction becomes in Blender, computed with numpy alone (no bpy), so
the worker thread can compute it and the main thread only copies it in.

Here: the options (`ReconstructOptions`) and the worker's output
(`ReconstructionOutput`), the face model's shape bases (`ModelBases`), the
shape-key plan, the pose matrix, the photo camera's settings and the names a
reconstructed object carries (custom properties, attributes, keys, groups).
May import numpy and the core's result types; never bpy.

Coordinates. The face model's space is x to the image right, y up, z towards
the camera, in decimetres; Blender's is z up, metres, and a face that looks
down -Y faces Blender's front view. The mapping is

    (x, y, z)_model  ->  (x, -z, y) * 0.1   (`axes.MODEL_TO_BLENDER`)

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
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ...tddfa_v3.result import FaceResult, PhotoCamera
from ..axes import MODEL_AXES, MODEL_TO_BLENDER
from ..errors import ReconstructionBridgeError
from ..mesh import SLIDER_LIMIT

F32 = npt.NDArray[np.float32]

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


@dataclass
class ReconstructionOutput:
    """What the worker hands to the main thread."""

    result: FaceResult
    bases: ModelBases
    device: str
    backbone: str
    shape_keys: ShapeKeyPlan | None = None     # computed on the worker when it ran there


def model_to_blender(points: npt.ArrayLike) -> F32:
    """Model-space points (..., 3) in Blender coordinates, float32 C-contiguous.

    The mapping is an axis permutation with one sign flip and a scale, so it is
    applied per column (no matrix product, no float64 copy of large arrays).
    """
    array = np.asarray(points)
    if array.shape[-1:] != (3,):
        raise ReconstructionBridgeError(f"expected points of shape (..., 3), got {array.shape}")
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
    matrix[:3, :3] = MODEL_AXES @ rotation_columns @ MODEL_AXES.T
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


def camera_settings(result: FaceResult | PhotoCamera, sensor_width: float = 36.0) -> CameraSettings:
    """Blender camera parameters for the photo camera of `result` (or that camera itself)."""
    cam = result if isinstance(result, PhotoCamera) else result.camera
    width, height = int(cam.width), int(cam.height)
    if width <= 0 or height <= 0 or cam.fx <= 0 or cam.fy <= 0:
        raise ReconstructionBridgeError(f"the reconstruction's photo camera is invalid ({width}x{height}, "
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


def bases_from_face_model(model: object) -> ModelBases:
    """`ModelBases` from face-model arrays named as in face_model.npy (u, id, exp;
    flat 3V arrays) or a dict of them."""
    def pick(name: str) -> np.ndarray:
        value = model.get(name) if isinstance(model, dict) else getattr(model, name, None)
        if value is None:
            raise ReconstructionBridgeError(f"the face model has no {name!r} array")
        return np.asarray(value, dtype=np.float32)

    mean = pick("u").reshape(-1, 3)
    count = mean.shape[0]

    def components(name: str) -> F32:
        basis = pick(name)
        if basis.ndim != 2 or basis.shape[0] != 3 * count:
            raise ReconstructionBridgeError(f"the face model's {name!r} basis has shape {basis.shape}, "
                                            f"expected ({3 * count}, K)")
        return np.ascontiguousarray(basis.T.reshape(-1, count, 3))

    return ModelBases(mean=np.ascontiguousarray(mean), identity=components("id"),
                      expression=components("exp"))


def key_scales(coefficients: npt.ArrayLike, limit: float = SLIDER_LIMIT) -> F32:
    """Per-key scale so that coefficient / scale fits Blender's slider range."""
    magnitude = np.abs(np.asarray(coefficients, dtype=np.float64))
    return np.maximum(1.0, np.ceil(magnitude / limit)).astype(np.float32)


def plan_shape_keys(result: FaceResult, bases: ModelBases) -> ShapeKeyPlan:
    """Key positions and values whose blend equals `result.vertices_model`."""
    coefficients = result.coefficients
    identity = np.asarray(coefficients.identity, dtype=np.float32)
    expression = np.asarray(coefficients.expression, dtype=np.float32)
    if identity.shape[0] != bases.identity.shape[0] or expression.shape[0] != bases.expression.shape[0]:
        raise ReconstructionBridgeError(
            f"{identity.shape[0]} identity / {expression.shape[0]} expression coefficients "
            f"for a model with {bases.identity.shape[0]} / {bases.expression.shape[0]} components")
    both = np.concatenate([identity, expression])
    scales = key_scales(both)
    components = np.concatenate([bases.identity, bases.expression], axis=0)      # (K, V, 3)
    positions = model_to_blender(bases.mean[None] + components * scales[:, None, None])
    names = ([IDENTITY_KEY.format(i) for i in range(identity.shape[0])]
             + [EXPRESSION_KEY.format(i) for i in range(expression.shape[0])])
    return ShapeKeyPlan(names=names, basis=model_to_blender(bases.mean), positions=positions,
                        values=(both / scales).astype(np.float32), scales=scales)
