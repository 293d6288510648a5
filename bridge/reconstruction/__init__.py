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
public API (what the operators, tools and tests read here); the rest is imported from its module.
"""

from __future__ import annotations

from .build import build_reconstruction
from .job import (
    BACKBONES, DEVICES, JobCancelled, JobFailed, JobFinished, JobMessage, JobNotice, JobProgress, Photo,
    ReconstructionJob, run_job_sync,
)
from .photo import image_to_rgb
from .plan import (
    COEFFICIENT_SPLIT, PROP_CAMERA, PROP_COEFFICIENTS, PROP_FACE_BOX, PROP_KEY_SCALES, PROP_MARKER,
    PROP_PHOTO_SIZE, PROP_SOURCE, PROP_SPLIT, PROP_TRANS_PARAMS, ReconstructionOutput, ReconstructOptions,
    bases_from_face_model, key_scales, model_to_blender, plan_shape_keys, pose_matrix,
)

__all__ = [
    "BACKBONES", "COEFFICIENT_SPLIT", "DEVICES", "PROP_CAMERA", "PROP_COEFFICIENTS",
    "PROP_FACE_BOX", "PROP_KEY_SCALES", "PROP_MARKER", "PROP_PHOTO_SIZE", "PROP_SOURCE", "PROP_SPLIT",
    "PROP_TRANS_PARAMS", "JobCancelled", "JobFailed", "JobFinished",
    "JobMessage", "JobNotice", "JobProgress", "Photo", "ReconstructOptions", "ReconstructionJob",
    "ReconstructionOutput", "bases_from_face_model", "build_reconstruction", "image_to_rgb", "key_scales", "model_to_blender", "plan_shape_keys", "pose_matrix", "run_job_sync",
]
