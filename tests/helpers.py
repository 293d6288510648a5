# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Inputs several test files make alike: the demo model as an .nvf, a synthetic 3DDFA-V3
assets folder, a drawn portrait. Imports numpy and the packages under test (no bpy).

Test files import it as `from tests import helpers` (pyproject's pytest `pythonpath` has the
repository root, so `tests` is a package), and wrap these in their own fixtures (scope, folder name,
skip reason).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def demo_nvf(folder: Path) -> Path:
    """The embedded demo model (default options) written to folder/demo.nvf."""
    from nv3dmm_face_tools import io_nv3dmm
    from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model

    path = folder / "demo.nvf"
    io_nv3dmm.write(build_demo_model(), path)
    return path


def synthetic_assets(folder: Path) -> Path:
    """A complete synthetic assets folder (seed 1) in folder: random weights of the real
    network layouts; the face model of $TDDFA_V3_FIXTURES when it names a folder."""
    from nv3dmm_face_tools.tddfa_v3.synthetic_face import write_synthetic_assets

    fixtures = os.environ.get("TDDFA_V3_FIXTURES")
    write_synthetic_assets(folder, seed=1, fixtures_dir=fixtures if fixtures and Path(fixtures).is_dir() else None)
    return folder


def portrait(path: Path, features: bool) -> Path:
    """A smooth synthetic 320 x 240 'portrait' saved to path: a warm ellipse on a gradient,
    with darker eyes and mouth when `features`."""
    from PIL import Image

    height, width = 240, 320
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.stack([70 + 80 * x / width, 100 + 50 * y / height, 150 + 0 * x], -1)
    image[((x - 160) / 62) ** 2 + ((y - 122) / 80) ** 2 < 1] = (220, 175, 150)
    if features:
        for ex in (136, 184):
            image[((x - ex) / 10) ** 2 + ((y - 105) / 6) ** 2 < 1] = (60, 45, 40)
        image[((x - 160) / 22) ** 2 + ((y - 160) / 7) ** 2 < 1] = (160, 70, 75)
    Image.fromarray(image.astype(np.uint8)).save(path)
    return path
