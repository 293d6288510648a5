# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Facial animation without Blender: ARKit / Maxine / Live Link Face naming,
Live Link Face CSV takes, the One Euro smoother, video reading and tracking.

May import numpy and io_nv3dmm at import time; OpenCV (video), torch and
tddfa_v3 (tracking) and fitting are imported lazily where they are needed.
Never imports bpy: bridge/animation.py turns these results into keyframes.
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
