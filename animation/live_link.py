# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Live Link Face CSV takes: read, check whole, write.

The recorder's CSV has 63 columns: `Timecode` (`HH:MM:SS:FF.fff`: hours,
minutes, seconds, frame at the timecode rate, and a sub-frame fraction),
`BlendShapeCount` (61: the 52 ARKit shapes and 9 head/eye angles), the 52
shapes (`EyeBlinkLeft`...) and `HeadYaw`... `RightEyeRoll`. Columns are
matched by name. The timecode rate is not in the file: `Take.frames(fps)`
converts with the rate the caller chose.
"""

from __future__ import annotations

import csv
import importlib
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:  # inside the add-on, and in tests: the one io_nv3dmm
    from ..io_nv3dmm.atomic import write_atomic
except ImportError:  # `python -m animation` from a clone runs the packages top-level
    write_atomic = importlib.import_module("io_nv3dmm.atomic").write_atomic

from .errors import CsvError
from .names import ARKIT_SHAPES, HEAD_EYE_ANGLES, csv_column

BLEND_SHAPE_COUNT = 61
LLF_COLUMNS: tuple[str, ...] = (
    ("Timecode", "BlendShapeCount") + tuple(csv_column(s) for s in ARKIT_SHAPES) + HEAD_EYE_ANGLES
)
_TIMECODE = re.compile(r"(\d{2,}):(\d{2}):(\d{2})[:;](\d{2,})(\.\d+)?")
# Digits written after the point when a take does not say (Live Link Face's own precision).
DEFAULT_DECIMALS = 6
_MAX_DECIMALS = 9


@dataclass
class Take:
    """One recording: N rows.

    timecodes: (N,) strings as in the file. shapes: (N, 52) values, columns in
    ARKIT_SHAPES order. angles: (N, 9) in HEAD_EYE_ANGLES order (radians, as
    recorded). decimals: digits after the point the file used (for writing
    back to the same precision).
    """

    timecodes: list[str]
    shapes: np.ndarray
    angles: np.ndarray
    decimals: int = DEFAULT_DECIMALS

    def __len__(self) -> int:
        return len(self.timecodes)

    def frames(self, fps: float) -> np.ndarray:
        """Each row's time as a (fractional) frame number at `fps`, counted from 00:00:00:00."""
        if not fps > 0:
            raise CsvError(f"the frame rate must be positive, not {fps}")
        out = np.empty(len(self.timecodes), dtype=np.float64)
        for i, text in enumerate(self.timecodes):
            h, m, s, f, sub = parse_timecode(text)
            if f >= fps:
                raise CsvError(
                    f"timecode {text!r} (row {i + 1}) has frame {f}, which a {fps:g} fps timecode cannot have: "
                    f"the take was recorded at a higher rate, choose it (e.g. 60 fps)")
            out[i] = ((h * 60 + m) * 60 + s) * fps + f + sub
        if len(out) > 1 and not np.all(np.diff(out) > 0):
            row = int(np.argmin(np.diff(out) > 0)) + 2
            raise CsvError(f"the timecodes do not increase at row {row} ({self.timecodes[row - 1]!r}): "
                           f"the take is out of order or has duplicate rows")
        return out


def parse_timecode(text: str) -> tuple[int, int, int, int, float]:
    """`HH:MM:SS:FF.fff` -> (hours, minutes, seconds, frame, sub-frame fraction)."""
    match = _TIMECODE.fullmatch(text.strip())
    if match is None:
        raise CsvError(f"timecode {text!r} is not HH:MM:SS:FF.fff")
    h, m, s, f = (int(match.group(i)) for i in range(1, 5))
    if m >= 60 or s >= 60:
        raise CsvError(f"timecode {text!r} has minutes or seconds over 59")
    sub = float(match.group(5)) if match.group(5) else 0.0
    return h, m, s, f, sub


def format_timecode(frame: float, fps: float, sub_decimals: int = 3) -> str:
    """A frame number at `fps` (counted from 00:00:00:00) as `HH:MM:SS:FF.fff`."""
    rate = int(round(fps))
    scale = 10 ** sub_decimals
    ticks = int(round(frame * scale))
    whole, sub = divmod(ticks, scale)
    seconds, f = divmod(whole, rate)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return f"{h:02d}:{m:02d}:{s:02d}:{f:02d}.{sub:0{sub_decimals}d}"


