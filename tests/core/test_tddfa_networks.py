# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The four 3DDFA-V3 networks, the synthetic-weight recipe and strict checkpoint loading.

Fixture tests rebuild the reference's synthetic weights from the recorded key
lists, save them as checkpoint files laid out like the real assets, load them
back through `load_network` and compare with the reference outputs. The rest
runs without the fixtures, on weights generated from our own modules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is needed for the 3DDFA-V3 networks")

from nv3dmm_face_tools.tddfa_v3.errors import AssetError  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.networks import (  # noqa: E402
    COEFF_SLICES, NETWORK_KINDS, LandmarkNet, fuse_batchnorm, ReconNet, RetinaFace, WeightsError, build_network,
    load_network, soft_argmax, split_coefficients, state_dict_from_checkpoint,
)
from nv3dmm_face_tools.tddfa_v3.synthetic import (  # noqa: E402
    CHECKPOINT_FILES, DEFAULT_GAINS, Entry, entries_from_keys_json, entries_from_module, rule_for,
    synthetic_array, synthetic_network_state_dict, synthetic_state_dict, write_synthetic_checkpoints,
)

torch.set_num_threads(2)

FIXTURE_FILES = {
    "recon_resnet50": "recon_resnet50.npz",
    "recon_mbnetv3": "recon_mbnetv3.npz",
    "landmark106": "landmark106.npz",
    "retinaface": "retinaface.npz",
}


# --------------------------------------------------------------------------- helpers

