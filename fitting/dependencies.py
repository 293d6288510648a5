# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""SciPy, imported on first use so that importing `fitting` (and the .nvf
importer/exporter that never fits anything) works without it."""

from __future__ import annotations

import importlib
from typing import Any

from .errors import DependencyError

_HINT = ("Fitting a face model needs SciPy. Install `scipy` into the Python that runs this; for "
         "Blender, its own Python: `<blender>/<version>/python/bin/python* -m pip install scipy` "
         "(on Windows from an administrator prompt), then restart Blender.")


def _require(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise DependencyError(_HINT) from exc


def require_spatial() -> Any:
    """`scipy.spatial` (KD-trees), or DependencyError saying how to install SciPy."""
    return _require("scipy.spatial")


def require_sparse() -> Any:
    """`scipy.sparse` (the smooth residual's Laplacian), or DependencyError."""
    return _require("scipy.sparse")


def require_sparse_linalg() -> Any:
    """`scipy.sparse.linalg` (sparse factorisation), or DependencyError."""
    return _require("scipy.sparse.linalg")
