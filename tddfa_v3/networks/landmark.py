# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The 106-point landmark network (HRN's "large base" net) and its soft-argmax."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import check_image_batch, conv_bn

HEATMAP_SIZE = 14
NUM_POINTS = 106

#: Per inverted residual block 2..17: in, out, stride, residual, expansion.
_BLOCKS: tuple[tuple[int, int, int, bool, int], ...] = (
    (64, 64, 1, False, 2),
    (64, 64, 2, False, 2),
    (64, 64, 1, True, 2),
    (64, 64, 1, True, 2),
    (64, 64, 1, True, 2),
    (64, 64, 1, True, 2),
    (64, 128, 2, False, 2),
    (128, 128, 1, False, 4),
    (128, 128, 1, True, 4),
    (128, 128, 1, True, 4),
    (128, 128, 1, True, 4),
    (128, 128, 1, True, 4),
    (128, 128, 1, True, 4),
    (128, 128, 1, False, 2),
    (128, 128, 2, False, 2),
    (128, 128, 1, False, 2),
)


class InvertedResidualPReLU(nn.Module):
    """1x1 expand, BN, PReLU, depthwise 3x3, BN, PReLU, 1x1 project, BN (+ identity)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, residual: bool,
                 expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.residual = residual
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual:
            return x + self.conv(x)
        return self.conv(x)


class LandmarkNet(nn.Module):
    """(B, 3, 224, 224) normalised crop -> (B, 106, 14, 14) heatmaps.

    Attributes ``block1`` .. ``block19`` are the checkpoint's key prefixes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.block1 = conv_bn(3, 64, 3, 2, 1, activation=nn.PReLU(64))
        for number, (cin, cout, stride, residual, expansion) in enumerate(_BLOCKS, start=2):
            self.add_module(f"block{number}", InvertedResidualPReLU(cin, cout, stride, residual, expansion))
        self.block18 = conv_bn(128, 256, 3, 1, 1, activation=nn.PReLU(256))
        self.block19 = nn.Conv2d(256, NUM_POINTS, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, 3, None, "LandmarkNet")
        for block in self.children():   # block1 .. block19, in registration order
            x = block(x)
        return x

    def points(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 106, 2) points in [0, 1) of the crop (see `soft_argmax`)."""
        return soft_argmax(self.forward(x))


def soft_argmax(heatmaps: torch.Tensor) -> torch.Tensor:
    """Soft-argmax of (B, K, H, W) heatmaps -> (B, K, 2), the reference's way.

    The reference builds its grid with ``torch.meshgrid`` in "ij" indexing, so
    the value it calls x is sum(p * row) / W and y is sum(p * column) / H.
    The released weights were trained with that convention; it is kept.
    """
    if heatmaps.dim() != 4:
        raise ValueError(f"soft_argmax expects (B, K, H, W) heatmaps, got shape {tuple(heatmaps.shape)}")
    batch, count, height, width = heatmaps.shape
    prob = F.softmax(heatmaps.reshape(batch, count, height * width), dim=2).reshape(batch, count, height, width)
    rows = torch.arange(height, device=heatmaps.device, dtype=prob.dtype)[:, None].expand(height, width)
    cols = torch.arange(width, device=heatmaps.device, dtype=prob.dtype)[None, :].expand(height, width)
    x = (prob * rows).reshape(batch, count, -1).sum(2) / width
    y = (prob * cols).reshape(batch, count, -1).sum(2) / height
    return torch.stack((x, y), dim=2)
