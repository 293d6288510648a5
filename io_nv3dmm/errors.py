# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one exception type of the .nvf codec: `NvfError`.

May import: the standard library only.
"""

from __future__ import annotations


class NvfError(ValueError):
    """Bad .nvf data, or a model the format cannot hold.

    `offset` is the absolute byte offset in the file where the problem was
    found (None for problems found while writing a model, which has no file
    position yet). `reason` is the message without the offset prefix.
    """

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        if offset is None:
            message = reason
        else:
            message = f"at byte offset {offset} (0x{offset:X}): {reason}"
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[str, int | None]]:
        # Keeps the exception picklable (multiprocessing, pytest-xdist).
        return (type(self), (self.reason, self.offset))
