# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The errors of the animation package. Every message says what to do next."""

from __future__ import annotations


class AnimationError(ValueError):
    """Base class: anything that stops an animation import, export or tracking."""


class CsvError(AnimationError):
    """A Live Link Face CSV is malformed (missing columns, wrong counts, non-numbers, NaN)."""


class VideoError(AnimationError):
    """A video or image sequence cannot be opened or decoded, or the frame range is empty."""


class TrackingError(AnimationError):
    """Tracking could not produce any frame (no face anywhere in the clip, bad assets)."""


class Cancelled(AnimationError):
    """The caller's cancel callback asked to stop; the frames done so far are kept."""