def read_csv(source: str | os.PathLike[str]) -> Take:
    """Reads a Live Link Face CSV file, checked whole; CsvError says what is wrong and where."""
    try:
        text = Path(source).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise CsvError(f"{os.fspath(source)} is not a text CSV file ({error.reason})") from None
    except OSError as error:
        raise CsvError(f"cannot read {os.fspath(source)}: {error.strerror or error}") from None
    return parse_csv(text, name=os.path.basename(os.fspath(source)))


def parse_csv(text: str, name: str = "the CSV") -> Take:
    """Parses the text of a Live Link Face CSV (see read_csv)."""
    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise CsvError(f"{name} is empty: a Live Link Face CSV starts with a header row "
                       f"(Timecode,BlendShapeCount,EyeBlinkLeft,...)")
    header = [cell.strip() for cell in rows[0]]
    where: dict[str, int] = {}
    for i, column in enumerate(header):
        if column in where:
            raise CsvError(f"{name} has the column {column!r} twice")
        where[column] = i
    missing = [column for column in LLF_COLUMNS if column not in where]
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise CsvError(f"{name} is not a Live Link Face take: it lacks the column(s) {shown}")
    body = rows[1:]
    if not body:
        raise CsvError(f"{name} has a header but no rows of data")
    decimals = 0
    numbers = np.empty((len(body), len(LLF_COLUMNS) - 1), dtype=np.float64)
    timecodes: list[str] = []
    for r, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise CsvError(f"{name}, line {r}: {len(row)} values for {len(header)} columns")
        timecode = row[where["Timecode"]].strip()
        try:
            parse_timecode(timecode)
        except CsvError as error:
            raise CsvError(f"{name}, line {r}: {error}") from None
        timecodes.append(timecode)
        for c, column in enumerate(LLF_COLUMNS[1:]):
            cell = row[where[column]].strip()
            try:
                value = float(cell)
            except ValueError:
                raise CsvError(f"{name}, line {r}, column {column}: {cell!r} is not a number") from None
            if not math.isfinite(value):
                raise CsvError(f"{name}, line {r}, column {column}: {cell!r} is not a finite number")
            numbers[r - 2, c] = value
            point = cell.find(".")
            if point >= 0 and "e" not in cell.lower():
                decimals = max(decimals, len(cell) - point - 1)
        count = numbers[r - 2, 0]
        if count != BLEND_SHAPE_COUNT:
            raise CsvError(f"{name}, line {r}: BlendShapeCount is {row[where['BlendShapeCount']].strip()}, "
                           f"a Live Link Face take has {BLEND_SHAPE_COUNT}")
    shapes = numbers[:, 1:1 + len(ARKIT_SHAPES)].copy()
    angles = numbers[:, 1 + len(ARKIT_SHAPES):].copy()
    return Take(timecodes=timecodes, shapes=shapes, angles=angles,
                decimals=min(max(decimals, 1), _MAX_DECIMALS))


def to_text(take: Take, decimals: int | None = None) -> str:
    """The CSV text of a take, values written with `decimals` digits (the take's own by default)."""
    check_take(take)
    digits = take.decimals if decimals is None else decimals
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LLF_COLUMNS)
    values = np.concatenate([take.shapes, take.angles], axis=1)
    for timecode, row in zip(take.timecodes, values):
        writer.writerow([timecode, str(BLEND_SHAPE_COUNT)] + [_number(v, digits) for v in row])
    return out.getvalue()


def _number(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}"
    # "-0.000000" reads back as 0; write it as Live Link Face does.
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def check_take(take: Take) -> None:
    """Refuses a take that cannot be written (wrong shapes, NaN, bad timecodes)."""
    n = len(take.timecodes)
    if n == 0:
        raise CsvError("the take has no rows: there is no animation to write")
    if np.shape(take.shapes) != (n, len(ARKIT_SHAPES)) or np.shape(take.angles) != (n, len(HEAD_EYE_ANGLES)):
        raise CsvError(f"a take of {n} rows needs shapes ({n}, {len(ARKIT_SHAPES)}) and angles "
                       f"({n}, {len(HEAD_EYE_ANGLES)}), not {np.shape(take.shapes)} and {np.shape(take.angles)}")
    if not (np.all(np.isfinite(take.shapes)) and np.all(np.isfinite(take.angles))):
        raise CsvError("the take has NaN or infinite values")
    for text in take.timecodes:
        parse_timecode(text)


def write_csv(take: Take, destination: str | os.PathLike[str], decimals: int | None = None) -> None:
    """Writes a take as a Live Link Face CSV, atomically (checked before the file is touched)."""
    data = to_text(take, decimals).encode("utf-8")
    write_atomic(destination, data)
