# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The 3DDFA-V3 coefficient regressor: a backbone, global average pooling, seven 1x1 heads."""

from __future__ import annotations

from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import names_text
from ._layers import check_image_batch
from .mobilenetv3 import MobileNetV3LargeBody
from .resnet import ResNet50Body

#: Output sizes of the seven heads, in concatenation order:
#: identity, expression, albedo, angles, SH lighting, (tx, ty), tz.
HEAD_SIZES: tuple[int, ...] = (80, 64, 80, 3, 27, 2, 1)
COEFF_COUNT = sum(HEAD_SIZES)  # 257

#: Slices of the 257-vector, as the reference's ``split_alpha``.
COEFF_SLICES: dict[str, slice] = {
    "id": slice(0, 80),
    "exp": slice(80, 144),
    "alb": slice(144, 224),
    "angle": slice(224, 227),
    "sh": slice(227, 254),
    "trans": slice(254, 257),
}

Backbone = Literal["resnet50", "mobilenetv3"]


class ReconNet(nn.Module):
    """Regressor from an aligned 224x224 RGB crop in [0, 1] to the 257 coefficients.

    State-dict keys: ``backbone.*`` and ``final_layers.{0..6}.{weight,bias}``,
    as in the released ``net_recon.pth`` / ``net_recon_mbnet.pth``.
    """

    def __init__(self, backbone: Backbone = "resnet50") -> None:
        super().__init__()
        if backbone == "resnet50":
            self.backbone: nn.Module = ResNet50Body()
            feat_dim = 2048
        elif backbone == "mobilenetv3":
            self.backbone = MobileNetV3LargeBody()
            feat_dim = MobileNetV3LargeBody.out_channels
        else:
            raise ValueError(f"unknown backbone {backbone!r}; expected {names_text()}")
        self.backbone_name: Backbone = backbone
        self.feat_dim = feat_dim
        self.final_layers = nn.ModuleList(
            [nn.Conv2d(feat_dim, n, kernel_size=1, bias=True) for n in HEAD_SIZES])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone output after global average pooling: (B, 2048) or (B, 960)."""
        check_image_batch(x, 3, None, "ReconNet")
        return F.adaptive_avg_pool2d(self.backbone(x), 1).flatten(1)

    def heads(self, feat: torch.Tensor) -> torch.Tensor:
        """The seven 1x1 heads on pooled features, concatenated: (B, 257).

        A 1x1 conv on a 1x1 map is a matrix product; the heads' weights are
        stacked so one GEMM does all seven.
        """
        layers = [cast(nn.Conv2d, layer) for layer in self.final_layers]
        weight = torch.cat([layer.weight.flatten(1) for layer in layers], 0)
        bias = torch.cat([layer.bias for layer in layers if layer.bias is not None], 0)
        return F.linear(feat, weight, bias)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha (B, 257), pooled features)."""
        feat = self.features(x)
        return self.heads(feat), feat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 224, 224) in [0, 1] -> (B, 257) coefficients."""
        return self.heads(self.features(x))


def split_coefficients(alpha: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split (B, 257) into id, exp, alb, angle, sh, trans (views)."""
    if alpha.shape[-1] != COEFF_COUNT:
        raise ValueError(f"expected {COEFF_COUNT} coefficients in the last axis, got {alpha.shape[-1]}")
    return {name: alpha[..., part] for name, part in COEFF_SLICES.items()}
