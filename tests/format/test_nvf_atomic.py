# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""io_nv3dmm.write_atomic, the add-on's one atomic file write: symlinks written
through and kept, non-regular destinations refused before anything is created,
nothing left behind whatever interrupts the write, fsync of the file and the
folder, and the hidden second name that makes replacing big files cheap."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from nv3dmm_face_tools import io_nv3dmm as nvf
from nv3dmm_face_tools.io_nv3dmm import DestinationError, atomic, write_atomic
from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model

POSIX = os.name == "posix"


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _join_removers() -> None:
    for worker in threading.enumerate():
        if worker.name == atomic.REMOVER_THREAD_NAME:
            worker.join(10)


def test_bytes_and_sequences_of_buffers(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    write_atomic(target, b"hello")
    assert target.read_bytes() == b"hello"
    write_atomic(str(target), [b"ab", bytearray(b"cd"), memoryview(b"ef")])
    assert target.read_bytes() == b"abcdef"
    write_atomic(target, memoryview(b"xyz"), fsync=False)
    assert target.read_bytes() == b"xyz"
    assert _names(tmp_path) == ["a.bin"]


def _many_buffers() -> tuple[list[Any], bytes]:
    """Over two IOV_MAX batches of buffers of every kind the .nvf writer hands over:
    bytes, empty ones, bytearrays, memoryviews and float32 array views."""
    np = pytest.importorskip("numpy")
    buffers: list[Any] = []
    for i in range(2 * 1024 + 37):
        kind = i % 5
        if kind == 0:
            buffers.append(bytes([i % 251]) * (i % 13))
        elif kind == 1:
            buffers.append(b"")
        elif kind == 2:
            buffers.append(bytearray(b"NAME\x04\x00\x00\x00"))
        elif kind == 3:
            buffers.append(memoryview(np.arange(i % 7, dtype=np.float32)))
        else:
            buffers.append(np.full((3, 2), i, dtype=np.float32).data)
    expected = b"".join(bytes(memoryview(b).cast("B")) for b in buffers)
    return buffers, expected


def test_many_buffers_are_written_in_order(tmp_path: Path) -> None:
    """More buffers than one gathered write takes, empty ones and typed array views
    among them: the file is their bytes in order, as one join would give."""
    buffers, expected = _many_buffers()
    target = tmp_path / "many.bin"
    write_atomic(target, buffers)
    assert target.read_bytes() == expected
    assert _names(tmp_path) == ["many.bin"]


@pytest.mark.skipif(atomic._writev is None, reason="this OS has no os.writev")
def test_short_gathered_writes_are_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The OS may write less than asked (a signal, a quota, a 2 GiB cap): the write
    goes on from the byte where it stopped, inside a buffer or between two."""
    buffers, expected = _many_buffers()
    real = os.writev
    calls: list[int] = []

    def stingy(fd: int, views: Any) -> int:
        data = b"".join(bytes(v) for v in views)
        calls.append(len(views))
        return real(fd, [data[:7 + len(calls) % 11]])

    monkeypatch.setattr(atomic, "_writev", stingy)
    target = tmp_path / "short.bin"
    write_atomic(target, buffers)
    assert target.read_bytes() == expected
    assert len(calls) > 100 and max(calls) <= atomic._IOV_MAX


@pytest.mark.skipif(atomic._writev is None, reason="this OS has no os.writev")
def test_a_write_that_makes_no_progress_fails_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "old.bin"
    target.write_bytes(b"old")
    monkeypatch.setattr(atomic, "_writev", lambda fd, views: 0)
    with pytest.raises(OSError, match="wrote nothing"):
        write_atomic(target, [b"new", b"data"])
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["old.bin"]


def test_without_writev_the_buffers_are_written_one_by_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the OS has no gathered write (Windows), the same bytes come out."""
    buffers, expected = _many_buffers()
    monkeypatch.setattr(atomic, "_writev", None)
    target = tmp_path / "plain.bin"
    write_atomic(target, buffers)
    assert target.read_bytes() == expected


def test_a_function_writing_into_the_file_streams_it(tmp_path: Path) -> None:
    """A writer function (np.savez, torch.save) writes straight into the temporary file;
    if it fails half-way, the old file stays and nothing is left behind."""
    np = pytest.importorskip("numpy")
    target = tmp_path / "arrays.npz"
    write_atomic(target, lambda stream: np.savez(stream, a=np.arange(5)))
    with np.load(target) as loaded:
        assert loaded["a"].tolist() == [0, 1, 2, 3, 4]

    def half_then_fail(stream: Any) -> None:
        stream.write(b"partial")
        raise OSError(28, "No space left")

    before = target.read_bytes()
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, half_then_fail)
    assert target.read_bytes() == before
    assert _names(tmp_path) == ["arrays.npz"]


