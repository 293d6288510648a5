# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Installs what 3DDFA-V3 reconstruction needs: its Python packages and its asset files.
May import the standard library only (a leaf: no bpy, no numpy, no torch, no other part of the add-on at import).

`builds` holds the one table of dependencies and the builds chosen for the
running platform, Python and numpy; `sources` where the asset files come from;
`pip` runs pip in a subprocess with progress and cancellation; `download`
fetches and verifies the asset files; `task` runs either on a worker thread
for a UI to poll. The add-on's operators (operators/installer.py) and
preferences are thin layers over these.
"""

from __future__ import annotations

from .errors import Cancelled, DownloadError, InstallerError, OfflineError, PipError
from .progress import Progress

__all__ = ["Cancelled", "DownloadError", "InstallerError", "OfflineError", "PipError", "Progress"]
