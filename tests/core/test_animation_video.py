# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Video reading and face tracking (animation.video, animation.tracking) on clips
the tests draw themselves (tests/video_clips.py), with synthetic 3DDFA-V3 weights
(no downloads). The same clips animated in Blender: tests/blender/test_animation_video_blender.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nv3dmm_face_tools.animation.errors import Cancelled, TrackingError, VideoError
from nv3dmm_face_tools.animation.one_euro import OneEuroParams, smooth
from nv3dmm_face_tools.animation.tracking import Track, TrackOptions, rotation_matrices, to_reference_camera, track_video
from nv3dmm_face_tools.animation.video import FrameRange, VideoSource

cv2 = pytest.importorskip("cv2", reason="OpenCV reads the videos (requirements-reconstruction.txt)")

from tests.video_clips import (  # noqa: E402  (after the OpenCV skip)  # the fixtures are used by name
    BLANK, SKIN, assets, clip, draw_face, face_box, reconstructor, skin_detector,
)


# --- reading -----------------------------------------------------------------------

def test_movie_fps_count_range_and_stride(clip: Path) -> None:
    source = VideoSource(clip)
    assert (source.fps, source.frame_count, source.width, source.height) == (24.0, 10, 160, 120)
    frames = list(source.frames())
    assert [i for i, _ in frames] == list(range(10))
    assert frames[0][1].shape == (120, 160, 3) and frames[0][1].dtype == np.uint8
    # RGB order, within JPEG error of the drawn frame.
    assert np.abs(frames[3][1].astype(int) - draw_face(3).astype(int)).mean() < 6
    picked = list(source.frames(FrameRange(start=2, stop=9, stride=3)))
    assert [i for i, _ in picked] == [2, 5, 8]
    assert np.array_equal(picked[1][1], frames[5][1])
    assert source.times(np.array([0, 12])).tolist() == [0.0, 0.5]
    with pytest.raises(VideoError, match="holds no frame"):
        FrameRange(start=20).indices(10)
    with pytest.raises(VideoError, match="stride"):
        FrameRange(stride=0).indices(10)


def test_image_sequence(tmp_path: Path) -> None:
    for i in (1, 2, 10):                      # natural order: 1, 2, 10
        cv2.imwrite(str(tmp_path / f"shot_{i}.png"), draw_face(i)[:, :, ::-1])
    (tmp_path / "notes.txt").write_text("not a frame")
    for opened in (VideoSource(tmp_path, sequence_fps=25), VideoSource(tmp_path / "shot_2.png", sequence_fps=25)):
        assert (opened.frame_count, opened.fps, opened.width) == (3, 25.0, 160)
        frames = list(opened.frames())
        assert np.array_equal(frames[2][1], draw_face(10))


