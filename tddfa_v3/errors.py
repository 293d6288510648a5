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
