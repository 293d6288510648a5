# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The installer's operators and preferences in the real bpy module: install from a wheel
folder into a temp user folder, online access respected, assets downloaded from a local
server into the add-on's folder (which becomes the assets folder), failures raising
RuntimeError in background mode, the modal step, and the preferences' live status."""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Mapping, Sequence

import pytest

from tests import installer_support as support
from tests.blender.ui_layout import RecordingLayout, new_log

pytestmark = pytest.mark.blender

NAMES = ("alpha.bin", "beta.bin")


def _content(name: str) -> bytes:
    return b"GOOD" + hashlib.sha256(name.encode()).digest() * 1000


def _verify(folder: Path, names: Sequence[str]) -> Mapping[str, str]:
    return {name: "wrong content" for name in names if (folder / name).read_bytes() != _content(name)}


@pytest.fixture()
def ops(addon: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """The operators module with the user folder in tmp_path, tiny packages and assets, pip
    without this machine's configuration, and online access restored afterwards."""
    import bpy
    module = importlib.import_module(f"{addon.__name__}.operators.installer")
    preferences = importlib.import_module(f"{addon.__name__}.preferences")
    user = tmp_path / "user"
    monkeypatch.setattr(preferences, "user_folder",
                        lambda name, create=True: str(_made(user / name, create)))
    prefs = SimpleNamespace(assets_dir="", wheels_dir="", assets_url="", torch_build="AUTO")
    monkeypatch.setattr(preferences, "get_preferences", lambda context=None: prefs)
    monkeypatch.setattr(module, "requirements_override", lambda: ["nvfake_app"])
    monkeypatch.setattr(module, "asset_names", lambda: NAMES)
    monkeypatch.setattr(module, "asset_verifier", lambda: _verify)
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    system = bpy.context.preferences.system
    online = system.use_online_access
    path = list(sys.path)
    try:
        yield SimpleNamespace(module=module, preferences=preferences, prefs=prefs, user=user, bpy=bpy)
    finally:
        system.use_online_access = online
        sys.path[:] = path
        for name in ("nvfake_app", "nvfake_lib"):
            sys.modules.pop(name, None)


def _made(path: Path, create: bool) -> Path:
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture()
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    support.make_wheel(folder, "nvfake_app", requires=("nvfake_lib", "numpy"),
                       body="import nvfake_lib\nVALUE = nvfake_lib.VALUE + 1\n")
    support.make_wheel(folder, "nvfake_lib", body="VALUE = 41\n")
    support.make_wheel(folder, "numpy", version="99.0", body="raise ImportError('fake numpy')\n")
    return folder


def test_install_dependencies_from_a_wheel_folder(ops: SimpleNamespace, wheels: Path) -> None:
    import numpy
    before = numpy.__version__
    ops.bpy.context.preferences.system.use_online_access = False      # a wheel folder needs no network
    assert ops.bpy.ops.nv3dmm.install_dependencies(wheels_dir=str(wheels)) == {'FINISHED'}
    site_dir = ops.user / "site-packages"
    assert str(site_dir) in sys.path                                  # usable without a restart
    app = importlib.import_module("nvfake_app")
    assert app.VALUE == 42 and Path(app.__file__).is_relative_to(site_dir)
    assert importlib.import_module("numpy").__version__ == before and not list(site_dir.glob("numpy*"))


def test_nothing_missing_runs_no_pip(ops: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    builds = importlib.import_module(ops.module.__package__.rpartition(".")[0] + ".installer.builds")
    monkeypatch.setattr(builds, "missing_packages", lambda: [])
    monkeypatch.setattr(ops.module, "requirements_override", lambda: None)
    ops.bpy.context.preferences.system.use_online_access = False     # would refuse if it tried
    assert ops.bpy.ops.nv3dmm.install_dependencies() == {'FINISHED'}
    assert not (ops.user / "site-packages").exists()


def test_install_with_online_access_off_says_what_to_do(ops: SimpleNamespace) -> None:
    ops.bpy.context.preferences.system.use_online_access = False
    with pytest.raises(RuntimeError, match="Online access is off.*Wheel Folder"):
        ops.bpy.ops.nv3dmm.install_dependencies()
    assert not (ops.user / "site-packages").exists()
    assert "Online access is off" in ops.module.INSTALL_STATE.last_error


def test_install_failure_raises_with_pip_s_lines(ops: SimpleNamespace, wheels: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ops.module, "requirements_override", lambda: ["nvfake_not_there"])
    with pytest.raises(RuntimeError, match="(?s)pip failed.*No matching distribution found for nvfake_not_there"):
        ops.bpy.ops.nv3dmm.install_dependencies(wheels_dir=str(wheels))
    assert list((ops.user / "site-packages").iterdir()) == []


def test_download_assets_into_the_user_folder_which_becomes_the_assets_folder(
        ops: SimpleNamespace, tmp_path: Path) -> None:
    source = tmp_path / "server"
    source.mkdir()
    for name in NAMES:
        (source / name).write_bytes(_content(name))
    ops.bpy.context.preferences.system.use_online_access = True
    with support.serve(source) as (url, log):
        assert ops.bpy.ops.nv3dmm.download_assets(base_url=url) == {'FINISHED'}
    folder = ops.user / "assets"
    assert sorted(p.name for p in folder.iterdir()) == sorted(NAMES)
    assert ops.prefs.assets_dir == str(folder)
    assert log.paths() == [f"/{n}" for n in NAMES]


def test_download_refuses_the_network_when_online_access_is_off(ops: SimpleNamespace, tmp_path: Path) -> None:
    ops.bpy.context.preferences.system.use_online_access = False
    source = tmp_path / "server"
    source.mkdir()
    for name in NAMES:
        (source / name).write_bytes(_content(name))
    with support.serve(source) as (url, log):
        with pytest.raises(RuntimeError, match="Online access is off"):
            ops.bpy.ops.nv3dmm.download_assets(base_url=url, directory=str(tmp_path / "out"))
    assert log.requests == [] and not (tmp_path / "out").exists()
    # A local folder is no network: allowed.
    assert ops.bpy.ops.nv3dmm.download_assets(base_url=str(source), directory=str(tmp_path / "out")) \
        == {'FINISHED'}


def test_download_failure_raises_and_leaves_no_file(ops: SimpleNamespace, tmp_path: Path) -> None:
    ops.bpy.context.preferences.system.use_online_access = True
    empty = tmp_path / "empty"
    empty.mkdir()
    with support.serve(empty) as (url, _log):
        with pytest.raises(RuntimeError, match="alpha.bin: the server answered 404"):
            ops.bpy.ops.nv3dmm.download_assets(base_url=url, directory=str(tmp_path / "out"))
    assert [p.name for p in (tmp_path / "out").iterdir() if p.is_file()] == []
    assert ops.prefs.assets_dir == ""


def test_modal_step_shows_progress_then_reports_a_cancel(ops: SimpleNamespace) -> None:
    """The modal timer's handler, driven by hand (timers never fire in the bpy module)."""
    from_module = ops.module
    task_module = importlib.import_module(from_module.__package__.rpartition(".")[0] + ".installer.task")
    progress_module = importlib.import_module(from_module.__package__.rpartition(".")[0] + ".installer.progress")
    errors = importlib.import_module(from_module.__package__.rpartition(".")[0] + ".installer.errors")
    gate = threading.Event()

    def job(progress: Any, cancel: Any) -> None:
        progress(progress_module.Progress("downloading", "net_recon.pth", 0.5, 2, 6))
        gate.wait(10)
        if cancel():
            raise errors.Cancelled("Download cancelled; the partial file is kept and resumes next time.")

    state = from_module.DOWNLOAD_STATE
    reports: list[tuple[set[str], str]] = []
    shown: list[Any] = []
    fake = SimpleNamespace(_state=lambda: state, _what="Downloading", report=lambda k, t: reports.append((k, t)),
                           _show=lambda context, text: shown.append(text),
                           _end=lambda context: setattr(state, "running", False),
                           _done=lambda context, result: None)
    task = task_module.Task(job)
    state.running, state.task = True, task
    assert support.wait_for(lambda: task.events == 1)
    assert from_module._BackgroundJob.step(fake, None, task) == {'RUNNING_MODAL'}
    assert state.text == "downloading net_recon.pth 50% (2 of 6)" and state.fraction == 0.5
    assert "Esc to cancel" in shown[-1]
    ops.bpy.ops.nv3dmm.cancel_installer()
    assert task.cancel_requested and state.text == "cancelling..."
    gate.set()
    assert support.wait_for(lambda: task.done)
    assert from_module._BackgroundJob.step(fake, None, task) == {'CANCELLED'}
    assert reports == [({'INFO'}, "Download cancelled; the partial file is kept and resumes next time.")]
    assert not state.running
    state.task = None


def test_preferences_show_each_dependency_the_device_and_the_buttons(
        ops: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    builds = importlib.import_module(ops.module.__package__.rpartition(".")[0] + ".installer.builds")
    states = [builds.DependencyState(dep, dep.pip != "scipy", "9.9" if dep.pip != "scipy" else "")
              for dep in builds.DEPENDENCIES]
    monkeypatch.setattr(builds, "dependency_states", lambda: states)
    monkeypatch.setattr(builds, "missing_packages", lambda: ["scipy"])
    ops.preferences.forget_dependency_status()
    ops.bpy.context.preferences.system.use_online_access = False
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "face_model.npy").write_bytes(b"not numpy")
    log = new_log()
    prefs = SimpleNamespace(layout=RecordingLayout(log), assets_dir=str(tmp_path / "assets"), device="AUTO",
                            backbone="RESNET50", wheels_dir="", assets_url="", torch_build="CPU")
    ops.preferences.NV3DMMFacePreferences.draw(prefs, ops.bpy.context)
    labels = log["labels"]
    assert labels.count("9.9") == 3 and "missing" in labels
    assert any(text.startswith("Reconstruction device (Auto): ") for text in labels)
    assert "Installs PyTorch: CPU only (chosen in the preferences)" in labels
    assert any("Online access is off" in text for text in labels)
    assert {"nv3dmm.install_dependencies", "nv3dmm.download_assets"} <= {idname for idname, _ in log["operators"]}
    assert {"torch_build", "wheels_dir", "assets_url", "assets_dir"} <= set(log["props"])
    assert "malformed" in labels and "missing" in labels            # per asset file
    ops.preferences.forget_dependency_status()


def test_operators_are_registered(ops: SimpleNamespace) -> None:
    for idname in ("install_dependencies", "download_assets", "cancel_installer"):
        assert hasattr(ops.bpy.ops.nv3dmm, idname)
    props = ops.bpy.ops.nv3dmm.download_assets.get_rna_type().properties
    assert {"base_url", "directory"} <= set(props.keys())
    assert "wheels_dir" in ops.bpy.ops.nv3dmm.install_dependencies.get_rna_type().properties.keys()
