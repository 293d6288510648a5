# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Install Dependencies and Download Assets: the two buttons that make reconstruction work.

`nv3dmm.install_dependencies(wheels_dir="")` runs pip with Blender's own Python
into the extension's user site-packages; `nv3dmm.download_assets(base_url="",
directory="")` fetches the 3DDFA-V3 asset files. Interactively each runs on a
worker thread (installer.task) polled by a modal timer: progress in the status
bar and the preferences, Esc or the Cancel button stops it. From scripts and in
background mode (`blender -b`) they run synchronously, and a failure raises
RuntimeError with the reason. The work itself is the Blender-free `installer`
package; these classes only gather inputs and report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import bpy
from bpy.props import StringProperty
from bpy.types import Context, Operator

from . import job_ui, registration
from .. import preferences
from ..installer import builds, download, pip
from ..installer.errors import Cancelled, InstallerError, OfflineError
from ..installer.progress import CancelCheck, Progress, ProgressCallback
from ..installer.task import Task
from ..preferences import DOWNLOAD_STATE, INSTALL_STATE, JobState
from .properties import NOT_REMEMBERED, OperatorResult


def online_access() -> bool:
    """Blender's "Allow Online Access" (always True before Blender 4.2 had the setting)."""
    return bool(getattr(bpy.app, "online_access", True))


# --------------------------------------------------------------------------- what to do

def install_job(context: Context, wheels_dir: str) -> tuple[Callable[[ProgressCallback, CancelCheck], Any], str]:
    """The install to run (a job for Task or a direct call) and its one-line plan."""
    missing = builds.missing_packages()
    override = requirements_override()
    if not missing and override is None:
        site = Path(preferences.site_packages_dir(create=False))

        def nothing(progress: ProgressCallback, cancel: CancelCheck) -> pip.InstallResult:
            return pip.InstallResult(site, (), ())

        return nothing, "every dependency is already installed"
    prefs = preferences.get_preferences(context)
    folder = wheels_dir or (prefs.wheels_dir if prefs is not None else "")
    folder = os.path.abspath(bpy.path.abspath(folder)) if folder else ""
    if folder and not os.path.isdir(folder):
        raise InstallerError(f"The wheel folder {folder} does not exist.")
    if not folder and not online_access():
        raise OfflineError(
            "Online access is off in Blender (Preferences > System > Network), so pip cannot download. "
            "Turn it on, or set a Wheel Folder (a folder of downloaded .whl files) in the add-on "
            "preferences and install from it.")
    info = builds.detect_platform()
    choice = prefs.torch_build if prefs is not None else "AUTO"
    plan = builds.plan_install(info, missing, torch_choice=choice, wheels_dir=folder, requirements=override)
    site_dir = preferences.site_packages_dir(create=True)

    def job(progress: ProgressCallback, cancel: CancelCheck) -> pip.InstallResult:
        return pip.install(plan, site_dir, progress=progress, cancel=cancel, isolated=isolated_pip())

    return job, plan.summary


def requirements_override() -> list[str] | None:
    """Explicit requirement strings instead of the builds table (None: the table)."""
    return None


def isolated_pip() -> bool:
    """Whether pip ignores its environment variables and user configuration (False: a studio's
    pip.conf mirror is honoured)."""
    return False


def download_job(context: Context, base_url: str, directory: str
                 ) -> tuple[Callable[[ProgressCallback, CancelCheck], Any], str]:
    prefs = preferences.get_preferences(context)
    base = base_url or (prefs.assets_url if prefs is not None else "") or download.DEFAULT_BASE_URL
    folder = os.path.abspath(bpy.path.abspath(directory)) if directory else preferences.user_folder("assets")
    online = online_access()
    if download.needs_network(base) and not online:
        # Refuse here already, so not even a worker thread starts.
        download.download_assets(base, folder, names=(), online=False)

    def job(progress: ProgressCallback, cancel: CancelCheck) -> download.DownloadReport:
        return download.download_assets(base, folder, names=asset_names(), online=online, progress=progress,
                                        cancel=cancel, verify=asset_verifier())

    return job, folder


def asset_names() -> tuple[str, ...]:
    return download.asset_names()


def asset_verifier() -> download.Verifier:
    return download.default_verify


# --------------------------------------------------------------------------- the operators

def _ignore(_event: Progress) -> None:
    pass


def _never() -> bool:
    return False


def _printer(what: str) -> ProgressCallback:
    """Progress for `blender -b` logs: a line when the stage or item changes."""
    last = [("", "")]

    def show(event: Progress) -> None:
        key = (event.stage, event.item)
        if key != last[0]:
            last[0] = key
            print(f"{what}: {event.text}", flush=True)

    return show


class _BackgroundJob(job_ui.ModalJob):
    """Shared run logic: synchronous from scripts, a polled worker thread interactively."""

    _worker: Task[Any] | None = None
    _what = ""
    _progress = False   # the status text and the preferences show it

    def _state(self) -> JobState:
        raise NotImplementedError

    def _job(self, context: Context) -> tuple[Callable[[ProgressCallback, CancelCheck], Any], str]:
        raise NotImplementedError

    def _done(self, context: Context, result: Any) -> None:
        raise NotImplementedError

    def _failed(self, error: InstallerError) -> OperatorResult:
        self._state().last_error = str(error)
        self.report({'ERROR'}, str(error))
        return {'CANCELLED'}

    def _is_running(self) -> bool:
        return self._state().running

    def _busy_message(self) -> str:
        return f"{self._what} is already running (Esc or Cancel stops it)"

    def execute(self, context: Context) -> OperatorResult:
        if self._already_running():
            return {'CANCELLED'}
        try:
            job, _summary = self._job(context)
            result = job(_printer(self._what) if bpy.app.background else _ignore, _never)
            self._done(context, result)
        except InstallerError as error:
            return self._failed(error)
        self._state().last_error = ""
        return {'FINISHED'}

    def _start(self, context: Context) -> OperatorResult:
        try:
            job, summary = self._job(context)
        except InstallerError as error:
            return self._failed(error)
        self.report({'INFO'}, f"{self._what}: {summary}")
        state = self._state()
        state.task = Task(job, name=self.bl_idname)
        state.running, state.text, state.fraction, state.last_error = True, "starting", None, ""
        return self._launch(context, state.task, interval=0.2)

    def _on_escape(self, context: Context) -> OperatorResult:
        self._state().cancel()
        return {'RUNNING_MODAL'}

    def _on_tick(self, context: Context) -> OperatorResult:
        return {'CANCELLED'} if self._worker is None else self.step(context, self._worker)

    def step(self, context: Context, task: Task[Any]) -> OperatorResult:
        """One timer tick: show the progress, or finish when the worker is done."""
        state = self._state()
        if not task.done:
            latest = task.latest
            if not task.cancel_requested:
                state.text, state.fraction = latest.text, latest.fraction
            self._show(context, f"{self._what}: {state.text}  (Esc to cancel)")
            return {'RUNNING_MODAL'}
        self._end(context)
        try:
            result = task.result()
            self._done(context, result)
        except Cancelled as error:
            self.report({'INFO'}, str(error))
            return {'CANCELLED'}
        except InstallerError as error:
            state.last_error = str(error)
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        except Exception as error:  # noqa: BLE001 - never leave the modal state behind
            state.last_error = f"{type(error).__name__}: {error}"
            self.report({'ERROR'}, f"{self._what} failed: {state.last_error}")
            return {'CANCELLED'}
        return {'FINISHED'}

    def _show(self, context: Context, text: str | None) -> None:
        job_ui.show(context, text)

    def _reset_state(self) -> None:
        state = self._state()
        state.running, state.text, state.fraction, state.task = False, "", None, None

    def _end(self, context: Context) -> None:
        self._finish(context)


class NV3DMM_OT_install_dependencies(_BackgroundJob):
    """Install PyTorch, Pillow, OpenCV and SciPy for 3DDFA-V3 reconstruction into the add-on's own
    folder, with Blender's Python (numpy stays as Blender ships it)"""

    bl_idname = "nv3dmm.install_dependencies"
    bl_label = "Install Dependencies"
    bl_options = {'REGISTER'}
    _what = "Installing dependencies"

    if TYPE_CHECKING:
        wheels_dir: str
    else:
        wheels_dir: StringProperty(  # type: ignore[valid-type]
            name="Wheel Folder", subtype='DIR_PATH', default="", options=NOT_REMEMBERED,
            description="Install offline from this folder of .whl files (empty: the preferences' "
                        "wheel folder, else the package index)")

    def _state(self) -> JobState:
        return INSTALL_STATE

    def _job(self, context: Context) -> tuple[Callable[[ProgressCallback, CancelCheck], Any], str]:
        return install_job(context, self.wheels_dir)

    def _done(self, context: Context, result: Any) -> None:
        preferences.add_site_packages(str(result.site_dir))
        preferences.forget_dependency_status()
        missing = builds.missing_packages()
        installed = ", ".join(result.installed) or "nothing new"
        if missing:
            raise InstallerError(f"pip finished ({installed}), but Python still cannot find "
                                 f"{', '.join(missing)}; restart Blender and check the preferences.")
        if result.installed:
            self.report({'INFO'}, f"Installed {installed} into {result.site_dir}")
        else:
            self.report({'INFO'}, "Every reconstruction dependency is already installed")


class NV3DMM_OT_download_assets(_BackgroundJob):
    """Download the 3DDFA-V3 asset files (about 230 MB) with per-file progress and resume, verify
    them, and use their folder for reconstruction"""

    bl_idname = "nv3dmm.download_assets"
    bl_label = "Download Assets"
    bl_options = {'REGISTER'}
    _what = "Downloading 3DDFA-V3 assets"

    if TYPE_CHECKING:
        base_url: str
        directory: str
    else:
        base_url: StringProperty(  # type: ignore[valid-type]
            name="Source URL", default="", options=NOT_REMEMBERED,
            description="Each file is fetched as this + its name (empty: the preferences' source URL)")
        directory: StringProperty(  # type: ignore[valid-type]
            name="Folder", subtype='DIR_PATH', default="", options=NOT_REMEMBERED,
            description="Where the files go (empty: the add-on's user folder)")

    def _state(self) -> JobState:
        return DOWNLOAD_STATE

    def _job(self, context: Context) -> tuple[Callable[[ProgressCallback, CancelCheck], Any], str]:
        job, folder = download_job(context, self.base_url, self.directory)
        return job, f"into {folder}"

    def _done(self, context: Context, result: Any) -> None:
        prefs = preferences.get_preferences(context)
        if prefs is not None:
            prefs.assets_dir = str(result.folder)
        self.report({'INFO'}, result.summary)


class NV3DMM_OT_cancel_installer(Operator):
    """Stop the running install or download (nothing half-done is kept)"""

    bl_idname = "nv3dmm.cancel_installer"
    bl_label = "Cancel"
    bl_options = {'INTERNAL'}

    def execute(self, context: Context) -> OperatorResult:
        for state in (INSTALL_STATE, DOWNLOAD_STATE):
            if state.running:
                state.cancel()
        return {'FINISHED'}


register, unregister = registration.factory(
    (NV3DMM_OT_install_dependencies, NV3DMM_OT_download_assets, NV3DMM_OT_cancel_installer))
