# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""`personal_model`: a FaceModel whose mean is the fitted person's neutral face."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .basis import model_basis
from .errors import FittingError
from .result import Fit

if TYPE_CHECKING:
    # Only for annotations (see basis.py): the model's own dataclasses are copied with
    # dataclasses.replace, so both import names of io_nv3dmm work.
    from ..io_nv3dmm import FaceModel

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def personal_model(model: FaceModel, fit: Fit, transfer_expressions: bool = True) -> FaceModel:
    """A new FaceModel of the person `fit` found: its mean is their neutral face (mode
    coefficients and residual applied, no expression), in the model's frame and units.

    The shape modes and eigenvalues are kept (so the identity can still be adjusted),
    the blend shapes are carried over, adapted to the new shape where the residual bends
    the surface (each vertex's offsets turned by the rotation that best maps its one-ring
    from the model's fitted shape to the personal one, a per-vertex deformation transfer),
    and landmarks, contours, partitions, texture coordinates, colour model, topology and
    anything else the file holds are unchanged, so the model writes with io_nv3dmm.write.
    """
    basis = model_basis(model)
    if fit.coefficients.shape != (basis.mode_count,):
        raise FittingError(f"the fit has {fit.coefficients.shape[0]} mode coefficients, the model "
                           f"{basis.mode_count}: it was made with another model")
    if fit.residual.shape != basis.mean.shape:
        raise FittingError("the fit's residual does not match the model's vertices")
    fitted = basis.mean + basis.modes @ fit.coefficients
    personal = fitted + fit.residual
    if not np.isfinite(personal).all():
        raise FittingError("the fitted shape holds NaN or infinite values")
    shape = dataclasses.replace(model.shape, mean=np.ascontiguousarray(personal, dtype=np.float32))
    blend_shapes = model.blend_shapes
    if blend_shapes is not None and len(blend_shapes.names) and transfer_expressions \
            and float(np.abs(fit.residual).max(initial=0.0)) > 0.0:
        rotations = one_ring_rotations(fitted, personal, basis.triangles)
        deltas = np.asarray(blend_shapes.deltas, dtype=np.float64).reshape(-1, basis.vertex_count, 3)
        turned = np.einsum("vab,kvb->kva", rotations, deltas)
        blend_shapes = dataclasses.replace(blend_shapes, names=list(blend_shapes.names),
                                           deltas=np.ascontiguousarray(turned, dtype=np.float32))
    return dataclasses.replace(model, shape=shape, blend_shapes=blend_shapes)


def one_ring_rotations(source: F64, target: F64, triangles: I64) -> F64:
    """(V, 3, 3): per vertex, the rotation that best maps the edges to its neighbours on
    `source` onto the same edges on `target` (Kabsch on the one-ring). Identity where the
    two agree or a vertex has no edges."""
    count = source.shape[0]
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    first = np.concatenate([edges[:, 0], edges[:, 1]])
    second = np.concatenate([edges[:, 1], edges[:, 0]])
    e_source = source[second] - source[first]
    e_target = target[second] - target[first]
    covariance = np.zeros((count, 3, 3))
    np.add.at(covariance, first, e_target[:, :, None] * e_source[:, None, :])
    rotations = np.broadcast_to(np.eye(3), (count, 3, 3)).copy()
    has = np.abs(covariance).sum(axis=(1, 2)) > 0.0
    u, _, vt = np.linalg.svd(covariance[has])
    sign = np.sign(np.linalg.det(u @ vt))
    sign[sign == 0] = 1.0
    u[:, :, 2] *= sign[:, None]
    rotations[has] = u @ vt
    return rotations
