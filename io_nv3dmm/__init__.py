"""NVIDIA 3DMM (.nvf) face-model format: pure Python + numpy, no bpy, no torch."""

from __future__ import annotations

from .model import (
    MAX_VERTICES, MAXINE_EXPRESSIONS, BlendShapes, Contours, FaceModel, LandmarkSet,
    LinearModel, Partition, Topology, UnknownChunk,
)

__all__ = [
    "MAX_VERTICES", "MAXINE_EXPRESSIONS", "BlendShapes", "Contours", "FaceModel",
    "LandmarkSet", "LinearModel", "Partition", "Topology", "UnknownChunk",
]
