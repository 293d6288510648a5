# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The values the fits return: `Fit`, `Correspondence`, and the options `FitOptions`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


@dataclass
class FitOptions:
    """How a fit weighs its terms. Lengths are in the model's units (centimetres for .nvf),
    whatever the target's units (the target is brought into the model's frame first)."""

    iterations: int = 10              # correspondence / solve rounds of the model fit
    landmark_sigma: float = 0.1       # expected landmark error
    dense_sigma: float = 0.1          # expected distance of a dense correspondence
    shape_prior: float = 1.0          # weight of the eigenvalue prior on the mode coefficients
    expression_sigma: float = 1.0     # prior spread of a blend-shape weight (weights lie in [0, 1])
    point_to_point: float = 0.01      # share of point-to-point next to point-to-plane distances
    max_distance: float = 2.0         # correspondences farther than this are rejected at first
    min_distance: float = 0.2         # the rejection distance never shrinks below this
    max_normal_angle: float = 60.0    # degrees between model and target normals
    fit_expressions: bool = True      # solve the blend-shape weights in fit_model too
    residual: bool = True             # add the smooth non-rigid residual after the modes
    residual_smoothness: float = 20.0  # bending stiffness of the residual (larger: smoother)
    residual_iterations: int = 2
    expression_iterations: int = 6    # most Gauss-Newton rounds per fit_expressions frame

    def check(self) -> None:
        from .errors import FittingError
        positive = ("landmark_sigma", "dense_sigma", "expression_sigma", "max_distance", "min_distance",
                    "residual_smoothness")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise FittingError(f"FitOptions.{name} must be a positive number, got {value!r}")
        for name in ("shape_prior", "point_to_point"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise FittingError(f"FitOptions.{name} must be >= 0, got {value!r}")
        if not 0 < self.max_normal_angle <= 180:
            raise FittingError("FitOptions.max_normal_angle must be in (0, 180] degrees")
        for name in ("iterations", "residual_iterations", "expression_iterations"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise FittingError(f"FitOptions.{name} must be a positive integer, got {value!r}")


@dataclass
class Correspondence:
    """Where each model vertex lies on a target surface: a target triangle and barycentric
    coordinates. Frames with the same target topology are resampled to the model's topology
    with `resample` (one gather)."""

    triangle: I64             # (V,) target triangle per model vertex (0 where not valid)
    barycentric: F64          # (V, 3)
    valid: Bool               # (V,) the vertex found an accepted place on the target
    target_triangles: I64     # (T, 3) the target's triangles it refers to

    def matches(self, vertex_count: int, triangles: Any) -> bool:
        """Whether a target with these triangles has the topology this was found on."""
        if triangles is None:
            return False
        tris = np.asarray(triangles)
        if tris.shape != self.target_triangles.shape:
            return False
        return bool(int(self.target_triangles.max(initial=-1)) < vertex_count
                    and np.array_equal(tris, self.target_triangles))

    def resample(self, vertices: F64) -> F64:
        """The target's surface at each model vertex (V, 3); rows where `valid` is False are 0."""
        corners = vertices[self.target_triangles[self.triangle]]          # (V, 3, 3)
        points: F64 = np.einsum("vk,vkd->vd", self.barycentric, corners)
        points[~self.valid] = 0.0
        return points


@dataclass
class Fit:
    """A face model placed on a target: target ~ scale * rotation @ x + translation for each
    model-space point x (column vectors), with x = mean + modes . coefficients + blend shapes
    . weights (+ residual)."""

    scale: float
    rotation: F64                         # (3, 3) proper rotation
    translation: F64                      # (3,) target units
    coefficients: F64                     # (M,) shape-mode coefficients (the identity)
    expression_weights: dict[str, float]  # blend-shape name -> weight in [0, 1]
    vertices: F64                         # (V, 3) the fitted model in the target's space
    residual: F64                         # (V, 3) non-rigid offsets in model space (zeros when none)
    landmark_errors: dict[int, float]     # iBUG number -> distance to the target landmark (target units)
    dense_errors: F64                     # (V,) distance to the target surface (target units), NaN where unmatched
    correspondence: Correspondence | None = None
    iterations: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def weights(self) -> F64:
        """The expression weights as an array in the model's blend-shape order."""
        return np.array(list(self.expression_weights.values()), dtype=np.float64)

    @property
    def mean_landmark_error(self) -> float:
        return float(np.mean(list(self.landmark_errors.values()))) if self.landmark_errors else math.nan

    @property
    def mean_dense_error(self) -> float:
        matched = self.dense_errors[np.isfinite(self.dense_errors)]
        return float(matched.mean()) if matched.size else math.nan

    def model_space(self, points: F64) -> F64:
        """Target-space points brought into the model's frame (the inverse transform)."""
        result: F64 = (np.asarray(points, dtype=np.float64) - self.translation) @ self.rotation / self.scale
        return result

    def report(self) -> dict[str, Any]:
        """A JSON-ready summary of the fit and its errors (target units)."""
        matched = self.dense_errors[np.isfinite(self.dense_errors)]

        def number(value: float) -> float | None:
            return None if not math.isfinite(value) else round(float(value), 6)

        return {
            "scale": number(self.scale),
            "rotation": np.round(self.rotation, 6).tolist(),
            "translation": np.round(self.translation, 6).tolist(),
            "coefficients": np.round(self.coefficients, 6).tolist(),
            "expression_weights": {k: round(float(v), 6) for k, v in self.expression_weights.items()},
            "landmark_errors": {str(k): round(float(v), 6) for k, v in self.landmark_errors.items()},
            "mean_landmark_error": number(self.mean_landmark_error),
            "dense_matched_vertices": int(matched.size),
            "mean_dense_error": number(self.mean_dense_error),
            "max_residual": number(float(np.linalg.norm(self.residual, axis=1).max(initial=0.0))),
            "iterations": self.iterations,
            "notes": list(self.notes),
        }
