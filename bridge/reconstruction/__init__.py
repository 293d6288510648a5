# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""3DDFA-V3 reconstructions in Blender: running the core off the main thread, and
turning its `FaceResult` into Blender data. May import bpy, numpy, the bridge's shared
modules and tddfa_v3 (torch only on the worker, through the core); never the UI.
One module per responsibility:

- `job`: `ReconstructionJob` runs the core (torch) on a worker thread, never bpy;
  `run_job_sync` runs it on this one (scripts, background mode);
- `plan`: the options, the worker's output and what it becomes, in numpy (shape-key
  plan, pose, camera settings, the face model's bases, the object's property names);
- `photo`: photos held by Blender (an Image's pixels for the core, EXIF orientation);
- `build`: `build_reconstruction` makes the object, material and camera (main thread,
  all or nothing).

Failures the user can act on raise `ReconstructionBridgeError` (a `BridgeError`);
a cancelled `run_job_sync` raises `CancelledError`. The names below are the package's
public API (the operators, tools and tests import them from here).
"""

from __future__ import annotations

from ...tddfa_v3.devices import is_gpu_failure
from ..errors import BridgeError, CancelledError, ReconstructionBridgeError
from ..mesh import SLIDER_LIMIT
from ..axes import MODEL_TO_BLENDER
from .build import add_vertex_groups, build_reconstruction, find_reconstruction
from .job import (
    BACKBONES, DEVICES, BasesGetter, JobCancelled, JobFailed, JobFinished, JobMessage, JobNotice, JobProgress,
    Photo, ReconstructionJob, ReconstructorFactory, ReconstructorLike, default_bases, describe_error,
    make_reconstructor, run_job_sync,
)
from .photo import exif_orientation, find_image, image_to_rgb, upright_photo_image
from .plan import (
    ALBEDO_ATTRIBUTE, COEFFICIENT_SPLIT, EXPRESSION_KEY, IDENTITY_KEY, LANDMARK_GROUP, LIT_ATTRIBUTE,
    PROP_CAMERA, PROP_COEFFICIENTS, PROP_FACE_BOX, PROP_KEY_SCALES, PROP_LANDMARKS, PROP_MARKER,
    PROP_PHOTO_SIZE, PROP_SOURCE, PROP_SPLIT, PROP_TRANS_PARAMS, UV_MAP_NAME, VISIBLE_NAME, CameraSettings,
    ModelBases, ReconstructionOutput, ReconstructOptions, ShapeKeyPlan, bases_from_face_model, camera_settings,
    key_scales, model_to_blender, plan_shape_keys, pose_matrix,
)

__all__ = [
    "ALBEDO_ATTRIBUTE", "BACKBONES", "COEFFICIENT_SPLIT", "DEVICES", "EXPRESSION_KEY", "IDENTITY_KEY",
    "LANDMARK_GROUP", "LIT_ATTRIBUTE", "MODEL_TO_BLENDER", "PROP_CAMERA", "PROP_COEFFICIENTS",
    "PROP_FACE_BOX", "PROP_KEY_SCALES", "PROP_LANDMARKS", "PROP_MARKER", "PROP_PHOTO_SIZE", "PROP_SOURCE",
    "PROP_SPLIT", "PROP_TRANS_PARAMS", "SLIDER_LIMIT", "UV_MAP_NAME", "VISIBLE_NAME", "BasesGetter",
    "BridgeError", "CameraSettings", "CancelledError", "JobCancelled", "JobFailed", "JobFinished",
    "JobMessage", "JobNotice", "JobProgress", "ModelBases", "Photo", "ReconstructOptions",
    "ReconstructionBridgeError", "ReconstructionJob", "ReconstructionOutput", "ReconstructorFactory",
    "ReconstructorLike", "ShapeKeyPlan", "add_vertex_groups", "bases_from_face_model", "build_reconstruction",
    "camera_settings", "default_bases", "describe_error", "exif_orientation", "find_image",
    "find_reconstruction", "image_to_rgb", "is_gpu_failure", "key_scales", "make_reconstructor",
    "model_to_blender", "plan_shape_keys", "pose_matrix", "run_job_sync", "upright_photo_image",
]
