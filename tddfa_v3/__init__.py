# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""3DDFA-V3 (CVPR 2024) single-photo face reconstruction: our own PyTorch implementation.

Pure torch + numpy; never imports bpy. Torch is imported lazily by the modules
that need it, so `tddfa_v3.result` and `tddfa_v3.errors` load without it.
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
