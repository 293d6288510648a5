# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""How the exporter tells an unedited value from an edited one (numpy only).

A value still counts as what the import made when it is equal as a float
(Blender may turn -0.0 into 0.0 without an edit) or bit-identical (an unedited
NaN never equals itself). Batched over whole arrays: these comparisons are the
export's hot path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def _bits(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """float32 values as their bit patterns (NaN payloads included)."""
    return a.view(np.uint32) if a.dtype == np.float32 else a


def same_values(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Element-wise: equal as floats (so -0.0 == 0.0, as Blender may turn one into
    the other without an edit) or bit-identical (so an unedited NaN, which never
    equals itself, is not an edit)."""
    a, b = np.asarray(a), np.asarray(b)
    equal: npt.NDArray[np.bool_] = np.asarray(a == b)
    if a.dtype.kind == "f" and not equal.all():
        equal |= _bits(a) == _bits(b)
    return equal


def all_same(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> bool:
    """`same_values` for every element (the bit comparison only when the float one fails)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    return bool(np.array_equal(a, b) or (a.dtype.kind == "f" and np.array_equal(_bits(a), _bits(b))))


def rows_equal(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Per (x, y, z) row: all three components the same (see `same_values`). (numpy's
    all(axis=-1) over a length-3 axis is ~7x slower than three element-wise ands.)"""
    equal = same_values(a, b)
    result: npt.NDArray[np.bool_] = equal[..., 0] & equal[..., 1] & equal[..., 2]
    return result
