# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Add-on preferences: where the 3DDFA-V3 assets are, default device and backbone,
the reconstruction's Python dependencies and assets with their install and
download buttons (operators/installer.py), and the installer's settings.
May import bpy, the bridge (bridge.readiness: the checks and choices) and installer.

Nothing heavy is imported here: dependencies are looked up with
`importlib.util.find_spec`, and the asset check only looks at file headers
and sizes (cached per folder modification time), so drawing stays cheap.
"""

from __future__ import annotations

import importlib
import os
import site
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy.types import AddonPreferences, Context, UILayout

from .bridge import readiness
from .bridge.bpy_typed import lookup
# The checks' home is bridge.readiness (this module draws them).
from .bridge.readiness import asset_status, missing_dependencies
from .installer import builds as installer_builds
from .installer.sources import ASSETS_BASE_URL, ASSETS_DATASET_URL, ASSETS_HINT
from .installer.task import Task

#: The add-on's package name, as Blender registered it (bl_ext.<repo>.<id> when
#: installed as an extension). This module sits at the package root.
ADDON_PACKAGE: str = __package__ or __name__.rpartition(".")[0] or "nv3dmm_face_tools"

#: The 3DDFA-V3 dataset's page (its home: installer.sources).
ASSETS_URL = ASSETS_DATASET_URL

#: Options for file-path properties: Blender 4.5+ warns about "//" (blend-relative)
#: paths unless a property declares it supports them; older versions lack the flag.
PATH_OPTIONS: set[str] = (
    {'PATH_SUPPORTS_BLEND_RELATIVE'}
    if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties else set())

#: EnumProperty items of the devices and backbones (the core's tables, through the bridge:
#: readiness.device_items / backbone_items), for device_property and backbone_property.
DEVICE_ITEMS = readiness.device_items()
BACKBONE_ITEMS = readiness.backbone_items()


# bpy.props functions return a deferred property that Blender reads from a class annotation
# (which mypy cannot check, hence the ignores there).
def path_property(name: str, description: str, *, folder: bool = False, remember: bool = True) -> Any:
    """A file (or `folder`) path, empty by default, that may be blend-relative ("//");
    `remember=False`: a button press does not reuse the last run's value."""
    options = PATH_OPTIONS if remember else PATH_OPTIONS | {'SKIP_SAVE'}
    return StringProperty(name=name, description=description, subtype='DIR_PATH' if folder else 'FILE_PATH',
                          default="", options=options)  # type: ignore[arg-type]


def device_property(description: str, **options: Any) -> Any:
    """The compute device choice ("AUTO" by default), as the preferences and operators declare it."""
    return EnumProperty(
        name="Device", items=DEVICE_ITEMS, default="AUTO", description=description, **options)


def backbone_property(description: str, **options: Any) -> Any:
    """The regressor network choice ("RESNET50" by default), as the preferences and operators declare it."""
    return EnumProperty(
        name="Backbone", items=BACKBONE_ITEMS, default="RESNET50", description=description, **options)


@dataclass
class JobState:
    """What an interactive install or download is doing, for the preferences and panels to draw
    (operators/installer.py runs them)."""

    running: bool = False
    text: str = ""
    fraction: float | None = None
    last_error: str = ""
    task: Task[Any] | None = None

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.text = "cancelling..."


#: One install and one download at a time.
INSTALL_STATE = JobState()
DOWNLOAD_STATE = JobState()


_MISSING_FOR_UI: tuple[float, list[str]] = (-1.0, [])


def _missing_for_ui() -> list[str]:
    """`missing_dependencies()`, refreshed at most every few seconds (panels redraw often)."""
    global _MISSING_FOR_UI
    now = time.monotonic()
    if now - _MISSING_FOR_UI[0] > 5.0:
        _MISSING_FOR_UI = (now, missing_dependencies())
    return _MISSING_FOR_UI[1]


_STATES_FOR_UI: tuple[float, list[installer_builds.DependencyState], str] = (-1.0, [], "")


def _states_for_ui() -> tuple[list[installer_builds.DependencyState], str]:
    """Each dependency's state and the device torch will use, refreshed every few seconds."""
    global _STATES_FOR_UI
    now = time.monotonic()
    if now - _STATES_FOR_UI[0] > 5.0:
        try:
            device = installer_builds.predicted_device(_platform())
        except Exception as exc:  # noqa: BLE001 - a status line must never break drawing
            device = f"unknown ({exc})"
        _STATES_FOR_UI = (now, installer_builds.dependency_states(), device)
    return _STATES_FOR_UI[1], _STATES_FOR_UI[2]


_PLATFORM: list[installer_builds.PlatformInfo] = []


def _platform() -> installer_builds.PlatformInfo:
    """The machine (driver detection runs nvidia-smi at most once per session)."""
    if not _PLATFORM:
        _PLATFORM.append(installer_builds.detect_platform())
    return _PLATFORM[0]


def forget_dependency_status() -> None:
    """Make the next redraw look the dependencies up again (after an install)."""
    global _MISSING_FOR_UI, _STATES_FOR_UI
    _MISSING_FOR_UI = (-1.0, [])
    _STATES_FOR_UI = (-1.0, [], "")
    importlib.invalidate_caches()


def user_folder(name: str, create: bool = True) -> str:
    """The add-on's user folder `name` (site-packages, assets, cache): inside the extension's
    user folder; for a legacy (non-extension) install, under Blender's user config folder."""
    try:
        return str(bpy.utils.extension_path_user(ADDON_PACKAGE, path=name, create=create))
    except (ValueError, RuntimeError, TypeError):
        folder = bpy.utils.user_resource('CONFIG', path=os.path.join(ADDON_PACKAGE, name), create=create)
        return str(folder)


