# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile and unusual files around the Blender .nvf import/export (issue 10):
an empty model, FIFOs and other non-regular files where a file is expected,
format limits in the export error, and where .nvf files can be dropped.

Every case checks the standard: only our own error (reported by the operator;
RuntimeError in background mode), the scene unchanged, nothing left behind.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pytest

from nv3dmm_face_tools import io_nv3dmm
from nv3dmm_face_tools.io_nv3dmm import FaceModel, LinearModel

from tests.blender.scene_data import data_snapshot, dome_model

pytestmark = pytest.mark.blender

ADDON = "nv3dmm_face_tools"


def _bridge(name: str) -> Any:
    return importlib.import_module(f"{ADDON}.bridge.{name}")


class Hung(Exception):
    """Raised by `_within` when its action blocks."""


def _within(seconds: int, action: Callable[[], Any]) -> Any:
    """Runs `action` on the main thread (bpy needs it) and returns its result;
    SIGALRM interrupts it after `seconds` (a blocking open of a FIFO included,
    PEP 475) so that a regression fails the test instead of hanging the suite."""
    import signal

    def expired(signum: int, frame: Any) -> None:
        raise Hung(f"blocked for {seconds} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        return action()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- item 1: a well-formed file with zero vertices ------------------------------------------


def test_empty_model_is_refused_with_a_clear_error(clean_scene: None, tmp_path: Path) -> None:
    import bpy

    empty = FaceModel(shape=LinearModel(mean=np.zeros((0, 3), np.float32), modes=np.zeros((0, 0, 3), np.float32),
                                        eigenvalues=np.zeros(0, np.float32), triangles=np.zeros((0, 3), np.uint16)))
    path = tmp_path / "empty.nvf"
    io_nv3dmm.write(empty, path)
    assert io_nv3dmm.read(path).vertex_count == 0           # well-formed: our reader takes it
    bpy.ops.mesh.primitive_cube_add()
    before = data_snapshot()
    with pytest.raises(RuntimeError, match=r"empty\.nvf .*no vertices.*nothing to import") as error:
        bpy.ops.import_scene.nvf(filepath=str(path))
    assert "KeyError" not in str(error.value)
    assert data_snapshot() == before
    with pytest.raises(_bridge("errors").NvfBridgeError, match="no vertices"):
        _bridge("nvf_import").import_nvf(bpy.context, path)
    assert data_snapshot() == before


def test_mesh_helpers_take_a_mesh_without_vertices(clean_scene: None) -> None:
    """A mesh without vertices has no `position` attribute: building and reading one
    must not raise KeyError (the root of the empty-model traceback)."""
    import bpy

    mesh_builder = _bridge("mesh")
    mesh = mesh_builder.build_mesh("nothing", np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64))
    try:
        assert len(mesh.vertices) == 0
        assert mesh_builder.read_positions(mesh).shape == (0, 3)
    finally:
        bpy.data.meshes.remove(mesh)


# --- item 2: FIFOs and other non-regular files -----------------------------------------------


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo") or not hasattr(os, "O_NONBLOCK"),
                                reason="this system has no FIFOs (os.mkfifo)")


@needs_fifo
def test_fifo_named_like_the_mtl_does_not_hang_the_import(clean_scene: None, tmp_path: Path) -> None:
    import bpy

    path = tmp_path / "dome.nvf"
    io_nv3dmm.write(dome_model(), path)
    fifo = tmp_path / "dome.mtl"
    os.mkfifo(fifo)
    assert _within(20, lambda: bpy.ops.import_scene.nvf(filepath=str(path))) == {'FINISHED'}
    obj = bpy.data.objects["dome"]
    # The .mtl is only a hint: the materials exist, in the default grey.
    assert {m.name for m in obj.data.materials} == {"Skin", "LipMat"}
    assert tuple(round(c, 2) for c in obj.data.materials["Skin"].diffuse_color[:3]) == (0.8, 0.8, 0.8)


@needs_fifo
def test_fifo_or_folder_as_the_nvf_is_refused(clean_scene: None, tmp_path: Path) -> None:
    import bpy

    fifo = tmp_path / "pipe.nvf"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.nvf"
    folder.mkdir()
    before = data_snapshot()
    for target, kind in ((fifo, "FIFO"), (folder, "folder")):
        with pytest.raises(RuntimeError) as error:
            _within(20, lambda target=target: bpy.ops.import_scene.nvf(filepath=str(target)))
        message = str(error.value)
        assert kind in message and "not a regular file" in message and target.name in message
        assert data_snapshot() == before


def test_regular_file_reader_checks_the_open_descriptor(tmp_path: Path, addon: Any) -> None:
    files, mtl = _bridge("files"), _bridge("mtl")
    data = tmp_path / "data.bin"
    data.write_bytes(b"abc")
    link = tmp_path / "link.bin"
    link.symlink_to(data)
    assert files.read_regular_file(link) == b"abc"          # symlinks to files are fine
    with pytest.raises(OSError, match="larger than"):
        files.read_regular_file(data, limit=2)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        with pytest.raises(files.NotRegularFileError, match="FIFO"):
            _within(10, lambda: files.read_regular_file(fifo))
    if os.path.exists("/dev/zero"):
        with pytest.raises(files.NotRegularFileError, match="character device"):
            files.read_regular_file("/dev/zero")
        # A .mtl that is a device gives no colours (and no endless read).
        nvf = tmp_path / "zero.nvf"
        (tmp_path / "zero.mtl").symlink_to("/dev/zero")
        assert mtl.read_mtl_colors(nvf) == {}


