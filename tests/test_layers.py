# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The layering rules of docs/architecture: the format and reconstruction
layers never import bpy, the format layer never imports torch, and importing
the reconstruction package does not pull torch in until it is needed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(package: str) -> dict[str, set[str]]:
    """Top-level module names each file of `package` imports (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(REPO_ROOT))] = names
    return found


@pytest.mark.parametrize("package, forbidden", [
    ("io_nv3dmm", {"bpy", "bmesh", "mathutils", "torch"}),
    ("tddfa_v3", {"bpy", "bmesh", "mathutils"}),
    ("animation", {"bpy", "bmesh", "mathutils"}),
    ("installer", {"bpy", "bmesh", "mathutils", "torch", "numpy"}),
    ("fitting", {"bpy", "bmesh", "mathutils", "torch"}),
])
def test_layer_never_imports(package: str, forbidden: set[str]) -> None:
    offenders = {path: sorted(names & forbidden) for path, names in _imported_modules(package).items()
                 if names & forbidden}
    assert not offenders, f"{package} must not import {sorted(forbidden)}: {offenders}"


def test_importing_the_layers_loads_neither_bpy_nor_torch() -> None:
    code = (
        "import sys\n"
        "import io_nv3dmm, io_nv3dmm.cli, io_nv3dmm.demo_model\n"
        "import tddfa_v3, tddfa_v3.result, tddfa_v3.errors, tddfa_v3.assets\n"
        "import animation, animation.live_link, animation.names, animation.one_euro\n"
        "loaded = sorted(m for m in ('bpy', 'torch') if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported eagerly: {done.stdout.strip()}"


def test_the_installer_is_standard_library_only() -> None:
    """installer/ runs before the reconstruction's packages exist: importing it loads none of
    them, nor bpy, and every module it imports statically is the standard library's or its own."""
    stdlib = set(sys.stdlib_module_names)
    outside = {path: sorted(names - stdlib) for path, names in _imported_modules("installer").items()
               if names - stdlib}
    assert not outside, f"installer imports beyond the standard library: {outside}"
    code = ("import sys\n"
            "import installer, installer.builds, installer.pip, installer.download, installer.task\n"
            "print(','.join(sorted(m for m in ('bpy', 'torch', 'numpy', 'tddfa_v3') if m in sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported eagerly: {done.stdout.strip()}"


def test_importing_fitting_loads_neither_bpy_torch_nor_scipy() -> None:
    """The fitting layer imports SciPy (and, for a photo on the command line, tddfa_v3) only
    when it fits: the .nvf import/export and the demo never need them."""
    code = ("import sys\n"
            "import fitting, fitting.cli, fitting.ground_truth, fitting.personal\n"
            "print(','.join(sorted(m for m in ('bpy', 'torch', 'scipy', 'tddfa_v3') if m in sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported eagerly: {done.stdout.strip()}"
