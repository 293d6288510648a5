# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The video tests' inputs, drawn here (no downloads): a clip of a drawn face that moves,
turns and scales, with no face on the BLANK frames; a skin-colour detector for it; and
module-scoped fixtures for the clip, a Reconstructor on synthetic 3DDFA-V3 weights and
its assets folder. Test modules import the fixtures by name. Needs OpenCV (and
PyTorch for the reconstructor); no bpy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2", reason="OpenCV reads the videos (requirements-reconstruction.txt)")

SKIN = (222, 178, 150)
BLANK = range(5, 7)           # frames without a face


def draw_face(i: int, width: int = 160, height: int = 120) -> np.ndarray:
    """Frame i (RGB) of the test clip: a drawn face moving, turning (eyes shift) and scaling;
    no face on the BLANK frames."""
    image = np.full((height, width, 3), (90, 120, 160), np.uint8)
    if i in BLANK:
        return image
    s = 0.8 + 0.2 * np.sin(i / 5)
    cx, cy = int(width / 2 + 15 * np.sin(i / 4)), height // 2
    turn = int(6 * np.sin(i / 3))
    cv2.ellipse(image, (cx, cy), (int(34 * s), int(44 * s)), 0, 0, 360, SKIN, -1)
    for ex in (cx - int(13 * s) + turn, cx + int(13 * s) + turn):
        cv2.circle(image, (ex, cy - int(9 * s)), max(2, int(4 * s)), (250, 250, 250), -1)
    cv2.ellipse(image, (cx + turn, cy + int(20 * s)), (int(11 * s), 2 + i % 5), 0, 0, 360, (170, 60, 60), -1)
    return image


def write_clip(path: Path, frames: int, fps: float = 24.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (160, 120))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.ascontiguousarray(draw_face(i)[:, :, ::-1]))
    writer.release()
    return path


def skin_detector(images: Any) -> list[Any]:
    """A detector for the drawn clip: the box of the skin-coloured pixels, None without them."""
    found: list[Any] = []
    for image in images:
        mask = np.abs(image.astype(np.int32) - np.array(SKIN)).sum(axis=2) < 40
        if mask.sum() < 30:
            found.append(None)
            continue
        ys, xs = np.nonzero(mask)
        found.append((np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float64), 1.0))
    return found


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.avi", 10)


@pytest.fixture(scope="module")
def reconstructor(tmp_path_factory: pytest.TempPathFactory) -> Any:
    torch = pytest.importorskip("torch", reason="tracking needs PyTorch (requirements-reconstruction.txt)")
    torch.set_num_threads(2)
    from nv3dmm_face_tools.tddfa_v3.pipeline import Reconstructor
    from nv3dmm_face_tools.tddfa_v3.synthetic_face import write_synthetic_assets

    assets = tmp_path_factory.mktemp("assets")
    write_synthetic_assets(assets, seed=7, fixtures_dir=None)
    return Reconstructor(assets, device="cpu", backbone="mobilenetv3", cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def assets(reconstructor: Any) -> Path:
    return Path(reconstructor.assets_dir)


def face_box(frame: int = 0) -> tuple[float, float, float, float]:
    """The skin box of frame `frame` of the clip (x1, y1, x2, y2), as the operator takes it."""
    box = skin_detector([draw_face(frame)])[0][0]
    return tuple(float(v) for v in box)  # type: ignore[return-value]
