# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Core layer: fitting NVIDIA 3DMM (.nvf) face models to 3D targets (rigid + shape, expressions, personal model).
May import numpy, SciPy (on first use) and io_nv3dmm; cli.py also tddfa_v3 (photos, lazily); never bpy or the UI.

    import io_nv3dmm, fitting
    model = io_nv3dmm.read("face_model2.nvf")
    fit = fitting.fit_model(model, vertices, triangles, landmarks)   # any topology and units
    frame = fitting.fit_expressions(model, fit.coefficients, next_vertices, triangles,
                                    correspondence=fit.correspondence)
    io_nv3dmm.write(fitting.personal_model(model, fit), "me.nvf")

The library imports io_nv3dmm only (no torch); SciPy is imported on first use
(`DependencyError` says how to install it). Errors are `FittingError` (a ValueError).
"""

from __future__ import annotations

from .errors import DependencyError, FittingError
from .expressions import ExpressionFitter, fit_expressions
from .fit import fit_model
from .personal import personal_model
from .result import Correspondence, Fit, FitOptions

__all__ = [
    "Correspondence", "DependencyError", "ExpressionFitter", "Fit", "FitOptions", "FittingError",
    "fit_expressions", "fit_model", "personal_model",
]
