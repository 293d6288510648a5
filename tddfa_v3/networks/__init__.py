# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The four 3DDFA-V3 networks, written from the published architecture facts.

- `ReconNet`: ResNet-50 or MobileNet-V3 regressor, 224x224 crop -> 257 coefficients;
- `RetinaFace`: ResNet-50 RetinaFace face detector (raw heads);
- `LandmarkNet`: 106-point landmark heatmap net, with `soft_argmax`.

Module and attribute names reproduce the released checkpoints' state-dict
keys, so `load_network` loads them with strict=True. Imports torch.
"""

from __future__ import annotations

from .fusion import fold_conv_bn, fuse_batchnorm
from .landmark import LandmarkNet, soft_argmax
from .loading import (
    CHECKPOINT_WRAPPER_KEY, NETWORK_KINDS, NetworkKind, WeightsError, build_network, load_network,
    normalize_state_dict, state_dict_from_checkpoint,
)
from .recon import COEFF_COUNT, COEFF_SLICES, HEAD_SIZES, ReconNet, split_coefficients
from .retinaface import RetinaFace

__all__ = [
    "LandmarkNet", "soft_argmax", "ReconNet", "split_coefficients", "RetinaFace",
    "COEFF_COUNT", "COEFF_SLICES", "HEAD_SIZES",
    "CHECKPOINT_WRAPPER_KEY", "NETWORK_KINDS", "NetworkKind", "WeightsError",
    "fold_conv_bn", "fuse_batchnorm", "build_network", "load_network", "normalize_state_dict", "state_dict_from_checkpoint",
]
