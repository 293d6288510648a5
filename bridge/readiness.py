# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the UI checks before it starts a job, and the choices it offers: the reconstruction's
Python packages, the 3DDFA-V3 assets folder, the photo or video, the backbone and device names.
May import bpy, the core (tddfa_v3's asset check and name tables), installer (the dependency
table) and bridge siblings; the UI calls these instead of the core. A failed check raises
`ReadinessError` (a `BridgeError`) with the one-line message the operator reports.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import bpy
from bpy.types import Image

from ..installer import builds
from ..installer.sources import ASSETS_HINT
from ..tddfa_v3 import backbones, devices
from ..tddfa_v3.assets import ASSET_FILES, AssetReport, check_assets
from .bpy_typed import lookup
from .errors import BridgeError


class ReadinessError(BridgeError):
    """The operator's inputs cannot work (no photo, no assets folder, missing packages)."""


# --------------------------------------------------------------------------- choices

def backbone_items() -> list[tuple[str, str, str]]:
    """EnumProperty items of every backbone, from the core's one table."""
    return backbones.enum_items()


def device_items() -> list[tuple[str, str, str]]:
    """EnumProperty items of every compute device, from the core's one table."""
    return devices.enum_items()


def absolute(path: str) -> str:
    """`path` with Blender's "//" (blend-relative) resolved, made absolute."""
    return os.path.abspath(bpy.path.abspath(path))


# --------------------------------------------------------------------------- Python packages

def missing_dependencies() -> list[str]:
    """The pip names of the reconstruction dependencies Blender's Python lacks."""
    return builds.missing_packages()


def pip_command(packages: list[str] | None = None) -> str:
    """The command that installs `packages` (default: all dependencies) into Blender's Python."""
    names = packages if packages is not None else [dep.pip for dep in builds.DEPENDENCIES]
    return f'"{sys.executable}" -m pip install ' + " ".join(names)


def require_dependencies(purpose: str) -> None:
    """ReadinessError "<purpose> needs <packages> in Blender's Python; install with: ..."
    when a dependency is missing."""
    missing = missing_dependencies()
    if missing:
        raise ReadinessError(f"{purpose} needs {', '.join(missing)} in Blender's Python; install with: "
                             f"{pip_command(missing)}")


# --------------------------------------------------------------------------- assets folder

@dataclass(frozen=True)
class AssetStatus:
    """What the assets folder holds, in words for the UI."""

    folder: str
    ok: bool
    message: str
    found: tuple[str, ...]
    missing: tuple[str, ...]
    report: AssetReport | None = None

    def files(self) -> list[tuple[str, bool, str]]:
        """(name, usable, state) of each asset file; empty when no folder is set."""
        if self.report is None:
            return []
        return [(name, file.ok, file.state) for name, file in self.report.files.items()]

    def ok_for(self, backbone: str, detector: bool = True) -> bool:
        """Whether a reconstruction with `backbone` (with or without the face detector) can run."""
        return self.report is not None and self.report.ok_for(backbone, detector=detector)


_STATUS_CACHE: dict[tuple[object, ...], AssetStatus] = {}


def _stamp(path: str) -> tuple[int, int]:
    """(size, modification time) of `path`, (-1, -1) when it cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return (-1, -1)
    return (int(info.st_size), int(info.st_mtime_ns))


def asset_status(folder: str) -> AssetStatus:
    """Check `folder` for the 3DDFA-V3 assets (file headers and sizes only: cheap enough to
    draw); cached until the folder or one of the asset files changes (a download finishing
    in place changes only the file)."""
    path = absolute(folder) if folder else ""
    if not path:
        return AssetStatus("", False, "No 3DDFA-V3 assets folder set. Download the files from "
                           f"{ASSETS_HINT} and choose their folder here.", (), ())
    # The folder, its assets/ subfolder (a picked dataset root) and every asset file in both:
    # a few stat calls per redraw.
    places = (path, os.path.join(path, "assets"))
    key = (path, *(_stamp(place) for place in places),
           *(_stamp(os.path.join(place, name)) for place in places for name in ASSET_FILES))
    cached = _STATUS_CACHE.get(key)
    if cached is not None:
        return cached
    report = check_assets(path)
    found = tuple(name for name, status in report.files.items() if status.ok)
    missing = tuple(name for name, status in report.files.items() if not status.ok)
    status = AssetStatus(path, report.ok, report.message, found, missing, report)
    _STATUS_CACHE.clear()   # only the folder in use matters
    _STATUS_CACHE[key] = status
    return status


def assets_folder(given: str, preferred: str, *, hint: bool = True) -> str:
    """The assets folder to use (`given`, else the preferences' `preferred`), absolute;
    ReadinessError when neither is set."""
    folder = given or preferred
    if not folder:
        where = f"; download the files from {ASSETS_HINT}" if hint else ""
        raise ReadinessError("No 3DDFA-V3 assets folder: set it in the add-on preferences (or pass assets_dir)"
                             + where)
    return absolute(folder)


def require_assets(folder: str, backbone: str, *, detector: bool = True) -> None:
    """ReadinessError with the folder's report when `backbone` cannot run from `folder`
    (a folder the quick check cannot read at all is left to the loader to explain)."""
    status = asset_status(folder)
    if status.report is not None and not status.ok_for(backbone, detector=detector):
        raise ReadinessError(status.message)


# --------------------------------------------------------------------------- photo and video

@dataclass(frozen=True)
class PhotoInput:
    """The photo to reconstruct: a file path, or a Blender image with its file when it has one."""

    image: Image | None
    path: str | None


def photo_input(image_name: str, filepath: str) -> PhotoInput:
    """The image called `image_name` when given, else the photo file `filepath`;
    ReadinessError when it is missing or neither is given."""
    if image_name:
        image = lookup(bpy.data.images, image_name)
        if image is None:
            raise ReadinessError(f'No image named "{image_name}" in this file')
        return PhotoInput(image, bpy.path.abspath(image.filepath) if image.filepath else None)
    if filepath:
        path = absolute(filepath)
        if not os.path.isfile(path):
            raise ReadinessError(f"The photo {path} does not exist")
        return PhotoInput(None, path)
    raise ReadinessError("Choose a photo file or an image to reconstruct")


def video_file(filepath: str) -> str:
    """The video file (or first image of a sequence) `filepath`, absolute; ReadinessError
    when none is given or it does not exist."""
    if not filepath:
        raise ReadinessError("Choose a video file (or one image of an image sequence)")
    path = absolute(filepath)
    if not os.path.exists(path):
        raise ReadinessError(f"The video {path} does not exist")
    return path
