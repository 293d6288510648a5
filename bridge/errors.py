# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bridge's errors: one root, `BridgeError`, that the operators catch.

Every bridge function that can fail for a reason the user can act on raises a
subclass of `BridgeError` whose message is one line saying what went wrong and
what to do. Core errors (`io_nv3dmm.NvfError`, `tddfa_v3.ReconstructionError`,
`fitting.FittingError`, `animation.AnimationError`) and OSErrors are wrapped
(`raise ... from error`) at the bridge boundary, so the UI never imports the core
to catch them. When one is raised, the scene is as it was before the call.
"""

from __future__ import annotations


class BridgeError(Exception):
    """A problem the add-on reports to the user (one line, actionable); the scene is unchanged."""


class NvfBridgeError(BridgeError):
    """Importing or exporting a .nvf file failed."""


class ReconstructionBridgeError(BridgeError):
    """Reconstructing a face from a photo, or placing the result in the scene, failed."""


class FittingBridgeError(BridgeError):
    """Making a personal Maxine model failed."""


class AnimationBridgeError(BridgeError):
    """Animating a face from a video or a Live Link Face CSV, or writing one, failed."""


class CancelledError(BridgeError):
    """The user cancelled a running job; nothing was added to the scene."""
