# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The installer's Blender-free part: the builds table, platform detection, the pip plan
and pip itself on tiny wheels built here (no internet: a wheel folder or a server on
127.0.0.1), with progress, the numpy pin and cancellation."""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nv3dmm_face_tools.installer import builds, pip
from nv3dmm_face_tools.installer.errors import Cancelled, PipError
from nv3dmm_face_tools.installer.progress import Progress
from tests import installer_support as support

REPO_ROOT = Path(__file__).resolve().parents[2]


def _info(system: str = "Linux", driver: str | None = None, numpy: str = "1.26.4",
          machine: str = "x86_64") -> builds.PlatformInfo:
    return builds.PlatformInfo(system, machine, (3, 11), numpy, driver)


# --------------------------------------------------------------------------- the table

def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


@pytest.mark.parametrize("major, requirements", [(1, "requirements-reconstruction.txt"),
                                                 (2, "requirements-np2.txt")])
def test_builds_table_matches_the_tested_requirements(major: int, requirements: str) -> None:
    pins = _pins(REPO_ROOT / requirements)
    assert {name: pins.get(name) for name in builds.BUILDS[major]} == builds.BUILDS[major]
    assert [dep.pip for dep in builds.DEPENDENCIES] == list(builds.BUILDS[major])


def test_requirements_follow_the_running_numpy_generation() -> None:
    assert builds.pinned_requirements(_info(numpy="1.24.3")) == [
        f"{name}=={version}" for name, version in builds.BUILDS[1].items()]
    assert "opencv-python-headless==4.13.0.92" in builds.pinned_requirements(_info(numpy="2.3.1"))
    assert builds.pinned_requirements(_info(), ["scipy"]) == [f"scipy=={builds.BUILDS[1]['scipy']}"]
    with pytest.raises(ValueError, match="numpy 3.0"):
        builds.pinned_requirements(_info(numpy="3.0"))


@pytest.mark.parametrize("system, driver, choice, kind, tag", [
    ("Linux", "550.54.14", "AUTO", "cuda", "cu126"),
    ("Linux", "575.51.03", "AUTO", "cuda", "cu128"),
    ("Windows", "581.15", "AUTO", "cuda", "cu130"),
    ("Linux", "470.256.02", "AUTO", "cpu", "cpu"),
    ("Linux", None, "AUTO", "cpu", "cpu"),
    ("Windows", None, "AUTO", "cpu", "cpu"),
    ("Linux", "550.54.14", "CPU", "cpu", "cpu"),
    ("Linux", None, "CUDA", "cuda", "cu126"),
    ("Linux", "550.54.14", "DEFAULT", "default", ""),
    ("Darwin", None, "AUTO", "default", ""),
    ("Darwin", None, "CUDA", "default", ""),
])
def test_torch_build_choice(system: str, driver: str | None, choice: str, kind: str, tag: str) -> None:
    build = builds.choose_torch_build(_info(system, driver), choice)
    assert build.kind == kind
    assert build.index_url == (f"{builds.TORCH_INDEX}/{tag}" if tag else "")
    assert build.reason
    if driver and kind == "cpu" and choice == "AUTO":
        assert "too old" in build.reason


def test_plan_online_takes_torch_from_its_build_index_and_pins_numpy() -> None:
    plan = builds.plan_install(_info("Linux", "550.54.14", numpy="1.26.4"))
    assert plan.constraints == "numpy==1.26.4\n"
    assert [step.requirements for step in plan.steps] == [
        ("torch==2.13.0",), ("pillow==10.3.0", "opencv-python-headless==4.9.0.80", "scipy==1.13.1")]
    assert plan.steps[0].index_args == ("--index-url", f"{builds.TORCH_INDEX}/cu126")
    assert plan.steps[1].index_args == ()
    assert "CUDA (cu126)" in plan.summary and "numpy stays 1.26.4" in plan.summary
    mac = builds.plan_install(_info("Darwin", machine="arm64"), ["torch", "scipy"])
    assert [step.requirements for step in mac.steps] == [("torch==2.13.0", "scipy==1.13.1")]
    assert mac.steps[0].index_args == ()


def test_plan_offline_uses_only_the_wheel_folder(tmp_path: Path) -> None:
    plan = builds.plan_install(_info(), ["scipy"], wheels_dir=str(tmp_path))
    assert plan.offline and len(plan.steps) == 1
    assert plan.steps[0].index_args == ("--no-index", "--find-links", str(tmp_path))
    command = pip.pip_command(plan.steps[0], tmp_path / "prefix", tmp_path / "c.txt")
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert "--no-index" in command and command[-1] == "scipy==1.13.1"
    assert "--constraint" in command and "--prefix" in command
    assert pip.manual_commands(plan)[0].endswith("scipy==1.13.1 numpy==1.26.4")


def test_driver_found_without_importing_torch(tmp_path: Path) -> None:
    """nvidia-smi on PATH gives the driver version; torch is never imported for it."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 550.54.14\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    code = ("import sys; from installer import builds\n"
            "print(builds.nvidia_driver_version('Windows'), builds.detect_platform('1.26.4').numpy,"
            " 'torch' in sys.modules)\n")
    env = dict(os.environ, PATH=f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["550.54.14", "1.26.4", "False"]
    env["PATH"] = str(tmp_path / "empty")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.split()[0] == "None"


@pytest.mark.parametrize("text, version", [
    ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n"
     "GCC version:  gcc version 12.3.0", "550.54.14"),
    ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build  (dvs-builder@U16)", "570.86.15"),
    ("NVRM version: NVIDIA UNIX aarch64 Kernel Module  535.161.08  Tue Mar  5 22:50:37 UTC 2024", "535.161.08"),
    ("", None),
])
def test_driver_version_from_linux_proc(text: str, version: str | None) -> None:
    assert builds.driver_from_proc(text) == version


