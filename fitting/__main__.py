"""`python -m fitting PHOTO --model MODEL.nvf --assets DIR --out ME.nvf` (see fitting/cli.py)."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
