"""Add-on preferences: where the 3DDFA-V3 assets are, default device and backbone,
and whether the reconstruction's Python dependencies are installed.

Nothing heavy is imported here: dependencies are looked up with
`importlib.util.find_spec`, and the asset check only looks at file headers
and sizes (cached per folder modification time), so drawing stays cheap.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy.types import AddonPreferences, Context, UILayout

from .bridge.bpy_typed import lookup

if TYPE_CHECKING:
    from .tddfa_v3.assets import AssetReport

#: The add-on's package name, as Blender registered it (bl_ext.<repo>.<id> when
#: installed as an extension). This module sits at the package root.
ADDON_PACKAGE: str = __package__ or __name__.rpartition(".")[0] or "nv3dmm_face_tools"

ASSETS_URL = "https://huggingface.co/datasets/Zidu-Wang/3DDFA-V3"
ASSETS_HINT = f"{ASSETS_URL} (folder assets/)"

#: Import name -> pip package name, for the reconstruction's dependencies.
DEPENDENCIES: dict[str, str] = {
    "torch": "torch",
    "PIL": "pillow",
    "cv2": "opencv-python-headless",
    "scipy": "scipy",
}

#: Options for file-path properties: Blender 4.5+ warns about "//" (blend-relative)
#: paths unless a property declares it supports them; older versions lack the flag.
PATH_OPTIONS: set[str] = (
    {'PATH_SUPPORTS_BLEND_RELATIVE'}
    if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties else set())

DEVICE_ITEMS = [
    ("AUTO", "Auto", "The GPU (CUDA) when there is one, else the CPU; retries on the CPU if the GPU fails"),
    ("CUDA", "CUDA", "An NVIDIA GPU through CUDA"),
    ("CPU", "CPU", "The processor (slower, always works)"),
]
BACKBONE_ITEMS = [
    ("RESNET50", "ResNet-50", "The more accurate regressor (net_recon.pth)"),
    ("MOBILENETV3", "MobileNet-V3", "The lighter, faster regressor (net_recon_mbnet.pth)"),
]


def missing_dependencies() -> list[str]:
    """The pip names of the reconstruction dependencies Blender's Python lacks."""
    missing = []
    for module, package in DEPENDENCIES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(package)
    return missing


_MISSING_FOR_UI: tuple[float, list[str]] = (-1.0, [])


def _missing_for_ui() -> list[str]:
    """`missing_dependencies()`, refreshed at most every few seconds (panels redraw often)."""
    global _MISSING_FOR_UI
    now = time.monotonic()
    if now - _MISSING_FOR_UI[0] > 5.0:
        _MISSING_FOR_UI = (now, missing_dependencies())
    return _MISSING_FOR_UI[1]


def pip_command(packages: list[str] | None = None) -> str:
    """The command that installs `packages` (default: all dependencies) into Blender's Python."""
    names = packages if packages is not None else list(DEPENDENCIES.values())
    return f'"{sys.executable}" -m pip install ' + " ".join(names)


@dataclass(frozen=True)
class AssetStatus:
    """What the assets folder holds, in words for the UI."""

    folder: str
    ok: bool
    message: str
    found: tuple[str, ...]
    missing: tuple[str, ...]
    report: "AssetReport | None" = None


_STATUS_CACHE: dict[tuple[object, ...], AssetStatus] = {}


def _stamp(path: str) -> tuple[int, int]:
    """(size, modification time) of `path`, (-1, -1) when it cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return (-1, -1)
    return (int(info.st_size), int(info.st_mtime_ns))


def asset_status(folder: str) -> AssetStatus:
    """Check `folder` for the 3DDFA-V3 assets; cached until the folder or one of the
    asset files changes (a download finishing in place changes only the file)."""
    path = os.path.abspath(bpy.path.abspath(folder)) if folder else ""
    if not path:
        return AssetStatus("", False, "No 3DDFA-V3 assets folder set. Download the files from "
                           f"{ASSETS_HINT} and choose their folder here.", (), ())
    from .tddfa_v3.assets import ASSET_FILES, check_assets
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


def cache_dir() -> str:
    """Where the face-model cache goes: the extension's user folder, else a temp folder."""
    try:
        return str(bpy.utils.extension_path_user(ADDON_PACKAGE, path="cache", create=True))
    except (ValueError, RuntimeError, TypeError):
        # Not running as an installed extension (scripts, tests, a legacy add-on path).
        folder = Path(tempfile.gettempdir()) / "nv3dmm_face_tools" / "cache"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)


def get_preferences(context: Context | None = None) -> "NV3DMMFacePreferences | None":
    """The add-on's preferences, or None when it is registered without being enabled
    (scripts that call register() directly)."""
    ctx = context or bpy.context
    addon = lookup(ctx.preferences.addons, ADDON_PACKAGE) if ctx.preferences is not None else None
    if addon is None:
        return None
    prefs = addon.preferences
    return prefs if isinstance(prefs, NV3DMMFacePreferences) else None


def draw_dependency_status(layout: UILayout, missing: list[str] | None = None) -> bool:
    """Draw what is missing and how to install it; True when everything is installed."""
    missing = _missing_for_ui() if missing is None else missing
    if not missing:
        return True
    box = layout.box()
    box.label(text="Reconstruction needs: " + ", ".join(missing), icon='ERROR')
    box.label(text="Install them into Blender's Python, then restart Blender:")
    for line in _wrap(pip_command(missing), 70):
        box.label(text=line)
    box.label(text="Import and export of .nvf work without them.")
    return False


def draw_asset_status(layout: UILayout, folder: str) -> bool:
    """Draw the assets folder's status; True when every file is present."""
    status = asset_status(folder)
    box = layout.box()
    if status.ok:
        box.label(text="All 3DDFA-V3 assets found", icon='CHECKMARK')
        return True
    box.label(text="3DDFA-V3 assets incomplete", icon='ERROR')
    if status.found:
        box.label(text="Found: " + ", ".join(status.found))
    for line in _wrap(status.message, 70):
        box.label(text=line)
    return False


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines


class NV3DMMFacePreferences(AddonPreferences):
    """Settings for 3DDFA-V3 photo reconstruction."""

    bl_idname = ADDON_PACKAGE

    if TYPE_CHECKING:
        # What the Blender properties below hold on an instance (mypy cannot read a
        # property annotation).
        assets_dir: str
        device: str
        backbone: str
    else:
        assets_dir: StringProperty(  # type: ignore[valid-type]
            name="3DDFA-V3 Assets",
            description=f"Folder holding the 3DDFA-V3 assets, downloaded from {ASSETS_HINT}",
            subtype='DIR_PATH',
            default="",
            options=PATH_OPTIONS,
        )
        device: EnumProperty(  # type: ignore[valid-type]
            name="Device", description="Default compute device for reconstruction",
            items=DEVICE_ITEMS, default="AUTO",
        )
        backbone: EnumProperty(  # type: ignore[valid-type]
            name="Backbone", description="Default regressor network",
            items=BACKBONE_ITEMS, default="RESNET50",
        )

    def draw(self, context: Context) -> None:
        layout = self.layout
        layout.prop(self, "assets_dir")
        draw_asset_status(layout, self.assets_dir)
        row = layout.row()
        row.operator("wm.url_open", text="Download the assets", icon='URL').url = ASSETS_URL
        layout.prop(self, "device")
        layout.prop(self, "backbone")
        draw_dependency_status(layout)


_CLASSES = (NV3DMMFacePreferences,)


def register() -> None:
    for cls in _CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
