# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The regressor backbones: one table of their names, used by the command line,
the library, the Blender operator, the preferences and every error message.

Light on purpose (no numpy, no torch): the add-on's preferences import it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backbone:
    """One regressor network and every name it goes by."""

    name: str                       # the name we print and the command line's --backbone value
    identifier: str                 # the Blender enum identifier (operator, preferences, panel)
    label: str                      # the UI label
    kind: str                       # the network kind of tddfa_v3.networks
    checkpoint: str                 # its file in the assets folder
    description: str
    aliases: tuple[str, ...] = ()   # other accepted spellings (the reference's own names)


#: Every backbone, the default first.
BACKBONE_TABLE: tuple[Backbone, ...] = (
    Backbone("resnet50", "RESNET50", "ResNet-50", "recon_resnet50", "net_recon.pth",
             "The more accurate regressor", aliases=("resnet", "resnet-50", "resnet_50")),
    Backbone("mobilenetv3", "MOBILENETV3", "MobileNet-V3", "recon_mbnetv3", "net_recon_mbnet.pth",
             "The lighter, faster regressor", aliases=("mbnetv3", "mobilenet", "mobilenet-v3", "mobilenet_v3")),
)

#: The names to print and offer, in table order.
BACKBONE_NAMES: tuple[str, ...] = tuple(b.name for b in BACKBONE_TABLE)
DEFAULT_BACKBONE = BACKBONE_TABLE[0].name

_BY_SPELLING: dict[str, Backbone] = {
    spelling.lower(): backbone
    for backbone in BACKBONE_TABLE
    for spelling in (backbone.name, backbone.identifier, backbone.kind, *backbone.aliases)
}


def names_text() -> str:
    """"resnet50 or mobilenetv3" (the names we print)."""
    return " or ".join(BACKBONE_NAMES)


def find_backbone(name: str) -> Backbone:
    """The backbone called `name` (its name, Blender identifier, network kind or an alias,
    any case); ValueError naming the accepted names otherwise."""
    found = _BY_SPELLING.get(str(name).strip().lower())
    if found is None:
        raise ValueError(f"unknown backbone {name!r}: use {names_text()}")
    return found


def canonical_backbone(name: str) -> str:
    """The printed name of backbone `name` (e.g. "mbnetv3" -> "mobilenetv3")."""
    return find_backbone(name).name


def enum_items() -> list[tuple[str, str, str]]:
    """Blender EnumProperty items (identifier, label, description) of every backbone."""
    return [(b.identifier, b.label, f"{b.description} ({b.checkpoint})") for b in BACKBONE_TABLE]
