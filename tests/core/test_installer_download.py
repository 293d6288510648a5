# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The asset downloader on a server on 127.0.0.1: per-file progress, size and sha256
checks, a corrupted download fetched again, resume with a Range request after a
dropped connection, offline refusal, cancellation, and the real checks on synthetic
3DDFA-V3 assets. Nothing reaches the internet."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Mapping, Sequence

import pytest

from nv3dmm_face_tools.installer import download
from nv3dmm_face_tools.installer.errors import Cancelled, DownloadError, OfflineError
from nv3dmm_face_tools.installer.progress import Progress
from nv3dmm_face_tools.installer.task import Task
from tests import installer_support as support

NAMES = ("alpha.bin", "beta.bin")
SIZE = 3 * download.CHUNK + 123      # several chunks, so progress has steps and a drop can fall mid-file


def _content(name: str) -> bytes:
    seed = hashlib.sha256(name.encode()).digest()
    return (b"GOOD" + seed * (SIZE // len(seed) + 1))[:SIZE]


def _verify(folder: Path, names: Sequence[str]) -> Mapping[str, str]:
    """A stand-in for the loading checks: each file must be exactly its content."""
    return {name: "wrong content" for name in names if (folder / name).read_bytes() != _content(name)}


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "server"
    folder.mkdir()
    for name in NAMES:
        (folder / name).write_bytes(_content(name))
    return folder


def _final_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def test_downloads_each_file_with_progress(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "assets"
    events: list[Progress] = []
    with support.serve(source) as (url, log):
        report = download.download_assets(url, target, names=NAMES, progress=events.append, verify=_verify)
    assert report.downloaded == list(NAMES) and not report.refetched
    assert _final_files(target) == sorted(NAMES)
    assert all((target / n).read_bytes() == _content(n) for n in NAMES)
    assert not (target / download.STAGING_NAME).exists()
    for index, name in enumerate(NAMES, 1):
        fractions = [e.fraction for e in events if e.stage == "downloading" and e.item == name]
        assert len(fractions) >= 4 and fractions == sorted(fractions) and fractions[-1] == 1.0
        assert {(e.index, e.count) for e in events if e.item == name} == {(index, 2)}
    assert log.paths() == [f"/{n}" for n in NAMES]


def test_files_already_there_and_sound_are_kept(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "assets"
    target.mkdir()
    (target / "alpha.bin").write_bytes(_content("alpha.bin"))
    (target / "beta.bin").write_bytes(b"GOOD but truncated")      # a broken earlier copy
    with support.serve(source) as (url, log):
        report = download.download_assets(url, target, names=NAMES, verify=_verify)
    assert report.kept == ["alpha.bin"] and report.downloaded == ["beta.bin"] and report.refetched == ["beta.bin"]
    assert log.paths() == ["/beta.bin"]
    assert (target / "beta.bin").read_bytes() == _content("beta.bin")


def test_a_corrupted_download_is_detected_by_sha256_and_fetched_again(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "assets"
    behaviours = {"alpha.bin": support.Behaviour(corrupt_times=1)}
    with support.serve(source, behaviours) as (url, log):
        report = download.download_assets(url, target, names=NAMES, verify=_verify)
    assert report.refetched == ["alpha.bin"]
    assert log.paths().count("/alpha.bin") == 2
    assert (target / "alpha.bin").read_bytes() == _content("alpha.bin")


def test_without_a_published_sha_the_loading_check_catches_corruption(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "assets"
    behaviours = {"alpha.bin": support.Behaviour(corrupt_times=5, publish=False)}
    with support.serve(source, behaviours) as (url, _log):
        with pytest.raises(DownloadError, match="alpha.bin .* failed its check 2 times: wrong content"):
            download.download_assets(url, target, names=NAMES, verify=_verify)
    assert not (target / "alpha.bin").exists()          # never under its final name
    assert not list((target / download.STAGING_NAME).glob("alpha.bin*"))


def test_resume_after_a_dropped_connection(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "assets"
    cut = download.CHUNK + 5000
    behaviours = {"beta.bin": support.Behaviour(drop_after=cut, drop_times=1)}
    with support.serve(source, behaviours) as (url, log):
        with pytest.raises(DownloadError, match="beta.bin.*resume"):
            download.download_assets(url, target, names=NAMES, verify=_verify)
        assert _final_files(target) == ["alpha.bin"]                       # no partial beta.bin
        part = target / download.STAGING_NAME / "beta.bin.part"
        assert part.stat().st_size == cut
        report = download.download_assets(url, target, names=NAMES, verify=_verify)
    assert report.kept == ["alpha.bin"] and report.resumed == ["beta.bin"]
    assert log.requests[-1] == ("/beta.bin", f"bytes={cut}-")
    assert (target / "beta.bin").read_bytes() == _content("beta.bin")


def test_offline_refuses_the_network_but_reads_a_folder(source: Path, tmp_path: Path) -> None:
    with support.serve(source) as (url, log):
        with pytest.raises(OfflineError, match="Online access is off"):
            download.download_assets(url, tmp_path / "a", names=NAMES, online=False, verify=_verify)
    assert log.requests == []
    report = download.download_assets(str(source), tmp_path / "b", names=NAMES, online=False, verify=_verify)
    assert report.downloaded == list(NAMES)
    assert not download.needs_network(source.as_uri()) and download.needs_network("")


def test_cancel_on_a_worker_thread_keeps_the_partial_file_aside(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "assets"
    stall = threading.Event()
    behaviours = {"beta.bin": support.Behaviour(release=stall)}
    with support.serve(source, behaviours) as (url, _log):
        task = Task(lambda progress, cancel: download.download_assets(
            url, target, names=NAMES, progress=progress, cancel=cancel, verify=_verify))
        assert support.wait_for(lambda: behaviours["beta.bin"].served == 1)
        assert task.latest.item in ("alpha.bin", "beta.bin") and task.events > 0
        task.cancel()
        stall.set()
        with pytest.raises(Cancelled):
            task.result(timeout=60)
    assert _final_files(target) == ["alpha.bin"]


def test_urls_and_published_headers() -> None:
    assert download.file_url("http://h/x/", "a b.pth") == "http://h/x/a%20b.pth"
    assert download.file_url("http://h/x", "n.pth") == "http://h/x/n.pth"
    assert download.file_url("", "n.pth") == download.DEFAULT_BASE_URL + "n.pth"
    sha = "a" * 64
    assert download.published_from_headers({"X-Linked-Etag": f'"{sha}"', "X-Linked-Size": "10"}, 0, 200) \
        == download.Published(10, sha)
    assert download.published_from_headers({"ETag": '"abc"', "Content-Range": "bytes 5-9/10"}, 5, 206) \
        == download.Published(10, None)


def test_real_assets_pass_the_reconstruction_checks(tmp_path: Path) -> None:
    """Synthetic 3DDFA-V3 assets served locally: downloaded, verified by tddfa_v3's checks and
    loaders, and the folder then checks out; a truncated checkpoint never gets its name."""
    pytest.importorskip("torch", reason="PyTorch writes the synthetic checkpoints")
    from nv3dmm_face_tools.tddfa_v3 import assets, synthetic_face

    source = tmp_path / "server"
    synthetic_face.write_synthetic_assets(source, seed=1)
    names = download.asset_names()
    assert names == assets.ASSET_FILES
    target = tmp_path / "assets"
    with support.serve(source) as (url, _log):
        report = download.download_assets(url, target, names=names)
    assert report.downloaded == list(names)
    assert assets.check_assets(target).ok
    broken = tmp_path / "broken"
    broken.mkdir()
    name = assets.CHECKPOINT_FILES["landmark106"]
    data = (source / name).read_bytes()
    (broken / name).write_bytes(data[: len(data) // 2])
    with support.serve(broken, {name: support.Behaviour(publish=False)}) as (url, _log):
        with pytest.raises(DownloadError, match=name):
            download.download_assets(url, tmp_path / "assets2", names=(name,))
    assert not (tmp_path / "assets2" / name).exists()