def test_bad_videos(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="does not exist"):
        VideoSource(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(VideoError, match="cannot be opened|no frames"):
        VideoSource(tmp_path / "junk.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="holds no images"):
        VideoSource(tmp_path / "empty")


# --- geometry ------------------------------------------------------------------------

def test_rotation_matrices_match_the_face_model() -> None:
    torch = pytest.importorskip("torch")
    from nv3dmm_face_tools.tddfa_v3.face_model import ParametricFaceModel

    angles = np.random.default_rng(0).uniform(-1, 1, (5, 3))
    expected = ParametricFaceModel.compute_rotation(None, torch.from_numpy(angles)).numpy()  # type: ignore[arg-type]
    assert np.allclose(rotation_matrices(angles), expected)


def test_reference_camera_keeps_image_position_and_size() -> None:
    t = np.array([[0.3, -0.2, 1.0], [0.1, 0.4, -0.5]])
    cams = np.array([[1200.0, 1200.0, 300.0, 200.0], [800.0, 800.0, 340.0, 180.0]])
    ref = np.array([1000.0, 1000.0, 320.0, 240.0])
    moved = to_reference_camera(t, cams, ref)
    for row in range(2):
        fx, fy, cx, cy = cams[row]
        depth, new_depth = 10 - t[row, 2], 10 - moved[row, 2]
        assert fx * t[row, 0] / depth + cx == pytest.approx(ref[0] * moved[row, 0] / new_depth + ref[2])
        assert -fy * t[row, 1] / depth + cy == pytest.approx(-ref[1] * moved[row, 1] / new_depth + ref[3])
        assert fx / depth == pytest.approx(ref[0] / new_depth)        # same apparent size
    assert np.allclose(to_reference_camera(t, cams[:1].repeat(2, 0), cams[0]), t)


# --- tracking -------------------------------------------------------------------------

def _track(clip: Path, reconstructor: Any, **options: Any) -> Track:
    detector = options.pop("detector", skin_detector)
    return track_video(VideoSource(clip), reconstructor, TrackOptions(**options), detector=detector)


def test_tracking_skips_frames_without_a_face(clip: Path, reconstructor: Any) -> None:
    seen: list[tuple[int, int, float]] = []
    track = track_video(VideoSource(clip), reconstructor, TrackOptions(redetect_every=1, batch_size=3),
                        detector=skin_detector, progress=lambda d, t, f: seen.append((d, t, f)))
    tracked = [i for i in range(10) if i not in BLANK]
    assert track.skipped == list(BLANK) and track.detections == 10
    assert track.frames.tolist() == tracked
    assert len(track) == 8 and track.coefficients.shape == (8, 257)
    assert track.expression.shape == (8, 64) and track.angles.shape == (8, 3) and track.translation.shape == (8, 3)
    assert [d for d, _, _ in seen] == list(range(1, 11)) and all(t == 10 for _, t, _ in seen)
    # The identity is locked: the per-coefficient median of the tracked frames.
    assert np.allclose(track.identity, np.median(track.coefficients[:, :80], axis=0))
    assert track.reference_frame in tracked
    assert np.allclose(track.times, np.array(tracked) / 24)
    # Expression and angles are the network's, One Euro smoothed over the frames' own times.
    assert np.allclose(track.expression, smooth(track.coefficients[:, 80:144], track.times, OneEuroParams()))
    assert np.allclose(track.angles, smooth(track.coefficients[:, 224:227], track.times, OneEuroParams()))
    assert not np.allclose(track.expression, track.coefficients[:, 80:144])


def test_tracking_detects_once_while_the_face_stays(clip: Path, reconstructor: Any) -> None:
    calls: list[int] = []

    def counting(images: Any) -> list[Any]:
        calls.append(len(images))
        return skin_detector(images)

    track = _track(clip, reconstructor, frames=FrameRange(0, 5), redetect_every=0, detector=counting,
                   smoothing=None, identity_frame=3)
    assert len(track) == 5 and track.skipped == []
    assert track.detections == len(calls) < 5        # the landmarks carried the face between frames
    assert np.array_equal(track.identity, track.coefficients[3, :80])
    assert track.reference_frame == 3
    assert np.array_equal(track.expression, track.coefficients[:, 80:144])


def test_checks_search_near_the_tracked_face_first(clip: Path, reconstructor: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from nv3dmm_face_tools.animation.tracking import NEAR_CANVAS

    calls: list[tuple[tuple[int, int], int, bool]] = []

    def detect_faces(images: Any, cancel: Any = None, *, folded: bool = False, size: int = 512) -> list[Any]:
        calls.append((images[0].shape[:2], size, folded))
        return skin_detector(images)

    # The default detector (the reconstructor's RetinaFace, folded) sees the skin detector's answers.
    monkeypatch.setattr(reconstructor, "detect_faces", detect_faces)
    track = _track(clip, reconstructor, frames=FrameRange(0, 5), redetect_every=1, detector=None, smoothing=None)
    assert track.detections == 5 and track.skipped == []
    # The first frame: the whole frame on the 512 canvas; every check after it: only the region
    # around the tracked face, smaller than the frame, on the NEAR_CANVAS one.
    assert calls[0] == ((120, 160), 512, True)
    assert len(calls) == 5 and all(size == NEAR_CANVAS and folded for _, size, folded in calls[1:])
    assert all(hw[0] * hw[1] < 120 * 160 for hw, _, _ in calls[1:])
    # The boxes found near the face are in the frame's pixels: the same landmarks' crops as
    # whole-frame detections give.
    whole = _track(clip, reconstructor, frames=FrameRange(0, 5), redetect_every=1, smoothing=None)
    assert np.allclose(track.coefficients, whole.coefficients, atol=1e-5)


def test_near_detection_maps_back_and_refuses_a_cut_face(reconstructor: Any) -> None:
    from nv3dmm_face_tools.animation.tracking import _Tracker

    image = np.full((800, 1000, 3), (90, 120, 160), np.uint8)
    image[300:600, 400:700] = SKIN           # a 300 px face: its region (600 px) goes to the detector shrunk
    seen: list[tuple[int, ...]] = []

    def detector(images: Any) -> list[Any]:
        seen.append(images[0].shape)
        return skin_detector(images)

    tracker = _Tracker(reconstructor, detector, TrackOptions())
    near = tracker.detect_near(image, np.array([420.0, 310.0, 690.0, 590.0]))
    assert near is not None and max(seen[-1][:2]) == 256
    assert np.abs(near - np.array([400, 300, 699, 599])).max() <= 3
    # A region that cuts the face (x 225-525 of a face at 400-699; the cut is inside the frame):
    # the skin reaches the region's edge, so no answer from there...
    cutting = np.array([300.0, 350.0, 450.0, 500.0])
    assert skin_detector([image[275:575, 225:525]])[0] is not None       # the detector does see skin
    assert tracker.detect_near(image, cutting) is None
    # ...nor from a region with no face at all...
    assert tracker.detect_near(image, np.array([0.0, 0.0, 100.0, 100.0])) is None
    # ...so detect() goes on to the whole frame.
    before = len(seen)
    box = tracker.detect(image, cutting)
    assert box is not None and box.tolist() == [400, 300, 699, 599] and len(seen) == before + 2
    assert seen[-1][:2] == (800, 1000) and tracker.detections == 1


def test_cancel_keeps_frames_done(clip: Path, reconstructor: Any) -> None:
    count = {"n": 0}

    def cancel() -> bool:
        count["n"] += 1
        return count["n"] > 4

    track = track_video(VideoSource(clip), reconstructor, TrackOptions(batch_size=3), detector=skin_detector,
                        cancel=cancel)
    assert track.cancelled and track.frames.tolist() == [0, 1, 2, 3]
    with pytest.raises(Cancelled):
        track_video(VideoSource(clip), reconstructor, detector=skin_detector, cancel=lambda: True)


def test_no_face_anywhere_is_an_error(clip: Path, reconstructor: Any) -> None:
    with pytest.raises(TrackingError, match="no face was found in any of the 3 frames"):
        _track(clip, reconstructor, frames=FrameRange(4, 7), detector=lambda images: [None] * len(images))
    with pytest.raises(TrackingError, match="frame 5 was not tracked"):
        _track(clip, reconstructor, frames=FrameRange(4, 7), redetect_every=1, identity_frame=5)


# --- command line -----------------------------------------------------------------------

def test_command_line_video_and_csv(clip: Path, assets: Path, tmp_path: Path, capsys: Any) -> None:
    import json

    from nv3dmm_face_tools.animation.cli import main
    from nv3dmm_face_tools.animation.live_link import Take, format_timecode, write_csv

    out = tmp_path / "anim.npz"
    # The synthetic detector does not see the drawn face: the first frame's box is given.
    box = ",".join(str(v) for v in face_box())
    assert main(["video", str(clip), "--assets", str(assets), "--out", str(out), "--backbone", "mobilenetv3",
                 "--device", "cpu", "--stop", "3", "--box", box, "--no-smooth"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 3 and summary["skipped"] == []
    saved = np.load(out)
    assert saved["frames"].tolist() == [0, 1, 2] and saved["expression"].shape == (3, 64)
    assert np.array_equal(saved["expression"], saved["coefficients"][:, 80:144])
    # With an .nvf model, its blend shapes are solved per frame and written as a Live Link Face take.
    from nv3dmm_face_tools import io_nv3dmm
    from nv3dmm_face_tools.io_nv3dmm.demo_model import build_demo_model

    from nv3dmm_face_tools.animation import ARKIT_SHAPES, read_csv

    io_nv3dmm.write(build_demo_model(), tmp_path / "demo.nvf")
    take_path = tmp_path / "take.csv"
    assert main(["video", str(clip), "--assets", str(assets), "--out", str(out), "--backbone", "mobilenetv3",
                 "--device", "cpu", "--stop", "3", "--box", box, "--model", str(tmp_path / "demo.nvf"),
                 "--csv", str(take_path)]) == 0
    assert json.loads(capsys.readouterr().out)["csv"] == str(take_path)
    solved = read_csv(take_path)
    assert len(solved) == 3 and solved.timecodes[0] == "00:00:00:00.000" and solved.timecodes[2] == "00:00:00:02.000"
    assert solved.shapes.min() >= 0.0 and solved.shapes.max() <= 1.0
    assert not solved.shapes[:, ARKIT_SHAPES.index("tongueOut")].any()
    assert np.allclose(solved.angles[:, 1], np.load(out)["angles"][:, 0], atol=1e-6)      # HeadPitch
    assert main(["video", str(clip), "--assets", str(assets), "--out", str(out), "--csv", str(take_path)]) == 2
    assert "--csv needs --model" in capsys.readouterr().err
    assert main(["video", str(tmp_path / "missing.mp4"), "--assets", str(assets), "--out", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["video", str(clip), "--assets", str(assets), "--out", str(out), "--box", "1,2,3"])
    take = Take([format_timecode(60 + i, 60) for i in range(4)], np.zeros((4, 52)), np.zeros((4, 9)), decimals=3)
    write_csv(take, tmp_path / "take.csv")
    assert main(["check-csv", str(tmp_path / "take.csv")]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 4
    (tmp_path / "bad.csv").write_text("Timecode,BlendShapeCount\n")
    assert main(["check-csv", str(tmp_path / "bad.csv")]) == 1
    assert "lacks the column" in capsys.readouterr().err


def test_frames_whose_landmarks_give_no_crop_are_skipped(clip: Path, reconstructor: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # The alignment refuses landmarks that give an unusable crop scale (seen on a 720p clip):
    # that frame is skipped like a frame without a face, never fatal.
    from nv3dmm_face_tools.tddfa_v3 import preprocess
    from nv3dmm_face_tools.tddfa_v3.errors import ReconstructionError

    real = preprocess.align_photo
    calls = {"n": 0}

    def align(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ReconstructionError("The face points give an unusable crop scale (157.6)")
        return real(*args, **kwargs)

    monkeypatch.setattr(preprocess, "align_photo", align)
    track = _track(clip, reconstructor, frames=FrameRange(0, 4), smoothing=None)
    assert track.skipped == [1] and track.frames.tolist() == [0, 2, 3]
