# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading a file the user chose: only regular files, never blocking.

`read_regular_file` is how the .nvf import (and its .mtl companion) reads a
path: FIFOs, devices, sockets and folders are refused unread. Stdlib only.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class NotRegularFileError(OSError):
    """The path names something other than a regular file (a FIFO, device, socket
    or folder), which an import never reads: a FIFO would block forever."""


def _kind_of(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def read_regular_file(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file at `path` (symlinks followed).

    Anything else (FIFO, device, socket, folder) raises NotRegularFileError
    without reading, and never blocks: the file is opened non-blocking (a FIFO
    with no writer would otherwise hang `open` itself) and checked with fstat
    on the open descriptor, so a file swapped for a FIFO after a stat cannot
    slip through. `limit`: a larger file raises OSError(EFBIG) unread.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFileError(f"{os.fspath(path)!s} is {_kind_of(info.st_mode)}, not a regular file")
        if limit is not None and info.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit:,} bytes ({info.st_size:,})")
        with os.fdopen(fd, "rb", closefd=True) as stream:
            fd = -1
            return stream.read()
    finally:
        if fd >= 0:
            os.close(fd)
