# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The demo face model's deformations: smooth identity (shape) modes and the 53 Maxine
expression blend shapes, as offsets in cm over a `Mesh` of demo_geometry.

Dev-only, like all of io_nv3dmm/demo_*.py (not in the add-on's zip; see
io_nv3dmm.demo_model).

May import: numpy, the standard library and io_nv3dmm.demo_geometry.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .demo_geometry import (
    EYE_HALF_H, EYE_HALF_W, EYE_X, EYE_Y, F64, MOUTH_HALF_W, MOUTH_Y, RX, RY, RZ, Mesh, gauss, smoothstep,
)


def identity_modes(mesh: Mesh, count: int, seed: int) -> F64:
    """Smooth identity modes (cm): global proportions, then low-order fields."""
    p = mesh.points
    x, y, z = p[:, 0] / RX, p[:, 1] / RY, p[:, 2] / RZ
    radial = p / np.linalg.norm(p / np.array([RX, RY, RZ]), axis=1, keepdims=True).clip(1e-6)
    radial /= np.linalg.norm(radial, axis=1, keepdims=True).clip(1e-6)
    px, py = p[:, 0], p[:, 1]
    zeros = np.zeros_like(x)
    lower = smoothstep(0.0, -0.6, y)
    nose = np.exp(-((px / 1.4) ** 2)) * smoothstep(3.0, 0.0, py) * smoothstep(-3.2, -1.8, py)
    chin = gauss(px, py, 0.0, -8.6, 2.5, 1.6)
    cheeks = gauss(np.abs(px), py, 4.3, -1.5, 2.0, 2.0)
    forehead = smoothstep(0.25, 0.7, y)
    eyes = gauss(np.abs(px), py, EYE_X, EYE_Y, 1.8, 1.3) * np.sign(px)
    fields = [
        np.stack([0.9 * x, zeros, zeros], -1),                     # head width
        np.stack([zeros, 1.1 * y, zeros], -1),                     # head height
        np.stack([zeros, zeros, 0.9 * z], -1),                     # head depth
        np.stack([0.8 * x * lower, zeros, zeros], -1),             # jaw width
        np.stack([zeros, -0.25 * nose, 0.9 * nose], -1),           # nose length
        np.stack([zeros, -0.4 * chin, 0.7 * chin], -1),            # chin
        radial * (0.6 * cheeks)[:, None],                          # cheek fullness
        np.stack([zeros, 0.2 * forehead, -0.6 * forehead], -1),    # forehead slope
        np.stack([0.5 * eyes, zeros, zeros], -1),                  # eye spacing
    ]
    rng = np.random.default_rng(seed)
    degree = 0
    while len(fields) < count:
        degree += 1
        for a in range(degree + 1):
            b = degree - a
            basis = np.polynomial.legendre.legval(x, np.eye(degree + 1)[a]) * \
                np.polynomial.legendre.legval(y, np.eye(degree + 1)[b])
            weight = 0.5 / (1.0 + 0.35 * degree) * rng.uniform(0.6, 1.0)
            fields.append(radial * (weight * basis)[:, None])
    modes: F64 = np.stack(fields[:count])
    return modes


# --- blend shapes ----------------------------------------------------------------

def _rotate_x(points: F64, pivot: F64, angle: F64) -> F64:
    """Each point rotated about the X axis through `pivot` by its own angle (rad)."""
    rel = points - pivot
    c, s = np.cos(angle), np.sin(angle)
    out = np.empty_like(points)
    out[:, 0] = rel[:, 0]
    out[:, 1] = c * rel[:, 1] - s * rel[:, 2]
    out[:, 2] = s * rel[:, 1] + c * rel[:, 2]
    result: F64 = out + pivot - points
    return result


