# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The 3DDFA-V3 assets: quick checks, safe loading of pickles and checkpoints, the face-model cache.

Everything here runs on synthetic files written by the tests; no download is
needed. A malicious face_model.npy must never run code.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nv3dmm_face_tools.tddfa_v3 import assets, synthetic_face
from nv3dmm_face_tools.tddfa_v3.errors import AssetError, DependencyError

URL = "https://huggingface.co/datasets/Zidu-Wang/3DDFA-V3"


@pytest.fixture(scope="module")
def model_dict() -> dict[str, Any]:
    return synthetic_face.generate_face_model_dict(seed=1)


@pytest.fixture(scope="module")
def full_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete synthetic assets folder (face model, template, four checkpoints)."""
    pytest.importorskip("torch", reason="PyTorch is needed to write checkpoints")
    pytest.importorskip("nv3dmm_face_tools.tddfa_v3.networks", reason="the networks are needed to lay out checkpoints")
    folder = tmp_path_factory.mktemp("assets")
    synthetic_face.write_synthetic_assets(folder, seed=1)
    return folder


def _write_npy(path: Path, model: dict[str, Any]) -> Path:
    return synthetic_face.write_face_model_npy(path, model)


# --------------------------------------------------------------------------- malicious pickles

class _RunsShell:
    """Pickles as a call to os.system (what a booby-trapped face_model.npy would hold)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


