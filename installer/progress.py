# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""One progress event type for pip installs and asset downloads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Progress:
    """Where a long job is: its stage, the item (package or file) it works on and,
    when known, how far along that item is (0..1) and its place among the items."""

    stage: str
    item: str = ""
    fraction: float | None = None
    index: int = 0
    count: int = 0
    detail: str = ""

    @property
    def text(self) -> str:
        """One line for a status bar, e.g. "downloading torch 42% (1 of 3)"."""
        parts = [self.stage]
        if self.item:
            parts.append(self.item)
        if self.fraction is not None:
            parts.append(f"{int(100 * max(0.0, min(1.0, self.fraction)))}%")
        if self.count:
            parts.append(f"({self.index} of {self.count})")
        if self.detail:
            parts.append(self.detail)
        return " ".join(parts)


ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]


def no_progress(_event: Progress) -> None:
    """A progress callback that ignores events."""


def never_cancelled() -> bool:
    return False
