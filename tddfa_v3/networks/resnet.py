# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""ResNet-50 v1.5 body (stride in the 3x3 conv), with torchvision's attribute names.

The names (conv1, bn1, layer1..layer4, each block's conv1/bn1/conv2/bn2/conv3/
bn3/downsample.0/.1) are the state-dict keys of the 3DDFA-V3 regressor
(``backbone.*``) and of RetinaFace (``body.*``), so both load strictly.
"""

from __future__ import annotations

import torch
from torch import nn


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand x4, identity or projection shortcut."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


def _make_layer(in_channels: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [Bottleneck(in_channels, width, stride)]
    layers += [Bottleneck(width * Bottleneck.expansion, width) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ResNet50Body(nn.Module):
    """Stem + layer1..layer4 (blocks 3, 4, 6, 3); no pooling head, no fc.

    ``forward`` returns the layer4 map (B, 2048, H/32, W/32);
    ``forward_levels`` returns layer2, layer3 and layer4 maps (strides 8, 16, 32).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _make_layer(64, 64, 3, 1)
        self.layer2 = _make_layer(256, 128, 4, 2)
        self.layer3 = _make_layer(512, 256, 6, 2)
        self.layer4 = _make_layer(1024, 512, 3, 2)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_levels(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Feature maps of layer2, layer3, layer4."""
        c2 = self.layer2(self.layer1(self._stem(x)))
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return c2, c3, c4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self._stem(x)))))
