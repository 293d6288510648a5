# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared test fixtures.

- `nvf_samples`: the folder named by NVF_SAMPLES (real .nvf files); tests that
  use it skip, saying why, when the variable is unset.
- `tddfa_fixtures`: the folder named by TDDFA_V3_FIXTURES (reference outputs).
- `nvidia_faceio`: NVIDIA's own .nvf reader (tests/nvidia_faceio.py), built from
  the folder named by NVIDIA_FACEIO (../shared/tools/nvidia-faceio) with g++.
- `addon`: the add-on registered in the real `bpy` module under its extension
  id, as Blender would import it (relative imports and all).

One import name: this file imports the checkout as the package
`nv3dmm_face_tools` (tools/checkout_addon.import_checkout(), the one loader
tools and benchmarks use too; pyproject's pytest `pythonpath` finds tools/), so
every test imports `nv3dmm_face_tools.io_nv3dmm`, `nv3dmm_face_tools.tddfa_v3`,
... and sees the very modules the add-on's bridge uses: one `NvfError` class,
one network cache. Tests are laid out as the layers: tests/format (io_nv3dmm),
tests/core (tddfa_v3, fitting, animation, installer; never bpy), tests/blender
(the real bpy module); project-wide checks sit here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from checkout_addon import import_checkout

REPO_ROOT = Path(__file__).resolve().parent.parent

import_checkout()


def _env_dir(var: str, what: str) -> Path:
    value = os.environ.get(var)
    if not value:
        pytest.skip(f"{var} is not set: point it at {what} to run this test (.ci/run sets it)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"{var}={value} is not a folder")
    return path


@pytest.fixture(scope="session")
def nvf_samples() -> Path:
    return _env_dir("NVF_SAMPLES", "a folder of real .nvf files (../shared/fixtures/nvf)")


@pytest.fixture(scope="session")
def tddfa_fixtures() -> Path:
    return _env_dir("TDDFA_V3_FIXTURES", "the 3DDFA-V3 reference fixtures (../shared/fixtures/tddfa_v3)")


@pytest.fixture(scope="session")
def addon() -> Iterator[Any]:
    """The add-on package, imported as Blender imports an extension, and registered."""
    pytest.importorskip("bpy", reason="the bpy module (pip install bpy==5.0.1) is needed for Blender tests")
    package = import_checkout()
    package.register()
    try:
        yield package
    finally:
        package.unregister()


@pytest.fixture()
def clean_scene(addon: Any) -> Iterator[None]:
    """An empty scene for each Blender test (registered classes are kept)."""
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    yield


@pytest.fixture(scope="session")
def nvidia_faceio(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """NVIDIA's own reader (tests/nvidia_faceio.py), built once per session."""
    tool_dir = _env_dir("NVIDIA_FACEIO", "NVIDIA's FaceIO harness (../shared/tools/nvidia-faceio)")
    import shutil

    if shutil.which("g++") is None:
        pytest.skip("no C++ compiler (g++): NVIDIA's reader cannot be built here")
    from tests.nvidia_faceio import NvidiaFaceIO

    return NvidiaFaceIO.build(tool_dir, tmp_path_factory.mktemp("nvidia_faceio"))