class _WritesFile:
    """Pickles as builtins.exec of Python that writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('owned')",))


@pytest.mark.parametrize("payload", [_RunsShell, _WritesFile])
def test_malicious_face_model_never_runs(tmp_path: Path, model_dict: dict[str, Any], payload: type) -> None:
    marker = tmp_path / "marker"
    evil = dict(model_dict)
    evil["annotation"] = list(model_dict["annotation"]) + [payload(marker)]    # hidden deep inside
    path = _write_npy(tmp_path / "face_model.npy", evil)
    with pytest.raises(AssetError, match=r"refused to load: it asks to run code \((posix|os|nt|builtins)\.") as info:
        assets.load_face_model_arrays(path, cache_dir=tmp_path / "cache")
    assert not marker.exists()
    assert "face_model.npy" in str(info.value) and URL in str(info.value)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    # numpy's own loader WOULD run it: the test payload is real
    if payload is _WritesFile:
        np.load(path, allow_pickle=True)
        assert marker.exists()


def test_pickle_with_foreign_class_refused(tmp_path: Path, model_dict: dict[str, Any]) -> None:
    evil = dict(model_dict)
    evil["u"] = Path("/etc/passwd")          # any non-numpy class is refused, harmless or not
    path = _write_npy(tmp_path / "face_model.npy", evil)
    with pytest.raises(AssetError, match="pathlib"):
        assets.unpickle_face_model_dict(path)


def test_plain_pickle_and_garbage_refused(tmp_path: Path, model_dict: dict[str, Any]) -> None:
    path = tmp_path / "face_model.npy"
    path.write_bytes(pickle.dumps(model_dict))          # a pickle, but not a .npy
    with pytest.raises(AssetError, match="not a numpy .npy file"):
        assets.load_face_model_arrays(path, use_cache=False)
    path.write_bytes(os.urandom(4096))
    with pytest.raises(AssetError, match="face_model.npy"):
        assets.load_face_model_arrays(path, use_cache=False)
    np.save(path, np.zeros((3, 3)))
    with pytest.raises(AssetError, match="not the face-model dictionary"):
        assets.load_face_model_arrays(path, use_cache=False)


def test_truncated_face_model(tmp_path: Path, model_dict: dict[str, Any]) -> None:
    path = _write_npy(tmp_path / "face_model.npy", model_dict)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AssetError, match="damaged"):
        assets.load_face_model_arrays(path, use_cache=False)


# --------------------------------------------------------------------------- face model validation

def test_valid_model_round_trip(tmp_path: Path, model_dict: dict[str, Any]) -> None:
    path = _write_npy(tmp_path / "face_model.npy", model_dict)
    arrays = assets.load_face_model_arrays(path, use_cache=False)
    assert arrays.loaded_from == "pickle"
    assert (arrays.vertex_count, arrays.triangle_count) == (2009, 3840)
    assert arrays.u.dtype == np.float32 and arrays.tri.dtype == np.int64
    for key in ("u", "id", "exp", "u_alb", "alb", "tri", "point_buf", "uv_coords", "ldm68", "ldm106", "ldm134"):
        np.testing.assert_array_equal(getattr(arrays, key), np.asarray(model_dict[key]), err_msg=key)
    for mine, theirs in zip(arrays.parallel, model_dict["parallel"]):
        np.testing.assert_array_equal(mine, theirs)
    assert len(arrays.annotation) == 8 and len(arrays.annotation_tri) == 8 and len(arrays.parallel) == 33
    again = assets.face_model_arrays_from_dict(arrays.to_dict())     # to_dict mirrors the file's layout
    for key in assets.REQUIRED_KEYS:
        mine, theirs = getattr(again, key), getattr(arrays, key)
        assert isinstance(mine, list) == isinstance(theirs, list)
        for a, b in (zip(mine, theirs) if isinstance(mine, list) else [(mine, theirs)]):
            np.testing.assert_array_equal(a, b, err_msg=key)


def _broken(model: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(model)
    for key, value in changes.items():
        if value is None:
            del out[key]
        else:
            out[key] = value
    return out


@pytest.mark.parametrize("change, message", [
    (lambda m: _broken(m, exp=None, ldm134=None), "keys exp, ldm134 are missing"),
    (lambda m: _broken(m, id=m["id"][:, :79]), r"'id' has shape \(6027, 79\), expected \(6027, 80\)"),
    (lambda m: _broken(m, u=m["u"][:-1]), "'u' must be a \\(3V, 1\\) array"),
    (lambda m: _broken(m, alb=m["alb"][:-3]), "'alb' has shape"),
    (lambda m: _broken(m, tri=np.concatenate([m["tri"], [[0, 1, 2009]]])), "'tri' holds index 2009 outside 0..2008"),
    (lambda m: _broken(m, tri=m["tri"][:, :2]), r"'tri' has shape \(3840, 2\), expected \(n, 3\)"),
    (lambda m: _broken(m, point_buf=m["point_buf"] + 1), "'point_buf' holds index 3841 outside 0..3840"),
    (lambda m: _broken(m, point_buf=m["point_buf"][:-1]), r"'point_buf' has shape \(2008, 8\)"),
    (lambda m: _broken(m, ldm68=m["ldm68"][:67]), r"'ldm68' has shape \(67,\), expected \(68\)"),
    (lambda m: _broken(m, ldm106=-m["ldm106"] - 1), "'ldm106' holds index -"),
    (lambda m: _broken(m, uv_coords=m["uv_coords"][:, :1]), "'uv_coords' has shape"),
    (lambda m: _broken(m, u=np.where(np.arange(6027)[:, None] == 5, np.nan, m["u"])), "'u' holds NaN"),
    (lambda m: _broken(m, u=m["u"].astype(str)), "'u' must be a numeric array"),
    (lambda m: _broken(m, annotation=m["annotation"][:7]), "'annotation' must have 8 entries, found 7"),
    (lambda m: _broken(m, annotation=[[0.5]] + m["annotation"][1:]), r"'annotation\[0\]' holds non-integer"),
    (lambda m: _broken(m, annotation_tri=[np.zeros((2, 2), np.int64)] + m["annotation_tri"][1:]),
     r"'annotation_tri\[0\]' has shape"),
    (lambda m: _broken(m, parallel=m["parallel"][:32]), "'parallel' must have 33 entries"),
    (lambda m: _broken(m, parallel=[[99999]] + m["parallel"][1:]), r"'parallel\[0\]' holds index 99999"),
    (lambda m: _broken(m, parallel="nope"), "'parallel' must be a list"),
])
def test_bad_face_model_messages(tmp_path: Path, model_dict: dict[str, Any], change: Any, message: str) -> None:
    path = _write_npy(tmp_path / "face_model.npy", change(model_dict))
    with pytest.raises(AssetError, match=message) as info:
        assets.load_face_model_arrays(path, cache_dir=tmp_path / "cache")
    assert "face_model.npy is not a valid 3DDFA-V3 face model" in str(info.value) or "face_model.npy" in str(info.value)
    assert URL in str(info.value)


def test_lenient_real_file_variants(model_dict: dict[str, Any]) -> None:
    """Layouts the real file may use: float64 arrays, (V, 3) uv, flat u, int32 indices, arrays for lists."""
    variant = dict(model_dict)
    variant["id"] = model_dict["id"].astype(np.float64)
    variant["u"] = model_dict["u"].reshape(-1)
    variant["uv_coords"] = np.concatenate([model_dict["uv_coords"], np.zeros((2009, 1), np.float32)], 1)
    variant["tri"] = model_dict["tri"].astype(np.int32)
    variant["ldm68"] = model_dict["ldm68"].reshape(68, 1)
    variant["annotation"] = [np.asarray(a, dtype=np.int32) for a in model_dict["annotation"]]
    variant["parallel"] = np.array([np.asarray(p) for p in model_dict["parallel"]], dtype=object)
    arrays = assets.face_model_arrays_from_dict(variant)
    assert arrays.id.dtype == np.float32 and arrays.u.shape == (6027, 1) and arrays.uv_coords.shape == (2009, 2)
    assert arrays.tri.dtype == np.int64 and arrays.ldm68.shape == (68,)


# --------------------------------------------------------------------------- cache

def test_cache_created_reused_and_refreshed(tmp_path: Path, model_dict: dict[str, Any]) -> None:
    source = _write_npy(tmp_path / "face_model.npy", model_dict)
    cache_dir = tmp_path / "cache"
    first = assets.load_face_model_arrays(source, cache_dir=cache_dir)
    cache_file = assets.cache_path_for(source, cache_dir)
    assert first.loaded_from == "pickle" and cache_file.is_file()
    assert [p.name for p in cache_dir.iterdir()] == [cache_file.name]       # no temporary left behind
    with np.load(cache_file, allow_pickle=False) as data:                   # plain arrays, no pickle
        assert "u" in data.files and "parallel__offsets" in data.files
    stamp = cache_file.stat().st_mtime_ns

    second = assets.load_face_model_arrays(source, cache_dir=cache_dir)
    assert second.loaded_from == "cache" and cache_file.stat().st_mtime_ns == stamp
    for key in ("u", "id", "tri", "point_buf", "ldm106"):
        np.testing.assert_array_equal(getattr(second, key), getattr(first, key))
    for a, b in zip(second.annotation_tri + second.parallel + second.annotation,
                    first.annotation_tri + first.parallel + first.annotation):
        np.testing.assert_array_equal(a, b)

    changed = dict(model_dict, u=model_dict["u"] + np.float32(0.25))
    _write_npy(source, changed)
    info = source.stat()
    os.utime(source, ns=(info.st_atime_ns, info.st_mtime_ns + 10_000_000))   # a different mtime, whatever the clock
    third = assets.load_face_model_arrays(source, cache_dir=cache_dir)
    assert third.loaded_from == "pickle"
    np.testing.assert_allclose(third.u, model_dict["u"] + 0.25)
    fourth = assets.load_face_model_arrays(source, cache_dir=cache_dir)
    assert fourth.loaded_from == "cache"
    np.testing.assert_array_equal(fourth.u, third.u)


def test_damaged_cache_is_rebuilt(tmp_path: Path, model_dict: dict[str, Any]) -> None:
    source = _write_npy(tmp_path / "face_model.npy", model_dict)
    assets.load_face_model_arrays(source, cache_dir=tmp_path / "cache")
    cache_file = assets.cache_path_for(source, tmp_path / "cache")
    # the fast reader sees exactly what numpy's own .npz reader sees
    from nv3dmm_face_tools.tddfa_v3.assets.cache import _read_stored_npz

    fast = _read_stored_npz(cache_file)
    with np.load(cache_file, allow_pickle=False) as reference:
        assert sorted(fast) == sorted(reference.files)
        for name in reference.files:
            np.testing.assert_array_equal(fast[name], reference[name])
    whole = cache_file.read_bytes()
    with zipfile.ZipFile(cache_file) as archive:      # where the triangle indices lie in the file
        info = archive.getinfo("tri.npy")
    tri_data = info.header_offset + 30 + len(info.filename) + len(info.extra) + 128
    scrambled = whole[:tri_data] + b"\xff" * 64 + whole[tri_data + 64:]   # indices far out of range
    for damaged in (b"PK\x03\x04 not really a zip", whole[: len(whole) // 2], scrambled):
        cache_file.write_bytes(damaged)
        again = assets.load_face_model_arrays(source, cache_dir=tmp_path / "cache")
        assert again.loaded_from == "pickle"
        np.testing.assert_array_equal(again.id, model_dict["id"])
        assert assets.load_face_model_arrays(source, cache_dir=tmp_path / "cache").loaded_from == "cache"


def test_unwritable_cache_still_loads(tmp_path: Path, model_dict: dict[str, Any]) -> None:
    source = _write_npy(tmp_path / "face_model.npy", model_dict)
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    arrays = assets.load_face_model_arrays(source, cache_dir=blocker)
    assert arrays.loaded_from == "pickle" and arrays.vertex_count == 2009


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert assets.default_cache_dir() == tmp_path / "nv3dmm_face_tools"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert assets.default_cache_dir() == Path.home() / ".cache" / "nv3dmm_face_tools"


def test_folder_or_dataset_root_accepted(tmp_path: Path, model_dict: dict[str, Any]) -> None:
    _write_npy(tmp_path / "assets" / "face_model.npy", model_dict)
    arrays = assets.load_face_model_arrays(tmp_path, use_cache=False)     # the dataset root, not assets/
    assert arrays.vertex_count == 2009
    assert assets.check_assets(tmp_path).folder == tmp_path / "assets"


# --------------------------------------------------------------------------- the 68-point template

def test_five_point_template_from_generated_mat(tmp_path: Path) -> None:
    path = synthetic_face.write_lm68_mat(tmp_path / "similarity_Lm3D_all.mat", synthetic_face.landmark_template_68())
    five = assets.load_five_point_template(tmp_path)
    documented = [[-0.311487, 0.290361, 0.133780], [0.309799, 0.289720, 0.131795],
                  [0.003253, -0.046179, 0.552442], [-0.252169, -0.381339, 0.224057],
                  [0.248466, -0.381282, 0.222358]]
    np.testing.assert_allclose(five, documented, atol=1e-6)
    assert five.dtype == np.float64 and path.is_file()


def test_bad_mat_files(tmp_path: Path) -> None:
    path = tmp_path / "similarity_Lm3D_all.mat"
    path.write_bytes(os.urandom(500))
    with pytest.raises(AssetError, match="similarity_Lm3D_all.mat is unusable: not a readable MATLAB file"):
        assets.load_lm68_template(path)
    from scipy.io import savemat

    savemat(path, {"lm": np.zeros((5, 3))})
    with pytest.raises(AssetError, match=r"68x3 float array 'lm', found 'lm' of shape \(5, 3\)"):
        assets.load_lm68_template(path)
    savemat(path, {"other": np.zeros((68, 3))})
    with pytest.raises(AssetError, match="no 'lm' array"):
        assets.load_lm68_template(path)
    with pytest.raises(AssetError, match="missing"):
        assets.load_lm68_template(tmp_path / "nope.mat")


# --------------------------------------------------------------------------- the quick check

def test_empty_folder_names_every_file_and_the_source(tmp_path: Path) -> None:
    report = assets.check_assets(tmp_path)
    assert not report.ok and report.usable_backbones == ()
    assert set(report.missing) == set(assets.ASSET_FILES)
    for name in assets.ASSET_FILES:
        assert name in report.message
    assert URL in report.message and "assets/" in report.message
    assert not report.ok_for("resnet50") and not report.ok_for("mbnetv3")
    with pytest.raises(AssetError, match="net_recon.pth"):
        report.raise_unless_ok_for("resnet50")
    missing = assets.check_assets(tmp_path / "nowhere")
    assert "does not exist" in missing.message and URL in missing.message


def test_full_folder_is_ok_and_quick(full_assets: Path) -> None:
    import time

    start = time.perf_counter()
    report = assets.check_assets(full_assets)
    elapsed = time.perf_counter() - start
    assert report.ok, str(report)
    assert report.usable_backbones == ("resnet50", "mobilenetv3")
    assert "All 3DDFA-V3 assets found" in report.message
    assert "present" in str(report) and "net_recon.pth" in str(report)
    assert elapsed < 5.0      # generous: it must not load the networks (it takes milliseconds)


def test_one_backbone_usable(tmp_path: Path, full_assets: Path) -> None:
    for name in assets.ASSET_FILES:
        if name != "net_recon.pth":
            (tmp_path / name).symlink_to(full_assets / name)
    report = assets.check_assets(tmp_path)
    assert report.usable_backbones == ("mobilenetv3",)
    assert report.missing == ["net_recon.pth"]
    assert "Usable backbones: mobilenetv3" in report.message and "net_recon.pth" in report.message
    assert report.ok_for("mbnetv3") and not report.ok_for("resnet50")


def test_quick_check_flags_broken_files(tmp_path: Path, full_assets: Path) -> None:
    for name in assets.ASSET_FILES:
        (tmp_path / name).symlink_to(full_assets / name)
    landmark = tmp_path / "large_base_net.pth"
    landmark.unlink()
    landmark.write_bytes(os.urandom(4_000_000))                          # big enough, but junk
    mbnet = tmp_path / "net_recon_mbnet.pth"
    mbnet.unlink()
    mbnet.write_bytes((full_assets / "net_recon_mbnet.pth").read_bytes()[:7_000_000])   # cut-off download
    retina = tmp_path / "retinaface_resnet50_2020-07-20_old_torch.pth"
    retina.unlink()
    retina.write_bytes(b"<html>rate limited</html>")                     # an error page saved as the file
    mat = tmp_path / "similarity_Lm3D_all.mat"
    mat.unlink()
    mat.write_bytes(b"junk" * 100)
    face = tmp_path / "face_model.npy"
    face.unlink()
    np.save(face, np.zeros((1000, 3)))
    report = assets.check_assets(tmp_path)
    states = {name: status.state for name, status in report.files.items()}
    assert states == {"face_model.npy": "malformed", "net_recon.pth": "present",
                      "net_recon_mbnet.pth": "malformed", "retinaface_resnet50_2020-07-20_old_torch.pth": "malformed",
                      "large_base_net.pth": "malformed", "similarity_Lm3D_all.mat": "malformed"}
    reasons = {name: status.reason for name, status in report.files.items()}
    assert "not a PyTorch checkpoint" in reasons["large_base_net.pth"]
    assert "damaged PyTorch archive" in reasons["net_recon_mbnet.pth"]
    assert "incomplete or wrong download" in reasons["retinaface_resnet50_2020-07-20_old_torch.pth"]
    assert "not the face-model dictionary" in reasons["face_model.npy"]
    assert "MATLAB" in reasons["similarity_Lm3D_all.mat"]
    assert report.usable_backbones == ()
    for name in ("large_base_net.pth", "net_recon_mbnet.pth", "face_model.npy"):
        assert name in report.message


# --------------------------------------------------------------------------- checkpoints

def test_checkpoints_load_through_the_networks(full_assets: Path) -> None:
    torch = pytest.importorskip("torch")
    state = assets.load_state_dict(full_assets / "large_base_net.pth", "landmark106")
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    network = assets.load_asset_network(full_assets, "landmark106")
    assert not network.training
    recon = assets.load_state_dict(full_assets / "net_recon_mbnet.pth", "recon_mbnetv3")
    assert any(k.startswith("final_layers.6.") for k in recon)


def _folder_with(tmp_path: Path, full_assets: Path, name: str) -> Path:
    for other in assets.ASSET_FILES:
        if other != name:
            (tmp_path / other).symlink_to(full_assets / other)
    return tmp_path / name


def test_corrupt_checkpoints_give_asset_errors(tmp_path: Path, full_assets: Path) -> None:
    torch = pytest.importorskip("torch")
    target = _folder_with(tmp_path, full_assets, "large_base_net.pth")
    good = torch.load(full_assets / "large_base_net.pth", map_location="cpu", weights_only=True)

    target.write_bytes(os.urandom(200_000))
    with pytest.raises(AssetError, match="large_base_net.pth is not a PyTorch checkpoint") as info:
        assets.load_asset_network(tmp_path, "landmark106")
    assert URL in str(info.value)

    target.write_bytes((full_assets / "large_base_net.pth").read_bytes()[:3_000_000])
    with pytest.raises(AssetError, match="large_base_net.pth cannot be read"):
        assets.load_asset_network(tmp_path, "landmark106")

    torch.save({"something": "else", "epoch": 3}, target)
    with pytest.raises(AssetError, match="large_base_net.pth is laid out unexpectedly"):
        assets.load_asset_network(tmp_path, "landmark106")

    torch.save([1, 2, 3], target)
    with pytest.raises(AssetError, match="large_base_net.pth does not hold a network state dict"):
        assets.load_asset_network(tmp_path, "landmark106")

    wrong_shape = {"state_dict": dict(good["state_dict"])}
    key = next(k for k, v in wrong_shape["state_dict"].items() if v.dim() == 4)
    wrong_shape["state_dict"][key] = torch.zeros(3, 3, 3, 3)
    torch.save(wrong_shape, target)
    with pytest.raises(AssetError, match="large_base_net.pth does not fit the landmark106 network") as info:
        assets.load_asset_network(tmp_path, "landmark106")
    assert URL in str(info.value)
    # One sentence per fact: the mismatch is named once, no doubled full stops.
    text = str(info.value)
    assert "wrong shape" in text and text.count("do not fit") + text.count("does not fit") == 1 and ".." not in text

    missing_key = {"state_dict": dict(good["state_dict"])}
    del missing_key["state_dict"][key]
    torch.save(missing_key, target)
    with pytest.raises(AssetError, match="large_base_net.pth does not fit"):
        assets.load_asset_network(tmp_path, "landmark106")

    other_model = torch.load(full_assets / "net_recon_mbnet.pth", map_location="cpu", weights_only=True)
    torch.save(other_model, target)                                   # the wrong network's file
    with pytest.raises(AssetError, match="large_base_net.pth does not fit the landmark106 network"):
        assets.load_asset_network(tmp_path, "landmark106")


def test_checkpoint_with_code_is_refused(tmp_path: Path, full_assets: Path) -> None:
    torch = pytest.importorskip("torch")
    marker = tmp_path / "marker"
    target = _folder_with(tmp_path, full_assets, "large_base_net.pth")
    torch.save({"state_dict": {"x": torch.zeros(1)}, "hook": _WritesFile(marker)}, target)
    with pytest.raises(AssetError, match=r"large_base_net.pth was refused: it asks to run code \((builtins\.)?exec\)") \
            as info:
        assets.load_asset_network(tmp_path, "landmark106")
    assert not marker.exists()
    assert "weights_only" not in str(info.value)      # torch's advice to switch the safety off is not passed on


def test_missing_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    with pytest.raises(AssetError, match=f"net_recon.pth is missing.*{URL}"):
        assets.load_asset_network(tmp_path, "recon_resnet50")


def test_missing_torch_is_a_dependency_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)          # makes `import torch` fail
    from nv3dmm_face_tools.tddfa_v3.dependencies import require_torch

    with pytest.raises(DependencyError, match="pip install torch"):
        require_torch()


# --------------------------------------------------------------------------- the synthetic assets themselves

def test_synthetic_assets_from_fixtures(tddfa_fixtures: Path, tmp_path: Path) -> None:
    written = synthetic_face.write_synthetic_face_model(tmp_path, fixtures_dir=tddfa_fixtures)
    arrays = assets.load_face_model_arrays(written["face_model"], use_cache=False)
    with np.load(tddfa_fixtures / "face_model.npz") as reference:
        for key in ("u", "id", "exp", "u_alb", "alb", "tri", "point_buf", "uv_coords", "ldm68", "ldm106", "ldm134"):
            np.testing.assert_array_equal(getattr(arrays, key), reference[key], err_msg=key)
        for i in range(8):
            np.testing.assert_array_equal(arrays.annotation_tri[i], reference[f"annotation_tri_{i}"])
    assert (tmp_path / "similarity_Lm3D_all.mat").read_bytes() == (tddfa_fixtures / "similarity_Lm3D_all.mat").read_bytes()


def test_generated_face_model_is_consistent(model_dict: dict[str, Any]) -> None:
    arrays = assets.face_model_arrays_from_dict(model_dict)
    tri, buf = arrays.tri, arrays.point_buf
    # point_buf lists exactly the triangles around each vertex, padded with T
    counts = np.bincount(tri.ravel(), minlength=arrays.vertex_count)
    np.testing.assert_array_equal((buf < arrays.triangle_count).sum(1), counts)
    assert set(np.unique(counts)) == {2, 4, 8}
    # counter-clockwise seen from +z: (v1 - v2) x (v2 - v3) points to +z on the flat grid
    v = arrays.u.reshape(-1, 3).astype(np.float64)
    flat = v.copy()
    flat[:, 2] = 0
    normal = np.cross(flat[tri[:, 0]] - flat[tri[:, 1]], flat[tri[:, 1]] - flat[tri[:, 2]])
    assert np.all(normal[:, 2] > 0)
    # parts are disjoint, annotation_tri are triangles inside each part, chains are disjoint
    parts = np.concatenate(arrays.annotation)
    assert len(parts) == len(np.unique(parts))
    for part, part_tri in zip(arrays.annotation, arrays.annotation_tri):
        assert np.isin(part_tri, part).all() and len(part_tri) > 0
    chains = np.concatenate(arrays.parallel)
    assert len(chains) == len(np.unique(chains))
    np.testing.assert_array_equal([c[0] for c in arrays.parallel], arrays.ldm106[:33])
    # landmark roles: eye centres left/right of the nose tip, mouth corners below it
    x, y = v[:, 0], v[:, 1]
    le, re, nose, ml, mr = arrays.ldm106[[74, 83, 54, 84, 90]]
    assert x[le] < x[nose] < x[re] and y[ml] < y[nose] < y[le] and x[ml] < x[mr]


def test_write_synthetic_assets_needs_no_fixtures(full_assets: Path) -> None:
    arrays = assets.load_face_model_arrays(full_assets, use_cache=False)
    assert arrays.vertex_count == 2009
    five = assets.load_five_point_template(full_assets)
    assert five.shape == (5, 3)


def test_no_partial_files_on_failure(tmp_path: Path, model_dict: dict[str, Any]) -> None:
    bad = dict(model_dict, u=lambda: None)           # np.save cannot pickle a lambda
    with pytest.raises(Exception):
        synthetic_face.write_face_model_npy(tmp_path / "face_model.npy", bad)
    assert list(tmp_path.iterdir()) == []


def test_copy_keeps_working(tmp_path: Path, model_dict: dict[str, Any]) -> None:
    """A cache is keyed on the source's path: a copy elsewhere gets its own cache."""
    a = _write_npy(tmp_path / "a" / "face_model.npy", model_dict)
    b = tmp_path / "b" / "face_model.npy"
    b.parent.mkdir()
    shutil.copy2(a, b)
    assert assets.cache_path_for(a, tmp_path / "c") != assets.cache_path_for(b, tmp_path / "c")
    assert assets.load_face_model_arrays(a, cache_dir=tmp_path / "c").loaded_from == "pickle"
    assert assets.load_face_model_arrays(b, cache_dir=tmp_path / "c").loaded_from == "pickle"
    assert assets.load_face_model_arrays(b, cache_dir=tmp_path / "c").loaded_from == "cache"


