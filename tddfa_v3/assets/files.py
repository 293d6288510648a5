# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The asset files: their names, what each is, where they come from, where they lie,
and what their first bytes look like.

Imports the standard library, `installer.sources` and the core's backbone table.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from ..backbones import BACKBONE_TABLE

try:  # inside the add-on, and in tests: the one installer
    from ...installer import sources as _sources
except ImportError:  # `python -m tddfa_v3` from a clone runs the packages top-level
    _sources = importlib.import_module("installer.sources")

#: Where users download the assets from (the files live in its ``assets/`` folder): `installer.sources`.
ASSET_SOURCE_URL: str = _sources.ASSETS_DATASET_URL
ASSET_SOURCE_HINT: str = _sources.ASSETS_HINT

FACE_MODEL_FILE = "face_model.npy"
LM3D_FILE = "similarity_Lm3D_all.mat"

#: Checkpoint file per network kind (the kind names of tddfa_v3.networks).
CHECKPOINT_FILES: dict[str, str] = {
    **{b.kind: b.checkpoint for b in BACKBONE_TABLE},   # the regressors: the backbone table's files
    "retinaface": "retinaface_resnet50_2020-07-20_old_torch.pth",
    "landmark106": "large_base_net.pth",
}

#: Every asset file, in the order reports list them.
ASSET_FILES: tuple[str, ...] = (FACE_MODEL_FILE, *CHECKPOINT_FILES.values(), LM3D_FILE)

#: Regressor backbones (their printed names, `tddfa_v3.backbones`) and their network kind.
BACKBONE_KINDS: dict[str, str] = {b.name: b.kind for b in BACKBONE_TABLE}

#: Float32 parameter count of each network (from its state-dict layout). A file
#: holding less than about half of that (fp16 would be exactly half) is a
#: truncated or wrong download.
PARAMETER_COUNTS: dict[str, int] = {
    "recon_resnet50": 24_087_745,
    "recon_mbnetv3": 3_243_329,
    "landmark106": 1_745_024,
    "retinaface": 27_351_584,
}
MIN_SIZE_FRACTION = 0.45

#: What each asset file is for and about how big it is (float32 checkpoints: 4 bytes per
#: parameter), for the messages that say what to download.
ASSET_FILE_INFO: dict[str, tuple[str, str]] = {
    FACE_MODEL_FILE: ("the face model, the BFM09 front crop of 35,709 vertices", "about 100-200 MB"),
    CHECKPOINT_FILES["recon_resnet50"]: ("the ResNet-50 regressor, backbone resnet50", "about 92 MB"),
    CHECKPOINT_FILES["recon_mbnetv3"]: ("the MobileNet-V3 regressor, backbone mobilenetv3", "about 12 MB"),
    CHECKPOINT_FILES["retinaface"]: ("the RetinaFace face detector, not needed with a given face box",
                                     "about 104 MB"),
    CHECKPOINT_FILES["landmark106"]: ("the 106-point landmark network", "about 7 MB"),
    LM3D_FILE: ("the 5-point alignment template", "about 1 KB"),
}


def asset_listing() -> str:
    """Every asset file with what it is, its size and where it comes from, in one sentence."""
    files = "; ".join(f"{name} ({ASSET_FILE_INFO[name][0]}, {ASSET_FILE_INFO[name][1]})" for name in ASSET_FILES)
    return f"The 3DDFA-V3 assets are {len(ASSET_FILES)} files: {files}; download them from {ASSET_SOURCE_HINT}."

#: torch.save before zip archives (PyTorch < 1.6) starts with a pickle (PROTO opcode 0x80)
#: of the magic number 0x1950a86a20f9469cfc6c (a LONG1, little-endian bytes below).
_LEGACY_TORCH_MAGIC = b"\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
HEAD_BYTES = 16
ZIP_MAGIC = b"PK\x03\x04"
NPY_MAGIC = b"\x93NUMPY"

#: Sizes that make no sense for the small files (guards against pointing at a wrong file).
MAX_MAT_BYTES = 16 * 1024 * 1024
MIN_FACE_MODEL_BYTES = 1024


def is_legacy_torch(head: bytes) -> bool:
    return head.startswith(b"\x80") and _LEGACY_TORCH_MAGIC in head

def resolve_assets_folder(folder: str | os.PathLike[str]) -> Path:
    """The folder holding the asset files: `folder` itself, or its ``assets/`` subfolder
    when the user picked the downloaded dataset's root."""
    path = Path(folder).expanduser()
    if not (path / FACE_MODEL_FILE).exists() and (path / "assets" / FACE_MODEL_FILE).exists():
        return path / "assets"
    return path

def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


