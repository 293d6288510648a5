# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""NV3DMM Face Tools: import, export and reconstruct NVIDIA 3DMM (.nvf) face models.

Blender extension entry point. Each UI module owns its classes and exposes
register()/unregister() (operators/registration.py); this file only runs them in order.
May import preferences, operators and panels (the UI), never the bridge or the core directly.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Order matters: preferences first (others read them), panels last.
_UI_MODULES: tuple[str, ...] = (
    "preferences",
    "operators.io_nvf",
    "operators.reconstruct",
    "operators.installer",
    "operators.animation",
    "operators.fitting",
    "panels.reconstruct",
    "panels.fitting",
    "panels.animation",
)


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f".{name}", __package__) for name in _UI_MODULES]


def _use_installed_packages() -> None:
    """Let Python find what Install Dependencies put in the extension's user folder
    (`extension_path_user(__package__, path="site-packages")`), after Blender's own packages."""
    importlib.import_module(".preferences", __package__).add_site_packages()


def register() -> None:
    _use_installed_packages()
    done: list[ModuleType] = []
    try:
        for module in _modules():
            module.register()
            done.append(module)
    except Exception:
        # Leave Blender as it was: no half-registered add-on.
        for module in reversed(done):
            module.unregister()
        raise


def unregister() -> None:
    for module in reversed(_modules()):
        module.unregister()