def _keys_meta(fixtures: Path, kind: str) -> dict[str, Any]:
    with open(fixtures / f"{kind}_keys.json", encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@pytest.fixture(scope="module")
def fixture_checkpoints(tddfa_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic checkpoints built from the fixtures' key lists with their seed, saved like the real assets."""
    seeds = {int(_keys_meta(tddfa_fixtures, kind)["seed"]) for kind in NETWORK_KINDS}
    assert len(seeds) == 1, f"the key lists disagree on the seed: {seeds}"
    folder = tmp_path_factory.mktemp("synthetic_assets")
    return write_synthetic_checkpoints(folder, seed=seeds.pop(), keys_dir=tddfa_fixtures)


def _load_from_file(kind: str, path: Path, **options: Any) -> Any:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return load_network(kind, state_dict_from_checkpoint(kind, checkpoint), **options)


def _npz(fixtures: Path, kind: str) -> Any:
    data = np.load(fixtures / FIXTURE_FILES[kind])
    meta = _keys_meta(fixtures, kind)
    # The recorded outputs must come from the same weights the key list describes.
    assert int(data["seed"]) == int(meta["seed"])
    assert float(data["gain"]) == pytest.approx(float(meta["gain_ndim_ge2"]))
    return data


# --------------------------------------------------------------------------- fixtures: layout and recipe

@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_module_layout_equals_recorded_key_list(tddfa_fixtures: Path, kind: str) -> None:
    expected = entries_from_keys_json(tddfa_fixtures / f"{kind}_keys.json")
    assert entries_from_module(build_network(kind)) == expected
    meta = _keys_meta(tddfa_fixtures, kind)
    assert meta["n_entries"] == len(expected)
    assert [rule_for(e.key, e.shape, e.dtype) for e in expected] == [e["rule"] for e in meta["entries"]]


def test_checkpoint_files_are_laid_out_like_the_assets(fixture_checkpoints: dict[str, Path],
                                                       tddfa_fixtures: Path) -> None:
    assert {kind: path.name for kind, path in fixture_checkpoints.items()} == CHECKPOINT_FILES
    recon = torch.load(fixture_checkpoints["recon_resnet50"], weights_only=True)
    assert list(recon) == ["net_recon"]
    assert list(torch.load(fixture_checkpoints["recon_mbnetv3"], weights_only=True)) == ["net_recon"]
    landmark = torch.load(fixture_checkpoints["landmark106"], weights_only=True)
    assert list(landmark) == ["state_dict"]
    assert all(key.startswith("module.") for key in landmark["state_dict"])
    retina = torch.load(fixture_checkpoints["retinaface"], weights_only=True)
    keys = [e.key for e in entries_from_keys_json(tddfa_fixtures / "retinaface_keys.json")]
    assert list(retina) == keys
    assert retina["body.layer1.0.bn1.num_batches_tracked"].dtype == torch.int64


# --------------------------------------------------------------------------- fixtures: outputs

@pytest.mark.parametrize("kind, atol, options", [
    ("recon_resnet50", 1e-4, {}),
    ("recon_mbnetv3", 2e-5, {}),
    ("recon_mbnetv3", 2e-5, {"channels_last": False}),
    ("recon_mbnetv3", 2e-5, {"fuse_bn": True}),
])
def test_recon_matches_reference(tddfa_fixtures: Path, fixture_checkpoints: dict[str, Path],
                                 kind: str, atol: float, options: dict[str, Any]) -> None:
    data = _npz(tddfa_fixtures, kind)
    net = _load_from_file(kind, fixture_checkpoints[kind], **options)
    with torch.inference_mode():
        alpha, feat = net.forward_with_features(torch.from_numpy(data["images"]))
    np.testing.assert_allclose(feat.numpy(), data["feat"], rtol=0, atol=atol)
    np.testing.assert_allclose(alpha.numpy(), data["alpha"], rtol=0, atol=atol)
    for name, part in split_coefficients(alpha).items():
        np.testing.assert_allclose(part.numpy(), data[name], rtol=0, atol=atol, err_msg=name)


@pytest.mark.parametrize("options", [{}, {"channels_last": False}, {"fuse_bn": True}])
def test_landmark_net_matches_reference(tddfa_fixtures: Path, fixture_checkpoints: dict[str, Path],
                                        options: dict[str, Any]) -> None:
    data = _npz(tddfa_fixtures, "landmark106")
    net = _load_from_file("landmark106", fixture_checkpoints["landmark106"], **options)
    with torch.inference_mode():
        heatmaps = net(torch.from_numpy(data["net_input"]))
        points = soft_argmax(heatmaps)
    np.testing.assert_allclose(heatmaps.numpy(), data["heatmaps"], rtol=0, atol=1e-3)
    batch = points.shape[0]
    np.testing.assert_allclose(points.reshape(batch, -1).numpy(), data["net_output"], rtol=0, atol=5e-3 / 224)
    np.testing.assert_allclose(points.numpy() * 224, data["points"], rtol=0, atol=5e-3)


def test_soft_argmax_on_recorded_heatmaps(tddfa_fixtures: Path) -> None:
    data = _npz(tddfa_fixtures, "landmark106")
    points = soft_argmax(torch.from_numpy(data["heatmaps"]))
    np.testing.assert_allclose(points.numpy() * 224, data["points"], rtol=0, atol=1e-4)


def test_retinaface_matches_reference(tddfa_fixtures: Path, fixture_checkpoints: dict[str, Path]) -> None:
    from nv3dmm_face_tools.tddfa_v3.detection import decode_boxes, decode_landmarks, prior_boxes

    data = _npz(tddfa_fixtures, "retinaface")
    net = _load_from_file("retinaface", fixture_checkpoints["retinaface"])
    with torch.inference_mode():
        loc, conf, landm = net(torch.from_numpy(data["input"]))
    for name, value in (("loc", loc), ("conf", conf), ("landm", landm)):
        np.testing.assert_allclose(value.numpy(), data[name], rtol=0, atol=1e-4, err_msg=name)
    priors = prior_boxes(int(data["input"].shape[-1]))
    scores = torch.softmax(conf[0], dim=-1)[:, 1]
    np.testing.assert_allclose(scores.numpy(), data["scores_all"], rtol=0, atol=1e-5)
    size = data["input"].shape[-1]
    np.testing.assert_allclose((decode_boxes(loc[0], priors) * size).numpy(), data["boxes_decoded_all"],
                               rtol=0, atol=1e-3)
    np.testing.assert_allclose((decode_landmarks(landm[0], priors) * size).numpy(), data["landms_decoded_all"],
                               rtol=0, atol=1e-3)


# --------------------------------------------------------------------------- without fixtures: recipe

def test_recipe_cases() -> None:
    entries = [
        Entry("bn.num_batches_tracked", (), "int64"),
        Entry("bn.running_var", (5,), "float32"),
        Entry("bn.running_mean", (5,), "float32"),
        Entry("bn.weight", (5,), "float32"),
        Entry("conv.bias", (5,), "float32"),
        Entry("conv.weight", (4, 3, 2, 2), "float32"),
        Entry("depthwise.weight", (6, 1, 3, 3), "float32"),
        Entry("scale", (3,), "float32"),
    ]
    sd = synthetic_state_dict(entries, seed=7, gain=0.5)
    assert list(sd) == [e.key for e in entries]
    assert sd["bn.num_batches_tracked"].dtype == torch.int64 and int(sd["bn.num_batches_tracked"]) == 0
    assert all(v.dtype == torch.float32 for k, v in sd.items() if k != "bn.num_batches_tracked")
    # Each entry draws from its own generator seeded with [seed, position], in float64.
    rng = np.random.default_rng([7, 1])
    assert np.array_equal(sd["bn.running_var"].numpy(), (0.5 + rng.random((5,))).astype(np.float32))
    rng = np.random.default_rng([7, 3])
    assert np.array_equal(sd["bn.weight"].numpy(), (1.0 + 0.1 * rng.standard_normal((5,))).astype(np.float32))
    rng = np.random.default_rng([7, 5])
    expected = (rng.standard_normal((4, 3, 2, 2)) * np.sqrt(1.0 / 12) * 0.5).astype(np.float32)
    assert np.array_equal(sd["conv.weight"].numpy(), expected)
    rng = np.random.default_rng([7, 6])
    expected = (rng.standard_normal((6, 1, 3, 3)) * np.sqrt(1.0 / 9) * 0.5).astype(np.float32)
    assert np.array_equal(sd["depthwise.weight"].numpy(), expected)
    assert [rule_for(e.key, e.shape, e.dtype) for e in entries] == [
        "int_zeros", "running_var", "running_mean", "weight_1d", "bias", "fan_in", "fan_in", "other"]
    # The position seeds the generator: the same key elsewhere gets other values.
    moved = synthetic_array("bn.weight", (5,), "float32", seed=7, index=4, gain=0.5)
    assert not np.array_equal(moved, sd["bn.weight"].numpy())
    other_seed = synthetic_state_dict(entries, seed=8, gain=0.5)
    assert not torch.equal(other_seed["conv.weight"], sd["conv.weight"])


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_entries_from_module_round_trip(kind: str, tmp_path: Path) -> None:
    module = build_network(kind)
    entries = entries_from_module(module)
    assert [e.key for e in entries] == list(module.state_dict())
    # Through a key-list file in the fixtures' format and back.
    document = {"module": kind, "seed": 3, "gain_ndim_ge2": DEFAULT_GAINS[kind], "n_entries": len(entries),
                "entries": [{"i": i, "key": e.key, "shape": list(e.shape), "dtype": e.dtype,
                             "rule": rule_for(e.key, e.shape, e.dtype)} for i, e in enumerate(entries)]}
    (tmp_path / f"{kind}_keys.json").write_text(json.dumps(document), encoding="utf-8")
    assert entries_from_keys_json(tmp_path / f"{kind}_keys.json") == entries
    from_file = synthetic_network_state_dict(kind, seed=3, keys_dir=tmp_path)
    from_module = synthetic_network_state_dict(kind, seed=3)
    assert list(from_file) == list(from_module)
    assert all(torch.equal(from_file[k], from_module[k]) for k in from_file)
    net = load_network(kind, from_module)
    assert not net.training
    assert all(torch.equal(v, from_module[k]) for k, v in net.state_dict().items())


def test_key_list_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad_keys.json"
    bad.write_text('{"entries": [{"i": 1, "key": "a.weight", "shape": [2], "dtype": "float32"}]}', encoding="utf-8")
    with pytest.raises(AssetError, match="in order"):
        entries_from_keys_json(bad)
    bad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(AssetError, match="entries"):
        entries_from_keys_json(bad)
    with pytest.raises(AssetError, match="cannot read"):
        entries_from_keys_json(tmp_path / "missing_keys.json")


def test_write_checkpoints_without_fixtures(tmp_path: Path) -> None:
    written = write_synthetic_checkpoints(tmp_path, seed=5, kinds=["landmark106", "recon_mbnetv3"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["large_base_net.pth", "net_recon_mbnet.pth"]
    for kind, path in written.items():
        net = _load_from_file(kind, path)
        expected = synthetic_network_state_dict(kind, seed=5)
        assert all(torch.equal(v, expected[k]) for k, v in net.state_dict().items())


# --------------------------------------------------------------------------- without fixtures: strict loading

@pytest.fixture(scope="module")
def landmark_weights() -> dict[str, Any]:
    return synthetic_network_state_dict("landmark106", seed=2)


def test_loading_rejects_missing_key(landmark_weights: dict[str, Any]) -> None:
    weights = dict(landmark_weights)
    del weights["block5.conv.3.weight"]
    with pytest.raises(WeightsError, match=r"1 missing key\(s\): block5\.conv\.3\.weight") as info:
        load_network("landmark106", weights)
    assert isinstance(info.value, AssetError)
    assert info.value.missing == ["block5.conv.3.weight"] and not info.value.unexpected


def test_loading_rejects_unexpected_key(landmark_weights: dict[str, Any]) -> None:
    weights = dict(landmark_weights)
    weights["block20.weight"] = torch.zeros(3)
    with pytest.raises(WeightsError, match=r"unexpected key\(s\): block20\.weight"):
        load_network("landmark106", weights)


def test_loading_rejects_wrong_shape(landmark_weights: dict[str, Any]) -> None:
    weights = dict(landmark_weights)
    weights["block19.weight"] = torch.zeros(68, 256, 3, 3)
    with pytest.raises(WeightsError, match=r"block19\.weight \(file \[68, 256, 3, 3\], network \[106, 256, 3, 3\]\)"):
        load_network("landmark106", weights)


def test_loading_rejects_non_tensor_values(landmark_weights: dict[str, Any]) -> None:
    weights = dict(landmark_weights)
    weights["block1.1.weight"] = [1.0] * 64
    with pytest.raises(WeightsError, match=r"block1\.1\.weight \(file not a tensor, network \[64\]\)"):
        load_network("landmark106", weights)


def test_loading_wrong_network_names_the_keys(landmark_weights: dict[str, Any]) -> None:
    with pytest.raises(WeightsError, match="do not fit the retinaface network") as info:
        load_network("retinaface", landmark_weights)
    assert "more)" in str(info.value)   # long lists are shortened


def test_loading_strips_module_prefix_and_tolerates_missing_counters(landmark_weights: dict[str, Any]) -> None:
    weights = {"module." + k: v for k, v in landmark_weights.items() if not k.endswith("num_batches_tracked")}
    net = load_network("landmark106", weights)
    loaded = net.state_dict()
    assert all(torch.equal(loaded[k], landmark_weights[k]) for k in landmark_weights)


def test_checkpoint_unwrapping(landmark_weights: dict[str, Any]) -> None:
    assert state_dict_from_checkpoint("landmark106", {"state_dict": landmark_weights}) is landmark_weights
    assert state_dict_from_checkpoint("recon_resnet50", {"net_recon": landmark_weights}) is landmark_weights
    assert state_dict_from_checkpoint("retinaface", landmark_weights) is landmark_weights
    with pytest.raises(AssetError, match="not a dictionary"):
        state_dict_from_checkpoint("retinaface", [1, 2])
    with pytest.raises(ValueError, match="unknown network kind"):
        load_network("resnet", landmark_weights)


# --------------------------------------------------------------------------- without fixtures: forward passes

def test_recon_forward_shapes_and_split() -> None:
    torch.manual_seed(0)
    for backbone, feat_dim in (("mobilenetv3", 960), ("resnet50", 2048)):
        net = ReconNet(backbone).eval()
        with torch.inference_mode():
            x = torch.rand(2, 3, 224, 224)
            alpha, feat = net.forward_with_features(x)
            assert alpha.shape == (2, 257) and feat.shape == (2, feat_dim)
            # The stacked-head GEMM equals the seven 1x1 convs applied one by one.
            per_head = torch.cat([layer(feat[:, :, None, None]).flatten(1) for layer in net.final_layers], 1)
            torch.testing.assert_close(alpha, per_head, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(net(x), alpha)
    parts = split_coefficients(alpha)
    assert {k: v.shape[1] for k, v in parts.items()} == {k: s.stop - s.start for k, s in COEFF_SLICES.items()}
    with pytest.raises(ValueError, match="257"):
        split_coefficients(torch.zeros(1, 256))
    with pytest.raises(ValueError, match="unknown backbone"):
        ReconNet("vgg")  # type: ignore[arg-type]


def test_landmark_forward_and_channels_last() -> None:
    net = load_network("landmark106", synthetic_network_state_dict("landmark106", seed=4))
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        heatmaps = net(x)
        assert heatmaps.shape == (2, 106, 14, 14)
        fast = net.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(fast.contiguous(), heatmaps, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.zeros(3, 224, 224))


def test_fused_batchnorm_keeps_outputs() -> None:
    weights = synthetic_network_state_dict("retinaface", seed=6)
    plain = load_network("retinaface", weights)
    fused = load_network("retinaface", weights, fuse_bn=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(1, 3, 96, 96)
    with torch.inference_mode():
        for a, b in zip(plain(x), fused(x)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="eval-mode"):
        fuse_batchnorm(LandmarkNet().train())


def test_retinaface_forward_small_input() -> None:
    from nv3dmm_face_tools.tddfa_v3.detection import prior_boxes

    net = RetinaFace().eval()
    with torch.inference_mode():
        loc, conf, landm = net(torch.randn(1, 3, 128, 128))
    anchors = 2 * (16 * 16 + 8 * 8 + 4 * 4)
    assert loc.shape == (1, anchors, 4) and conf.shape == (1, anchors, 2) and landm.shape == (1, anchors, 10)
    assert prior_boxes(128).shape == (anchors, 4)


def test_soft_argmax_axes_follow_the_reference() -> None:
    heatmaps = torch.full((1, 2, 14, 14), -50.0)
    heatmaps[0, 0, 3, 9] = 50.0     # row 3, column 9
    heatmaps[0, 1, 12, 1] = 50.0
    points = soft_argmax(heatmaps)
    # "x" comes from the row index, "y" from the column index (meshgrid "ij").
    torch.testing.assert_close(points[0], torch.tensor([[3 / 14, 9 / 14], [12 / 14, 1 / 14]]))
    uniform = soft_argmax(torch.zeros(1, 1, 14, 14))
    torch.testing.assert_close(uniform[0, 0], torch.tensor([6.5 / 14, 6.5 / 14]))
    assert isinstance(LandmarkNet().points(torch.zeros(1, 3, 224, 224)), torch.Tensor)
