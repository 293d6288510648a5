# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one table of reconstruction dependencies, and the builds chosen for this machine.

`DEPENDENCIES` lists each package reconstruction imports (import name, pip
name, what it is for). `BUILDS` gives the tested version of each for the two
numpy generations Blender ships: Blender 4.2-5.0 run Python 3.11 with numpy
1.x, Blender 5.1 and later Python 3.13 with numpy 2. The running numpy is never
replaced: every install is constrained to `numpy==<numpy.__version__>`.

PyTorch comes in builds: CUDA (Linux and Windows with an NVIDIA driver, found
without importing torch), CPU-only, or the default wheel (macOS: Apple
Silicon's MPS). `detect_platform` finds the machine, `choose_torch_build`
picks, and `plan_install` turns that into pip invocations.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform as _platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence


@dataclass(frozen=True)
class Dependency:
    """A Python package reconstruction imports."""

    module: str     # the import name
    pip: str        # the distribution name pip installs
    what: str       # what it is, for messages


#: Everything 3DDFA-V3 reconstruction imports beyond numpy (which Blender ships).
DEPENDENCIES: tuple[Dependency, ...] = (
    Dependency("torch", "torch", "PyTorch"),
    Dependency("PIL", "pillow", "Pillow"),
    Dependency("cv2", "opencv-python-headless", "OpenCV"),
    Dependency("scipy", "scipy", "SciPy"),
)

#: Tested versions per numpy major version (the numpy 1 row is requirements-reconstruction.txt,
#: the numpy 2 row requirements-np2.txt; tests/core/test_installer.py keeps them in step).
BUILDS: dict[int, dict[str, str]] = {
    1: {"torch": "2.13.0", "pillow": "10.3.0", "opencv-python-headless": "4.9.0.80", "scipy": "1.13.1"},
    2: {"torch": "2.13.0", "pillow": "11.3.0", "opencv-python-headless": "4.13.0.92", "scipy": "1.15.3"},
}

#: PyTorch's own package index; CUDA and CPU builds live under it as /whl/<tag>.
TORCH_INDEX = "https://download.pytorch.org/whl"

#: Lowest NVIDIA driver version for each CUDA build of PyTorch, newest first (CUDA's
#: minor-version compatibility: a 12.x build runs on any driver of the 12 series).
CUDA_BUILDS: tuple[tuple[tuple[int, ...], str], ...] = (
    ((580,), "cu130"),
    ((570,), "cu128"),
    ((525, 60), "cu126"),
)

#: How torch is installed, by preference identifier: (label, description).
TORCH_BUILDS: dict[str, tuple[str, str]] = {
    "AUTO": ("Automatic", "CUDA with an NVIDIA driver on Linux/Windows, the default wheel on macOS, else CPU"),
    "CUDA": ("CUDA", "NVIDIA GPUs (Linux, Windows): PyTorch's CUDA build"),
    "CPU": ("CPU only", "The small CPU-only build"),
    "DEFAULT": ("Default (PyPI)", "Whatever the package index gives (macOS: Apple Silicon MPS support)"),
}


@dataclass(frozen=True)
class PlatformInfo:
    """The machine the add-on runs on, as far as choosing builds needs."""

    system: str                   # "Linux", "Windows", "Darwin"
    machine: str                  # "x86_64", "arm64", "AMD64", ...
    python: tuple[int, int]
    numpy: str                    # the running numpy's version
    nvidia_driver: str | None     # e.g. "550.54.14", None without an NVIDIA driver

    @property
    def numpy_major(self) -> int:
        return int(self.numpy.split(".")[0])

    @property
    def apple_silicon(self) -> bool:
        return self.system == "Darwin" and self.machine in ("arm64", "aarch64")


def running_numpy_version() -> str:
    """The version of the numpy this Python imports (Blender's own)."""
    module = sys.modules.get("numpy") or importlib.import_module("numpy")
    return str(module.__version__)


def nvidia_driver_version(system: str | None = None) -> str | None:
    """The NVIDIA driver's version, without importing torch: Linux's /proc entry, else
    `nvidia-smi` (on PATH, or Windows' System32). None when there is no driver."""
    system = system or _platform.system()
    if system == "Linux":
        try:
            text = Path("/proc/driver/nvidia/version").read_text(errors="replace")
        except OSError:
            text = ""
        version = driver_from_proc(text)
        if version:
            return version
    if system == "Darwin":
        return None
    smi = shutil.which("nvidia-smi")
    if smi is None and system == "Windows":
        candidate = Path(os.environ.get("SystemRoot", r"C:\Windows")) / "System32" / "nvidia-smi.exe"
        smi = str(candidate) if candidate.is_file() else None
    if smi is None:
        return None
    try:
        done = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\d+(?:\.\d+)+", done.stdout) if done.returncode == 0 else None
    return found.group(0) if found else None


def driver_from_proc(text: str) -> str | None:
    """The driver version in Linux's /proc/driver/nvidia/version (proprietary or open module)."""
    found = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+(?:\.\d+)+)", text)
    return found.group(1) if found else None