@pytest.mark.skipif(not POSIX, reason="permission bits are POSIX")
def test_new_file_gets_plain_permissions(tmp_path: Path) -> None:
    target = tmp_path / "p.bin"
    write_atomic(target, b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


@pytest.mark.skipif(not POSIX, reason="symbolic links need POSIX here")
def test_symlink_is_written_through_and_kept(tmp_path: Path) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "model.nvf"
    real.write_bytes(b"old")
    link = tmp_path / "link.nvf"
    link.symlink_to(real)
    chain = tmp_path / "chain.nvf"
    chain.symlink_to(link)
    write_atomic(chain, b"new")
    assert chain.is_symlink() and link.is_symlink()
    assert os.readlink(link) == str(real)
    assert real.read_bytes() == b"new"
    assert _names(real_dir) == ["model.nvf"] and _names(tmp_path) == ["chain.nvf", "link.nvf", "real"]

    dangling = tmp_path / "dangling.nvf"
    dangling.symlink_to(real_dir / "created.nvf")
    nvf.write(build_demo_model(shape_modes=0), dangling)
    assert dangling.is_symlink() and nvf.read(real_dir / "created.nvf").mode_count == 0


@pytest.mark.skipif(not POSIX, reason="symbolic links need POSIX here")
def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "a.nvf", tmp_path / "b.nvf"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(DestinationError, match="loop"):
        write_atomic(a, b"x")
    assert _names(tmp_path) == ["a.nvf", "b.nvf"]


def _refused(tmp_path: Path, target: Path, kind: str) -> None:
    before = _names(tmp_path)
    with pytest.raises(DestinationError, match=kind) as info:
        nvf.write(build_demo_model(shape_modes=0), target)
    assert isinstance(info.value, OSError) and "not a regular file" in str(info.value)
    assert info.value.filename == str(target)
    assert _names(tmp_path) == before


def test_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "folder.nvf"
    folder.mkdir()
    _refused(tmp_path, folder, "directory")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this OS")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.nvf"
    os.mkfifo(fifo)
    _refused(tmp_path, fifo, "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.skipif(not POSIX or not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_device_is_refused_and_kept(tmp_path: Path) -> None:
    with pytest.raises(DestinationError, match="character device"):
        nvf.write(build_demo_model(shape_modes=0), "/dev/null")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    link = tmp_path / "null.nvf"
    link.symlink_to("/dev/null")
    _refused(tmp_path, link, "character device")
    assert link.is_symlink()


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.nvf"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
    except OSError as exc:         # e.g. a path too long for sun_path
        pytest.skip(f"cannot bind a Unix socket here: {exc}")
    try:
        _refused(tmp_path, path, "socket")
    finally:
        server.close()


class _Interrupting:
    """A sequence of buffers whose third item raises `error` (mid-write)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __len__(self) -> int:
        return 5

    def __getitem__(self, index: int) -> bytes:
        if index >= 5:
            raise IndexError(index)
        if index == 2:
            raise self.error
        return b"part" * 1000


@pytest.mark.parametrize("error", [KeyboardInterrupt(), MemoryError(), OSError(28, "No space left")])
def test_interrupted_write_leaves_nothing(tmp_path: Path, error: BaseException) -> None:
    target = tmp_path / "out.nvf"
    target.write_bytes(b"old")
    with pytest.raises(type(error)):
        write_atomic(target, _Interrupting(error))
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["out.nvf"]


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_keyboard_interrupt_in_fsync_or_rename_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    target = tmp_path / "out.nvf"
    target.write_bytes(b"old" * (atomic.SECOND_NAME_MIN_BYTES // 3 + 1))   # big: gets a second name

    def interrupt(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, step, interrupt)
    with pytest.raises(KeyboardInterrupt):
        nvf.write(build_demo_model(shape_modes=0), target)
    monkeypatch.undo()
    assert target.read_bytes().startswith(b"oldold")
    assert _names(tmp_path) == ["out.nvf"]


def test_fsync_of_file_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        info = os.fstat(fd)
        synced.append("folder" if stat.S_ISDIR(info.st_mode) else f"file {info.st_size}")
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", spy)
    target = tmp_path / "out.nvf"
    write_atomic(target, [b"abc", b"de"])
    expected = ["file 5", "folder"] if POSIX else ["file 5"]
    assert synced == expected
    synced.clear()
    write_atomic(target, b"abc", fsync=False)
    assert synced == []


def test_replacing_a_big_file_uses_a_second_name_removed_later(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "big.nvf"
    target.write_bytes(b"\1" * atomic.SECOND_NAME_MIN_BYTES)
    seen: list[str] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        seen.extend(sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".nvf-replaced-")))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", spy)
    write_atomic(target, b"new")
    _join_removers()
    assert target.read_bytes() == b"new"
    if hasattr(os, "link"):
        assert len(seen) == 1          # the old contents had a hidden second name at the rename
    assert _names(tmp_path) == ["big.nvf"]

    small = tmp_path / "small.nvf"
    small.write_bytes(b"old")
    seen.clear()
    write_atomic(small, b"new")
    assert seen == [] and small.read_bytes() == b"new"


def test_failed_rename_removes_the_second_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "big.nvf"
    target.write_bytes(b"\1" * atomic.SECOND_NAME_MIN_BYTES)

    def broken(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", broken)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, b"new")
    assert target.stat().st_nlink == 1 and target.stat().st_size == atomic.SECOND_NAME_MIN_BYTES
    assert _names(tmp_path) == ["big.nvf"]