def site_packages_dir(create: bool = False) -> str:
    """Where `nv3dmm.install_dependencies` puts packages (on sys.path once the add-on is enabled)."""
    return user_folder("site-packages", create=create)


def add_site_packages(folder: str | None = None) -> None:
    """Put the installer's site-packages on sys.path (after Blender's own, so Blender's numpy
    stays first), with its .pth files; nothing when it does not exist yet."""
    folder = folder or site_packages_dir(create=False)
    if folder and os.path.isdir(folder) and folder not in sys.path:
        site.addsitedir(folder)


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
    """Draw what is missing and the Install button; True when everything is installed."""
    missing = _missing_for_ui() if missing is None else missing
    if not missing:
        return True
    box = layout.box()
    box.label(text="Reconstruction needs: " + ", ".join(missing), icon='ERROR')
    _draw_job_button(box, "install")
    box.label(text="Import and export of .nvf work without them.")
    return False


def _job_state(kind: str) -> JobState:
    return INSTALL_STATE if kind == "install" else DOWNLOAD_STATE


def _draw_job_button(layout: UILayout, kind: str) -> None:
    """The Install Dependencies / Download Assets button, or its progress and Cancel while it runs."""
    state = _job_state(kind)
    if state.running:
        row = layout.row()
        row.label(text=state.text or "starting", icon='SORTTIME')
        row.operator("nv3dmm.cancel_installer", text="Cancel", icon='CANCEL')
        return
    if kind == "install":
        prefs = get_preferences()
        wheels = prefs.wheels_dir if prefs is not None else ""
        if not wheels and not bool(getattr(bpy.app, "online_access", True)):
            layout.label(text="Online access is off (Preferences > System > Network):", icon='INFO')
            layout.label(text="turn it on, or set a Wheel Folder in the add-on preferences.")
        layout.operator("nv3dmm.install_dependencies", icon='IMPORT')
    else:
        layout.operator("nv3dmm.download_assets", icon='IMPORT')
    if state.last_error:
        for line in _wrap(state.last_error, 70)[-8:]:
            layout.label(text=line)


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
    _draw_job_button(box, "download")
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
        wheels_dir: str
        assets_url: str
        torch_build: str
    else:
        assets_dir: path_property(  # type: ignore[valid-type]
            "3DDFA-V3 Assets", f"Folder holding the 3DDFA-V3 assets, downloaded from {ASSETS_HINT}", folder=True)
        device: device_property("Default compute device for reconstruction")  # type: ignore[valid-type]
        backbone: backbone_property("Default regressor network")  # type: ignore[valid-type]
        wheels_dir: path_property(  # type: ignore[valid-type]
            "Wheel Folder", "Install the dependencies offline from this folder of .whl files "
                            "(empty: download them from the package index)", folder=True)
        assets_url: StringProperty(  # type: ignore[valid-type]
            name="Assets Source", default=ASSETS_BASE_URL,
            description="Download each asset file from this address + its name (a mirror, a local "
                        "server, or a folder)")
        torch_build: EnumProperty(  # type: ignore[valid-type]
            name="PyTorch Build", default="AUTO",
            items=[(key, label, text) for key, (label, text) in installer_builds.TORCH_BUILDS.items()],
            description="Which PyTorch build Install Dependencies installs")

    def draw(self, context: Context) -> None:
        layout = self.layout
        _draw_dependencies(self, layout.box())
        _draw_assets(self, layout.box())
        layout.prop(self, "device")
        layout.prop(self, "backbone")


def _draw_dependencies(prefs: "NV3DMMFacePreferences", box: UILayout) -> None:
    """Each dependency (found / version / missing), the device, the build choice and the button."""
    box.label(text="Python packages", icon='SCRIPT')
    states, device = _states_for_ui()
    col = box.column(align=True)
    for state in states:
        row = col.row()
        row.label(text=state.dependency.what, icon='CHECKMARK' if state.found else 'ERROR')
        row.label(text=state.text)
    box.label(text=f"Reconstruction device (Auto): {device}")
    box.prop(prefs, "torch_build")
    build = installer_builds.choose_torch_build(_platform(), prefs.torch_build)
    box.label(text=f"Installs PyTorch: {build.label} ({build.reason})")
    box.prop(prefs, "wheels_dir")
    if any(not state.found for state in states) or _job_state("install").running:
        _draw_job_button(box, "install")
    else:
        box.label(text="All installed", icon='CHECKMARK')
    box.label(text=f"Installed into {site_packages_dir()}")


def _draw_assets(prefs: "NV3DMMFacePreferences", box: UILayout) -> None:
    """The assets folder, each file's state, the source URL and the Download button."""
    box.label(text="3DDFA-V3 assets", icon='FILE_FOLDER')
    box.prop(prefs, "assets_dir")
    box.operator("wm.url_open", text="Open the dataset page", icon='URL').url = ASSETS_URL
    box.prop(prefs, "assets_url")
    if not prefs.assets_dir:
        box.label(text="No assets folder yet: Download Assets puts the files in the add-on's folder.")
        _draw_job_button(box, "download")
        return
    files = asset_status(prefs.assets_dir).files()
    col = box.column(align=True)
    for name, ok, state in files:
        row = col.row()
        row.label(text=name, icon='CHECKMARK' if ok else 'ERROR')
        row.label(text="found" if ok else state)
    draw_asset_status(box, prefs.assets_dir)


# Blender's own register/unregister pair for a list of classes (the stubs type it as None).
register, unregister = bpy.utils.register_classes_factory(  # type: ignore[func-returns-value, misc]
    (NV3DMMFacePreferences,))