def detect_platform(numpy_version: str | None = None) -> PlatformInfo:
    return PlatformInfo(
        system=_platform.system(), machine=_platform.machine(),
        python=(sys.version_info[0], sys.version_info[1]),
        numpy=numpy_version or running_numpy_version(),
        nvidia_driver=nvidia_driver_version())


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def cuda_build_for_driver(driver: str) -> str | None:
    """The newest CUDA build of PyTorch the driver runs, None when it is too old."""
    version = _version_tuple(driver)
    for minimum, tag in CUDA_BUILDS:
        if version >= minimum:
            return tag
    return None


@dataclass(frozen=True)
class TorchBuild:
    """Which PyTorch build to install and why."""

    kind: str          # "cuda", "cpu" or "default"
    index_url: str     # "" for the default package index
    reason: str

    @property
    def label(self) -> str:
        tag = self.index_url.rstrip("/").rpartition("/")[2] if self.index_url else ""
        return {"cuda": f"CUDA ({tag})", "cpu": "CPU only", "default": "default wheel"}[self.kind]


def choose_torch_build(info: PlatformInfo, choice: str = "AUTO") -> TorchBuild:
    """The torch build for `info`: `choice` is a TORCH_BUILDS key (AUTO picks by platform)."""
    if choice not in TORCH_BUILDS:
        raise ValueError(f"torch build must be one of {', '.join(TORCH_BUILDS)}; got {choice!r}")
    if info.system == "Darwin":
        # PyTorch publishes one macOS build (MPS on Apple Silicon): no CUDA, no separate CPU index.
        return TorchBuild("default", "", "macOS has one PyTorch build (Metal/MPS on Apple Silicon)")
    if choice == "DEFAULT":
        return TorchBuild("default", "", "chosen in the preferences")
    if choice == "CPU":
        return TorchBuild("cpu", f"{TORCH_INDEX}/cpu", "chosen in the preferences")
    tag = cuda_build_for_driver(info.nvidia_driver) if info.nvidia_driver else None
    if choice == "CUDA":
        tag = tag or CUDA_BUILDS[-1][1]
        why = (f"chosen in the preferences (NVIDIA driver {info.nvidia_driver})" if info.nvidia_driver
               else "chosen in the preferences (no NVIDIA driver found)")
        return TorchBuild("cuda", f"{TORCH_INDEX}/{tag}", why)
    if info.nvidia_driver is None:
        return TorchBuild("cpu", f"{TORCH_INDEX}/cpu", "no NVIDIA driver found")
    if tag is None:
        return TorchBuild("cpu", f"{TORCH_INDEX}/cpu",
                          f"NVIDIA driver {info.nvidia_driver} is too old for PyTorch's CUDA builds "
                          "(update the driver for GPU reconstruction)")
    return TorchBuild("cuda", f"{TORCH_INDEX}/{tag}", f"NVIDIA driver {info.nvidia_driver}")


def pinned_requirements(info: PlatformInfo, packages: Sequence[str] | None = None) -> list[str]:
    """`name==version` for each pip name in `packages` (default: every dependency), from
    the row of BUILDS for the running numpy."""
    row = BUILDS.get(info.numpy_major)
    if row is None:
        raise ValueError(f"no tested builds for numpy {info.numpy}")
    names = list(packages) if packages is not None else [dep.pip for dep in DEPENDENCIES]
    return [f"{name}=={row[name]}" if name in row else name for name in names]


