# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The layering rules drawn in docs/layout.md, enforced:

- every import between the add-on's own parts (absolute, relative, or
  `importlib.import_module("name")` with a literal name) follows an arrow of
  `ALLOWED` below, so a new arrow against the layering fails here;
- the format and core layers never import bpy, the format layer never imports
  torch, installer/ is standard-library only;
- importing the Blender-free packages does not pull torch, bpy or SciPy in
  until they are needed."""

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


#: The add-on's parts (folders, and the two top-level modules) and which of them each may import.
#: format <- core <- bridge <- UI; installer is a standard-library-only leaf that the UI's
#: Install Dependencies and the core's dependency table use.
ALLOWED: dict[str, set[str]] = {
    "io_nv3dmm": set(),                                                # format: numpy + stdlib
    "installer": set(),                                                # stdlib only
    "tddfa_v3": {"io_nv3dmm", "installer"},                            # core
    "fitting": {"io_nv3dmm", "tddfa_v3"},                              # core
    "animation": {"io_nv3dmm", "tddfa_v3", "fitting"},                 # core
    "bridge": {"io_nv3dmm", "tddfa_v3", "fitting", "animation", "installer"},  # the only bpy builder
    "operators": {"bridge", "installer", "preferences"},               # UI
    "panels": {"bridge", "operators", "preferences"},                  # UI
    "preferences": {"bridge", "installer"},                            # UI (the others read it)
    "__init__": {"preferences", "operators", "panels"},                # the extension entry
}

#: Blender's modules: only the bridge and the UI import them.
BLENDER_MODULES = {"bpy", "bmesh", "mathutils", "bpy_extras", "gpu", "blf"}
BLENDER_USERS = {"bridge", "operators", "panels", "preferences", "__init__"}


def _part_of(path: Path) -> str:
    rel = path.relative_to(REPO_ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _product_files() -> list[Path]:
    files = [REPO_ROOT / "__init__.py", REPO_ROOT / "preferences.py"]
    for part in ALLOWED:
        folder = REPO_ROOT / part
        if folder.is_dir():
            files.extend(sorted(folder.rglob("*.py")))
    return files


def _arrows(path: Path) -> set[str]:
    """Every top-level name `path` imports: absolute imports, relative imports resolved
    against the repository root (the add-on package), and import_module("literal")."""
    rel = path.relative_to(REPO_ROOT)
    package = list(rel.parts[:-1])   # the add-on root is the package `nv3dmm_face_tools`
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names.add((node.module or "").split(".")[0])
                continue
            base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
            assert node.level - 1 <= len(package), f"{rel}: relative import beyond the add-on"
            target = base + [p for p in (node.module or "").split(".") if p]
            if target:
                names.add(target[0])
            else:  # `from . import x` at the add-on's root
                names.update(alias.name for alias in node.names)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and not node.args[0].value.startswith(".")):
            names.add(node.args[0].value.split(".")[0])
    return names


def test_every_import_between_parts_follows_an_arrow() -> None:
    parts = set(ALLOWED)
    against: dict[str, list[str]] = {}
    for path in _product_files():
        part = _part_of(path)
        for name in sorted(_arrows(path)):
            if name in parts and name != part and name not in ALLOWED[part]:
                against.setdefault(str(path.relative_to(REPO_ROOT)), []).append(name)
            if name in BLENDER_MODULES and part not in BLENDER_USERS:
                against.setdefault(str(path.relative_to(REPO_ROOT)), []).append(name)
    assert not against, f"imports against the layering (see ALLOWED and docs/layout.md): {against}"


def test_the_arrows_have_no_cycle() -> None:
    """ALLOWED itself is layered: no part reaches itself through others."""
    for part in ALLOWED:
        stack, seen = list(ALLOWED[part]), set()
        while stack:
            nxt = stack.pop()
            assert nxt != part, f"{part} can reach itself through {sorted(seen)}"
            if nxt not in seen:
                seen.add(nxt)
                stack.extend(ALLOWED[nxt])


def test_the_arrow_check_sees_relative_and_dynamic_imports(tmp_path: Path) -> None:
    """The checker itself: a relative import from the UI into the core, and an
    import_module of the format package from installer/, are both seen."""
    ui = REPO_ROOT / "operators" / "io_nvf.py"
    assert "bridge" in _arrows(ui)
    source = "from ..tddfa_v3 import errors\nimport importlib\nimportlib.import_module('io_nv3dmm.atomic')\n"
    probe = REPO_ROOT / "operators" / "_layers_probe_.py"
    try:
        probe.write_text(source)
        assert {"tddfa_v3", "io_nv3dmm"} <= _arrows(probe)
    finally:
        probe.unlink()


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


#: What each test folder may import of the add-on (as `nv3dmm_face_tools.<part>`), mirroring
#: the layers: format tests see only the codec, core tests never Blender.
TEST_FOLDERS: dict[str, set[str]] = {
    "format": {"io_nv3dmm"},
    "core": {"io_nv3dmm", "tddfa_v3", "fitting", "animation", "installer"},
    "blender": set(ALLOWED),
}


def _test_imports(path: Path) -> tuple[set[str], set[str]]:
    """(parts of the add-on imported as nv3dmm_face_tools.<part>, other top-level imports)."""
    parts: set[str] = set()
    others: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "nv3dmm_face_tools":
                modules = [f"nv3dmm_face_tools.{alias.name}" for alias in node.names]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("import_module", "importorskip") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            modules = [node.args[0].value]
        for module in modules:
            head, _, rest = module.partition(".")
            if head == "nv3dmm_face_tools" and rest:
                parts.add(rest.split(".")[0])
            else:
                others.add(head)
    return parts, others


def test_tests_mirror_the_layers() -> None:
    """tests/format, tests/core and tests/blender import only their layers, every test
    imports the add-on's packages under the one name nv3dmm_face_tools.<package> (never a
    top-level `io_nv3dmm`, which would be a second copy with its own classes), and
    neither format nor core tests import bpy."""
    product = set(ALLOWED) - {"__init__"}
    wrong: dict[str, list[str]] = {}
    for path in sorted((REPO_ROOT / "tests").rglob("*.py")):
        rel = path.relative_to(REPO_ROOT / "tests")
        parts, others = _test_imports(path)
        bad = sorted(others & product)                       # a second, top-level copy
        folder = rel.parts[0] if len(rel.parts) > 1 else None
        if folder in ("format", "core"):
            bad += sorted(parts - TEST_FOLDERS[folder])
            bad += sorted(others & BLENDER_MODULES)
        if bad:
            wrong[str(rel)] = bad
    assert not wrong, f"tests importing against the layers or under a second name: {wrong}"
    assert {p.name for p in (REPO_ROOT / "tests").iterdir() if p.is_dir() and p.name != "__pycache__"} \
        >= set(TEST_FOLDERS)
