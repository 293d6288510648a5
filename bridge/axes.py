# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Coordinates: the one home of the conversions between model spaces and Blender.

NVIDIA's .nvf space is centimetres, +Y up, +Z out of the nose. With the default
options a point maps to Blender as (x, y, z) -> (x, -z, y) * 0.01 (metres, +Z
up, the face looking down -Y, Blender's front view); a proper rotation, so
triangle winding (counter-clockwise from outside) is kept. The axis map is
`bpy_extras.io_utils.axis_conversion` (what Blender's own importers use), read
once as a signed permutation and applied with vectorised numpy: moving values
and flipping signs never rounds, so import and the exporter's comparison agree
bit for bit. May import bpy (lazily: importing this module does not) and numpy;
nothing from the core.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

#: The .nvf space in `axis_conversion`'s terms: +Y up; Blender's forward (+Y,
#: into the screen in front view) is -Z there, so +Z (the nose) points at the viewer.
NVF_FORWARD = "-Z"
NVF_UP = "Y"


class SignedPermutation(NamedTuple):
    """An exact axis map: Blender component i = signs[i] * source component axes[i]."""

    axes: tuple[int, int, int]
    signs: tuple[float, float, float]

    @property
    def inverse_axes(self) -> list[int]:
        """inverse_axes[j]: the Blender component that source component j went to."""
        result = [0, 0, 0]
        for i, j in enumerate(self.axes):
            result[j] = i
        return result


@functools.cache
def nvf_to_blender_axes() -> SignedPermutation:
    """The .nvf -> Blender axis map from `axis_conversion`, as a signed permutation."""
    import bpy  # noqa: F401  # bpy_extras is importable once bpy is loaded
    from bpy_extras import io_utils

    # The 4.2 stubs type axis_conversion as returning None; it returns a 3x3 mathutils.Matrix.
    axis_conversion: Callable[..., Any] = io_utils.axis_conversion
    matrix = axis_conversion(from_forward=NVF_FORWARD, from_up=NVF_UP, to_forward="Y", to_up="Z")
    rows = [[float(matrix[i][j]) for j in range(3)] for i in range(3)]
    axes = tuple(max(range(3), key=lambda j: abs(row[j])) for row in rows)
    signs = tuple(rows[i][axes[i]] for i in range(3))
    if sorted(axes) != [0, 1, 2] or any(s not in (1.0, -1.0) for s in signs) or any(
            rows[i][j] != 0.0 for i in range(3) for j in range(3) if j != axes[i]):
        raise ValueError(f"the .nvf axis conversion is not a signed permutation: {rows}")
    return SignedPermutation((axes[0], axes[1], axes[2]), (signs[0], signs[1], signs[2]))


#: The quarter turn about X, (x, y, z) -> (x, -z, y), that `offsets_to_blender`
#: applies as one complex multiplication.
_QUARTER_TURN_X = SignedPermutation((0, 2, 1), (1.0, -1.0, 1.0))


def to_blender(points: npt.ArrayLike, scale: float, convert_axes: bool) -> F32:
    """NVIDIA model space -> Blender, float32; works on (..., 3) arrays.

    The axis swap and sign are exact; only the scale rounds, the same way every
    time, so import and the exporter's comparison agree bit for bit.
    """
    p = np.asarray(points, dtype=np.float32)
    return offsets_to_blender(p.reshape(1, -1, 3), None, scale, convert_axes).reshape(p.shape)


def offsets_to_blender(offsets: npt.NDArray[np.float32], base: npt.NDArray[np.float32] | None,
                       scale: float, convert_axes: bool, out: F32 | None = None) -> F32:
    """(K, V, 3) NVIDIA offsets (+ base (V, 3), rounded to float32 first) -> Blender.

    Every output is one float32 source value (offset + base) times +-scale,
    rounded once, so the exporter's comparison with a fresh conversion is exact.
    Done in place in `out` (C-contiguous float32, may be a slice of a larger
    buffer) as three passes over memory: the add, the scale (contiguous, one
    scalar) and the axis swap. The swap (y, z) -> (-z, y) is a multiplication of
    each (y, z) pair, viewed as one complex64 number y + iz, by i: the products
    with 0 and 1 are exact, so it moves values and flips a sign without rounding
    (measured 2-3x faster than a (3, 3) matrix product or column copies).
    Arrays with non-finite values (inf * 0 would give NaN) take a column-copy path.
    """
    if out is None:
        out = np.empty(offsets.shape, dtype=np.float32)
    if not out.flags.c_contiguous or out.dtype != np.float32 or out.shape[-1:] != (3,):
        raise ValueError("the output must be a C-contiguous float32 (..., 3) array")
    if base is None:
        np.copyto(out, offsets, casting="same_kind")
    else:
        np.add(offsets, base, out=out, dtype=np.float32)
    flat = out.reshape(-1)
    # max/min propagate NaN and show +-inf: two fast reductions, no temporary.
    finite = flat.size == 0 or bool(np.isfinite(flat.max()) and np.isfinite(flat.min()))
    np.multiply(flat, np.float32(scale), out=flat)
    if not convert_axes or flat.size == 0:
        return out
    axes = nvf_to_blender_axes()
    rows = flat.size // 3
    if finite and axes == _QUARTER_TURN_X:
        pairs: npt.NDArray[np.complex64] = np.ndarray(shape=(rows,), dtype=np.complex64, buffer=out,
                                                      offset=4, strides=(12,))
        np.multiply(pairs, np.complex64(1j), out=pairs)
        return out
    columns = flat.reshape(rows, 3)
    columns[:] = columns[:, list(axes.axes)]
    for i, sign in enumerate(axes.signs):
        if sign < 0.0:
            np.negative(columns[:, i], out=columns[:, i])
    return out


def to_nvf(points: npt.ArrayLike, scale: float, convert_axes: bool) -> F32:
    """Blender -> NVIDIA model space (the exact inverse map, computed in float64)."""
    p = np.asarray(points, dtype=np.float64)
    if convert_axes:
        axes = nvf_to_blender_axes()
        inverse = axes.inverse_axes
        out = p[..., inverse] * np.array([axes.signs[i] for i in inverse])
    else:
        out = p.copy()
    out /= float(np.float32(scale))
    return np.ascontiguousarray(out, dtype=np.float32)


# --- 3DDFA-V3's model space (reconstruction, video animation, fitting's placement) ---

#: The quarter turn about X, (x, y, z) -> (x, -z, y), as a matrix: from a y-up space
#: whose +z points at the viewer (the .nvf space, 3DDFA-V3's model space) to Blender's
#: z-up axes; a proper rotation, for orientations (no unit change).
MODEL_AXES: npt.NDArray[np.float64] = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
#: 3DDFA-V3's model space (decimetres, y up, z to the camera) -> Blender (metres, z up).
MODEL_TO_BLENDER: npt.NDArray[np.float64] = 0.1 * MODEL_AXES