def test_dependency_states_and_predicted_device() -> None:
    states = builds.dependency_states()
    assert [s.dependency.pip for s in states] == [d.pip for d in builds.DEPENDENCIES]
    for state in states:
        assert state.text == ("missing" if not state.found else (state.version or "found"))
    assert builds.predicted_device(_info("Darwin", machine="arm64")).startswith(("MPS", "CPU", "CUDA", "none"))
    assert builds.missing_packages() == [s.dependency.pip for s in states if not s.found]


# --------------------------------------------------------------------------- pip output

def test_pip_output_becomes_progress_events() -> None:
    parser = pip.PipOutputParser("step 1 of 2")
    lines = [
        "Looking in links: /wheels",
        "Collecting torch==2.13.0",
        "  Downloading https://download.pytorch.org/whl/cpu/torch-2.13.0%2Bcpu-cp311-cp311-linux_x86_64.whl (190.2 MB)",
        "Progress 52428800 of 199438336",
        "Requirement already satisfied: numpy==1.26.4 in /blender/python/lib/site-packages",
        "Processing /wheels/sympy-1.13.3-py3-none-any.whl",
        "Installing collected packages: sympy, torch",
        "Successfully installed sympy-1.13.3 torch-2.13.0+cpu",
    ]
    events = [parser.feed(line) for line in lines]
    assert events[0] is None
    assert events[1] == Progress("resolving", "torch", None, 1, 0, "step 1 of 2")
    assert events[2] is not None and (events[2].stage, events[2].item, events[2].fraction) == ("downloading", "torch", 0.0)
    assert events[3] is not None and events[3].item == "torch" and events[3].fraction == pytest.approx(0.2629, abs=1e-3)
    assert events[4] is not None and events[4].item == "numpy"
    assert events[5] is not None and events[5].item == "sympy" and events[5].index == 2
    assert events[6] is not None and (events[6].stage, events[6].count) == ("installing", 2)
    assert events[7] is not None and events[7].stage == "installed"
    assert parser.installed == ["sympy-1.13.3", "torch-2.13.0+cpu"]
    assert "Progress" not in " ".join(parser.tail)     # raw progress lines are not kept for errors
    assert "42%" in Progress("downloading", "torch", 0.42, 1, 3).text


# --------------------------------------------------------------------------- pip for real, on tiny wheels

@pytest.fixture()
def wheels(tmp_path: Path) -> Path:
    """A wheel folder: nvfake_app needs nvfake_lib and numpy; a fake numpy 99 that must never win."""
    folder = tmp_path / "wheels"
    support.make_wheel(folder, "nvfake_app", requires=("nvfake_lib>=1.0", "numpy"),
                       body="import nvfake_lib\nVALUE = nvfake_lib.VALUE + 1\n")
    support.make_wheel(folder, "nvfake_lib", body="VALUE = 41\n")
    support.make_wheel(folder, "numpy", version="99.0", body="raise ImportError('fake numpy')\n")
    support.make_wheel(folder, "nvfake_needs_new_numpy", requires=("numpy>=99",))
    return folder


def _plan(requirements: list[str], wheels_dir: str) -> builds.InstallPlan:
    return builds.plan_install(_info(numpy=builds.running_numpy_version()), requirements=requirements,
                               wheels_dir=wheels_dir)