def expression_deltas(mesh: Mesh, names: Sequence[str]) -> F64:
    """The (N, V, 3) offsets of the expressions `names` (any of the 53 MAXINE_EXPRESSIONS)."""
    p = mesh.points
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    face = mesh.face.astype(np.float64)
    upper_lip_side = face * (~mesh.lower_lip)
    lower_lip_side = face * mesh.lower_lip
    count = p.shape[0]

    def move(weight: F64, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0) -> F64:
        return weight[:, None] * np.array([dx, dy, dz])

    def side_gauss(side: float, cx: float, cy: float, sx: float, sy: float) -> F64:
        return gauss(x, y, side * cx, cy, sx, sy) * face

    # The jaw: rotation about an axis through the ear region.
    jaw_weight = np.where(mesh.lower_lip, 1.0, 0.0) * (1.0 - smoothstep(5.2, 7.4, np.abs(x)))
    jaw_weight *= np.where(mesh.socket | mesh.slit_lower, 1.0, smoothstep(MOUTH_Y + 0.2, MOUTH_Y - 1.2, y))
    jaw_weight = np.where(mesh.eye != 0, 0.0, jaw_weight)
    pivot = np.array([0.0, -0.5, -3.0])
    mouth = gauss(x, y, 0.0, MOUTH_Y, 2.6, 1.3) * face

    def eyelid(side: float, upper: bool) -> F64:
        """Weight of the eyelid above/below the opening: 1 at its rim, 0 beyond 1.3 cm."""
        dx = (x - side * EYE_X) / (EYE_HALF_W + 0.3)
        dy = y - EYE_Y
        rim = EYE_HALF_H * np.sqrt(np.clip(1.0 - dx ** 2, 0.0, 1.0))
        beyond = (dy - rim) if upper else (-dy - rim)
        inside = (dy > 0) if upper else (dy < 0)
        w = (1.0 - smoothstep(0.0, 1.3, beyond)) * (np.abs(dx) < 1.0) * inside * face
        return w * (1.0 - np.abs(dx) ** 2)

    def blink(side: float) -> F64:
        dx = (x - side * EYE_X) / (EYE_HALF_W + 0.3)
        rim = EYE_HALF_H * np.sqrt(np.clip(1.0 - dx ** 2, 0.0, 1.0))
        up = eyelid(side, True)
        low = eyelid(side, False)
        # The upper lid's rim travels down past the opening's centre; the lower lid rises a little.
        lid = up[:, None] * np.stack([np.zeros(count), -1.75 * rim, np.full(count, 0.35)], -1)
        return lid + move(low, dy=0.25 * EYE_HALF_H, dz=0.1)

    def look(side: float, yaw: float, pitch: float) -> F64:
        """Rotates one eyeball about its centre (yaw about Y, pitch about X, radians)."""
        sel = mesh.eye == int(side)
        out = np.zeros((count, 3))
        if not sel.any():
            return out
        centre = p[sel].mean(axis=0)
        rel = p[sel] - centre
        cy, sy = np.cos(yaw), np.sin(yaw)
        cp, sp = np.cos(pitch), np.sin(pitch)
        r1 = np.stack([cy * rel[:, 0] + sy * rel[:, 2], rel[:, 1], -sy * rel[:, 0] + cy * rel[:, 2]], -1)
        r2 = np.stack([r1[:, 0], cp * r1[:, 1] - sp * r1[:, 2], sp * r1[:, 1] + cp * r1[:, 2]], -1)
        out[sel] = r2 - rel
        return out

    def lips_side(side: float) -> F64:
        return gauss(x, y, side * 1.2, MOUTH_Y, 1.4, 1.0) * face

    rad15 = np.radians(15.0)
    rad18 = np.radians(18.0)
    shapes: dict[str, Callable[[], F64]] = {
        "jawOpen": lambda: _rotate_x(p, pivot, np.radians(16.0) * jaw_weight),
        "jawForward": lambda: move(jaw_weight, dz=0.7),
        "jawLeft": lambda: move(jaw_weight, dx=0.8),
        "jawRight": lambda: move(jaw_weight, dx=-0.8),
        "mouthClose": lambda: move(mouth * lower_lip_side, dy=0.75, dz=0.1)
        + move(mouth * upper_lip_side, dy=-0.35),
        "mouthFunnel": lambda: move(mouth, dz=0.55) + move(mouth * upper_lip_side, dy=0.2)
        + move(mouth * lower_lip_side, dy=-0.2),
        "mouthPucker": lambda: move(mouth, dz=0.7) + np.stack([-0.35 * x * mouth, np.zeros(count), np.zeros(count)], -1),
        "mouthLeft": lambda: move(mouth, dx=0.65),
        "mouthRight": lambda: move(mouth, dx=-0.65),
        "mouthRollLower": lambda: move(mouth * lower_lip_side, dy=0.2, dz=-0.45),
        "mouthRollUpper": lambda: move(mouth * upper_lip_side, dy=-0.2, dz=-0.45),
        "mouthShrugLower": lambda: move(gauss(x, y, 0.0, -6.8, 2.2, 1.5) * lower_lip_side, dy=0.4, dz=0.15),
        "mouthShrugUpper": lambda: move(mouth * upper_lip_side, dy=0.3, dz=0.1),
    }
    def sided(side: float, s: str) -> dict[str, Callable[[], F64]]:
        corner = side_gauss(side, MOUTH_HALF_W, MOUTH_Y, 1.3, 1.0)
        lips = lips_side(side)
        return {
            f"browDown_{s}": lambda: move(side_gauss(side, 3.0, 3.4, 1.9, 0.9), dy=-0.45, dz=-0.1),
            f"browInnerUp_{s}": lambda: move(side_gauss(side, 1.4, 3.5, 1.3, 1.2), dy=0.55),
            f"browOuterUp_{s}": lambda: move(side_gauss(side, 4.3, 3.2, 1.4, 1.1), dy=0.55),
            f"cheekPuff_{s}": lambda: move(side_gauss(side, 3.6, -4.0, 1.6, 1.5), dx=side * 0.6, dz=0.5),
            f"cheekSquint_{s}": lambda: move(side_gauss(side, 3.8, -0.6, 1.4, 1.1), dy=0.35, dz=0.1),
            f"eyeBlink_{s}": lambda: blink(side),
            f"eyeSquint_{s}": lambda: move(eyelid(side, False), dy=0.25)
            + move(side_gauss(side, 3.6, -0.4, 1.5, 1.0), dy=0.2),
            f"eyeWide_{s}": lambda: move(eyelid(side, True), dy=0.3, dz=0.05),
            f"eyeLookUp_{s}": lambda: look(side, 0.0, -rad15) + move(eyelid(side, True), dy=0.15),
            f"eyeLookDown_{s}": lambda: look(side, 0.0, rad15) + move(eyelid(side, True), dy=-0.2),
            # "In" turns the eye towards the nose (-X for the left eye).
            f"eyeLookIn_{s}": lambda: look(side, -side * rad18, 0.0),
            f"eyeLookOut_{s}": lambda: look(side, side * rad18, 0.0),
            f"mouthSmile_{s}": lambda: move(corner, dx=side * 0.45, dy=0.65, dz=-0.15),
            f"mouthFrown_{s}": lambda: move(corner, dy=-0.55),
            f"mouthDimple_{s}": lambda: move(corner, dx=side * 0.25, dz=-0.35),
            f"mouthStretch_{s}": lambda: move(corner, dx=side * 0.55, dy=-0.25),
            f"mouthPress_{s}": lambda: move(lips * upper_lip_side, dy=-0.15, dz=-0.1)
            + move(lips * lower_lip_side, dy=0.15, dz=-0.1),
            f"mouthLowerDown_{s}": lambda: move(lips * lower_lip_side, dy=-0.45),
            f"mouthUpperUp_{s}": lambda: move(lips * upper_lip_side, dy=0.45),
            f"noseSneer_{s}": lambda: move(side_gauss(side, 1.1, -1.7, 0.8, 0.9), dy=0.3, dz=0.05),
        }

    shapes.update(sided(1.0, "L"))
    shapes.update(sided(-1.0, "R"))
    unknown = [n for n in names if n not in shapes]
    if unknown:
        raise ValueError(f"the demo model has no blend shape named {unknown[0]!r} "
                         f"(it offers the 53 MAXINE_EXPRESSIONS)")
    deltas: F64 = np.stack([shapes[name]() for name in names]) if names else np.zeros((0, count, 3))
    return deltas
