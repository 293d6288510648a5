# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The user-downloaded 3DDFA-V3 assets: checking, safe loading, and a fast face-model cache.

One module per concern: `files` (names, sources, locations), `check` (the folder
check and report), `checkpoints` (safe weights loading), `template` (the 5-point
template), `face_model_file` (face_model.npy's restricted unpickler and
validation) and `cache` (the .npz face-model cache). Every name callers use is
re-exported here, so `tddfa_v3.assets.X` is the one way they reach them (what the
modules share only among themselves, file magics and size limits, stays in `files`,
`checkpoints`, `face_model_file` and `template`). Imports numpy,
the standard library, `installer.sources` and `io_nv3dmm.atomic`; torch and
SciPy only inside the loaders.

The assets are the ``assets/`` folder of the Hugging Face dataset
``Zidu-Wang/3DDFA-V3`` (`installer.download` fetches them).

Safety: every file here comes from the internet, and both ``.pth`` and
``face_model.npy`` are pickles, which can run code when loaded naively.
Checkpoints are read only with ``torch.load(weights_only=True)``;
``face_model.npy`` is read with a restricted unpickler that can rebuild numpy
arrays and nothing else, then converted once into a plain ``.npz`` cache
(``allow_pickle=False``) that later sessions load quickly.
"""

from __future__ import annotations

from .cache import (
    CACHE_APP_NAME, CACHE_FORMAT_VERSION, cache_path_for, default_cache_dir,
    load_face_model_arrays, read_face_model_cache, write_face_model_cache,
)
from .check import AssetFileStatus, AssetReport, check_assets, verify_asset_file
from .checkpoints import check_finite_weights, load_asset_network, load_state_dict, unwrap_state_dict
from .face_model_file import (
    LANDMARK_SETS, N_ALB, N_EXP, N_ID, N_PARALLEL, N_PARTS, REQUIRED_KEYS, FaceModelArrays,
    face_model_arrays_from_dict, unpickle_face_model_dict,
)
from .files import (
    ASSET_FILE_INFO, ASSET_FILES, ASSET_SOURCE_HINT, ASSET_SOURCE_URL, BACKBONE_KINDS, CHECKPOINT_FILES,
    FACE_MODEL_FILE, LM3D_FILE, asset_listing, resolve_assets_folder,
)
from .template import five_point_template, load_five_point_template, load_lm68_template

__all__ = [
    "CACHE_APP_NAME", "CACHE_FORMAT_VERSION", "cache_path_for", "default_cache_dir",
    "load_face_model_arrays", "read_face_model_cache", "write_face_model_cache",
    "AssetFileStatus", "AssetReport", "check_assets", "verify_asset_file",
    "check_finite_weights", "load_asset_network", "load_state_dict", "unwrap_state_dict",
    "LANDMARK_SETS", "N_ALB", "N_EXP", "N_ID", "N_PARALLEL", "N_PARTS", "REQUIRED_KEYS", "FaceModelArrays",
    "face_model_arrays_from_dict", "unpickle_face_model_dict",
    "ASSET_FILE_INFO", "ASSET_FILES", "ASSET_SOURCE_HINT", "ASSET_SOURCE_URL", "BACKBONE_KINDS",
    "CHECKPOINT_FILES", "FACE_MODEL_FILE", "LM3D_FILE", "asset_listing", "resolve_assets_folder",
    "five_point_template", "load_five_point_template", "load_lm68_template",
]
