# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""A tracked clip onto a Maxine (.nvf) model: the model's own blend-shape weights per
frame, solved with the fitting layer's `fit_expressions` against each frame's 3DDFA-V3
shape, the model's identity held fixed.

The clip's reconstruction (its locked identity and per-frame expression, in the
3DDFA-V3 face model's topology) is fitted once with `fit_model` on the reference
frame to find where each Maxine vertex lies on that topology (a correspondence);
every frame is then resampled through it in one gather and solved by bounded least
squares on the model's blend shapes (weights in [0, 1]).

The fitting package is found beside this one (`fitting` from a clone, the add-on's
own subpackage inside Blender) and imported only when solving.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .errors import Cancelled, TrackingError
from .one_euro import OneEuroParams, smooth


def sibling(name: str) -> Any:
    """The package `name` beside this one, under the name this one was imported with."""
    parent = (__package__ or "").rpartition(".")[0]
    return importlib.import_module(f"{parent}.{name}" if parent else name)


@dataclass(frozen=True)
class FaceShapes:
    """The 3DDFA-V3 face model's linear shape model (model space): mean (V, 3),
    identity (80, V, 3), expression (64, V, 3); triangles (T, 3); landmarks68 (68,)
    vertex indices in iBUG order."""

    mean: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    triangles: np.ndarray
    landmarks68: np.ndarray

    def vertices(self, identity: np.ndarray, expression: np.ndarray) -> np.ndarray:
        out = self.mean.astype(np.float64) + np.tensordot(identity, self.identity, axes=1)
        return out + np.tensordot(expression, self.expression, axes=1)


def face_shapes(reconstructor: Any, result: Any) -> FaceShapes:
    """The FaceShapes of a tddfa_v3 Reconstructor's face model (arrays u, id, exp as in
    face_model.npy) with the triangles and iBUG-68 vertices of one of its results."""
    model = getattr(reconstructor, "face_model")
    arrays = getattr(model, "arrays", model)
    mean = np.asarray(getattr(arrays, "u"), dtype=np.float64).reshape(-1, 3)
    count = mean.shape[0]

    def components(name: str) -> np.ndarray:
        basis = np.asarray(getattr(arrays, name), dtype=np.float64)
        return np.ascontiguousarray(basis.T.reshape(-1, count, 3))

    return FaceShapes(mean=mean, identity=components("id"), expression=components("exp"),
                      triangles=np.asarray(result.triangles), landmarks68=np.asarray(result.landmark_indices["68"]))


@dataclass
class MaxineAnimation:
    """Per tracked frame, the model's blend-shape weights: weights (N, B) in `names` order."""

    frames: np.ndarray
    names: list[str]
    weights: np.ndarray
    fit_report: dict[str, Any]

    def take(self, track: Any) -> Any:
        """A Live Link Face take of these frames: ARKit values from the weights (split halves
        averaged, tongueOut 0), head yaw/pitch/roll from the track, timecodes from the frame
        numbers at the video's rate."""
        from .live_link import Take, format_timecode
        from .names import ARKIT_SHAPES, HEAD_EYE_ANGLES, maxine_to_arkit

        arkit = maxine_to_arkit({name: self.weights[:, i] for i, name in enumerate(self.names)})
        count = len(self.frames)
        shapes = np.zeros((count, len(ARKIT_SHAPES)))
        for i, shape in enumerate(ARKIT_SHAPES):
            if shape in arkit:
                shapes[:, i] = arkit[shape]
        angles = np.zeros((count, len(HEAD_EYE_ANGLES)))
        pitch_yaw_roll = np.asarray(track.angles[:count], dtype=np.float64)
        angles[:, 0], angles[:, 1], angles[:, 2] = pitch_yaw_roll[:, 1], pitch_yaw_roll[:, 0], pitch_yaw_roll[:, 2]
        rate = float(round(track.fps)) or 30.0
        timecodes = [format_timecode(float(f) * rate / track.fps, rate) for f in self.frames]
        return Take(timecodes=timecodes, shapes=shapes, angles=angles, decimals=6)


def solve_maxine(model: Any, identity: np.ndarray | None, track: Any, shapes: FaceShapes,
                 smoothing: OneEuroParams | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 cancel: Callable[[], bool] | None = None, fitting: Any = None) -> MaxineAnimation:
    """The blend-shape weights of `model` (an io_nv3dmm FaceModel) for each frame of `track`,
    with `identity` (the model's mode coefficients; None: the person's, fitted on the
    reference frame) fixed. Frames before a cancel are kept.
    `fitting`: the fitting package (the add-on passes its own; default: the one beside this)."""
    fitting = fitting if fitting is not None else sibling("fitting")
    names = list(model.blend_shapes.names) if model.blend_shapes is not None else []
    if not names:
        raise TrackingError("the Maxine model has no blend shapes to animate")
    reference = int(np.flatnonzero(track.frames == track.reference_frame)[0])
    target = shapes.vertices(track.identity, track.expression[reference])
    landmarks = {i + 1: target[int(v)] for i, v in enumerate(shapes.landmarks68)}
    try:
        placed = fitting.fit_model(model, target, shapes.triangles, landmarks)
        fixed = placed.coefficients if identity is None else np.asarray(identity, dtype=np.float64)
        fitter = fitting.ExpressionFitter(model, fixed)
    except fitting.FittingError as error:
        raise TrackingError(f"the Maxine model cannot be fitted to the clip's face: {error}") from error
    weights = np.zeros((len(track), len(names)))
    done = 0
    for row in range(len(track)):
        if cancel is not None and cancel():
            break
        vertices = shapes.vertices(track.identity, track.expression[row])
        fit = fitter.fit(vertices, shapes.triangles, correspondence=placed.correspondence)
        weights[row] = [fit.expression_weights[name] for name in names]
        done += 1
        if progress is not None:
            progress(done, len(track))
    if done == 0:
        raise Cancelled("cancelled before any frame was solved")
    weights = weights[:done]
    if smoothing is not None and done > 1:
        weights = np.clip(smooth(weights, track.times[:done], smoothing), 0.0, 1.0)
    return MaxineAnimation(frames=np.asarray(track.frames[:done]), names=names, weights=weights,
                           fit_report=placed.report())
