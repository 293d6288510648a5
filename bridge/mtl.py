# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The .mtl companion of an .nvf file: its `Kd` colours by material name.

A hint for the import's material colours, never a reason to fail. May import
the stdlib and `files`; no bpy, nothing from the core.
"""

from __future__ import annotations

from pathlib import Path

from .files import read_regular_file

#: The largest .mtl companion read (real ones are a few hundred bytes).
MAX_MTL_BYTES = 1 << 20


def read_mtl_colors(nvf_path: str | Path) -> dict[str, tuple[float, float, float]]:
    """`Kd` colours by material name from the .mtl with the .nvf's base name (if any).

    A missing, unreadable, oversized or non-regular file (a FIFO would block
    forever) gives {}; unreadable lines are skipped (the .mtl is a hint, never
    a reason to fail an import).
    """
    path = Path(nvf_path).with_suffix(".mtl")
    try:
        text = read_regular_file(path, MAX_MTL_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return {}
    colors: dict[str, tuple[float, float, float]] = {}
    current: str | None = None
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "newmtl" and len(parts) >= 2:
            current = line.strip()[len("newmtl"):].strip()
        elif parts[0] == "Kd" and current is not None and len(parts) >= 4:
            try:
                rgb = tuple(min(1.0, max(0.0, float(v))) for v in parts[1:4])
            except ValueError:
                continue
            colors[current] = (rgb[0], rgb[1], rgb[2])
    return colors
