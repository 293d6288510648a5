# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Errors of the reconstruction core. Every message says what to do next."""

from __future__ import annotations


class ReconstructionError(Exception):
    """Base class: anything that stops a reconstruction."""


class AssetError(ReconstructionError):
    """A 3DDFA-V3 asset is missing, malformed or of the wrong kind."""


class NoFaceError(ReconstructionError):
    """The detector found no face in the photo."""


class DependencyError(ReconstructionError):
    """An optional dependency (PyTorch, Pillow, OpenCV) is not installed."""


class Cancelled(ReconstructionError):
    """The caller's cancel callback asked to stop; nothing was produced."""


class DeviceError(ReconstructionError):
    """The compute device failed (CUDA out of memory, driver error); the CPU may still work."""


class PhotoError(ReconstructionError):
    """A photo cannot be read or has an unusable pixel layout."""


class FaceBoxError(ReconstructionError):
    """A given face box or 5-point set is malformed or lies outside the photo."""
