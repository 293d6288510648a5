# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Download the 3DDFA-V3 asset files, resumably, and verify them before they take their names.

Each file is fetched as `base_url` + its name into a hidden staging folder
inside the target folder, first as `<name>.part` (an interrupted download is
resumed with an HTTP Range request), then checked: its size and sha256 where
the server publishes them (Hugging Face sends `X-Linked-Size` and, for large
files, the sha256 as `X-Linked-Etag`), then by the same loading checks as
reconstruction (tddfa_v3's asset check, and with PyTorch the real loaders).
Only a file that passes is moved to its final name, so the assets folder never
holds a partial or unverified file. A file already there and sound is kept.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .errors import Cancelled, DownloadError, OfflineError
from .progress import CancelCheck, Progress, ProgressCallback, never_cancelled, no_progress
from .sources import ASSETS_BASE_URL

#: The dataset's assets/ folder; each file is this + its name (`installer.sources`).
DEFAULT_BASE_URL = ASSETS_BASE_URL

#: The staging folder's name inside the target folder.
STAGING_NAME = ".nv3dmm-download"
CHUNK = 1 << 20
USER_AGENT = "nv3dmm-face-tools-installer"

_SHA256 = re.compile(r'^(?:W/)?"?([0-9a-f]{64})"?$')


def _core_assets() -> Any:
    """tddfa_v3.assets, imported beside this package (inside the add-on or from a clone)."""
    parent = (__package__ or "").rpartition(".")[0]
    return importlib.import_module(f"{parent}.tddfa_v3.assets" if parent else "tddfa_v3.assets")


def asset_names() -> tuple[str, ...]:
    """The asset files reconstruction reads (tddfa_v3's list)."""
    return tuple(_core_assets().ASSET_FILES)


def file_url(base_url: str, name: str) -> str:
    """`base_url` + `name` (a local folder path is turned into a file: URL)."""
    base = base_url or DEFAULT_BASE_URL
    if "://" not in base:
        base = Path(base).expanduser().resolve().as_uri()
    if not base.endswith("/"):
        base += "/"
    return base + urllib.parse.quote(name)


def needs_network(base_url: str) -> bool:
    """Whether fetching from `base_url` goes over the network (a file: URL or a folder does not)."""
    base = base_url or DEFAULT_BASE_URL
    return "://" in base and not base.lower().startswith("file:")


@dataclass(frozen=True)
class Published:
    """What the server says about a file: its full size and sha256, when it says."""

    size: int | None = None
    sha256: str | None = None


def published_from_headers(headers: Mapping[str, str], offset: int, status: int) -> Published:
    lower = {k.lower(): v for k, v in headers.items()}
    size: int | None = None
    for key in ("x-linked-size",):
        if lower.get(key, "").isdigit():
            size = int(lower[key])
    if size is None and status == 206:
        total = lower.get("content-range", "").rpartition("/")[2]
        size = int(total) if total.isdigit() else None
    if size is None and lower.get("content-length", "").isdigit():
        size = int(lower["content-length"]) + (offset if status == 206 else 0)
    sha = None
    for key in ("x-linked-etag", "x-sha256", "etag"):
        found = _SHA256.match(lower.get(key, "").strip().lower())
        if found:
            sha = found.group(1)
            break
    return Published(size, sha)


def default_verify(folder: Path, names: Sequence[str]) -> dict[str, str]:
    """Check the files `names` in `folder` as reconstruction loads them; {name: reason} for
    each that fails. The quick check always; with PyTorch installed, the real loaders too
    (weights-only checkpoint load into its network, the face model's restricted unpickler)."""
    assets = _core_assets()
    report = assets.check_assets(folder)
    problems = {name: status.reason or status.state for name, status in report.files.items()
                if name in names and not status.ok}
    try:
        importlib.import_module("torch")
    except ImportError:
        return problems
    kinds = {file: kind for kind, file in assets.CHECKPOINT_FILES.items()}
    for name in names:
        if name in problems:
            continue
        try:
            if name in kinds:
                assets.load_asset_network(folder, kinds[name])
            elif name == assets.FACE_MODEL_FILE:
                assets.face_model_arrays_from_dict(assets.unpickle_face_model_dict(folder / name))
            elif name == assets.LM3D_FILE:
                assets.load_lm68_template(folder / name)
        except Exception as exc:  # noqa: BLE001 - AssetError and anything a broken file raises
            problems[name] = str(exc)
    return problems


Verifier = Callable[[Path, Sequence[str]], Mapping[str, str]]


@dataclass
class DownloadReport:
    folder: Path
    downloaded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    refetched: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        parts = [f"{len(self.downloaded)} downloaded"]
        if self.kept:
            parts.append(f"{len(self.kept)} already there")
        if self.resumed:
            parts.append(f"{len(self.resumed)} resumed")
        if self.refetched:
            parts.append(f"{len(self.refetched)} fetched again after a failed check")
        return f"3DDFA-V3 assets in {self.folder}: " + ", ".join(parts)


class _Fetcher:
    def __init__(self, progress: ProgressCallback, cancel: CancelCheck, timeout: float,
                 opener: urllib.request.OpenerDirector) -> None:
        self.progress = progress
        self.cancel = cancel
        self.timeout = timeout
        self.opener = opener

    def fetch(self, url: str, part: Path, name: str, index: int, count: int) -> tuple[Published, bool]:
        """Fetch `url` into `part`, resuming from its current size; (published, resumed)."""
        offset = part.stat().st_size if part.is_file() else 0
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        if offset and not url.startswith("file:"):
            request.add_header("Range", f"bytes={offset}-")
        try:
            response = self.opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:
                part.unlink()          # the partial file does not match the server's any more
                return self.fetch(url, part, name, index, count)
            raise DownloadError(f"{name}: the server answered {exc.code} {exc.reason} for {url}.") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(f"{name}: cannot reach {url} ({reason}). Check the network or the "
                                "source URL in the add-on preferences, then press the button again: "
                                "the download resumes where it stopped.") from exc
        with response:
            status = getattr(response, "status", 200) or 200
            resumed = bool(offset) and status == 206
            if offset and not resumed:
                offset = 0             # the server sent the whole file: start over
            published = published_from_headers(dict(response.headers.items()), offset, status)
            mode = "ab" if resumed else "wb"
            with open(part, mode) as out:
                self._copy(response, out, offset, published.size, name, index, count)
        return published, resumed

    def _copy(self, response: Any, out: Any, done: int, total: int | None, name: str,
              index: int, count: int) -> None:
        while True:
            if self.cancel():
                raise Cancelled("Download cancelled; the partial file is kept and resumes next time.")
            try:
                chunk = response.read(CHUNK)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                raise DownloadError(f"{name}: the connection broke after {done} bytes ({exc}); press the "
                                    "button again to resume.") from exc
            if not chunk:
                break
            out.write(chunk)
            done += len(chunk)
            self.progress(Progress("downloading", name, done / total if total else None, index, count))
        out.flush()
        os.fsync(out.fileno())
        if total is not None and done < total:
            raise DownloadError(f"{name}: the connection closed after {done} of {total} bytes; press the "
                                "button again to resume.")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_assets(base_url: str, directory: str | os.PathLike[str], *, names: Sequence[str] | None = None,
                    online: bool = True, progress: ProgressCallback = no_progress,
                    cancel: CancelCheck = never_cancelled, verify: Verifier | None = None,
                    attempts: int = 2, timeout: float = 60.0,
                    opener: urllib.request.OpenerDirector | None = None) -> DownloadReport:
    """Fetch each asset file (`base_url` + name) into `directory`, verified.

    `online`: Blender's online access; when False, only a folder or file: URL is allowed.
    `attempts`: how often a file that fails its checks is fetched again from scratch.
    Files already in `directory` that pass the checks are kept, not fetched.
    Raises OfflineError, Cancelled or DownloadError (naming the file and the reason).
    """
    base = base_url or DEFAULT_BASE_URL
    if needs_network(base) and not online:
        raise OfflineError(
            "Online access is off in Blender (Preferences > System > Network), so the assets cannot be "
            f"downloaded from {base}. Turn it on, or copy the files of the dataset's assets/ folder into a "
            "folder and give that folder (or a file: URL) as the source.")
    names = tuple(names) if names is not None else asset_names()
    check = verify or default_verify
    folder = Path(directory).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / STAGING_NAME
    staging.mkdir(exist_ok=True)
    report = DownloadReport(folder)
    fetcher = _Fetcher(progress, cancel, timeout, opener or urllib.request.build_opener())

    present = [name for name in names if (folder / name).is_file()]
    problems = check(folder, present) if present else {}
    for name in present:
        if name not in problems:
            report.kept.append(name)
    todo = [name for name in names if name not in report.kept]
    for index, name in enumerate(todo, 1):
        if cancel():
            raise Cancelled("Download cancelled; the partial file is kept and resumes next time.")
        if name in problems:
            report.refetched.append(name)
        _fetch_verified(fetcher, file_url(base, name), staging, name, index, len(todo), check, attempts,
                        report)
        os.replace(staging / name, folder / name)
        report.downloaded.append(name)
    shutil.rmtree(staging, ignore_errors=True)
    progress(Progress("done", "", 1.0, len(todo), len(todo)))
    return report


def _fetch_verified(fetcher: _Fetcher, url: str, staging: Path, name: str, index: int, count: int,
                    check: Verifier, attempts: int, report: DownloadReport) -> None:
    """Fetch one file into staging/<name>, verified; DownloadError after `attempts` bad copies."""
    part = staging / f"{name}.part"
    reason = ""
    for _attempt in range(max(1, attempts)):
        published, resumed = fetcher.fetch(url, part, name, index, count)
        if resumed and name not in report.resumed:
            report.resumed.append(name)
        fetcher.progress(Progress("verifying", name, None, index, count))
        size = part.stat().st_size
        reason = ""
        if published.size is not None and size != published.size:
            reason = f"{size} bytes where the server publishes {published.size}"
        elif published.sha256 is not None and _sha256(part) != published.sha256:
            reason = "its sha256 differs from the one the server publishes"
        if not reason:
            os.replace(part, staging / name)
            reason = dict(check(staging, [name])).get(name, "")
            if not reason:
                return
            (staging / name).unlink()
        elif part.exists():
            part.unlink()
        if name not in report.refetched:
            report.refetched.append(name)
    raise DownloadError(f"{name} from {url} failed its check {max(1, attempts)} times: {reason}. "
                        "The source may be damaged or not the 3DDFA-V3 dataset's assets/ folder.")