@dataclass(frozen=True)
class PipStep:
    """One pip invocation: requirements and where pip looks for them."""

    requirements: tuple[str, ...]
    index_args: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class InstallPlan:
    """What to install and how: the pip steps, the numpy pin and the chosen torch build."""

    steps: tuple[PipStep, ...]
    numpy_version: str
    torch: TorchBuild | None = None
    offline: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def constraints(self) -> str:
        """The constraints file's text: the running numpy stays as it is."""
        return f"numpy=={self.numpy_version}\n"

    @property
    def summary(self) -> str:
        packages = [req for step in self.steps for req in step.requirements]
        where = "from the wheel folder" if self.offline else "from the package index"
        torch = f"; PyTorch: {self.torch.label} ({self.torch.reason})" if self.torch else ""
        return f"{', '.join(packages)} {where}{torch}; numpy stays {self.numpy_version}"


def plan_install(info: PlatformInfo, packages: Sequence[str] | None = None, *, torch_choice: str = "AUTO",
                 wheels_dir: str = "", requirements: Sequence[str] | None = None) -> InstallPlan:
    """The pip steps installing `packages` (pip names; default: what is missing, else all).

    `wheels_dir`: install offline from that folder of wheels (no index at all).
    `requirements`: explicit requirement strings instead of the pinned table (tests, experts).
    Online, torch comes alone from its build's index (CUDA or CPU wheels and their
    dependencies are all there), the rest from the default package index.
    """
    reqs = list(requirements) if requirements is not None else pinned_requirements(info, packages)
    if wheels_dir:
        folder = os.path.abspath(wheels_dir)
        return InstallPlan((PipStep(tuple(reqs), ("--no-index", "--find-links", folder),
                                    f"from {folder}"),), info.numpy, None, offline=True)
    torch_reqs = [req for req in reqs if _project(req) == "torch"]
    others = [req for req in reqs if _project(req) != "torch"]
    steps: list[PipStep] = []
    build = choose_torch_build(info, torch_choice) if torch_reqs else None
    if torch_reqs and build is not None and build.index_url:
        steps.append(PipStep(tuple(torch_reqs), ("--index-url", build.index_url),
                             f"PyTorch {build.label}"))
    elif torch_reqs:
        others = torch_reqs + others
    if others:
        steps.append(PipStep(tuple(others), (), "from the package index"))
    return InstallPlan(tuple(steps), info.numpy, build)


def _project(requirement: str) -> str:
    name = re.split(r"[<>=!~ ;\[]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class DependencyState:
    """One dependency as the running Python sees it."""

    dependency: Dependency
    found: bool
    version: str = ""

    @property
    def text(self) -> str:
        if not self.found:
            return "missing"
        return self.version or "found"


def dependency_states() -> list[DependencyState]:
    """Each dependency: found or missing, and its installed version (no module is imported)."""
    states = []
    for dep in DEPENDENCIES:
        try:
            found = importlib.util.find_spec(dep.module) is not None
        except (ImportError, ValueError):
            found = False
        version = ""
        if found:
            try:
                version = importlib.metadata.version(dep.pip)
            except importlib.metadata.PackageNotFoundError:
                version = ""
        states.append(DependencyState(dep, found, version))
    return states


def missing_packages() -> list[str]:
    """The pip names of the dependencies this Python lacks."""
    return [state.dependency.pip for state in dependency_states() if not state.found]


def predicted_device(info: PlatformInfo) -> str:
    """The device torch's "auto" will pick, told without importing torch when it is not
    loaded yet: "CUDA", "MPS" or "CPU", with the reason."""
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return f"CUDA ({torch.cuda.get_device_name(0)})"
            mps = getattr(torch.backends, "mps", None)
            if mps is not None and mps.is_available():
                return "MPS (Apple Silicon GPU)"
        except Exception:  # noqa: BLE001 - a broken driver still leaves the CPU
            pass
        return "CPU"
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "none yet (PyTorch is not installed)"
    local = version.partition("+")[2]
    if info.apple_silicon:
        return "MPS (Apple Silicon GPU)"
    cuda_build = local.startswith("cu") or (not local and info.system == "Linux")
    if cuda_build and info.nvidia_driver:
        return f"CUDA (NVIDIA driver {info.nvidia_driver})"
    if cuda_build:
        return "CPU (CUDA build, but no NVIDIA driver found)"
    return "CPU" if not info.nvidia_driver else "CPU (this PyTorch is a CPU-only build)"
