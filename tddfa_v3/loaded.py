# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The loaded networks and face model of one assets folder, backbone and device,
cached for the life of the process (`load`, `clear_cache`).

Imports numpy, torch (lazily, through the asset loaders) and the core's own modules.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .errors import AssetError
from .preprocess import DETECTOR_SIZE

if TYPE_CHECKING:
    import torch

F64 = npt.NDArray[np.float64]


@dataclass
class Loaded:
    """Networks and face model on one device; shared by every Reconstructor with the same key."""

    device: "torch.device"
    assets: Path
    backbone_kind: str
    regressor: Any
    landmarker: Any
    face_model: Any
    arrays: Any
    template5: F64
    cache_dir: str | None
    detector: Any = None
    priors: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ensure_detector(self) -> None:
        """Load RetinaFace on first use (a given face box never needs it)."""
        from .assets import load_asset_network
        from .detection import prior_boxes

        with self.lock:
            if self.detector is None:
                try:
                    detector = load_asset_network(self.assets, "retinaface", device=self.device)
                except AssetError as exc:
                    raise AssetError(f"{exc} Without the face detector, give a face box instead.") from exc
                self.priors = prior_boxes(DETECTOR_SIZE, device=self.device)
                self.detector = detector


_CACHE: dict[tuple[Any, ...], Loaded] = {}
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget every loaded network and face model (frees their memory once unreferenced)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _assets_signature(assets: Path) -> tuple[tuple[str, int, int], ...]:
    """(name, size, mtime) of every file in the assets folder: a re-downloaded file invalidates the cache."""
    from .assets import ASSET_FILES, resolve_assets_folder

    folder = resolve_assets_folder(assets)
    signature = []
    for name in ASSET_FILES:
        try:
            stat = (folder / name).stat()
        except OSError:
            continue
        signature.append((name, int(stat.st_size), int(stat.st_mtime_ns)))
    return tuple(signature)


def load(assets: Path, backbone_kind: str, device: "torch.device", cache_dir: str | None) -> Loaded:
    """The networks and face model of `assets` for `backbone_kind` on `device`, loaded once
    (again only when a file of the assets folder changed)."""
    key = (str(assets), backbone_kind, str(device), _assets_signature(assets))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        from .assets import check_assets, load_asset_network, load_face_model_arrays, load_five_point_template
        from .face_model import ParametricFaceModel

        report = check_assets(assets)
        report.raise_unless_ok_for(backbone_kind, detector=False)
        arrays = load_face_model_arrays(report.folder, cache_dir=cache_dir)
        loaded = Loaded(
            device=device,
            assets=report.folder,
            backbone_kind=backbone_kind,
            regressor=load_asset_network(report.folder, backbone_kind, device=device),
            landmarker=load_asset_network(report.folder, "landmark106", device=device),
            face_model=ParametricFaceModel(arrays, device=device),
            arrays=arrays,
            template5=load_five_point_template(report.folder),
            cache_dir=cache_dir,
        )
        _CACHE[key] = loaded
        return loaded
