# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""RetinaFace anchors, decoding, NMS and the reference post-processing (predict_jsons)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is needed for the 3DDFA-V3 detector")

from nv3dmm_face_tools.tddfa_v3.detection import (  # noqa: E402
    Candidates, Detections, decode_boxes, decode_landmarks, detect, nms, postprocess, prior_boxes,
    select_candidates, to_photo,
)

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def retina(tddfa_fixtures: Path) -> Any:
    return np.load(tddfa_fixtures / "retinaface.npz")


def _heads(data: Any) -> tuple[Any, Any, Any]:
    return tuple(torch.from_numpy(data[k]) for k in ("loc", "conf", "landm"))  # type: ignore[return-value]


# --------------------------------------------------------------------------- fixtures

def test_priors_match_reference(retina: Any) -> None:
    size = int(retina["input"].shape[-1])
    np.testing.assert_array_equal(prior_boxes(size).numpy(), retina["priors"])


def test_scores_and_decoding_match_reference(retina: Any) -> None:
    loc, conf, landm = _heads(retina)
    size = int(retina["input"].shape[-1])
    priors = prior_boxes(size)
    np.testing.assert_allclose(torch.softmax(conf[0], -1)[:, 1].numpy(), retina["scores_all"], rtol=0, atol=1e-5)
    np.testing.assert_allclose((decode_boxes(loc[0], priors) * size).numpy(), retina["boxes_decoded_all"],
                               rtol=0, atol=1e-3)
    np.testing.assert_allclose((decode_landmarks(landm[0], priors) * size).numpy(), retina["landms_decoded_all"],
                               rtol=0, atol=1e-3)
    # Batched decoding (leading batch axis) gives the same numbers.
    batched = decode_boxes(loc, priors[None])
    torch.testing.assert_close(batched[0], decode_boxes(loc[0], priors), rtol=0, atol=0)


def test_postprocess_reproduces_predict_jsons(retina: Any) -> None:
    loc, conf, landm = _heads(retina)
    height, width = retina["image_uint8"].shape[:2]
    found = postprocess(loc, conf, landm, retina["pads"], (height, width), image_size=int(retina["input"].shape[-1]))
    scores = torch.softmax(conf[0], -1)[:, 1]
    assert int((scores > 0.7).sum()) == int(retina["n_above_0p7"])
    assert len(found) == retina["det_bboxes"].shape[0]
    np.testing.assert_array_equal(found.boxes, retina["det_bboxes"])
    np.testing.assert_array_equal(found.scores, retina["det_scores"])
    np.testing.assert_array_equal(found.landmarks, retina["det_landmarks"])
    assert found.boxes.dtype == np.int64 and found.scores.dtype == np.float64 and found.landmarks.dtype == np.int64


