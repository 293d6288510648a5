# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Registers this checkout as the add-on in the running Blender (`blender -b -P`
or the `bpy` module), the way Blender imports an installed extension.

Used by the scripts in tools/ and benchmarks/, so they run straight from a
clone without installing the extension first.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parent.parent
ADDON_ID = "nv3dmm_face_tools"


def load_checkout_addon() -> ModuleType | None:
    """Imports the repository root as package `nv3dmm_face_tools` and registers it.

    Relative imports inside the add-on work as in an installed extension.
    Returns None when the extension is already installed and enabled in this
    Blender: its operators are then used as they are.
    """
    if ADDON_ID in sys.modules:
        return sys.modules[ADDON_ID]
    import bpy

    if "IMPORT_SCENE_OT_nvf" in dir(bpy.types):
        return None
    spec = importlib.util.spec_from_file_location(
        ADDON_ID, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)])
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the add-on from {REPO_ROOT}")
    package = importlib.util.module_from_spec(spec)
    sys.modules[ADDON_ID] = package
    spec.loader.exec_module(package)
    package.register()
    return package
