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


@dataclass
class MaxineAnimation:
    """Per tracked frame, the model's blend-shape weights: weights (N, B) in `names` order."""

    frames: np.ndarray
    names: list[str]
    weights: np.ndarray
    fit_report: dict[str, Any]


def solve_maxine(model: Any, identity: np.ndarray, track: Any, shapes: FaceShapes,
                 smoothing: OneEuroParams | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 cancel: Callable[[], bool] | None = None, fitting: Any = None) -> MaxineAnimation:
    """The blend-shape weights of `model` (an io_nv3dmm FaceModel) for each frame of `track`,
    with `identity` (the model's mode coefficients) fixed. Frames before a cancel are kept.
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
        fitter = fitting.ExpressionFitter(model, np.asarray(identity, dtype=np.float64))
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
