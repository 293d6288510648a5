# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The installer's errors: each says what went wrong and what to do."""

from __future__ import annotations


class InstallerError(Exception):
    """Installing the dependencies or downloading the assets failed."""


class Cancelled(InstallerError):
    """The user cancelled; nothing was left half-done."""


class OfflineError(InstallerError):
    """The network is needed, but Blender's online access is off."""


class PipError(InstallerError):
    """pip failed; `tail` holds its last output lines."""

    def __init__(self, message: str, tail: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.tail = tail


class DownloadError(InstallerError):
    """An asset file could not be fetched or did not verify."""
