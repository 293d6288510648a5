"""The extension builds and validates with Blender's own tool, and the built zip
installs, enables and imports/exports .nvf headless (as `bl_ext.user_default.*`).

Blender runs in a subprocess with BLENDER_USER_RESOURCES pointing at a
temporary folder, so the developer's own Blender configuration is never touched.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ADDON_ID = "nv3dmm_face_tools"

pytestmark = pytest.mark.blender


def _blender_ext() -> Path:
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        pytest.skip("the bpy module (pip install bpy==5.0.1) is needed to build the extension")
    tool = Path(spec.origin).parent / "5.0" / "scripts" / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    if not tool.exists():
        pytest.skip(f"Blender's extension tool is not at {tool}")
    return tool


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tool = _blender_ext()
    out = tmp_path_factory.mktemp("ext_build")
    result = _run(str(tool), "build", "--source-dir", str(REPO_ROOT), "--output-dir", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    zips = list(out.glob("*.zip"))
    assert len(zips) == 1, result.stdout
    return zips[0]


def test_manifest_and_zip_validate(built_zip: Path) -> None:
    tool = _blender_ext()
    for target in (REPO_ROOT, built_zip):
        result = _run(str(tool), "validate", str(target))
        assert result.returncode == 0, result.stdout + result.stderr


def test_zip_ships_the_add_on_only(built_zip: Path) -> None:
    names = set(zipfile.ZipFile(built_zip).namelist())
    for needed in ("blender_manifest.toml", "__init__.py", "operators/io_nvf.py", "bridge/mesh.py",
                   "bridge/nvf_import.py", "bridge/nvf_export.py", "io_nv3dmm/reader.py"):
        assert needed in names, needed
    for name in names:
        assert not name.startswith(("tests/", "tools/", "benchmarks/", ".git/", ".venv/", "docs/images/")), name
        assert "__pycache__" not in name, name


_INSTALL_SCRIPT = r"""
import json, sys
import bpy, addon_utils
zip_path, nvf_path, out_path = sys.argv[-3:]
report = {"before": "IMPORT_SCENE_OT_nvf" in dir(bpy.types),
          "user_dir": bpy.utils.user_resource('EXTENSIONS')}
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
module = "bl_ext.user_default.nv3dmm_face_tools"
report["enabled"] = module in bpy.context.preferences.addons
report["operators"] = ["IMPORT_SCENE_OT_nvf" in dir(bpy.types), "EXPORT_SCENE_OT_nvf" in dir(bpy.types)]
report["file_handler"] = "NVF_FH_import" in dir(bpy.types)
addon_utils.disable(module)
report["disabled"] = "IMPORT_SCENE_OT_nvf" not in dir(bpy.types)
report["reenabled"] = addon_utils.enable(module) is not None
bpy.ops.wm.read_homefile(use_empty=True)
bpy.ops.import_scene.nvf(filepath=nvf_path)
report["object"] = bpy.context.active_object.name
bpy.ops.export_scene.nvf(filepath=out_path)
print("REPORT" + json.dumps(report))
"""


def test_built_zip_installs_enables_and_runs(built_zip: Path, tmp_path: Path) -> None:
    import io_nv3dmm
    from io_nv3dmm import FaceModel, LinearModel
    import numpy as np

    tris = np.array([[0, 1, 2], [0, 2, 3]], np.uint16)
    model = FaceModel(shape=LinearModel(
        mean=np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32),
        modes=np.zeros((1, 4, 3), np.float32), eigenvalues=np.ones(1, np.float32), triangles=tris))
    source = tmp_path / "quad.nvf"
    io_nv3dmm.write(model, source)
    out = tmp_path / "quad_out.nvf"
    script = tmp_path / "install.py"
    script.write_text(_INSTALL_SCRIPT)
    user = tmp_path / "blender_user"
    user.mkdir()
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(user))
    result = _run(str(script), str(built_zip), str(source), str(out), env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("REPORT"))
    report = json.loads(line[len("REPORT"):])
    assert report["user_dir"].startswith(str(user))
    assert report == dict(report, before=False, enabled=True, operators=[True, True], file_handler=True,
                          disabled=True, reenabled=True, object="quad")
    assert (user / "extensions" / "user_default" / ADDON_ID / "blender_manifest.toml").exists()
    assert out.read_bytes() == source.read_bytes()
