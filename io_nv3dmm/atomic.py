# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one atomic file writer of the product: a file is replaced whole or not at all.

    write_atomic(path, data, fsync=True)

Every file the add-on and its command lines write goes through here (the .nvf
codec, the Blender exporter, the core's caches, exports and CSV takes); no
package keeps its own temporary-file-and-rename copy. `data` is bytes (or any
bytes-like object: bytearray, memoryview, `io.BytesIO().getbuffer()`) or a
sequence of such buffers (what the .nvf writer produces: headers and zero-copy
array views, written without joining them first), or a function that writes
into the open binary file (`lambda stream: np.savez(stream, **arrays)`), so a
big file made by a library that writes to a stream is never held in memory
whole. Text is encoded by the caller first (`text.encode("utf-8")`). The
steps, as SQLite and git do them:

1. the destination is checked first: a symbolic link is followed to the file it
   names (the link itself is kept); a directory, FIFO, socket or device node is
   refused with `DestinationError` (an OSError) before anything is created;
2. the bytes go to a temporary file `.nvf-*.tmp` in the destination's folder,
   which is flushed to disk (`os.fsync`) unless `fsync` is False;
3. `os.replace` renames it over the destination (readers see the old file or the
   new one, never a partial one);
4. the folder is flushed to disk so that the rename itself survives a crash
   (POSIX; skipped where the OS cannot open a folder, e.g. Windows).

Whatever interrupts the write (OSError, KeyboardInterrupt, MemoryError, ...),
the temporary file is removed and the exception propagates: nothing is left
behind and the destination is untouched.

Replacing a big file frees its old blocks inside the rename (on ext4, 3 ms of
a 4.7 ms write of a 3.9 MB file). So an existing regular file of 1 MiB or
more first gets a second, hidden name (a hard link `.nvf-replaced-*.tmp`); the
rename then only swaps names and the old contents are deleted on a worker
thread. Where hard links are not possible, the rename frees them itself.

May import: the standard library only.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import threading
import uuid
from typing import IO, Callable, Sequence, Union

Buffer = Union[bytes, bytearray, memoryview]
#: What write_atomic takes: bytes-like, a sequence of them, or a function writing to the file.
Data = Union[Buffer, Sequence[Buffer], Callable[[IO[bytes]], object]]
PathLike = Union[str, "os.PathLike[str]"]

#: Existing files smaller than this are replaced by the rename alone (freeing them is cheap).
SECOND_NAME_MIN_BYTES = 1 << 20

#: The gathered write (None where the OS has none: Windows).
_writev: Callable[[int, Sequence[Buffer]], int] | None = getattr(os, "writev", None)
#: Buffers per gathered write: the OS's limit (IOV_MAX; 1024 on Linux and macOS).
try:
    _IOV_MAX = max(16, min(os.sysconf("SC_IOV_MAX"), 1024)) if _writev is not None else 1
except (AttributeError, ValueError, OSError):
    _IOV_MAX = 16

#: The name of the worker threads that delete replaced big files (tests wait for them).
REMOVER_THREAD_NAME = "nvf-remove-replaced"

_KINDS = (
    (stat.S_ISDIR, "a directory", errno.EISDIR),
    (stat.S_ISFIFO, "a FIFO (named pipe)", errno.EINVAL),
    (stat.S_ISCHR, "a character device", errno.EINVAL),
    (stat.S_ISBLK, "a block device", errno.EINVAL),
    (stat.S_ISSOCK, "a socket", errno.EINVAL),
)


class DestinationError(OSError):
    """The destination of a write is not a place for a file: a directory, FIFO,
    socket, device node or a symbolic-link loop. Raised before anything is
    created. An OSError, so callers that handle write failures (no space, no
    permission) handle it too; `errno` is EISDIR for a directory, else EINVAL
    (ELOOP for a link loop), `filename` the path as given."""


def resolve_destination(path: PathLike) -> str:
    """The file a write to `path` must replace or create: symbolic links followed.

    Raises DestinationError when that is anything but a regular file or a name
    that does not exist yet.
    """
    given = os.fspath(path)
    target = os.path.realpath(given) if os.path.islink(given) else os.path.abspath(given)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return target
    except OSError:
        return target       # e.g. a folder we may not list: the write reports it
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return target
    if stat.S_ISLNK(mode):
        raise DestinationError(
            errno.ELOOP, f"cannot write to {given}: it is a symbolic link that never reaches a "
            f"file (a loop of links)", given)
    for test, kind, code in _KINDS:
        if test(mode):
            break
    else:
        kind, code = "not a regular file", errno.EINVAL
    shown = given if target == os.path.abspath(given) else f"{given} (a link to {target})"
    raise DestinationError(
        code, f"cannot write to {shown}: it is {kind}, not a regular file; choose a file name",
        given)


def write_atomic(path: PathLike, data: Data, *, fsync: bool = True) -> None:
    """Writes `data` to `path` atomically (see the module docstring).

    fsync=False skips both flushes to disk (benchmarks, scratch files): still
    atomic for other processes, not durable across a power loss.
    Raises DestinationError (an OSError) for a destination that cannot hold a
    file, or the OSError of a failed write; the destination is then unchanged.
    """
    target = resolve_destination(path)
    folder = os.path.dirname(target)
    handle, temp = tempfile.mkstemp(prefix=".nvf-", suffix=".tmp", dir=folder)
    temp_left: str | None = temp
    previous: str | None = None
    try:
        with os.fdopen(handle, "wb") as stream:
            if callable(data):
                data(stream)
            elif isinstance(data, (bytes, bytearray, memoryview)):
                stream.write(data)
            else:
                _write_buffers(stream, data)
            stream.flush()
            if fsync:
                # On disk before it replaces the old file: a crash leaves one or the other.
                os.fsync(stream.fileno())
        _plain_permissions(temp)
        previous = _second_name(target)
        os.replace(temp, target)
        temp_left = None
        if fsync:
            _fsync_folder(folder)
    except BaseException:
        for leftover in (temp_left, previous):
            if leftover is not None:
                _remove_quietly(leftover)
        raise
    if previous is not None:
        threading.Thread(target=_remove_quietly, args=(previous,), name=REMOVER_THREAD_NAME,
                         daemon=False).start()


def _write_buffers(stream: IO[bytes], buffers: Sequence[Buffer]) -> None:
    """The buffers, in order, with one gathered write (os.writev) per IOV_MAX of them.

    Fewer system calls than one write per buffer (the .nvf writer's 255 buffers of
    face_model2), and the kernel sees the whole file at once, which Linux's page cache
    rewards with bigger folios: later reads of the file copy it faster (see
    docs/nvf-codec.md). A short write is resumed where it stopped. Where the OS has no
    writev (Windows), the buffered stream writes them one by one.
    """
    if _writev is None:
        stream.writelines(buffers)
        return
    stream.flush()                  # nothing is buffered yet; the fd takes the rest
    fd = stream.fileno()
    pending = [view for view in map(_byte_view, buffers) if view.nbytes]
    first = 0
    while first < len(pending):
        written = _writev(fd, pending[first:first + _IOV_MAX])
        if written <= 0:
            raise OSError(errno.EIO, "the operating system wrote nothing to the file")
        while written:
            size = pending[first].nbytes
            if written < size:      # a short write: the rest of this buffer goes next
                pending[first] = pending[first][written:]
                break
            written -= size
            first += 1


def _byte_view(buffer: Buffer) -> memoryview:
    view = memoryview(buffer)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _plain_permissions(name: str) -> None:
    """mkstemp makes the file 0600: give it the permissions a plain open() would."""
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(name, 0o666 & ~umask)
    except OSError:
        pass


def _fsync_folder(folder: str) -> None:
    """Flushes the folder's entries (the rename) to disk where the OS can."""
    flag = getattr(os, "O_DIRECTORY", None)
    if flag is None or os.name == "nt":
        return                      # Windows cannot open a folder for fsync
    try:
        fd = os.open(folder, os.O_RDONLY | flag)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems (and /proc-like ones) cannot flush a folder: nothing more to do.
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP, errno.EROFS):
            raise
    finally:
        os.close(fd)


def _second_name(target: str) -> str | None:
    """A hidden hard link to the big regular file at `target` (about to be replaced), or None."""
    try:
        info = os.lstat(target)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size < SECOND_NAME_MIN_BYTES:
        return None
    link = os.path.join(os.path.dirname(target), f".nvf-replaced-{uuid.uuid4().hex}.tmp")
    try:
        os.link(target, link, follow_symlinks=False)
    except (OSError, NotImplementedError):
        return None
    return link


def _remove_quietly(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass
