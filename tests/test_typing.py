# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""mypy checks Blender code against the bpy stubs: a misspelt bpy attribute, an
unchecked `obj.data` union or a wrong node socket name is an error, not `Any`.

Runs mypy (a few seconds, cold cache) on a generated module; the project's own
code is checked by `python -m mypy` in the test command.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SNIPPET = '''\
import bpy


def good(mesh: bpy.types.Mesh, obj: bpy.types.Object, material: bpy.types.Material) -> int:
    data = obj.data
    count = len(data.vertices) if isinstance(data, bpy.types.Mesh) else 0
    tree = material.node_tree
    if tree is not None:
        bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
        if isinstance(bsdf, bpy.types.ShaderNodeBsdfPrincipled) and bsdf.inputs is not None:
            bsdf.inputs["Roughness"].default_value = 0.5
    return count + len(mesh.vertices)


def misspelt(mesh: bpy.types.Mesh) -> int:
    return len(mesh.verticez)  # BAD attr-defined


def unnarrowed(obj: bpy.types.Object) -> int:
    return len(obj.data.vertices)  # BAD union-attr


def wrong_socket(node: bpy.types.ShaderNodeBsdfPrincipled) -> None:
    if node.inputs is not None:
        node.inputs["Rougness"].default_value = 0.5  # BAD call-overload
'''


def _has_bpy_stubs() -> bool:
    return any((Path(entry) / "bpy-stubs" / "__init__.pyi").is_file() for entry in sys.path if entry)


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
@pytest.mark.skipif(not _has_bpy_stubs(), reason="the fake-bpy-module stubs (bpy-stubs) are not installed")
def test_mypy_flags_bpy_misuse(tmp_path: Path) -> None:
    source = tmp_path / "blender_snippet.py"
    source.write_text(textwrap.dedent(SNIPPET), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "", "--python-version", "3.11",
         "--cache-dir", str(tmp_path / "mypy_cache"), "--show-error-codes", "--no-error-summary",
         "--no-pretty", str(source)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]

    expected = {}
    for number, line in enumerate(SNIPPET.splitlines(), start=1):
        if "# BAD " in line:
            expected[number] = line.rsplit("# BAD ", 1)[1].strip()
    found: dict[int, set[str]] = {}
    for error in errors:
        number = int(error.split(":")[1])
        code = error.rsplit("[", 1)[1].rstrip("]")
        found.setdefault(number, set()).add(code)

    assert run.returncode == 1, run.stdout + run.stderr
    # Every misuse is reported with its code, and the correct function is clean.
    assert {number: {code} for number, code in expected.items()} == found, run.stdout
