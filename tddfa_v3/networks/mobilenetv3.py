# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""MobileNet-V3-Large body as used by the 3DDFA-V3 light regressor.

This is the variant popularised by the d-li14 PyTorch port, not torchvision's:
squeeze-and-excite with Linear layers (reduction 4, rounded to a multiple of
8) gated by a hard sigmoid, placed after the depthwise BN and before the
activation in expanded blocks. Module indices follow that layout so the
checkpoint's ``backbone.features.*`` keys load strictly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import conv_bn

#: Per block: kernel, expansion, output channels, squeeze-excite, hard-swish, stride.
LARGE_CONFIG: tuple[tuple[int, float, int, bool, bool, int], ...] = (
    (3, 1, 16, False, False, 1),
    (3, 4, 24, False, False, 2),
    (3, 3, 24, False, False, 1),
    (5, 3, 40, True, False, 2),
    (5, 3, 40, True, False, 1),
    (5, 3, 40, True, False, 1),
    (3, 6, 80, False, True, 2),
    (3, 2.5, 80, False, True, 1),
    (3, 2.3, 80, False, True, 1),
    (3, 2.3, 80, False, True, 1),
    (3, 6, 112, True, True, 1),
    (3, 6, 112, True, True, 1),
    (5, 6, 160, True, True, 2),
    (5, 6, 160, True, True, 1),
    (5, 6, 160, True, True, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor`, never more than 10 % down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class HardSwish(nn.Module):
    """x * relu6(x + 3) / 6 (fused kernel)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(x)


class SqueezeExcite(nn.Module):
    """Channel gate: global mean -> Linear -> ReLU -> Linear -> hard sigmoid -> scale."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = make_divisible(channels // reduction, 8)
        # Indices 0 and 2 carry the weights (keys ``fc.0.*``, ``fc.2.*``).
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                nn.Linear(hidden, channels), nn.Hardsigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
        return x * gate[:, :, None, None]


def _activation(hard_swish: bool) -> nn.Module:
    return HardSwish() if hard_swish else nn.ReLU(inplace=True)


class InvertedResidualV3(nn.Module):
    """[1x1 expand, BN, act,] depthwise kxk, BN, [SE,] act, 1x1 project, BN (+ identity)."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, kernel: int, stride: int,
                 squeeze_excite: bool, hard_swish: bool) -> None:
        super().__init__()
        self.identity = stride == 1 and in_channels == out_channels
        se: nn.Module = SqueezeExcite(hidden) if squeeze_excite else nn.Identity()
        depthwise = nn.Conv2d(hidden, hidden, kernel, stride, (kernel - 1) // 2, groups=hidden, bias=False)
        project = nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False)
        layers: list[nn.Module]
        if in_channels == hidden:
            # No expansion: the activation precedes the SE here.
            layers = [depthwise, nn.BatchNorm2d(hidden), _activation(hard_swish), se,
                      project, nn.BatchNorm2d(out_channels)]
        else:
            layers = [nn.Conv2d(in_channels, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden),
                      _activation(hard_swish),
                      depthwise, nn.BatchNorm2d(hidden), se, _activation(hard_swish),
                      project, nn.BatchNorm2d(out_channels)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV3LargeBody(nn.Module):
    """Stem (3x3 s2, 16 ch, h-swish), 15 inverted residual blocks, 1x1 conv 160->960 h-swish.

    ``forward`` returns the (B, 960, H/32, W/32) map (no pooling).
    """

    out_channels = 960

    def __init__(self) -> None:
        super().__init__()
        in_channels = make_divisible(16, 8)
        layers: list[nn.Module] = [conv_bn(3, in_channels, 3, 2, 1, activation=HardSwish())]
        hidden = in_channels
        for kernel, expansion, channels, se, hs, stride in LARGE_CONFIG:
            out_channels = make_divisible(channels, 8)
            hidden = make_divisible(in_channels * expansion, 8)
            layers.append(InvertedResidualV3(in_channels, hidden, out_channels, kernel, stride, se, hs))
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.conv = conv_bn(in_channels, hidden, 1, 1, 0, activation=HardSwish())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.features(x))
