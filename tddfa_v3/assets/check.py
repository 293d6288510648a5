# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checking an assets folder: the quick look at every file (`check_assets`) and the
loading check (`verify_asset_file`), with the `AssetReport` the UI and messages read.

Imports numpy; torch and SciPy only when a loading check needs them.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..backbones import find_backbone
from ..dependencies import require_torch
from ..errors import AssetError, DependencyError
from .files import (
    ASSET_FILES, BACKBONE_KINDS, CHECKPOINT_FILES, FACE_MODEL_FILE, HEAD_BYTES, LM3D_FILE, MAX_MAT_BYTES,
    MIN_FACE_MODEL_BYTES, MIN_SIZE_FRACTION, PARAMETER_COUNTS, ZIP_MAGIC, human_size, is_legacy_torch,
    asset_listing, resolve_assets_folder,
)
from .cache import load_face_model_arrays
from .checkpoints import fit_errors, load_asset_network, load_state_dict
from .face_model_file import read_npy_header
from .template import load_five_point_template, read_lm68

if TYPE_CHECKING:
    import torch


# --------------------------------------------------------------------------- report

@dataclass(frozen=True)
class AssetFileStatus:
    """What the quick check found for one asset file."""

    name: str
    path: Path
    state: str            # "present", "missing" or "malformed"
    reason: str = ""
    size: int = 0

    @property
    def ok(self) -> bool:
        return self.state == "present"


@dataclass(frozen=True)
class AssetReport:
    """The result of `check_assets`: per-file state and what can run with it."""

    folder: Path
    files: dict[str, AssetFileStatus] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [s.name for s in self.files.values() if s.state == "missing"]

    @property
    def malformed(self) -> list[AssetFileStatus]:
        return [s for s in self.files.values() if s.state == "malformed"]

    @property
    def ok(self) -> bool:
        """Every asset file is present and looks right."""
        return all(s.ok for s in self.files.values())

    def required_for(self, backbone: str, detector: bool = True) -> list[str]:
        """The files a reconstruction with `backbone` (any accepted name) needs, with or
        without the face detector."""
        names = [FACE_MODEL_FILE, LM3D_FILE, find_backbone(backbone).checkpoint,
                 CHECKPOINT_FILES["landmark106"]]
        if detector:
            names.append(CHECKPOINT_FILES["retinaface"])
        return names

    def ok_for(self, backbone: str, detector: bool = True) -> bool:
        """Whether every file `backbone` needs passed the quick check."""
        return all(self.files[name].ok for name in self.required_for(backbone, detector))

    @property
    def usable_backbones(self) -> tuple[str, ...]:
        return tuple(b for b in BACKBONE_KINDS if self.ok_for(b))

    @property
    def message(self) -> str:
        """A human summary: what is usable, what is missing or broken, and where to get it."""
        if self.ok:
            return f"All 3DDFA-V3 assets found in {self.folder}."
        lines = []
        missing = self.missing
        if not self.folder.is_dir():
            lines.append(f"The 3DDFA-V3 assets folder {self.folder} does not exist; it should hold "
                         f"{', '.join(missing)}.")
        elif missing:
            lines.append(f"Missing in {self.folder}: {', '.join(missing)}.")
        for status in self.malformed:
            lines.append(f"{status.name} is unusable: {status.reason}.")
        usable = self.usable_backbones
        if usable:
            lines.append(f"Usable backbones: {', '.join(usable)}.")
        else:
            lines.append("No backbone can run yet.")
        lines.append(asset_listing())
        return " ".join(lines)

    def __str__(self) -> str:
        """One line per file, then the summary (what the command line prints)."""
        lines = [f"3DDFA-V3 assets in {self.folder}:"]
        for status in self.files.values():
            detail = f" ({status.reason})" if status.reason else ""
            size = f", {human_size(status.size)}" if status.size else ""
            lines.append(f"  {status.state:9s} {status.name}{size}{detail}")
        lines.append(self.message)
        return "\n".join(lines)

    def raise_unless_ok_for(self, backbone: str, detector: bool = True) -> None:
        """Raise AssetError with the report's message unless `backbone` can run."""
        if not self.ok_for(backbone, detector):
            names = [n for n in self.required_for(backbone, detector) if not self.files[n].ok]
            raise AssetError(f"3DDFA-V3 with backbone {find_backbone(backbone).name} cannot run: "
                             f"{', '.join(names)} missing or broken. {self.message}")


