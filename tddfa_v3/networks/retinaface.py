# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""RetinaFace with a ResNet-50 body (the "ternaus" flavour used by 3DDFA-V3).

ResNet-50 layers 2/3/4 -> FPN (256 channels, nearest-neighbour top-down
merge) -> one SSH context module per level -> 1x1 heads with 2 anchors per
location (class x2, box x4, landmarks x10). With 256 channels the
reference's LeakyReLU slope is 0, i.e. a plain ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import check_image_batch, conv_bn
from .resnet import ResNet50Body

NUM_ANCHORS = 2
FPN_CHANNELS = 256


class FPN(nn.Module):
    """Lateral 1x1 conv-BN-ReLU per level; top-down nearest upsampling, add, 3x3 conv-BN-ReLU."""

    def __init__(self, in_channels: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        self.output1 = conv_bn(in_channels[0], out_channels, 1, 1, 0, activation=nn.ReLU(inplace=True))
        self.output2 = conv_bn(in_channels[1], out_channels, 1, 1, 0, activation=nn.ReLU(inplace=True))
        self.output3 = conv_bn(in_channels[2], out_channels, 1, 1, 0, activation=nn.ReLU(inplace=True))
        self.merge1 = conv_bn(out_channels, out_channels, 3, 1, 1, activation=nn.ReLU(inplace=True))
        self.merge2 = conv_bn(out_channels, out_channels, 3, 1, 1, activation=nn.ReLU(inplace=True))

    def forward(self, c2: torch.Tensor, c3: torch.Tensor,
                c4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p1 = self.output1(c2)
        p2 = self.output2(c3)
        p3 = self.output3(c4)
        p2 = self.merge2(p2 + F.interpolate(p3, size=p2.shape[2:], mode="nearest"))
        p1 = self.merge1(p1 + F.interpolate(p2, size=p1.shape[2:], mode="nearest"))
        return p1, p2, p3


class SSH(nn.Module):
    """Context module: 3x3 branch (half the channels) and 5x5 / 7x7 branches built from
    stacked 3x3 convs (a quarter each), concatenated, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels % 4:
            raise ValueError("SSH output channels must be a multiple of 4")
        quarter = out_channels // 4
        self.conv3X3 = conv_bn(in_channels, out_channels // 2, 3, 1, 1)
        self.conv5X5_1 = conv_bn(in_channels, quarter, 3, 1, 1, activation=nn.ReLU(inplace=True))
        self.conv5X5_2 = conv_bn(quarter, quarter, 3, 1, 1)
        self.conv7X7_2 = conv_bn(quarter, quarter, 3, 1, 1, activation=nn.ReLU(inplace=True))
        self.conv7x7_3 = conv_bn(quarter, quarter, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3 = self.conv3X3(x)
        shared = self.conv5X5_1(x)
        branch5 = self.conv5X5_2(shared)
        branch7 = self.conv7x7_3(self.conv7X7_2(shared))
        return F.relu(torch.cat((branch3, branch5, branch7), dim=1), inplace=True)


class _Head(nn.Module):
    """1x1 conv producing `per_anchor` values per anchor, flattened to (B, H*W*anchors, per_anchor)."""

    def __init__(self, in_channels: int, per_anchor: int) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(in_channels, NUM_ANCHORS * per_anchor, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        # Row-major (row, column, anchor) order: the anchors of a cell are consecutive.
        return out.reshape(out.shape[0], -1, self.per_anchor)


class RetinaFace(nn.Module):
    """(B, 3, H, W) ImageNet-normalised image -> (loc (B,N,4), conf (B,N,2), landm (B,N,10)).

    N = 2 (H/8 W/8 + H/16 W/16 + H/32 W/32); 10752 for 512x512. Outputs are
    raw (no softmax), levels concatenated in order of increasing stride.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = ResNet50Body()
        self.fpn = FPN((512, 1024, 2048), FPN_CHANNELS)
        self.ssh1 = SSH(FPN_CHANNELS, FPN_CHANNELS)
        self.ssh2 = SSH(FPN_CHANNELS, FPN_CHANNELS)
        self.ssh3 = SSH(FPN_CHANNELS, FPN_CHANNELS)
        self.ClassHead = nn.ModuleList([_Head(FPN_CHANNELS, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([_Head(FPN_CHANNELS, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([_Head(FPN_CHANNELS, 10) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        check_image_batch(x, 3, None, "RetinaFace")
        p1, p2, p3 = self.fpn(*self.body.forward_levels(x))
        features = (self.ssh1(p1), self.ssh2(p2), self.ssh3(p3))
        loc = torch.cat([head(f) for head, f in zip(self.BboxHead, features)], dim=1)
        conf = torch.cat([head(f) for head, f in zip(self.ClassHead, features)], dim=1)
        landm = torch.cat([head(f) for head, f in zip(self.LandmarkHead, features)], dim=1)
        return loc, conf, landm
