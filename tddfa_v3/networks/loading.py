# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Building the networks and loading checkpoints strictly, with clear errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

import torch
from torch import nn

from ..backbones import BACKBONE_TABLE, find_backbone
from ..errors import AssetError
from .fusion import fuse_batchnorm
from .landmark import LandmarkNet
from .recon import ReconNet
from .retinaface import RetinaFace

NetworkKind = Literal["recon_resnet50", "recon_mbnetv3", "retinaface", "landmark106"]
NETWORK_KINDS: tuple[str, ...] = get_args(NetworkKind)

#: Where each kind's state dict sits inside the released checkpoint file (None: the file is the state dict).
CHECKPOINT_WRAPPER_KEY: dict[str, str | None] = {
    **{backbone.kind: "net_recon" for backbone in BACKBONE_TABLE},   # the regressors (tddfa_v3.backbones)
    "retinaface": None,
    "landmark106": "state_dict",
}

_REGRESSOR_KINDS = frozenset(backbone.kind for backbone in BACKBONE_TABLE)
_MODULE_PREFIX = "module."
_OPTIONAL_SUFFIX = "num_batches_tracked"
_LIST_LIMIT = 8


class WeightsError(AssetError):
    """A state dict does not fit the network: lists what is missing, extra or mis-shaped."""

    def __init__(self, kind: str, missing: list[str], unexpected: list[str],
                 mismatched: list[tuple[str, tuple[int, ...] | None, tuple[int, ...]]]) -> None:
        self.kind = kind
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_short(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_short(unexpected)}")
        if mismatched:
            shown = [f"{k} (file {'not a tensor' if got is None else list(got)}, network {list(want)})"
                     for k, got, want in mismatched]
            parts.append(f"{len(mismatched)} key(s) with the wrong shape: {_short(shown)}")
        #: What does not fit, without the surrounding sentence (for messages naming the file).
        self.details = "; ".join(parts)
        super().__init__(
            f"the weights do not fit the {kind} network: " + "; ".join(parts)
            + ". Check that the file is the right 3DDFA-V3 asset for this network, unmodified.")


def _short(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    return shown + (f", ... ({len(items) - _LIST_LIMIT} more)" if len(items) > _LIST_LIMIT else "")


def _check_kind(kind: str) -> None:
    if kind not in NETWORK_KINDS:
        raise ValueError(f"unknown network kind {kind!r}; expected one of {', '.join(NETWORK_KINDS)}")


def build_network(kind: str) -> nn.Module:
    """A fresh (randomly initialised) network of the given kind."""
    _check_kind(kind)
    if kind in _REGRESSOR_KINDS:
        return ReconNet(find_backbone(kind).name)   # type: ignore[arg-type]  # a name of the table
    if kind == "retinaface":
        return RetinaFace()
    return LandmarkNet()


def state_dict_from_checkpoint(kind: str, checkpoint: Any) -> Mapping[str, Any]:
    """The state dict inside a loaded checkpoint object, unwrapping the released layout.

    Accepts either the wrapped form of the released file (``{"net_recon": sd}``,
    ``{"state_dict": sd}``) or a bare state dict.
    """
    _check_kind(kind)
    if not isinstance(checkpoint, Mapping):
        raise AssetError(f"the {kind} checkpoint holds a {type(checkpoint).__name__}, not a dictionary of weights")
    wrapper = CHECKPOINT_WRAPPER_KEY[kind]
    if wrapper is not None and wrapper in checkpoint and isinstance(checkpoint[wrapper], Mapping):
        return checkpoint[wrapper]
    return checkpoint


def normalize_state_dict(state_dict: Mapping[str, Any], module: nn.Module,
                         kind: str = "network") -> dict[str, torch.Tensor]:
    """Fit a checkpoint's state dict to `module`'s keys, or raise `WeightsError`.

    Strips a ``module.`` prefix (DataParallel checkpoints), fills absent
    ``num_batches_tracked`` counters (old PyTorch files lack them; unused in
    eval) from the module, and checks every key and shape.
    """
    own = module.state_dict()
    result: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    mismatched: list[tuple[str, tuple[int, ...] | None, tuple[int, ...]]] = []
    for raw_key, value in state_dict.items():
        key = str(raw_key)
        if key.startswith(_MODULE_PREFIX):
            key = key[len(_MODULE_PREFIX):]
        if key not in own:
            unexpected.append(key)
            continue
        if not isinstance(value, torch.Tensor):
            mismatched.append((key, None, tuple(own[key].shape)))
            continue
        if tuple(value.shape) != tuple(own[key].shape):
            mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))
            continue
        result[key] = value
    missing = []
    for key, tensor in own.items():
        if key in result:
            continue
        if key.endswith(_OPTIONAL_SUFFIX):
            result[key] = torch.zeros_like(tensor)
        else:
            missing.append(key)
    if missing or unexpected or mismatched:
        raise WeightsError(kind, missing, unexpected, mismatched)
    return result


def load_network(kind: str, state_dict: Mapping[str, Any], *, device: torch.device | str | None = None,
                 channels_last: bool = True, fuse_bn: bool = False) -> nn.Module:
    """Build the `kind` network, load `state_dict` strictly and return it in eval mode.

    `kind` is one of "recon_resnet50", "recon_mbnetv3", "retinaface",
    "landmark106". A ``module.`` key prefix is stripped and
    ``num_batches_tracked`` entries are optional; anything else missing,
    extra or mis-shaped raises `WeightsError` (an `AssetError`) naming the keys.
    Parameters are stored as float32 whatever the file's dtype, gradients off.

    `channels_last` stores the convolution weights NHWC, which makes the
    convolutions run NHWC even for ordinary NCHW inputs (2-4x faster for the
    depthwise layers on CPU; outputs keep their shapes). `fuse_bn` folds
    BatchNorm into the convolutions (see `fusion.fuse_batchnorm`: faster,
    float32-rounding-level differences, state-dict keys no longer those of
    the checkpoint).
    """
    module = build_network(kind)
    fitted = normalize_state_dict(state_dict, module, kind)
    module.load_state_dict(fitted, strict=True)
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    if fuse_bn:
        fuse_batchnorm(module)
    if device is not None:
        module.to(device)
    if channels_last:
        module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing from the stubs
    return module