def test_install_from_a_wheel_folder_into_a_user_folder(wheels: Path, tmp_path: Path) -> None:
    import numpy
    site_dir = tmp_path / "user" / "site-packages"
    events: list[Progress] = []
    result = pip.install(_plan(["nvfake_app"], str(wheels)), site_dir, progress=events.append,
                         environ=support.pip_env())
    assert sorted(result.installed) == ["nvfake_app-1.0", "nvfake_lib-1.0"]
    ok, numpy_seen = support.importable("nvfake_app", site_dir)
    assert ok
    assert numpy_seen == f"{numpy.__version__} {numpy.__file__}"       # Blender's numpy, unchanged
    assert not list(site_dir.glob("numpy*"))                          # not installed beside it
    assert {e.stage for e in events} >= {"starting pip", "resolving", "installing", "installed", "done"}
    assert any(e.item == "nvfake_lib" for e in events)
    assert not list(site_dir.parent.glob(".site-packages.staging-*"))
    # A second run sees what is there and installs nothing again.
    again = pip.install(_plan(["nvfake_app"], str(wheels)), site_dir, environ=support.pip_env())
    assert again.installed == ()


def test_numpy_is_never_upgraded_pip_says_why(wheels: Path, tmp_path: Path) -> None:
    site_dir = tmp_path / "site-packages"
    with pytest.raises(PipError) as caught:
        pip.install(_plan(["nvfake_needs_new_numpy"], str(wheels)), site_dir, environ=support.pip_env())
    assert "numpy" in str(caught.value) and caught.value.tail
    assert list(site_dir.iterdir()) == []
    assert not list(tmp_path.glob(".site-packages.staging-*"))


def test_install_over_http_find_links(wheels: Path, tmp_path: Path) -> None:
    site_dir = tmp_path / "site-packages"
    with support.serve(wheels) as (url, log):
        plan = builds.InstallPlan((builds.PipStep(("nvfake_app",), ("--no-index", "--find-links", url)),),
                                  builds.running_numpy_version())
        events: list[Progress] = []
        pip.install(plan, site_dir, progress=events.append, environ=support.pip_env())
    assert support.importable("nvfake_app", site_dir)[0]
    assert any(path.endswith(".whl") for path in log.paths())
    assert any(e.stage == "downloading" and e.item in ("nvfake_app", "nvfake_lib") for e in events)


def test_cancel_stops_pip_and_leaves_nothing_importable(wheels: Path, tmp_path: Path) -> None:
    """Cancelled while pip downloads (the server stalls on a wheel): pip is ended, the staging
    folder removed, and the user folder holds nothing importable."""
    site_dir = tmp_path / "site-packages"
    stall = threading.Event()
    behaviours = {"nvfake_lib-1.0-py3-none-any.whl": support.Behaviour(release=stall)}
    cancel = threading.Event()
    events: list[Progress] = []

    def on_progress(event: Progress) -> None:
        events.append(event)
        if event.stage == "resolving" and event.item == "nvfake_lib":
            cancel.set()

    with support.serve(wheels, behaviours) as (url, _log):
        plan = builds.InstallPlan((builds.PipStep(("nvfake_app",), ("--no-index", "--find-links", url)),),
                                  builds.running_numpy_version())
        with pytest.raises(Cancelled):
            pip.install(plan, site_dir, progress=on_progress, cancel=cancel.is_set, environ=support.pip_env())
    assert cancel.is_set()
    assert list(site_dir.iterdir()) == []
    assert not support.importable("nvfake_app", site_dir)[0]
    assert not support.importable("nvfake_lib", site_dir)[0]
    assert not list(tmp_path.glob(".site-packages.staging-*"))


def test_merge_replaces_an_older_version(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    support.make_wheel(old, "nvfake_lib", version="1.0", body="VALUE = 1\n")
    support.make_wheel(new, "nvfake_lib", version="2.0", body="VALUE = 2\n")
    site_dir = tmp_path / "site-packages"
    pip.install(_plan(["nvfake_lib==1.0"], str(old)), site_dir, environ=support.pip_env())
    pip.install(_plan(["nvfake_lib==2.0"], str(new)), site_dir, environ=support.pip_env())
    assert sorted(p.name for p in site_dir.glob("*.dist-info")) == ["nvfake_lib-2.0.dist-info"]
    assert (site_dir / "nvfake_lib" / "__init__.py").read_text() == "VALUE = 2\n"


def test_a_python_without_pip_is_told_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "pip" else real(name, *args))
    with pytest.raises(PipError, match="has no pip.*ensurepip"):
        pip.install(_plan(["nvfake_app"], str(tmp_path)), tmp_path / "site-packages")
    assert not (tmp_path / "site-packages").exists()
