# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run pip with the running Python in a subprocess, with progress and cancellation.

Packages go into one flat folder (`site_dir`, the extension's user
site-packages) and never into Python's own. pip installs into a staging prefix
beside it (so a cancelled or failed run leaves nothing behind) with `site_dir`
on its PYTHONPATH (so what is installed there, and Python's own numpy, count as
installed and are not fetched again); only a run that succeeded is moved into
`site_dir`, entry by entry.
"""

from __future__ import annotations

import collections
import importlib.metadata
import importlib.util
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Mapping, Sequence

from .builds import InstallPlan, PipStep
from .errors import Cancelled, PipError
from .progress import CancelCheck, Progress, ProgressCallback, never_cancelled, no_progress

#: Lines of pip's output kept for error messages.
TAIL_LINES = 12

_COLLECTING = re.compile(r"^Collecting (\S+)")
_PROCESSING = re.compile(r"^Processing (\S+)")
_SATISFIED = re.compile(r"^Requirement already satisfied: (\S+)")
_DOWNLOADING = re.compile(r"^\s*(?:Downloading|Using cached) (\S+)(?: \(([^)]*)\))?")
_RAW_PROGRESS = re.compile(r"^\s*Progress (\d+) of (\d+)")
_INSTALLING = re.compile(r"^Installing collected packages: (.*)")
_SUCCESS = re.compile(r"^Successfully installed (.*)")


def _package_of(text: str) -> str:
    """A package name from a requirement, a wheel file name or a URL."""
    base = text.rstrip("/").rpartition("/")[2]
    if base.endswith((".whl", ".tar.gz", ".zip")):
        return base.split("-")[0]
    return re.split(r"[<>=!~;\[]", base, maxsplit=1)[0]


class PipOutputParser:
    """Turns pip's output lines into Progress events and keeps its last lines."""

    def __init__(self, step: str = "") -> None:
        self.step = step
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.package = ""
        self.packages_seen = 0
        self.installed: list[str] = []

    def feed(self, line: str) -> Progress | None:
        line = line.rstrip("\r\n")
        if not line.strip():
            return None
        raw = _RAW_PROGRESS.match(line)
        if raw:
            done, total = int(raw.group(1)), int(raw.group(2))
            return Progress("downloading", self.package, done / total if total else None, detail=self.step)
        self.tail.append(line)
        for pattern, stage in ((_COLLECTING, "resolving"), (_PROCESSING, "resolving"),
                               (_SATISFIED, "resolving")):
            found = pattern.match(line)
            if found:
                self.package = _package_of(found.group(1))
                if pattern is not _SATISFIED:
                    self.packages_seen += 1
                return Progress(stage, self.package, None, self.packages_seen, 0, self.step)
        found = _DOWNLOADING.match(line)
        if found:
            self.package = _package_of(found.group(1))
            size = f"{found.group(2)}" if found.group(2) else ""
            return Progress("downloading", self.package, 0.0, detail=" ".join(p for p in (size, self.step) if p))
        found = _INSTALLING.match(line)
        if found:
            names = [name.strip() for name in found.group(1).split(",") if name.strip()]
            return Progress("installing", ", ".join(names), None, 0, len(names), self.step)
        found = _SUCCESS.match(line)
        if found:
            self.installed.extend(found.group(1).split())
            return Progress("installed", found.group(1), 1.0, detail=self.step)
        return None


def pip_supports_raw_progress(python: str = sys.executable) -> bool:
    """Whether this Python's pip has `--progress-bar raw` (pip 24.1 and later)."""
    if python != sys.executable:
        return False
    try:
        version = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return False
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    return parts >= (24, 1)


def pip_command(step: PipStep, prefix: Path, constraints: Path, *, python: str = sys.executable,
                isolated: bool = False) -> list[str]:
    """The pip command line for one step, installing into the staging `prefix`."""
    command = [python, "-m", "pip", "install", "--prefix", str(prefix), "--constraint", str(constraints),
               "--no-warn-script-location", "--disable-pip-version-check", "--no-input"]
    if isolated:
        command.append("--isolated")
    if pip_supports_raw_progress(python):
        command += ["--progress-bar", "raw"]
    return command + list(step.index_args) + list(step.requirements)


def manual_commands(plan: InstallPlan, python: str = sys.executable) -> list[str]:
    """The terminal commands that install the same into Python's own folder instead (the manual
    fallback): numpy is named at its running version so pip keeps it."""
    return [" ".join([f'"{python}"', "-m", "pip", "install", *step.index_args, *step.requirements,
                      f"numpy=={plan.numpy_version}"]) for step in plan.steps]


@dataclass(frozen=True)
class InstallResult:
    site_dir: Path
    installed: tuple[str, ...]     # "name-version" as pip reported them
    moved: tuple[str, ...]         # the entries moved into site_dir


def _staging_dir(site_dir: Path) -> Path:
    return site_dir.parent / f".{site_dir.name}.staging-{os.getpid()}-{threading.get_ident()}"


