# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one way to load this checkout's add-on outside an installed extension.
Stdlib only (bpy only inside `load_checkout_addon`); imports nothing of the add-on itself.

- `import_checkout()` imports the repository root as the package
  `nv3dmm_face_tools` (the extension id), the way Blender imports an installed
  extension: relative imports work, and every package of the add-on has one
  name, `nv3dmm_face_tools.io_nv3dmm`, `nv3dmm_face_tools.bridge...`, so each
  is loaded once per process. No bpy needed, no symlink, no `sys.path` entry;
  the checkout folder may have any name. Calling it again returns the same module.
- `load_checkout_addon()` does that and registers the add-on in the running
  Blender (`blender -b -P` or the `bpy` module).

Used by the scripts in tools/ and benchmarks/, so they run straight from a
clone without installing the extension first. A script finds this module with
one line, `sys.path.insert(0, <the tools folder>)`, needed because
`blender -P` and benchmarks/ do not put tools/ on the path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parent.parent
ADDON_ID = "nv3dmm_face_tools"
#: An operator the add-on registers: present in bpy.types once the add-on (this
#: checkout's, or the installed extension's) is registered.
_REGISTERED_OPERATOR = "IMPORT_SCENE_OT_nvf"


def import_checkout() -> ModuleType:
    """This checkout imported as package `nv3dmm_face_tools` (not registered; no bpy import).

    Idempotent: the package already imported under that name is returned, when it
    is this checkout (ImportError when it is another copy of the add-on).
    """
    package = sys.modules.get(ADDON_ID)
    if package is not None:
        locations = [Path(location).resolve() for location in getattr(package, "__path__", [])]
        if REPO_ROOT not in locations:
            raise ImportError(f"{ADDON_ID} is already imported from {locations or package}, "
                              f"not from this checkout ({REPO_ROOT})")
        return package
    spec = importlib.util.spec_from_file_location(
        ADDON_ID, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the add-on from {REPO_ROOT}")
    package = importlib.util.module_from_spec(spec)
    sys.modules[ADDON_ID] = package
    try:
        spec.loader.exec_module(package)
    except BaseException:
        del sys.modules[ADDON_ID]
        raise
    return package


def load_checkout_addon() -> ModuleType | None:
    """Imports this checkout as package `nv3dmm_face_tools` and registers it in Blender.

    Relative imports inside the add-on work as in an installed extension.
    Returns None when the extension is already installed and enabled in this
    Blender: its operators are then used as they are. Registers once: a second
    call returns the registered package.
    """
    import bpy

    registered = getattr(bpy.types, _REGISTERED_OPERATOR, None)
    if registered is not None:
        if getattr(registered, "__module__", "").split(".")[0] == ADDON_ID:
            return import_checkout()  # registered by an earlier call (or a test fixture)
        return None  # the installed extension (bl_ext.<repository>.nv3dmm_face_tools)
    package = import_checkout()
    package.register()
    return package
