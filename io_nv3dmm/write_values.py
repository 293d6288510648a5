# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The writer's checks of a model's values: float and index arrays (dtype, shape, range),
and strings (UTF-8, no NUL, within MAX_NAME_BYTES). Each failure is an NvfError
naming the value.

May import: numpy, the standard library, and io_nv3dmm's errors and limits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import NvfError
from .limits import MAX_NAME_BYTES

F32 = np.dtype("<f4")
U16 = np.dtype("<u2")


def float_array(value: Any, name: str, shape: tuple[int | None, ...]) -> np.ndarray[Any, Any]:
    """A float array checked to have `shape` (None: any length) and stored as float32."""
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise NvfError(f"{name} must be a float array, got dtype {array.dtype}")
    check_shape(array, name, shape)
    return array.astype(F32, copy=False)


def index_array(value: Any, name: str, shape: tuple[int | None, ...], limit: int,
                low: int = 0) -> np.ndarray[Any, Any]:
    """An integer array checked to lie in [low, limit) and stored as uint16."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise NvfError(f"{name} must be an integer array, got dtype {array.dtype}")
    check_shape(array, name, shape)
    if array.size:
        lo, hi = int(array.min()), int(array.max())
        if lo < low or hi >= limit:
            bad = int(np.flatnonzero((array.reshape(-1) < low) | (array.reshape(-1) >= limit))[0])
            raise NvfError(
                f"{name} entry {bad} is {int(array.reshape(-1)[bad])}, outside {low}..{limit - 1}")
    return array.astype(U16, copy=False)


def check_shape(array: np.ndarray[Any, Any], name: str, shape: tuple[int | None, ...]) -> None:
    """Refuses an array whose shape is not `shape` (None: any length)."""
    if array.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(array.shape, shape)):
        want_text = "(" + ", ".join("N" if w is None else str(w) for w in shape) + ")"
        raise NvfError(f"{name} has shape {array.shape}, expected {want_text}")


def encode_string(text: Any, where: str) -> bytes:
    """The UTF-8 bytes of a name the format can hold (no padding); `where` names it in errors."""
    if not isinstance(text, str):
        raise NvfError(f"{where} must be a str, got {type(text).__name__}")
    if "\0" in text:
        raise NvfError(f"{where} {text!r} contains a NUL character, which the format cannot store")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NvfError(f"{where} {text!r} cannot be encoded as UTF-8 ({exc.reason})") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise NvfError(f"{where} {text[:20]!r}... is {len(encoded):,} bytes of UTF-8, more than the "
                       f"format's limit of {MAX_NAME_BYTES:,}")
    return encoded


def decode_string(raw: bytes) -> str | None:
    """The text of a string payload as read (up to its first NUL), None when not UTF-8."""
    try:
        return raw.split(b"\0", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        return None
