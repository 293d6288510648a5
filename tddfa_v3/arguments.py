# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The command-line arguments the reconstruction's three command lines share.

`python -m tddfa_v3` (photos), `python -m fitting` (a personal Maxine model) and
`python -m animation video` all take a face box and the network choice; each
is defined once here: `face_box` (the --box type) and `network_arguments`
(--device and --backbone from the device and backbone tables, every spelling
the core accepts accepted, the printed name stored).

Light to import (argparse and the two tables, no torch).
"""

from __future__ import annotations

import argparse

from .backbones import BACKBONE_NAMES, BACKBONE_TABLE, DEFAULT_BACKBONE, canonical_backbone
from .devices import DEFAULT_DEVICE, DEVICES

BOX_FORMAT = "X1,Y1,X2,Y2"


def face_box(text: str) -> tuple[float, float, float, float]:
    """--box: "X1,Y1,X2,Y2" (pixels, top-left first, spaces allowed) -> four floats."""
    parts = text.replace(" ", "").split(",")
    try:
        if len(parts) != 4:
            raise ValueError
        x1, y1, x2, y2 = (float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a box is {BOX_FORMAT} (4 numbers, pixels); got {text!r}") from None
    if x2 <= x1 or y2 <= y1:
        raise argparse.ArgumentTypeError(f"box {text!r} is empty: it needs X2 > X1 and Y2 > Y1 (top-left first)")
    return x1, y1, x2, y2


def backbone(text: str) -> str:
    """--backbone: any spelling the core accepts -> its printed name."""
    try:
        return canonical_backbone(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def network_arguments(parser: argparse.ArgumentParser, note: str = "") -> None:
    """--device and --backbone. `note` ("photo only") goes into both help texts."""
    names = ", ".join(
        f"{b.name} ({b.description.lower()}" + (f"; also {', '.join(b.aliases)}" if b.aliases else "") + ")"
        for b in BACKBONE_TABLE)
    before = f"{note}; " if note else ""
    parser.add_argument("--device", choices=DEVICES, default=DEFAULT_DEVICE,
                        help="auto: CUDA when available, else Apple Silicon MPS, else CPU "
                             f"({before}default {DEFAULT_DEVICE})")
    parser.add_argument("--backbone", type=backbone, default=DEFAULT_BACKBONE,
                        metavar="{" + ",".join(BACKBONE_NAMES) + "}",
                        help=f"regressor network: {names} ({before}default {DEFAULT_BACKBONE})")
