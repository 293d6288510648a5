# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The optional packages reconstruction needs, imported on first use.

Each `require_*` returns the module or raises DependencyError saying what to
install and where (inside Blender: its own bundled Python), so the rest of the
add-on (the .nvf importer and exporter) works without them. The packages and their
pip names are `installer.builds.DEPENDENCIES` (the one table; standard library only).
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import DependencyError

try:  # inside the add-on, and in tests: the one installer
    from ..installer import builds as _builds
except ImportError:  # `python -m tddfa_v3` from a clone runs the packages top-level
    _builds = importlib.import_module("installer.builds")

_WHERE = ("into the Python that runs this; in Blender, press Install Dependencies in the add-on's "
          "preferences, or install into Blender's own Python: "
          "`<blender>/<version>/python/bin/python* -m pip install {pip}` "
          "(on Windows from an administrator prompt), then restart Blender")


def _require(module: str, extra: str = "") -> Any:
    """`module` imported, or DependencyError naming its package (pip name and what it is)
    from the one table of dependencies, `installer.builds.DEPENDENCIES`."""
    dependency = next(dep for dep in _builds.DEPENDENCIES if dep.module == module.partition(".")[0])
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"{dependency.what} is not installed, and 3DDFA-V3 reconstruction needs it. Install "
            f"`{dependency.pip}` " + _WHERE.format(pip=dependency.pip) + extra + ".") from exc


def require_torch() -> Any:
    """PyTorch, or DependencyError saying how to install it."""
    return _require("torch", " (CPU-only wheels: add --index-url https://download.pytorch.org/whl/cpu)")


def require_cv2() -> Any:
    """OpenCV (the headless build), or DependencyError saying how to install it."""
    return _require("cv2")


def require_pil_image() -> Any:
    """Pillow's `PIL.Image`, or DependencyError saying how to install it."""
    return _require("PIL.Image")


def require_scipy_io() -> Any:
    """`scipy.io` (reads similarity_Lm3D_all.mat), or DependencyError saying how to install it."""
    return _require("scipy.io")
