# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Core layer: facial animation without Blender (naming, Live Link Face CSV, One Euro, video tracking).
May import numpy and io_nv3dmm; lazily OpenCV, torch, tddfa_v3 and fitting; never bpy or the UI.

In detail: ARKit / Maxine / Live Link Face naming, Live Link Face CSV takes, the
One Euro smoother, video reading and tracking. numpy and io_nv3dmm are imported
at import time; OpenCV (video), torch and tddfa_v3 (tracking) and fitting are
imported where they are needed. bridge/animation/ turns these results into
keyframes.
"""

from __future__ import annotations

from .errors import AnimationError, CsvError, TrackingError, VideoError
from .live_link import LLF_COLUMNS, Take, read_csv, write_csv
from .names import ARKIT_SHAPES, HEAD_EYE_ANGLES, KeyMap, map_keys, maxine_to_arkit, arkit_to_maxine
from .one_euro import OneEuroFilter, OneEuroParams, smooth

__all__ = [
    "AnimationError", "CsvError", "TrackingError", "VideoError",
    "LLF_COLUMNS", "Take", "read_csv", "write_csv",
    "ARKIT_SHAPES", "HEAD_EYE_ANGLES", "KeyMap", "map_keys", "maxine_to_arkit", "arkit_to_maxine",
    "OneEuroFilter", "OneEuroParams", "smooth",
]