def test_legacy_torch_format_accepted(tmp_path: Path, full_assets: Path) -> None:
    """Checkpoints saved by PyTorch < 1.6 (no zip archive) pass the quick check and load."""
    torch = pytest.importorskip("torch")
    target = _folder_with(tmp_path, full_assets, "large_base_net.pth")
    good = torch.load(full_assets / "large_base_net.pth", map_location="cpu", weights_only=True)
    torch.save(good, target, _use_new_zipfile_serialization=False)
    assert not target.read_bytes().startswith(b"PK")
    assert assets.check_assets(tmp_path).files["large_base_net.pth"].state == "present"
    network = assets.load_asset_network(tmp_path, "landmark106")
    assert not network.training


def test_memory_bomb_is_an_asset_error(tmp_path: Path) -> None:
    """An array claiming a petabyte must fail cleanly, not take the machine down."""
    import io

    reconstruct = np.zeros(1).__reduce__()[0]

    class _Huge:
        def __reduce__(self) -> Any:
            return (reconstruct, (np.ndarray, (2 ** 50,), b"b"))

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|O", "fortran_order": False, "shape": ()})
    pickle.dump({"u": _Huge()}, buffer, protocol=3)
    path = tmp_path / "face_model.npy"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(AssetError, match="face_model.npy asks for more memory"):
        assets.load_face_model_arrays(path, use_cache=False)


def test_quick_check_without_scipy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The preferences show the status live even where SciPy is not installed yet."""
    good = synthetic_face.write_lm68_mat(tmp_path / "similarity_Lm3D_all.mat", synthetic_face.landmark_template_68())
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    assert assets.check_assets(tmp_path).files["similarity_Lm3D_all.mat"].state == "present"
    good.write_bytes(b"junk" * 50)
    assert assets.check_assets(tmp_path).files["similarity_Lm3D_all.mat"].state == "malformed"
    with pytest.raises(DependencyError, match="pip install scipy"):
        assets.load_lm68_template(good)