def test_oversized_mtl_is_ignored(tmp_path: Path, addon: Any) -> None:
    mtl_module = _bridge("mtl")
    nvf = tmp_path / "big.nvf"
    mtl = tmp_path / "big.mtl"
    mtl.write_text("newmtl Skin\nKd 0.1 0.2 0.3\n")
    assert mtl_module.read_mtl_colors(nvf) == {"Skin": (0.1, 0.2, 0.3)}
    with mtl.open("ab") as stream:
        stream.truncate(mtl_module.MAX_MTL_BYTES + 1)
    assert mtl_module.read_mtl_colors(nvf) == {}


# --- item 7: format limits in the export error -----------------------------------------------


def _export_error(tmp_path: Path) -> str:
    import bpy

    before = data_snapshot()
    out = tmp_path / "never.nvf"
    with pytest.raises(RuntimeError) as error:
        bpy.ops.export_scene.nvf(filepath=str(out))
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))
    assert data_snapshot() == before
    return str(error.value)


def test_vertex_limit_in_the_export_error(clean_scene: None, tmp_path: Path) -> None:
    import bpy

    bpy.ops.mesh.primitive_grid_add(x_subdivisions=256, y_subdivisions=257)
    count = len(bpy.context.active_object.data.vertices)
    assert count > 65535
    message = _export_error(tmp_path)
    assert f"{count:,} vertices" in message and "limit of 65,535 vertices" in message
    assert "Decimate" in message


def test_triangle_limit_in_the_export_error(clean_scene: None, tmp_path: Path) -> None:
    import bpy

    bpy.ops.mesh.primitive_grid_add(x_subdivisions=184, y_subdivisions=184)
    mesh = bpy.context.active_object.data
    triangles = 2 * len(mesh.polygons)
    assert len(mesh.vertices) <= 65535 < triangles
    message = _export_error(tmp_path)
    assert f"{triangles:,} triangles" in message and "limit of 65,535 triangles" in message
    assert "Decimate" in message


# --- drag and drop -------------------------------------------------------------------------


def _area(kind: str, display_mode: str = 'VIEW_LAYER') -> Any:
    return SimpleNamespace(area=SimpleNamespace(
        type=kind, spaces=SimpleNamespace(active=SimpleNamespace(display_mode=display_mode))))


def test_drop_targets_are_the_viewport_and_the_outliner(addon: Any) -> None:
    import bpy

    handler = bpy.types.NVF_FH_import
    assert handler.poll_drop(_area('VIEW_3D'))
    assert handler.poll_drop(_area('OUTLINER', 'VIEW_LAYER'))
    assert not handler.poll_drop(_area('OUTLINER', 'SCENES'))
    assert not handler.poll_drop(_area('IMAGE_EDITOR'))
    assert not handler.poll_drop(SimpleNamespace(area=None))
    assert not handler.poll_drop(None)


# --- items 3-5: the export's one atomic write (io_nv3dmm.write_atomic) ---------------------------


def _cube() -> Any:
    import bpy

    bpy.ops.mesh.primitive_cube_add()
    return bpy.context.active_object


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_interrupted_export_leaves_nothing_behind(clean_scene: None, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """KeyboardInterrupt (or MemoryError) in the middle of the write: no temporary
    file is left and the existing file is untouched."""
    obj = _cube()
    out = tmp_path / "face.nvf"
    out.write_bytes(b"previous contents")
    export = _bridge("nvf_export")
    for error in (KeyboardInterrupt, MemoryError):
        def interrupted(*args: Any, error: type[BaseException] = error) -> None:
            raise error()
        with monkeypatch.context() as patch:
            patch.setattr(os, "fsync", interrupted)
            with pytest.raises(error):
                export.export_nvf(obj, out)
        assert out.read_bytes() == b"previous contents"
        assert _leftovers(tmp_path, {"face.nvf"}) == []


def test_export_through_a_symlink_writes_its_target(clean_scene: None, tmp_path: Path) -> None:
    import bpy

    obj = _cube()
    target = tmp_path / "models" / "face.nvf"
    target.parent.mkdir()
    link = tmp_path / "current.nvf"
    link.symlink_to(target)
    for existing in (False, True):          # a dangling link, then one to an existing file
        bpy.ops.export_scene.nvf(filepath=str(link))
        assert link.is_symlink() and os.readlink(link) == str(target)
        assert io_nv3dmm.read(target).vertex_count == 8
        assert _leftovers(tmp_path, {"current.nvf", "models"}) == [] and _leftovers(target.parent, {"face.nvf"}) == []


@needs_fifo
def test_export_to_a_fifo_device_or_folder_is_refused(clean_scene: None, tmp_path: Path) -> None:
    import bpy
    import stat

    _cube()
    fifo = tmp_path / "pipe.nvf"
    os.mkfifo(fifo)
    null_link = tmp_path / "null.nvf"           # /dev/null through a link: the link is ours to lose,
    null_link.symlink_to(os.devnull)            # never /dev/null itself, should the refusal regress
    folder = tmp_path / "folder.nvf"
    folder.mkdir()
    cases = [(fifo, ("fifo", "pipe")), (null_link, ("device",)), (folder, ("folder", "directory"))]
    for target, words in cases:
        # (On the main thread: bpy.ops needs it. Replacing a FIFO never blocks; opening one would.)
        with pytest.raises(RuntimeError) as error:
            bpy.ops.export_scene.nvf(filepath=str(target))
        message = str(error.value)
        assert message.startswith("Error: Export failed") and target.name in message, message
        assert any(word in message.lower() for word in words), message
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and folder.is_dir() and not any(folder.iterdir())
    assert null_link.is_symlink() and stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert _leftovers(tmp_path, {"pipe.nvf", "null.nvf", "folder.nvf"}) == []
