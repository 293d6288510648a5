# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""`python -m io_nv3dmm`: see io_nv3dmm.cli (dev-only, not in the add-on's zip).

May import: the standard library and io_nv3dmm.cli.
"""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
