# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Inference-time folding of BatchNorm into the preceding convolution.

Eval-mode BatchNorm is a per-channel affine map, so it can be folded into the
convolution before it: w' = w * g / sqrt(v + eps), b' = (b - m) g / sqrt(v + eps) + beta.
That removes one pass over every feature map (about 20 % of RetinaFace's CPU
time). The fold is computed in float64; outputs change only by float32
rounding (about 1e-6 relative). The folded module's state dict no longer has
the checkpoint's keys, so fold after loading.
"""

from __future__ import annotations

import torch
from torch import nn


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new convolution equal to ``bn(conv(x))`` in eval mode."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics")
    weight = conv.weight.detach().double()
    scale = bn.running_var.double().add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight.detach().double()
    bias = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(scale)
    shift = (bias - bn.running_mean.double()) * scale
    if bn.bias is not None:
        shift = shift + bn.bias.detach().double()
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,  # type: ignore[arg-type]
                      conv.stride, conv.padding, conv.dilation, conv.groups,  # type: ignore[arg-type]
                      bias=True, padding_mode=conv.padding_mode, device=conv.weight.device,
                      dtype=conv.weight.dtype)
    with torch.no_grad():
        fused.weight.copy_(weight * scale.reshape(-1, *([1] * (weight.dim() - 1))))
        fused.bias.copy_(shift)  # type: ignore[union-attr]
    fused.weight.requires_grad_(False)
    fused.bias.requires_grad_(False)  # type: ignore[union-attr]
    return fused


_NAMED_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))


def fuse_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every Conv2d -> BatchNorm2d pair of an eval-mode network, in place.

    Handles consecutive pairs inside ``nn.Sequential`` and the ResNet
    bottleneck's conv1/bn1, conv2/bn2, conv3/bn3 attributes. The BN modules
    are replaced by ``nn.Identity``. Returns `module`.
    """
    if module.training:
        raise ValueError("fuse_batchnorm needs an eval-mode network (call .eval() first)")
    for child in module.children():
        fuse_batchnorm(child)
    if isinstance(module, nn.Sequential):
        for index in range(len(module) - 1):
            conv, bn = module[index], module[index + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module[index] = fold_conv_bn(conv, bn)
                module[index + 1] = nn.Identity()
    for conv_name, bn_name in _NAMED_PAIRS:
        named_conv, named_bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
        if isinstance(named_conv, nn.Conv2d) and isinstance(named_bn, nn.BatchNorm2d):
            setattr(module, conv_name, fold_conv_bn(named_conv, named_bn))
            setattr(module, bn_name, nn.Identity())
    return module
