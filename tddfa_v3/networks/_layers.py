# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Small building blocks shared by the networks (conv + BN [+ activation])."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1,
            padding: int | None = None, groups: int = 1,
            activation: nn.Module | None = None) -> nn.Sequential:
    """Conv (no bias) + BatchNorm [+ activation], as ``Sequential`` indices 0, 1[, 2].

    The indices matter: they are the state-dict key names of the checkpoints.
    """
    if padding is None:
        padding = (kernel - 1) // 2
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, stride, padding, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation)
    return nn.Sequential(*layers)


def count_parameters(module: nn.Module) -> int:
    """Number of parameter values of a module (for diagnostics)."""
    return sum(int(p.numel()) for p in module.parameters())


def check_image_batch(x: torch.Tensor, channels: int, size: tuple[int, int] | None, what: str) -> None:
    """Raise ValueError unless `x` is a (B, channels, H, W) floating-point batch."""
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{what} expects a (B, {channels}, H, W) tensor, got shape {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{what} expects a floating-point tensor, got {x.dtype}")
    if size is not None and tuple(x.shape[2:]) != size:
        raise ValueError(f"{what} expects {size[0]}x{size[1]} images, got {x.shape[2]}x{x.shape[3]}")