def remove_stale_staging(site_dir: Path) -> None:
    """Remove what a crashed earlier run left in staging folders beside `site_dir`."""
    for stale in site_dir.parent.glob(f".{site_dir.name}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _site_roots(prefix: Path) -> list[Path]:
    """The site-packages folders pip created under the staging prefix."""
    roots = {path.parent for path in prefix.rglob("*.dist-info") if path.is_dir()}
    return sorted(roots)


def _env(site_dir: Path, staged: Sequence[Path], environ: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (site_dir, *staged))
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _reader(stream: IO[str], lines: "queue.Queue[str | None]") -> None:
    try:
        for line in iter(stream.readline, ""):
            lines.put(line)
    finally:
        lines.put(None)


def _stop(process: "subprocess.Popen[str]") -> None:
    """End pip and whatever it started (build backends): its whole process group."""
    if process.poll() is not None:
        return
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.terminate()
        process.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        try:
            if os.name == "posix":
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        except OSError:
            pass
        process.wait(timeout=5)


def run_pip(command: Sequence[str], env: dict[str, str], parser: PipOutputParser,
            progress: ProgressCallback = no_progress, cancel: CancelCheck = never_cancelled,
            poll_s: float = 0.05) -> None:
    """Run one pip command, streaming Progress; raise Cancelled or PipError."""
    kwargs: dict[str, object] = {}
    if os.name == "posix":
        kwargs["start_new_session"] = True
    else:
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    try:
        process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True, errors="replace", env=env,
                                   **kwargs)  # type: ignore[call-overload]
    except OSError as exc:
        raise PipError(f"pip could not be started with {command[0]} ({exc.strerror or exc}).") from exc
    lines: "queue.Queue[str | None]" = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True)
    reader.start()
    finished_reading = False
    try:
        while True:
            if cancel():
                _stop(process)
                raise Cancelled("Installation cancelled; nothing was installed.")
            try:
                line = lines.get(timeout=poll_s)
            except queue.Empty:
                continue
            if line is None:
                finished_reading = True
                break
            event = parser.feed(line)
            if event is not None:
                progress(event)
        process.wait()
    finally:
        if not finished_reading:
            _stop(process)
        reader.join(timeout=5)
        process.stdout.close()
    if process.returncode != 0:
        tail = tuple(parser.tail)
        raise PipError(f"pip failed (exit status {process.returncode}):\n" + "\n".join(tail[-8:]), tail)


def _move_into(root: Path, site_dir: Path) -> list[str]:
    """Move every entry of a staged site-packages folder into `site_dir`, replacing same-named
    entries and older .dist-info folders of the same projects."""
    moved = []
    entries = sorted(root.iterdir(), key=lambda p: p.name.endswith(".dist-info"))  # metadata last
    for entry in entries:
        target = site_dir / entry.name
        if entry.name.endswith(".dist-info"):
            project = entry.name.split("-")[0].lower()
            for old in site_dir.glob("*.dist-info"):
                if old.name.split("-")[0].lower() == project and old.name != entry.name:
                    shutil.rmtree(old, ignore_errors=True)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(entry, target)
        moved.append(entry.name)
    return moved


def install(plan: InstallPlan, site_dir: str | os.PathLike[str], *, progress: ProgressCallback = no_progress,
            cancel: CancelCheck = never_cancelled, python: str = sys.executable,
            isolated: bool = False, environ: Mapping[str, str] | None = None) -> InstallResult:
    """Run `plan`'s pip steps and move what they installed into `site_dir`.

    Cancelled or failed, nothing reaches `site_dir` and the staging folder is removed.
    `isolated`: ignore pip's environment variables and user configuration.
    `environ`: the environment pip runs in (default: this process's).
    """
    if python == sys.executable and importlib.util.find_spec("pip") is None:
        raise PipError(f"This Python ({python}) has no pip. Blender's own builds include it; for a "
                       f"Blender packaged without it run `\"{python}\" -m ensurepip`, or install the "
                       "packages from a terminal (see the installation docs).")
    site = Path(site_dir).resolve()
    site.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(site)
    staging = _staging_dir(site)
    prefix = staging / "prefix"
    prefix.mkdir(parents=True)
    constraints = staging / "constraints.txt"
    constraints.write_text(plan.constraints)
    installed: list[str] = []
    try:
        for number, step in enumerate(plan.steps, 1):
            label = f"step {number} of {len(plan.steps)}: {step.description}" if len(plan.steps) > 1 \
                else step.description
            progress(Progress("starting pip", ", ".join(step.requirements), None, number, len(plan.steps)))
            parser = PipOutputParser(label)
            command = pip_command(step, prefix, constraints, python=python, isolated=isolated)
            run_pip(command, _env(site, _site_roots(prefix), environ), parser, progress, cancel)
            installed.extend(parser.installed)
        if cancel():
            raise Cancelled("Installation cancelled; nothing was installed.")
        progress(Progress("moving into place", str(site)))
        moved: list[str] = []
        for root in _site_roots(prefix):
            moved.extend(_move_into(root, site))
    finally:
        _remove_tree(staging)
    progress(Progress("done", ", ".join(installed), 1.0))
    return InstallResult(site, tuple(installed), tuple(moved))


def _remove_tree(path: Path) -> None:
    for _attempt in range(3):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.2)   # Windows: a just-ended pip may still hold a file for a moment
