# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fitting layer's errors: one root, `FittingError` (a ValueError)."""

from __future__ import annotations


class FittingError(ValueError):
    """The inputs cannot be fitted (bad shapes, too few landmarks, no overlap), with what to do."""


class DependencyError(FittingError, ImportError):
    """A package the fitting layer needs (SciPy) is not installed; the message says how to install it."""
