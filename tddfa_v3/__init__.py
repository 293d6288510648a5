# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""3DDFA-V3 (CVPR 2024) single-photo face reconstruction, our own PyTorch implementation: the core layer.
May import numpy, `io_nv3dmm` and `installer` (standard-library leaf); torch, OpenCV, Pillow and SciPy lazily; never bpy.

Torch is imported lazily by the modules that need it, so `tddfa_v3.result`,
`tddfa_v3.errors`, `tddfa_v3.devices`, `tddfa_v3.backbones` and `tddfa_v3.assets` load without it.

Modules: `pipeline` (Reconstructor: the chain over photos), `stages` (the batched network
stages), `loaded` (the cache of loaded networks), `devices` (device names, choice, the
GPU-to-CPU fallback), `backbones` (the regressor table), `dependencies` (optional
packages), `assets/` (the asset files: check, checkpoints, face-model file, cache),
`photos` (photo loading), `preprocess` (detector input, landmark crops, alignment),
`crop` (crop and camera geometry), `detection` (RetinaFace post-processing),
`networks/` (the CNNs), `face_model` (the parametric model), `visibility` (the software
z-buffer), `result` (FaceResult). Dev-only, not shipped: `export`, `synthetic`, `synthetic_face`.
"""

from __future__ import annotations

from .errors import (
    AssetError, Cancelled, DependencyError, DeviceError, FaceBoxError, NoFaceError, PhotoError,
    ReconstructionError,
)
from .result import PART_NAMES, Coefficients, FaceResult, PhotoCamera

__all__ = [
    "AssetError", "Cancelled", "DependencyError", "DeviceError", "FaceBoxError", "NoFaceError",
    "PhotoError", "ReconstructionError",
    "PART_NAMES", "Coefficients", "FaceResult", "PhotoCamera",
]
