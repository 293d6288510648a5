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
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ADDON_ID = "nv3dmm_face_tools"

if str(REPO_ROOT) not in sys.path:
    # Lets tests import the layers that run outside Blender (io_nv3dmm, tddfa_v3)
    # as top-level packages, the way the command lines run them.
    sys.path.insert(0, str(REPO_ROOT))


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
def addon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The add-on package, imported as Blender imports an extension, and registered."""
    pytest.importorskip("bpy", reason="the bpy module (pip install bpy==5.0.1) is needed for Blender tests")
    import importlib

    link_dir = tmp_path_factory.mktemp("addon_path")
    (link_dir / ADDON_ID).symlink_to(REPO_ROOT, target_is_directory=True)
    sys.path.insert(0, str(link_dir))
    package = importlib.import_module(ADDON_ID)
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


def _nvidia_faceio_module() -> Any:
    """tests/nvidia_faceio.py, loaded once under the name `nvidia_faceio`."""
    import importlib.util

    module = sys.modules.get("nvidia_faceio")
    if module is None:
        spec = importlib.util.spec_from_file_location("nvidia_faceio", Path(__file__).with_name("nvidia_faceio.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["nvidia_faceio"] = module
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def nvidia_faceio(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """NVIDIA's own reader (tests/nvidia_faceio.py), built once per session."""
    tool_dir = _env_dir("NVIDIA_FACEIO", "NVIDIA's FaceIO harness (../shared/tools/nvidia-faceio)")
    import shutil

    if shutil.which("g++") is None:
        pytest.skip("no C++ compiler (g++): NVIDIA's reader cannot be built here")
    return _nvidia_faceio_module().NvidiaFaceIO.build(tool_dir, tmp_path_factory.mktemp("nvidia_faceio"))
