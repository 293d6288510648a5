# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The optional packages reconstruction needs, imported on first use.

Each `require_*` returns the module or raises DependencyError saying what to
install and where (inside Blender: its own bundled Python), so the rest of the
add-on (the .nvf importer and exporter) works without them.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import DependencyError

_WHERE = ("into the Python that runs this; in Blender, press Install Dependencies in the add-on's "
          "preferences, or install into Blender's own Python: "
          "`<blender>/<version>/python/bin/python* -m pip install {pip}` "
          "(on Windows from an administrator prompt), then restart Blender")


def _require(module: str, pip: str, what: str, extra: str = "") -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"{what} is not installed, and 3DDFA-V3 reconstruction needs it. Install `{pip}` "
            + _WHERE.format(pip=pip) + extra + ".") from exc


def require_torch() -> Any:
    """PyTorch, or DependencyError saying how to install it."""
    return _require("torch", "torch", "PyTorch",
                    " (CPU-only wheels: add --index-url https://download.pytorch.org/whl/cpu)")


def require_cv2() -> Any:
    """OpenCV (the headless build), or DependencyError saying how to install it."""
    return _require("cv2", "opencv-python-headless", "OpenCV")


def require_pil_image() -> Any:
    """Pillow's `PIL.Image`, or DependencyError saying how to install it."""
    return _require("PIL.Image", "pillow", "Pillow")


def require_scipy_io() -> Any:
    """`scipy.io` (reads similarity_Lm3D_all.mat), or DependencyError saying how to install it."""
    return _require("scipy.io", "scipy", "SciPy")