def test_low_threshold_variant(retina: Any) -> None:
    loc, conf, landm = _heads(retina)
    size = int(retina["input"].shape[-1])
    top_k = int(retina["low_top50_idx"].shape[0])
    scores = torch.softmax(conf[0], -1)[:, 1]
    positive = torch.nonzero(scores > 0).flatten()
    order = positive[torch.sort(scores[positive], descending=True, stable=True).indices][:top_k]
    np.testing.assert_array_equal(order.numpy(), retina["low_top50_idx"])
    priors = prior_boxes(size)
    boxes = decode_boxes(loc[0, order], priors[order]) * size
    np.testing.assert_array_equal(nms(boxes, scores[order], 0.4).numpy(), retina["low_keep"])

    candidates = select_candidates(loc, conf, landm, image_size=size, confidence=0.0, top_k=top_k,
                                   stable=True)   # the fixture script's variant sorts stably
    np.testing.assert_allclose(candidates.boxes.numpy(), retina["low_boxes_canvas"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(candidates.scores.numpy(), retina["low_scores"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(candidates.landmarks.numpy(), retina["low_landms_canvas"], rtol=0, atol=1e-3)
    height, width = retina["image_uint8"].shape[:2]
    # The low_* arrays are aligned with low_keep: converted without the skip rule.
    found = to_photo(candidates, retina["pads"], (height, width), size, drop_outside=False)
    np.testing.assert_array_equal(found.boxes, retina["low_bboxes_img"])
    np.testing.assert_array_equal(found.landmarks, retina["low_landms_img"])


# --------------------------------------------------------------------------- without fixtures: anchors and decoding

def test_prior_layout() -> None:
    priors = prior_boxes(512).numpy()
    assert priors.shape == (2 * (64 * 64 + 32 * 32 + 16 * 16), 4) and priors.dtype == np.float32
    # Level 1, row 0, column 0, both sizes; then column 1.
    np.testing.assert_allclose(priors[:3], [[4 / 512, 4 / 512, 16 / 512, 16 / 512],
                                            [4 / 512, 4 / 512, 32 / 512, 32 / 512],
                                            [12 / 512, 4 / 512, 16 / 512, 16 / 512]])
    # Row 1 starts after the 64 columns x 2 sizes of row 0.
    np.testing.assert_allclose(priors[128], [4 / 512, 12 / 512, 16 / 512, 16 / 512])
    # Last anchor: stride 32, row 15, column 15, size 512.
    np.testing.assert_allclose(priors[-1], [496 / 512, 496 / 512, 1.0, 1.0])
    with pytest.raises(ValueError):
        prior_boxes(0)


def test_decode_zero_offsets_gives_the_anchor() -> None:
    priors = torch.tensor([[0.5, 0.25, 0.2, 0.1]])
    boxes = decode_boxes(torch.zeros(1, 4), priors)
    torch.testing.assert_close(boxes, torch.tensor([[0.4, 0.2, 0.6, 0.3]]))
    landmarks = decode_landmarks(torch.zeros(1, 10), priors)
    torch.testing.assert_close(landmarks, torch.tensor([[0.5, 0.25] * 5]))
    # Offsets are in units of variance x anchor size; size offsets are logarithmic.
    moved = decode_boxes(torch.tensor([[10.0, 0.0, 5 * float(np.log(2.0)), 0.0]]), priors)
    torch.testing.assert_close(moved, torch.tensor([[0.5, 0.2, 0.9, 0.3]]))


# --------------------------------------------------------------------------- without fixtures: NMS

def _nms_by_the_book(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Plain per-pair greedy NMS (the definition), float32 arithmetic like torchvision."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])   # Python's sort is stable
    suppressed = [False] * len(scores)
    keep = []
    for a, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        for j in order[a + 1:]:
            if suppressed[j]:
                continue
            w = max(np.float32(0), min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            h = max(np.float32(0), min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            inter = w * h
            area_i = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            area_j = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            if float(inter / (area_i + area_j - inter)) > threshold:
                suppressed[j] = True
    return keep


@pytest.mark.parametrize("matrix_limit", [None, 0])
def test_nms_matches_the_definition(matrix_limit: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if matrix_limit is not None:
        # Force the streaming path used for very many boxes.
        monkeypatch.setattr("tddfa_v3.detection._NMS_MATRIX_LIMIT", matrix_limit)
    rng = np.random.default_rng(11)
    for trial in range(5):
        count = 300
        corner = rng.uniform(0, 200, (count, 2)).astype(np.float32)
        size = rng.uniform(5, 60, (count, 2)).astype(np.float32)
        boxes = np.concatenate([corner, corner + size], axis=1)
        # Coarse scores create ties, which must keep their input order.
        scores = np.round(rng.uniform(0, 1, count), 1 if trial % 2 else 3).astype(np.float32)
        for threshold in (0.3, 0.5):
            kept = nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).tolist()
            assert kept == _nms_by_the_book(boxes, scores, threshold)


def test_nms_edge_cases() -> None:
    empty = nms(torch.zeros(0, 4), torch.zeros(0), 0.4)
    assert empty.shape == (0,) and empty.dtype == torch.long
    # IoU exactly at the threshold is not suppressed (strictly greater suppresses).
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0], [20.0, 20.0, 30.0, 30.0]])
    assert nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 1, 2]
    assert nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.49).tolist() == [0, 2]
    assert nms(boxes, torch.tensor([0.1, 0.8, 0.7]), 0.49).tolist() == [1, 2]
    with pytest.raises(ValueError):
        nms(boxes, torch.tensor([0.9]), 0.5)


# --------------------------------------------------------------------------- without fixtures: post-processing

def _synthetic_heads(size: int, anchors: dict[int, float]) -> tuple[Any, Any, Any]:
    """Zero offsets; the given anchors get the given softmax scores, all others ~0."""
    count = prior_boxes(size).shape[0]
    conf = torch.zeros(1, count, 2)
    conf[0, :, 0] = 20.0
    for index, score in anchors.items():
        conf[0, index, 0] = 0.0
        conf[0, index, 1] = float(np.log(score / (1 - score)))
    return torch.zeros(1, count, 4), conf, torch.zeros(1, count, 10)


def test_postprocess_maps_to_photo_pixels() -> None:
    size = 128
    priors = prior_boxes(size)
    # Pick a stride-8 anchor of size 32 at row 6, column 9 and a big stride-32 one far away.
    small = (6 * 16 + 9) * 2 + 1
    big = 2 * (16 * 16 + 8 * 8) + (1 * 4 + 2) * 2
    loc, conf, landm = _synthetic_heads(size, {small: 0.95, big: 0.8})
    pads = (0, 16, 0, 16)            # a 256x192 photo: resized to 128x96, centred
    found = postprocess(loc, conf, landm, pads, (192, 256), image_size=size)
    assert len(found) == 2
    np.testing.assert_allclose(found.scores, [0.95, 0.8], rtol=1e-6)
    cx, cy, w, h = (priors[small] * size).tolist()
    x1, y1, x2, y2 = int(cx - w / 2), int(cy - h / 2) - 16, int(cx + w / 2), int(cy + h / 2) - 16
    assert found.boxes[0].tolist() == [x1 * 2, y1 * 2, x2 * 2, y2 * 2]
    assert found.landmarks[0].tolist() == [[int(cx * 2), int((cy - 16) * 2)]] * 5
    assert found.boxes.dtype == np.int64


def test_tied_scores_keep_the_reference_order() -> None:
    """predict_jsons orders by torch's (unstable) argsort, then NMS re-sorts stably: tied
    scores keep argsort's order, which is not the input order once more than 16 tie."""
    size = 128
    # 40 stride-8, size-16 anchors on every other cell of rows 0..4: neighbours overlap with
    # IoU 1/3 < 0.4, so NMS keeps every one, all with the same score.
    chosen = [(row * 16 + col) * 2 for row in range(0, 10, 2) for col in range(0, 16, 2)]
    loc, conf, landm = _synthetic_heads(size, {index: 0.9 for index in chosen})
    found = postprocess(loc, conf, landm, (0, 0, 0, 0), (size, size), image_size=size)
    scores = torch.softmax(conf[0], -1)[:, 1]
    valid = torch.nonzero(scores > 0.7).flatten()
    order = valid[torch.argsort(scores[valid], descending=True)]
    assert not torch.equal(order, valid)          # the ties really are reordered
    boxes = (decode_boxes(loc[0, order], prior_boxes(size)[order]) * size).to(torch.int32).numpy()
    np.testing.assert_array_equal(found.boxes, boxes)
    # The lowered-threshold variant of the fixtures sorts stably.
    stable = select_candidates(loc, conf, landm, image_size=size, stable=True)
    np.testing.assert_array_equal(stable.boxes.numpy(), (decode_boxes(loc[0, valid], prior_boxes(size)[valid])
                                                         * size).numpy())


def test_postprocess_threshold_and_empty_result() -> None:
    loc, conf, landm = _synthetic_heads(64, {10: 0.69, 20: 0.5})
    found = postprocess(loc, conf, landm, (0, 0, 0, 0), (64, 64), image_size=64)
    assert len(found) == 0
    assert found.boxes.shape == (0, 4) and found.scores.shape == (0,) and found.landmarks.shape == (0, 5, 2)
    lowered = postprocess(loc, conf, landm, (0, 0, 0, 0), (64, 64), image_size=64, confidence=0.4)
    assert len(lowered) == 2


def test_boxes_outside_the_photo_are_skipped_but_others_stay_unclipped() -> None:
    boxes = torch.tensor([[-20.0, -10.0, 30.0, 40.0], [70.0, 10.0, 90.0, 30.0], [10.0, 70.0, 20.0, 80.0]])
    candidates = Candidates(boxes, torch.tensor([0.9, 0.8, 0.75]), torch.zeros(3, 10))
    found = to_photo(candidates, (0, 0, 0, 0), (64, 64), image_size=64)
    # The first box leaves the photo but is kept as is; the others start past its last pixel.
    assert found.boxes.tolist() == [[-20, -10, 30, 40]]
    kept_all = to_photo(candidates, (0, 0, 0, 0), (64, 64), image_size=64, drop_outside=False)
    assert kept_all.boxes.tolist() == [[-20, -10, 30, 40], [70, 10, 90, 30], [10, 70, 20, 80]]
    assert isinstance(Detections.empty(), Detections)
    with pytest.raises(ValueError, match="pads"):
        to_photo(candidates, (0, 0, 0), (64, 64))


def test_postprocess_rejects_bad_heads() -> None:
    loc, conf, landm = _synthetic_heads(64, {})
    with pytest.raises(ValueError, match="priors"):
        postprocess(loc, conf, landm, (0, 0, 0, 0), (64, 64), image_size=128)
    with pytest.raises(ValueError, match="one image"):
        postprocess(torch.cat([loc, loc]), conf, landm, (0, 0, 0, 0), (64, 64), image_size=64)


def test_detect_runs_batched() -> None:
    class FakeNet(torch.nn.Module):
        def forward(self, x: Any) -> tuple[Any, Any, Any]:
            loc, conf, landm = _synthetic_heads(64, {5: 0.9})
            batch = x.shape[0]
            return loc.expand(batch, -1, -1), conf.expand(batch, -1, -1), landm.expand(batch, -1, -1)

    results = detect(FakeNet(), torch.zeros(2, 3, 64, 64), np.zeros((2, 4)), [(64, 64), (128, 32)])
    assert [len(r) for r in results] == [1, 1]
    assert results[1].boxes.tolist() == (results[0].boxes * 2).tolist()
    with pytest.raises(ValueError, match="one pads row"):
        detect(FakeNet(), torch.zeros(2, 3, 64, 64), np.zeros((1, 4)), [(64, 64)])
