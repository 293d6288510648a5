# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The 5-point alignment template, read from ``similarity_Lm3D_all.mat`` (SciPy).

Imports numpy; SciPy lazily.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..dependencies import require_scipy_io
from ..errors import AssetError
from .files import ASSET_SOURCE_HINT, LM3D_FILE, resolve_assets_folder


F64 = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- 68-point template

def read_lm68(path: Path) -> tuple[F64 | None, str]:
    """(the 'lm' array, "") or (None, what is wrong)."""
    loadmat = require_scipy_io().loadmat
    try:
        content = loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError... for junk
        return None, f"not a readable MATLAB file ({exc})"
    lm = content.get("lm")
    if not isinstance(lm, np.ndarray) or lm.shape != (68, 3) or not np.issubdtype(lm.dtype, np.floating):
        found = "no 'lm' array" if not isinstance(lm, np.ndarray) else f"'lm' of shape {lm.shape} {lm.dtype}"
        return None, f"expected a 68x3 float array 'lm', found {found}"
    if not np.all(np.isfinite(lm)):
        return None, "its 'lm' array holds NaN or infinite values"
    return lm, ""


def load_lm68_template(path: str | os.PathLike[str]) -> F64:
    """The (68, 3) landmark template of ``similarity_Lm3D_all.mat`` (its ``lm`` array, dtype kept)."""
    file = Path(path)
    if not file.is_file():
        raise AssetError(f"{file.name} is missing ({file}). Download it from {ASSET_SOURCE_HINT}.")
    lm, reason = read_lm68(file)
    if lm is None:
        raise AssetError(f"{file.name} is unusable: {reason}. Download it again from {ASSET_SOURCE_HINT}.")
    return lm


def five_point_template(lm68: npt.ArrayLike) -> F64:
    """The 5-point crop template from the 68 points, as the reference's ``load_lm3d``.

    Rows (1-based): mean(37, 40), mean(43, 46), 31, 49, 55, i.e. image-left
    eye, image-right eye, nose tip, mouth corners. Computed in the file's
    dtype (float32 for the real file) and returned as float64, like the reference.
    """
    lm = np.asarray(lm68)
    if lm.shape != (68, 3):
        raise AssetError(f"the landmark template must be 68x3, got {lm.shape}")
    rows = np.array([31, 37, 40, 43, 46, 49, 55]) - 1
    five = np.stack([lm[rows[0]], np.mean(lm[rows[[1, 2]]], 0), np.mean(lm[rows[[3, 4]]], 0),
                     lm[rows[5]], lm[rows[6]]], axis=0)
    return five[[1, 2, 0, 3, 4]].astype(np.float64)


def load_five_point_template(folder_or_file: str | os.PathLike[str]) -> F64:
    """The (5, 3) crop template from ``similarity_Lm3D_all.mat`` (a folder or the file itself)."""
    path = Path(folder_or_file)
    if path.is_dir() or not path.suffix:
        path = resolve_assets_folder(path) / LM3D_FILE
    return five_point_template(load_lm68_template(path))


