# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""A face model's linear basis prepared once for fitting: mean, shape modes and
blend shapes as float64 columns, their priors and bounds, the skin vertices the
dense fit uses and the iBUG-68 landmark vertices."""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt


from .errors import FittingError

if TYPE_CHECKING:
    # Only for annotations: the package is imported as `io_nv3dmm` from a clone and as
    # the add-on's subpackage inside Blender; the fits only read the model's arrays.
    from ..io_nv3dmm import FaceModel

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Partitions whose name (or material) matches are the face's skin.
_SKIN_NAME = re.compile(r"face|skin|head", re.IGNORECASE)


@dataclass
class ModelBasis:
    """Everything the fits need from one FaceModel, in float64 (model units, cm for .nvf).

    columns: (V, 3, M + B): the M shape modes, then the B blend shapes.
    """

    mean: F64
    columns: F64
    eigenvalues: F64
    blend_names: list[str]
    triangles: I64
    skin: I64                       # vertices the dense fit matches to a target surface
    landmark_numbers: I64           # iBUG-68 numbers the model has, ascending
    landmark_vertices: I64          # their vertices

    @property
    def vertex_count(self) -> int:
        return int(self.mean.shape[0])

    @property
    def mode_count(self) -> int:
        return int(self.eigenvalues.shape[0])

    @property
    def blend_count(self) -> int:
        return len(self.blend_names)

    @property
    def modes(self) -> F64:
        return self.columns[:, :, :self.mode_count]

    @property
    def blend(self) -> F64:
        return self.columns[:, :, self.mode_count:]

    def landmark_vertex(self, number: int) -> int | None:
        where = np.searchsorted(self.landmark_numbers, number)
        if where < self.landmark_numbers.size and self.landmark_numbers[where] == number:
            return int(self.landmark_vertices[where])
        return None

    def shape(self, coefficients: F64, weights: F64) -> F64:
        """mean + modes . coefficients + blend shapes . weights, (V, 3)."""
        z = np.concatenate([coefficients, weights])
        result: F64 = self.mean + self.columns @ z
        return result


def skin_vertices(model: FaceModel) -> I64:
    """The vertices of the face's skin: the partitions named like Face/Skin/Head (else the
    largest partition, else every vertex in a triangle). Eyeballs and the mouth socket are
    separate partitions in Maxine models and have no counterpart on a reconstructed surface."""
    triangles = np.asarray(model.shape.triangles, dtype=np.int64)
    parts = model.partitions or []
    chosen = [p for p in parts if _SKIN_NAME.search(p.name or p.material or "")]
    if parts and not chosen:
        chosen = [max(parts, key=lambda p: p.face_count)]
    if chosen:
        faces = np.concatenate([np.arange(p.face_start, min(p.face_start + p.face_count, triangles.shape[0]))
                                for p in chosen])
        used = np.unique(triangles[faces.astype(np.int64)]) if faces.size else np.zeros(0, np.int64)
        if used.size >= 3:
            return used.astype(np.int64)
    return np.unique(triangles).astype(np.int64)


def _build(model: FaceModel) -> ModelBasis:
    shape = model.shape
    count = model.vertex_count
    if count < 3 or model.triangle_count == 0:
        raise FittingError("the face model has no surface to fit (fewer than 3 vertices or no triangles)")
    modes = np.asarray(shape.modes, dtype=np.float64).reshape(-1, count, 3)
    if model.blend_shapes is not None and len(model.blend_shapes.names):
        names = list(model.blend_shapes.names)
        deltas = np.asarray(model.blend_shapes.deltas, dtype=np.float64).reshape(-1, count, 3)
    else:
        names, deltas = [], np.zeros((0, count, 3))
    columns = np.ascontiguousarray(np.concatenate([modes, deltas]).transpose(1, 2, 0))
    mean = np.asarray(shape.mean, dtype=np.float64)
    eigenvalues = np.asarray(shape.eigenvalues, dtype=np.float64).reshape(-1)
    if eigenvalues.shape[0] != modes.shape[0]:
        eigenvalues = np.ones(modes.shape[0])
    if not (np.isfinite(mean).all() and np.isfinite(columns).all() and np.isfinite(eigenvalues).all()):
        raise FittingError("the face model holds NaN or infinite values")
    if model.ibug is not None and len(model.ibug.pairs):
        pairs = np.asarray(model.ibug.pairs, dtype=np.int64)
        pairs = pairs[(pairs[:, 1] < count)]
        order = np.argsort(pairs[:, 0], kind="stable")
        numbers, vertices = pairs[order, 0], pairs[order, 1]
        numbers, first = np.unique(numbers, return_index=True)
        vertices = vertices[first]
    else:
        numbers = vertices = np.zeros(0, dtype=np.int64)
    return ModelBasis(mean=mean, columns=columns, eigenvalues=eigenvalues, blend_names=names,
                      triangles=np.asarray(shape.triangles, dtype=np.int64), skin=skin_vertices(model),
                      landmark_numbers=numbers, landmark_vertices=vertices)


_CACHE: dict[int, tuple[Any, ModelBasis]] = {}


def model_basis(model: FaceModel) -> ModelBasis:
    """The prepared basis of `model`, cached while the model object lives (so per-frame fits
    do not convert 100 modes again). Do not edit a model's arrays in place after fitting it."""
    key = id(model)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is model:
        return hit[1]
    basis = _build(model)
    def forget(_ref: Any, key: int = key) -> None:
        _CACHE.pop(key, None)

    _CACHE[key] = (weakref.ref(model, forget), basis)
    return basis