def check_assets(folder: str | os.PathLike[str], *, load: bool = False,
                 cache_dir: str | os.PathLike[str] | None = None) -> AssetReport:
    """Check an assets folder.

    The quick check (the default, for a live preferences display) looks at
    existence, size, and the first bytes / archive directory of each file and
    loads nothing large. With `load=True` every file that passes it is then
    loaded exactly as a reconstruction loads it (`verify_asset_file`): the
    checkpoints read, checked for NaN / infinite weights and fitted key by key
    and shape by shape to their network, the face model parsed and validated
    (and its cache written to `cache_dir`), the template read; a file that
    fails is reported "malformed" with the loader's message. So a folder that
    passes the loading check will load. Raises DependencyError when a loader
    needs a package (torch, SciPy) that is missing.
    """
    root = resolve_assets_folder(folder)
    statuses: dict[str, AssetFileStatus] = {}
    for name in ASSET_FILES:
        status = _check_file(root / name, name)
        if load and status.ok:
            try:
                verify_asset_file(root, name, cache_dir=cache_dir)
            except AssetError as exc:
                status = AssetFileStatus(name, status.path, "malformed", str(exc).rstrip("."), status.size)
        statuses[name] = status
    return AssetReport(root, statuses)


def verify_asset_file(folder: str | os.PathLike[str], name: str,
                      cache_dir: str | os.PathLike[str] | None = None) -> None:
    """Load one asset file as reconstruction does and run the same checks; AssetError if it fails.

    Checkpoints go through `load_state_dict` (safe load, finite weights) and
    the same key and shape fit as `load_asset_network`, against the network
    built on torch's "meta" device (no memory, no time); the face model
    through `load_face_model_arrays`; the template through `load_five_point_template`.
    """
    root = resolve_assets_folder(folder)
    if name == FACE_MODEL_FILE:
        load_face_model_arrays(root / name, cache_dir=cache_dir)
    elif name == LM3D_FILE:
        load_five_point_template(root / name)
    else:
        kind = next((k for k, v in CHECKPOINT_FILES.items() if v == name), None)
        if kind is None:
            raise ValueError(f"{name} is not a 3DDFA-V3 asset file; expected one of {', '.join(ASSET_FILES)}")
        torch = require_torch()
        from ..networks import build_network, normalize_state_dict

        state_dict = load_state_dict(root / name, kind)
        with torch.device("meta"):
            layout = build_network(kind)
        with fit_errors(name, kind):
            normalize_state_dict(state_dict, layout, kind)


def _check_file(path: Path, name: str) -> AssetFileStatus:
    try:
        if not path.is_file():
            return AssetFileStatus(name, path, "missing")
        size = path.stat().st_size
    except OSError as exc:
        return AssetFileStatus(name, path, "missing", f"cannot be read ({exc.strerror})")
    try:
        if name == FACE_MODEL_FILE:
            reason = _quick_check_face_model(path, size)
        elif name == LM3D_FILE:
            reason = _quick_check_mat(path, size)
        else:
            kind = next(k for k, v in CHECKPOINT_FILES.items() if v == name)
            reason = _quick_check_checkpoint(path, size, kind)
    except OSError as exc:
        reason = f"cannot be read ({exc.strerror or exc})"
    return AssetFileStatus(name, path, "malformed" if reason else "present", reason, size)


def _quick_check_checkpoint(path: Path, size: int, kind: str) -> str:
    minimum = int(PARAMETER_COUNTS[kind] * 4 * MIN_SIZE_FRACTION)
    if size < minimum:
        return (f"only {human_size(size)}, expected about {human_size(PARAMETER_COUNTS[kind] * 4)} "
                "(an incomplete or wrong download)")
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    if head.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, ValueError) as exc:
            return f"a damaged PyTorch archive ({exc}); the download is probably incomplete"
        if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
            return "a zip archive, but not a PyTorch checkpoint (no data.pkl)"
        return ""
    if is_legacy_torch(head):
        return ""
    return "not a PyTorch checkpoint (neither a torch zip archive nor a legacy torch file)"


def _quick_check_face_model(path: Path, size: int) -> str:
    if size < MIN_FACE_MODEL_BYTES:
        return f"only {human_size(size)}: too small to be the face model"
    with open(path, "rb") as handle:
        try:
            header = read_npy_header(handle)
        except AssetError as exc:
            return str(exc)
    if header[0] != np.dtype(object) or header[1] != ():
        return f"a numpy array of dtype {header[0]} and shape {header[1]}, not the face-model dictionary"
    return ""


def _quick_check_mat(path: Path, size: int) -> str:
    if size > MAX_MAT_BYTES:
        return f"{human_size(size)}: far too large for the 68-point template"
    try:
        return read_lm68(path)[1]
    except DependencyError:
        # Without SciPy (it reads the file at load time) only the MATLAB header is checked.
        with open(path, "rb") as handle:
            head = handle.read(20)
        return "" if head.startswith(b"MATLAB 5.0 MAT-file") else "not a MATLAB 5 .mat file"


