# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile and mistaken inputs to the reconstruction core and its command line:
photos (tiny, elongated, decompression bombs, huge), damaged weights, asset
folders that only look complete, backbone names, and a run that must fail
before writing anything. Each failure is our own error type with one line of
advice, and nothing is left behind."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is needed for reconstruction tests")
pytest.importorskip("PIL", reason="Pillow is needed for reconstruction tests")
pytest.importorskip("cv2", reason="OpenCV is needed for reconstruction tests")

from nv3dmm_face_tools.tddfa_v3 import assets, backbones  # noqa: E402
from nv3dmm_face_tools.tddfa_v3 import photos  # noqa: E402
from nv3dmm_face_tools.tddfa_v3 import preprocess as P  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.__main__ import main as cli_main  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.errors import AssetError, PhotoError  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.synthetic_face import write_synthetic_assets  # noqa: E402

URL = assets.ASSET_SOURCE_URL


@pytest.fixture(scope="module")
def good_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs_assets")
    write_synthetic_assets(folder, seed=5, fixtures_dir=None)
    return folder


def _linked(folder: Path, good: Path, *, except_: str = "") -> Path:
    """A folder of links to the good assets, without `except_` (the caller writes it)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in assets.ASSET_FILES:
        if name != except_:
            (folder / name).symlink_to(good / name)
    return folder


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A tiny PNG file that declares `width` x `height` pixels (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _save(path: Path, array: np.ndarray, **options: Any) -> Path:
    from PIL import Image

    Image.fromarray(array).save(path, **options)
    return path


# ------------------------------------------------------------------ photos (items 8, 9, 10)

def test_tiny_and_elongated_photos_give_one_message_from_the_core(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    one = _save(tmp_path / "one.png", np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(PhotoError) as from_file:
        P.load_photo(one)
    with pytest.raises(PhotoError) as from_array:
        P.load_photo(np.zeros((1, 1, 3), np.uint8))
    # The same sentence for a file (named) and an array (the operator's Blender image).
    assert str(from_file.value) == "one.png" + str(from_array.value)[len("the photo"):]
    assert "1 x 1 pixels" in str(from_file.value) and f"at least {photos.MIN_PHOTO_SIDE} pixels" in str(from_file.value)

    wide = _save(tmp_path / "wide.png", np.zeros((2, 20000, 3), np.uint8))
    with pytest.raises(PhotoError, match="wide.png is 20000 x 2 pixels"):
        P.load_photo(wide)
    with pytest.raises(PhotoError, match="20 times as wide"):
        P.load_photo(np.zeros((30, 1000, 3), np.uint8))
    P.load_photo(np.zeros((30, 600, 3), np.uint8))          # 20:1 is still fine


def test_cli_photo_problems_are_one_line_each(good_assets: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    photos = [_save(tmp_path / "one.png", np.zeros((1, 1, 3), np.uint8)),
              _save(tmp_path / "wide.png", np.zeros((2, 20000, 3), np.uint8))]
    _png_header_only(tmp_path / "bomb.png", 30000, 30000)
    photos.append(tmp_path / "bomb.png")
    (tmp_path / "garbled.png").write_bytes((tmp_path / "one.png").read_bytes()[:40] + b"\x00" * 30)
    photos.append(tmp_path / "garbled.png")
    status = cli_main([*map(str, photos), "--assets", str(good_assets), "--out", str(tmp_path / "out"),
                       "--device", "cpu", "--box", "1,1,5,5", "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("error: ") for line in lines), err
    assert "Traceback" not in err and "cv2" not in err and "DecompressionBomb" not in err
    assert "one.png is 1 x 1 pixels" in lines[0] and "wide.png is 20000 x 2 pixels" in lines[1]
    assert "bomb.png is 30000 x 30000 pixels (900 megapixels)" in lines[2] and "decompression-bomb" in lines[2]
    assert "garbled.png" in lines[3]


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    _png_header_only(tmp_path / "bomb.png", 60000, 60000)
    with pytest.raises(PhotoError, match="bomb.png is 60000 x 60000 pixels"):
        P.load_photo(tmp_path / "bomb.png")
    from PIL import Image

    assert Image.MAX_IMAGE_PIXELS is not None       # Pillow's own guard is back in place


def test_huge_photos_are_decoded_reduced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (90, 121, 3), dtype=np.uint8)
    png = _save(tmp_path / "big.png", pixels)
    jpg = _save(tmp_path / "big.jpg", pixels, quality=95)
    exact = P.load_photo(png)
    np.testing.assert_array_equal(exact, pixels)          # under the limit: read as is
    monkeypatch.setattr(photos, "MAX_PHOTO_PIXELS", 3000)      # as if it were a 150-megapixel photo
    assert P.reduction_factor(121, 90, 3000) == 2
    reduced = P.load_photo(png)
    assert reduced.shape == (45, 61, 3)                   # ceil(90 / 2), ceil(121 / 2)
    np.testing.assert_array_equal(reduced, np.asarray(Image.fromarray(pixels).reduce(2)))
    small_jpg = P.load_photo(jpg)                         # JPEG: decoded at 1/2 scale straight from the file
    assert small_jpg.shape == (45, 61, 3)
    gray16 = _save(tmp_path / "g16.png", (pixels[:, :, 0].astype(np.uint16) * 257))
    assert P.load_photo(gray16).shape == (45, 61, 3)
    palette = tmp_path / "p.png"
    Image.fromarray(pixels).convert("P").save(palette)
    assert P.load_photo(palette).shape == (45, 61, 3)
    monkeypatch.setattr(photos, "MAX_DECODE_PIXELS", 5000)
    with pytest.raises(PhotoError, match="decompression-bomb"):
        P.load_photo(png)                                 # 10,890 pixels to decode whole
    assert P.load_photo(jpg).shape == (45, 61, 3)         # the JPEG decodes reduced: 2,745


# ------------------------------------------------------------------ weights (item 11)

def test_non_finite_weights_are_refused_at_load(good_assets: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    folder = _linked(tmp_path / "nan", good_assets, except_="large_base_net.pth")
    checkpoint = torch.load(good_assets / "large_base_net.pth", map_location="cpu", weights_only=True)
    key = next(k for k, v in checkpoint["state_dict"].items() if v.is_floating_point() and v.dim() == 4)
    checkpoint["state_dict"][key] = checkpoint["state_dict"][key].clone()
    checkpoint["state_dict"][key].view(-1)[3] = float("nan")
    torch.save(checkpoint, folder / "large_base_net.pth")
    with pytest.raises(AssetError, match=f"large_base_net.pth holds NaN or infinite weights \\(in {key}\\)"):
        assets.load_asset_network(folder, "landmark106")
    assert assets.check_assets(folder).ok                      # the quick check cannot see it
    report = assets.check_assets(folder, load=True, cache_dir=tmp_path / "cache")
    assert not report.ok and report.files["large_base_net.pth"].state == "malformed"
    assert key in report.files["large_base_net.pth"].reason
    assert cli_main(["check-assets", str(folder), "--cache-dir", str(tmp_path / "cache")]) == 3
    out = capsys.readouterr().out
    assert "malformed large_base_net.pth" in out and "NaN" in out

    checkpoint["state_dict"][key].view(-1)[3] = float("inf")
    torch.save(checkpoint, folder / "large_base_net.pth")
    with pytest.raises(AssetError, match="NaN or infinite weights"):
        assets.load_asset_network(folder, "landmark106")


def test_non_finite_results_are_refused(good_assets: Path, tmp_path: Path) -> None:
    import torch
    from nv3dmm_face_tools.tddfa_v3.pipeline import Reconstructor

    folder = _linked(tmp_path / "huge", good_assets, except_="net_recon_mbnet.pth")
    checkpoint = torch.load(good_assets / "net_recon_mbnet.pth", map_location="cpu", weights_only=True)
    state = checkpoint["net_recon"]
    for key in [k for k, v in state.items() if v.is_floating_point() and v.dim() >= 2][-3:]:
        state[key] = torch.full_like(state[key], 3e38)        # finite, but the output overflows
    torch.save(checkpoint, folder / "net_recon_mbnet.pth")
    rec = Reconstructor(folder, device="cpu", backbone="mobilenetv3", cache_dir=tmp_path / "cache")
    photo = np.random.default_rng(1).integers(0, 256, (160, 200, 3), dtype=np.uint8)
    with pytest.raises(AssetError, match="net_recon_mbnet.pth produced NaN or infinite coefficients"):
        rec.reconstruct(photo, face_box=(40, 30, 150, 140))


# ------------------------------------------------------------------ check-assets loads (item 12)

def test_check_assets_loads_what_reconstruction_loads(good_assets: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    folder = _linked(tmp_path / "wrong", good_assets, except_="net_recon.pth")
    wrong = torch.load(good_assets / "net_recon.pth", map_location="cpu", weights_only=True)
    key = next(k for k, v in wrong["net_recon"].items() if v.dim() == 4)
    wrong["net_recon"][key] = torch.zeros(3, 3, 3, 3)
    wrong["net_recon"]["padding"] = torch.zeros(30_000_000)  # keeps the size plausible
    torch.save(wrong, folder / "net_recon.pth")
    assert assets.check_assets(folder).ok                     # present, right size, a torch archive
    with pytest.raises(AssetError, match="net_recon.pth does not fit the recon_resnet50 network"):
        assets.load_asset_network(folder, "recon_resnet50")
    status = cli_main(["check-assets", str(folder), "--cache-dir", str(tmp_path / "cache")])
    captured = capsys.readouterr()
    assert status == 3 and "Traceback" not in captured.err
    assert "malformed net_recon.pth: net_recon.pth does not fit the recon_resnet50 network" in captured.out
    assert "Usable backbones: mobilenetv3" in captured.out
    assert cli_main(["check-assets", str(folder), "--quick"]) == 0
    capsys.readouterr()
    assert cli_main(["check-assets", str(good_assets), "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert out.count("loads ") == len(assets.ASSET_FILES)


# ------------------------------------------------------------------ backbone names (item 15)

def test_one_table_of_backbone_names(good_assets: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from nv3dmm_face_tools.tddfa_v3.__main__ import _reconstruct_parser

    parser = _reconstruct_parser()
    for backbone in backbones.BACKBONE_TABLE:
        for spelling in (backbone.name, backbone.identifier, *backbone.aliases):
            args = parser.parse_args(["x.jpg", "--assets", "a", "--out", "o", "--backbone", spelling])
            assert args.backbone == backbone.name
    with pytest.raises(SystemExit):
        parser.parse_args(["x.jpg", "--assets", "a", "--out", "o", "--backbone", "vgg"])
    err = capsys.readouterr().err
    assert "use resnet50 or mobilenetv3" in err
    # Every name a message offers is one the command line takes.
    only_mobile = _linked(tmp_path / "mobile", good_assets, except_="net_recon.pth")
    report = assets.check_assets(only_mobile)
    assert report.usable_backbones == ("mobilenetv3",)
    with pytest.raises(AssetError) as info:
        report.raise_unless_ok_for("resnet50")
    for text in (report.message, str(info.value)):
        assert "mbnetv3" not in text
    for offered in report.usable_backbones:
        assert parser.parse_args(["x.jpg", "--assets", "a", "--out", "o", "--backbone", offered])
    with pytest.raises(ValueError, match="use resnet50 or mobilenetv3"):
        from nv3dmm_face_tools.tddfa_v3.pipeline import Reconstructor
        Reconstructor(good_assets, backbone="vgg")


def test_the_command_lines_share_one_box_and_network_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from nv3dmm_face_tools.animation.cli import _parser as animation_parser
    from nv3dmm_face_tools.fitting.cli import build_parser as fitting_parser
    from nv3dmm_face_tools.tddfa_v3.__main__ import _reconstruct_parser
    from nv3dmm_face_tools.tddfa_v3.arguments import face_box

    assert face_box(" 1, 2.5,30 ,40") == (1.0, 2.5, 30.0, 40.0)
    for bad, why in (("1,2,3", "4 numbers"), ("a,b,c,d", "4 numbers"), ("1,2,3,4,5", "4 numbers"),
                     ("5,5,1,9", "empty")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            face_box(bad)
    commands = (
        (_reconstruct_parser(), ["x.jpg", "--assets", "a", "--out", "o"]),
        (fitting_parser(), ["x.jpg", "--model", "m.nvf", "--assets", "a", "--out", "o.nvf"]),
        (animation_parser(), ["video", "clip.mp4", "--assets", "a", "--out", "o.npz"]),
    )
    for parser, base in commands:
        args = parser.parse_args(base + ["--box", "1,2,30,40", "--backbone", "mbnetv3", "--device", "cpu"])
        assert (args.box, args.backbone, args.device) == ((1.0, 2.0, 30.0, 40.0), "mobilenetv3", "cpu")
        with pytest.raises(SystemExit):
            parser.parse_args(base + ["--box", "1,2,3"])
        assert "4 numbers" in capsys.readouterr().err


# ------------------------------------------------------------------ validate first (items 17, 18)

def test_cli_writes_nothing_when_it_cannot_run(tmp_path: Path, good_assets: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    photo = _save(tmp_path / "face.png", np.zeros((64, 64, 3), np.uint8))
    out = tmp_path / "out" / "deeper"
    status = cli_main([str(photo), "--assets", str(tmp_path / "no_assets"), "--out", str(out), "--device", "cpu"])
    assert status == 3 and not (tmp_path / "out").exists()
    capsys.readouterr()
    # Only the detector missing, and it is needed (no --box): still nothing written.
    no_detector = _linked(tmp_path / "nodet", good_assets,
                          except_="retinaface_resnet50_2020-07-20_old_torch.pth")
    status = cli_main([str(photo), "--assets", str(no_detector), "--out", str(out), "--device", "cpu",
                       "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert status == 3 and not (tmp_path / "out").exists()
    assert "retinaface_resnet50_2020-07-20_old_torch.pth" in err
    # The output is a file: a usage error, found before loading anything.
    (tmp_path / "file").write_text("x")
    assert cli_main([str(photo), "--assets", str(good_assets), "--out", str(tmp_path / "file")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_missing_assets_message_lists_every_file_its_size_and_source(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    photo = _save(tmp_path / "face.png", np.zeros((64, 64, 3), np.uint8))
    assert cli_main([str(photo), "--assets", str(tmp_path), "--out", str(tmp_path / "o")]) == 3
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    for name in assets.ASSET_FILES:
        what, size = assets.ASSET_FILE_INFO[name]
        assert f"{name} ({what}, {size})" in err
    assert URL in err and "assets/" in err
    assert "retinaface_resnet50_2020-07-20_old_torch.pth missing or broken" in err or \
        "retinaface_resnet50_2020-07-20_old_torch.pth," in err.split("missing or broken")[0]
