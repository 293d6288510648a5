# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading video: movie files (mp4, mov, mkv, webm, avi) through OpenCV's
bundled FFmpeg, and image sequences (a folder of numbered images, or one image
of such a sequence). Frames come out as H x W x 3 RGB uint8 arrays.

Why OpenCV: the reconstruction already needs it (opencv-python-headless 4.9,
which works with the numpy 1.x that Blender's Python and the bpy module
need; OpenCV 4.12+ needs numpy 2), its wheels bundle FFmpeg for every
platform Blender runs on, and it reports the container's frame rate and frame
count. PyAV would add a second FFmpeg build for the same job; Blender's own
movie reading gives scripts no per-frame pixels. OpenCV is imported when a
video is opened, never at import.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import VideoError

MOVIE_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".exr")
#: Frame rate of an image sequence when the caller gives none.
DEFAULT_SEQUENCE_FPS = 30.0


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as error:
        raise VideoError("reading video needs OpenCV: install `opencv-python-headless` into the Python that "
                         "runs this (for Blender, its own Python; the add-on's preferences show the command)") from error
    return cv2


@dataclass(frozen=True)
class FrameRange:
    """Which frames to read: start (0-based), stop (exclusive, None = to the end), every `stride`th."""

    start: int = 0
    stop: int | None = None
    stride: int = 1

    def indices(self, count: int) -> range:
        if self.start < 0 or self.stride < 1 or (self.stop is not None and self.stop < 0):
            raise VideoError(f"a frame range needs start >= 0, stop >= 0 and stride >= 1, not {self}")
        stop = count if self.stop is None else min(self.stop, count)
        picked = range(self.start, stop, self.stride)
        if len(picked) == 0:
            raise VideoError(f"the frame range {self.start}..{stop} (stride {self.stride}) holds no frame "
                             f"of the {count} in the video")
        return picked


def _natural_key(path: Path) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name))


def _sequence_files(path: Path) -> list[Path]:
    """The images of a sequence: every image in a folder, or the numbered siblings of one image."""
    if path.is_dir():
        files = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    else:
        match = re.fullmatch(r"(.*?)(\d+)(\.[^.]+)", path.name)
        if match is None:
            return [path]
        prefix, _, suffix = match.groups()
        pattern = re.compile(re.escape(prefix) + r"\d+" + re.escape(suffix))
        files = [p for p in path.parent.iterdir() if pattern.fullmatch(p.name) and p.is_file()]
    return sorted(files, key=_natural_key)


class VideoSource:
    """A movie file or an image sequence, opened and checked.

    fps: the container's frame rate (an image sequence's is `sequence_fps`).
    frame_count, width, height: from the container (a movie's count is what it
    declares; reading stops early, without error, if it holds fewer frames).
    """

    def __init__(self, path: str | os.PathLike[str], sequence_fps: float = DEFAULT_SEQUENCE_FPS) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise VideoError(f"{self.path} does not exist: choose a movie file or a folder of images")
        self.is_sequence = self.path.is_dir() or self.path.suffix.lower() in IMAGE_EXTENSIONS
        cv2 = _cv2()
        if self.is_sequence:
            self._files = _sequence_files(self.path)
            if not self._files:
                raise VideoError(f"{self.path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            if not sequence_fps > 0:
                raise VideoError(f"an image sequence's frame rate must be positive, not {sequence_fps}")
            first = self._read_image(0)
            self.fps = float(sequence_fps)
            self.frame_count = len(self._files)
            self.height, self.width = (int(n) for n in first.shape[:2])
        else:
            capture = cv2.VideoCapture(str(self.path))
            try:
                if not capture.isOpened():
                    raise VideoError(f"{self.path.name} cannot be opened as a video (unknown format or damaged)")
                self.fps = float(capture.get(cv2.CAP_PROP_FPS))
                self.frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
                self.width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
                self.height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
            finally:
                capture.release()
            if not (self.fps > 0 and np.isfinite(self.fps)):
                raise VideoError(f"{self.path.name} does not say its frame rate")
            if self.frame_count <= 0 or self.width <= 0 or self.height <= 0:
                raise VideoError(f"{self.path.name} has no frames OpenCV can decode")

    def _read_image(self, index: int) -> np.ndarray:
        cv2 = _cv2()
        path = self._files[index]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise VideoError(f"{path.name} (frame {index} of the sequence) cannot be read as an image")
        return np.ascontiguousarray(image[:, :, ::-1])

    def frames(self, frame_range: FrameRange = FrameRange()) -> Iterator[tuple[int, np.ndarray]]:
        """(index, RGB uint8 frame) for each frame of the range, decoded in order."""
        wanted = frame_range.indices(self.frame_count)
        if self.is_sequence:
            for index in wanted:
                yield index, self._read_image(index)
            return
        cv2 = _cv2()
        capture = cv2.VideoCapture(str(self.path))
        try:
            position = 0
            if wanted.start > 0:
                capture.set(cv2.CAP_PROP_POS_FRAMES, wanted.start)
                position = int(capture.get(cv2.CAP_PROP_POS_FRAMES))
            picked = set(wanted)
            last = wanted[-1]
            while position <= last:
                # grab() skips decoding-to-RGB work for frames the stride leaves out.
                if not capture.grab():
                    return
                if position in picked:
                    ok, image = capture.retrieve()
                    if not ok or image is None:
                        raise VideoError(f"{self.path.name}: frame {position} cannot be decoded")
                    yield position, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)   # the same bytes as [:, :, ::-1], ~4x faster
                position += 1
        finally:
            capture.release()

    def times(self, indices: np.ndarray) -> np.ndarray:
        """Seconds from the start of the video of frame `indices`."""
        return np.asarray(indices, dtype=np.float64) / self.fps
