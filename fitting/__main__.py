# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""`python -m fitting PHOTO --model MODEL.nvf --assets DIR --out ME.nvf` (see fitting/cli.py)."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
