# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The network checkpoints: safe loading (`torch.load(weights_only=True)`), finite
weights, and fitting them into their networks (`load_asset_network`).

Imports torch lazily (`require_torch`).
"""

from __future__ import annotations

import contextlib
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping


from ..dependencies import require_torch
from ..errors import AssetError, DependencyError
from .files import (
    ASSET_SOURCE_HINT, CHECKPOINT_FILES, HEAD_BYTES, ZIP_MAGIC, is_legacy_torch, resolve_assets_folder,
)

if TYPE_CHECKING:
    import torch


# --------------------------------------------------------------------------- checkpoints

def load_state_dict(path: str | os.PathLike[str], kind: str) -> dict[str, "torch.Tensor"]:
    """Load one checkpoint safely (weights only) and unwrap it as the real files are laid out.

    ``net_recon.pth`` / ``net_recon_mbnet.pth`` hold ``{"net_recon": sd}``,
    ``large_base_net.pth`` holds ``{"state_dict": sd}`` (keys may start with
    ``module.``), the RetinaFace file is a plain state dict.
    """
    if kind not in CHECKPOINT_FILES:
        raise ValueError(f"unknown network kind {kind!r}; expected one of {sorted(CHECKPOINT_FILES)}")
    torch = require_torch()
    file = Path(path)
    name = file.name
    if not file.is_file():
        raise AssetError(f"{name} is missing ({file}). Download it from {ASSET_SOURCE_HINT}.")
    try:
        with open(file, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError as exc:
        raise AssetError(f"{name} cannot be opened ({exc.strerror}).") from exc
    if not (head.startswith(ZIP_MAGIC) or is_legacy_torch(head)):
        raise AssetError(f"{name} is not a PyTorch checkpoint (neither a torch zip archive nor a legacy "
                         f"torch file). Download it again from {ASSET_SOURCE_HINT}.")
    try:
        loaded = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise AssetError(f"{name} was refused: {_weights_only_reason(str(exc))}. The file is damaged, "
                         f"not the 3DDFA-V3 checkpoint, or malicious; download it again from "
                         f"{ASSET_SOURCE_HINT}.") from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, ValueError... for bad archives
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AssetError(
            f"{name} cannot be read as a PyTorch checkpoint ({first}); the download is probably "
            f"incomplete or damaged. Download it again from {ASSET_SOURCE_HINT}.") from exc
    return unwrap_state_dict(loaded, name)


def _weights_only_reason(message: str) -> str:
    """The useful line of torch's weights-only refusal (its advice to disable the check is dropped)."""
    for line in message.splitlines():
        if "GLOBAL" in line:
            words = line.split()
            target = words[words.index("GLOBAL") + 1] if "GLOBAL" in words[:-1] else line.strip()
            return f"it asks to run code ({target}), which a weights file never needs"
    for line in message.splitlines():
        if line.strip().startswith("Unsupported"):
            return f"it holds data a weights file never holds ({line.strip()})"
    return "it is not a plain weights file"


def unwrap_state_dict(loaded: Any, name: str) -> dict[str, "torch.Tensor"]:
    """The state dict inside a loaded checkpoint object, checked to map names to tensors."""
    torch = require_torch()
    state = loaded
    if isinstance(state, Mapping):
        for wrapper in ("net_recon", "state_dict"):
            inner = state.get(wrapper)
            if isinstance(inner, Mapping):
                state = inner
                break
    if not isinstance(state, Mapping) or not state:
        raise AssetError(
            f"{name} does not hold a network state dict (found {type(loaded).__name__}). "
            f"Download it again from {ASSET_SOURCE_HINT}.")
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise AssetError(
            f"{name} is laid out unexpectedly: entries {', '.join(bad[:5])} are not named tensors. "
            f"Download it again from {ASSET_SOURCE_HINT}.")
    check_finite_weights(state, name)
    return dict(state)


def check_finite_weights(state: Mapping[str, "torch.Tensor"], name: str) -> None:
    """AssetError naming the file and its tensors when any floating weight is NaN or infinite
    (such a network loads, then turns every photo into NaN)."""
    torch = require_torch()
    bad = [key for key, tensor in state.items()
           if tensor.is_floating_point() and tensor.numel() and not bool(torch.isfinite(tensor).all())]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise AssetError(f"{name} holds NaN or infinite weights (in {shown}): the file is damaged; "
                         f"download it again from {ASSET_SOURCE_HINT}.")


@contextlib.contextmanager
def fit_errors(name: str, kind: str) -> Iterator[None]:
    """Turn a checkpoint that does not fit its network into one AssetError naming the file."""
    try:
        yield
    except (DependencyError, MemoryError):
        raise
    except Exception as exc:
        detail = getattr(exc, "details", None) or (
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        detail = detail.rstrip(".")
        if len(detail) > 400:
            detail = detail[:400] + "..."
        raise AssetError(
            f"{name} does not fit the {kind} network: {detail}. It is probably another model's file "
            f"or damaged; download it again from {ASSET_SOURCE_HINT}.") from exc


def load_asset_network(folder: str | os.PathLike[str], kind: str, device: Any = None) -> "torch.nn.Module":
    """Build the network `kind` from its checkpoint in the assets folder, in eval mode.

    Weights are loaded strictly (see ``tddfa_v3.networks.load_network``); any
    mismatch becomes an AssetError naming the file.
    """
    if kind not in CHECKPOINT_FILES:
        raise ValueError(f"unknown network kind {kind!r}; expected one of {sorted(CHECKPOINT_FILES)}")
    path = resolve_assets_folder(folder) / CHECKPOINT_FILES[kind]
    state_dict = load_state_dict(path, kind)
    from ..networks import load_network

    with fit_errors(path.name, kind):
        network = load_network(kind, state_dict)
    if device is not None:
        network = network.to(device)
    return network.eval()


