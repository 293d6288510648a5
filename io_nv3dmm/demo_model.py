# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""A synthetic, deterministic demo face model (pure numpy, no data files).

`build_demo_model()` returns a `FaceModel` with every object the format has:
a stylised head mask (nose, brows, cheeks, lips with an open mouth slit,
eye holes) with two eyeballs and a mouth socket as separate sub-meshes,
smooth PCA shape modes, the 53 Maxine expression blend shapes, iBUG-68 and
NVLM landmarks, model contours, partitions with materials, texture
coordinates and optionally a colour model. It is meant for demos and tests;
it is not a statistical model of real faces.

Coordinates are NVIDIA model space: centimetres, +Y up, +Z out of the nose,
+X towards the model's left ear. "_L" shapes act on the +X side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import numpy.typing as npt

from .model import (
    MAXINE_EXPRESSIONS, BlendShapes, Contours, FaceModel, LandmarkSet, LinearModel, Partition,
)

F64 = npt.NDArray[np.float64]

# Head ellipsoid half-axes (cm): 15.6 cm wide, 22 cm high, 19 cm deep.
_RX, _RY, _RZ = 7.8, 11.0, 9.5
_EYE_X, _EYE_Y = 3.2, 1.5          # eye centres at (+-3.2, 1.5)
_EYE_HALF_W, _EYE_HALF_H = 1.1, 0.5
_EYE_RADIUS = 1.25
_EYE_PROTRUSION = 0.45            # eyeball front ahead of the socket floor
_MOUTH_Y = -5.4                    # the mouth slit's height
_MOUTH_HALF_W = 2.3


@dataclass
class _Mesh:
    """Geometry under construction: base positions and per-vertex roles."""

    points: F64                      # (V, 3)
    triangles: npt.NDArray[np.int64]  # (T, 3)
    uv: F64                          # (V, 2)
    face: npt.NDArray[np.bool_]      # vertex belongs to the face surface
    lower_lip: npt.NDArray[np.bool_]  # below the mouth slit (moves with the jaw)
    eye: npt.NDArray[np.int8]        # 0 none, +1 left (+X) eyeball, -1 right eyeball
    socket: npt.NDArray[np.bool_]    # mouth socket vertex
    slit_upper: npt.NDArray[np.bool_]  # face vertex on the slit's upper edge
    slit_lower: npt.NDArray[np.bool_]  # duplicated vertex on the slit's lower edge
    eye_centers: F64 | None = None   # (2, 3): right (-X) then left eyeball centre


def _gauss(x: F64, y: F64, cx: float, cy: float, sx: float, sy: float) -> F64:
    result: F64 = np.exp(-(((x - cx) / sx) ** 2) - ((y - cy) / sy) ** 2)
    return result


def _smoothstep(edge0: float, edge1: float, value: F64) -> F64:
    t = np.clip((value - edge0) / (edge1 - edge0), 0.0, 1.0)
    result: F64 = t * t * (3.0 - 2.0 * t)
    return result


def _face_relief(x: F64, y: F64) -> F64:
    """Forward (z) offset of the facial features over the plain ellipsoid."""
    dz = np.zeros_like(x)
    for side in (-1.0, 1.0):
        dz -= 1.35 * _gauss(x, y, side * _EYE_X, _EYE_Y, 1.75, 1.15)        # eye sockets
        dz += 0.75 * _gauss(x, y, side * 3.0, 3.35, 2.2, 0.65)              # brow ridge
        dz += 0.55 * _gauss(x, y, side * 4.3, -0.6, 1.7, 1.4)               # cheekbones
        dz += 0.65 * _gauss(x, y, side * 1.25, -2.3, 0.55, 0.5)             # nostril wings
        dz -= 0.35 * _gauss(x, y, side * 6.2, 2.8, 1.2, 1.6)                # temples
    # Nose: a ridge from the brow down to the tip, widening towards its base.
    t = np.clip((2.9 - y) / 5.1, 0.0, 1.0)
    height = np.where(y > -2.2, 0.45 + 2.35 * t ** 1.6, 2.8 * np.exp(-(((y + 2.2) / 0.5) ** 2)))
    height = height * (1.0 - _smoothstep(2.0, 3.6, y))
    width = 0.55 + 0.75 * t
    dz += height * np.exp(-((x / width) ** 2))
    dz += 0.85 * _gauss(x, y, 0.0, -5.2, 3.0, 1.8)                          # muzzle
    dz += 0.45 * _gauss(x, y, 0.0, -4.85, 1.9, 0.42)                        # upper lip
    dz += 0.55 * _gauss(x, y, 0.0, -6.0, 1.7, 0.48)                         # lower lip
    dz -= 0.25 * _gauss(x, y, 0.0, -6.9, 1.6, 0.35)                         # lip-chin fold
    dz += 0.85 * _gauss(x, y, 0.0, -8.6, 2.1, 1.2)                          # chin
    result: F64 = dz
    return result


def _ellipsoid(theta: F64, phi: F64) -> F64:
    x = _RX * np.sin(theta) * np.cos(phi)
    y = _RY * np.sin(phi)
    # A face is flatter than an ellipsoid seen from the side: the chin and
    # mouth sit nearly as far forward as the brow.
    fullness = 0.85 - 0.35 * _smoothstep(0.0, -0.6, np.sin(phi))
    z = _RZ * np.cos(theta) * np.cos(phi) ** fullness
    # A narrower jaw.
    below = np.clip(-y / _RY, 0.0, 1.0)
    x = x * (1.0 - 0.28 * below ** 1.4)
    return np.stack([x, y, z], axis=-1)


def _face_surface(columns: int, rows: int) -> _Mesh:
    theta = np.linspace(-np.radians(100.0), np.radians(100.0), columns)
    phi = np.linspace(-np.radians(62.0), np.radians(76.0), rows)
    th, ph = np.meshgrid(theta, phi)                                  # rows x columns
    points = _ellipsoid(th, ph).reshape(-1, 3)
    x, y = points[:, 0], points[:, 1]
    front = np.clip(np.cos(th).reshape(-1), 0.0, 1.0) ** 0.5
    points[:, 2] += _face_relief(x, y) * front
    uv = np.stack(np.meshgrid(np.linspace(0.0, 0.78, columns), np.linspace(0.0, 1.0, rows)), -1).reshape(-1, 2)

    index = np.arange(rows * columns).reshape(rows, columns)
    # Quads between row i (below) and i+1 (above), columns j and j+1.
    v00, v01 = index[:-1, :-1], index[:-1, 1:]
    v10, v11 = index[1:, :-1], index[1:, 1:]
    quad_x = 0.25 * (x[v00] + x[v01] + x[v10] + x[v11])
    quad_y = 0.25 * (y[v00] + y[v01] + y[v10] + y[v11])
    keep = np.ones(v00.shape, dtype=bool)
    for side in (-1.0, 1.0):                                          # eye openings
        keep &= ((quad_x - side * _EYE_X) / _EYE_HALF_W) ** 2 + ((quad_y - _EYE_Y) / _EYE_HALF_H) ** 2 > 1.0
    corners = np.stack([v00, v01, v10, v11])
    kept_use = np.zeros(rows * columns, dtype=bool)
    kept_use[corners[:, keep].ravel()] = True
    removed_use = np.zeros(rows * columns, dtype=bool)
    removed_use[corners[:, ~keep].ravel()] = True
    rim = np.flatnonzero(kept_use & removed_use)
    # The eyeballs sit in the sockets, their fronts a little ahead of the socket floor;
    # the opening's rim is snapped onto an almond outline resting on the eyeball (the lids).
    eye_centers = np.empty((2, 3))
    for k, side in enumerate((-1.0, 1.0)):
        floor = int(np.argmin((x - side * _EYE_X) ** 2 + (y - _EYE_Y) ** 2))
        eye_centers[k] = [side * _EYE_X, _EYE_Y, points[floor, 2] + _EYE_PROTRUSION - _EYE_RADIUS]
        mine = rim[np.sign(x[rim]) == side]
        dx = (x[mine] - side * _EYE_X) / _EYE_HALF_W
        dy = (y[mine] - _EYE_Y) / _EYE_HALF_H
        d = np.sqrt(dx ** 2 + dy ** 2).clip(1e-6)
        px = side * _EYE_X + dx / d * _EYE_HALF_W
        py = _EYE_Y + dy / d * _EYE_HALF_H
        r2 = (px - side * _EYE_X) ** 2 + (py - _EYE_Y) ** 2
        points[mine, 0] = px
        points[mine, 1] = py
        points[mine, 2] = eye_centers[k, 2] + np.sqrt(np.clip(_EYE_RADIUS ** 2 - r2, 0.0, None)) + 0.04
        # Skin over the eyeball stays in front of it (the lids cover it beyond the opening).
        r2_all = (points[:, 0] - side * _EYE_X) ** 2 + (points[:, 1] - _EYE_Y) ** 2
        over = r2_all < _EYE_RADIUS ** 2
        cover = eye_centers[k, 2] + np.sqrt(np.clip(_EYE_RADIUS ** 2 - r2_all[over], 0.0, None)) + 0.06
        points[over, 2] = np.maximum(points[over, 2], cover)
    x, y = points[:, 0], points[:, 1]

    # Mouth slit: the front row nearest the mouth height, split between the lips.
    middle = columns // 2
    slit_row = int(np.argmin(np.abs(y.reshape(rows, columns)[:, middle] - _MOUTH_Y)))
    row_x = x.reshape(rows, columns)[slit_row]
    inside = np.flatnonzero(np.abs(row_x) < _MOUTH_HALF_W)
    slit_cols = inside[1:-1]                                          # the corners stay joined
    duplicates = np.arange(slit_cols.size) + rows * columns
    remap = np.arange(rows * columns + slit_cols.size)
    remap[index[slit_row, slit_cols]] = duplicates
    # The quad band just below the slit row uses the duplicates (the lower lip).
    below = slit_row - 1
    v10 = v10.copy()
    v11 = v11.copy()
    v10[below] = remap[v10[below]]
    v11[below] = remap[v11[below]]

    quads = np.stack([v00[keep], v01[keep], v11[keep], v10[keep]], axis=-1)
    triangles = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    # Interleave the two halves of each quad so neighbouring faces stay close in the list.
    triangles = triangles.reshape(2, -1, 3).transpose(1, 0, 2).reshape(-1, 3)

    slit_ids = index[slit_row, slit_cols]
    points = np.concatenate([points, points[slit_ids]])
    uv = np.concatenate([uv, uv[slit_ids]])
    count = points.shape[0]
    lower = np.zeros(count, dtype=bool)
    lower[:rows * columns] = (np.arange(rows * columns) // columns) < slit_row
    lower[rows * columns:] = True
    slit_upper = np.zeros(count, dtype=bool)
    slit_upper[slit_ids] = True
    slit_lower = np.zeros(count, dtype=bool)
    slit_lower[rows * columns:] = True
    return _Mesh(points, triangles.astype(np.int64), uv, np.ones(count, bool), lower,
                 np.zeros(count, np.int8), np.zeros(count, bool), slit_upper, slit_lower, eye_centers)


def _compact(mesh: _Mesh) -> _Mesh:
    """Drops vertices no triangle uses (those inside the eye openings)."""
    used = np.zeros(mesh.points.shape[0], dtype=bool)
    used[mesh.triangles.ravel()] = True
    new_index = np.cumsum(used) - 1
    return _Mesh(mesh.points[used], new_index[mesh.triangles], mesh.uv[used], mesh.face[used],
                 mesh.lower_lip[used], mesh.eye[used], mesh.socket[used], mesh.slit_upper[used],
                 mesh.slit_lower[used], mesh.eye_centers)


def _sphere(center: F64, radius: float, rings: int, segments: int,
            iris_rings: int) -> tuple[F64, npt.NDArray[np.int64], npt.NDArray[np.int64], F64]:
    """A UV sphere with its pole on +Z; returns points, iris tris, sclera tris, uv."""
    polar = np.linspace(0.0, np.pi, rings + 1)[1:-1]
    azimuth = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    a, b = np.meshgrid(polar, azimuth, indexing="ij")
    ring_points = np.stack([np.sin(a) * np.cos(b), np.sin(a) * np.sin(b), np.cos(a)], -1).reshape(-1, 3)
    points = np.concatenate([[[0.0, 0.0, 1.0]], ring_points, [[0.0, 0.0, -1.0]]]) * radius + center
    ring = (np.arange((rings - 1) * segments).reshape(rings - 1, segments) + 1)
    nxt = np.roll(ring, -1, axis=1)
    front_fan = np.stack([np.zeros(segments, np.int64), ring[0], nxt[0]], -1)
    back_fan = np.stack([np.full(segments, points.shape[0] - 1), nxt[-1], ring[-1]], -1)
    bands = np.stack([ring[:-1], ring[1:], nxt[1:], ring[:-1], nxt[1:], nxt[:-1]], -1).reshape(rings - 2, segments, 2, 3)
    band_tris = bands.reshape(rings - 2, -1, 3)
    iris = np.concatenate([front_fan, band_tris[:iris_rings - 1].reshape(-1, 3)])
    sclera = np.concatenate([band_tris[iris_rings - 1:].reshape(-1, 3), back_fan])
    # Make every triangle face outwards (normal away from the centre).
    for tris in (iris, sclera):
        p = points[tris]
        normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        flip = np.einsum("ij,ij->i", normal, p.mean(axis=1) - center) < 0
        tris[flip] = tris[flip][:, [0, 2, 1]]
    direction = (points - center) / radius
    uv = np.stack([0.5 + 0.5 * direction[:, 0], 0.5 + 0.5 * direction[:, 1]], -1)
    return points, iris, sclera, uv


def _socket(center_z: float, columns: int = 11, rows: int = 7) -> tuple[F64, npt.NDArray[np.int64], F64]:
    """The inside of the mouth behind the slit: a dome curving away from the viewer."""
    s, t = np.meshgrid(np.linspace(-1.0, 1.0, columns), np.linspace(-1.0, 1.0, rows))
    points = np.stack([2.1 * s, _MOUTH_Y + 1.2 * t, center_z - 0.4 - 1.3 * (s ** 2 + t ** 2)], -1).reshape(-1, 3)
    index = np.arange(rows * columns).reshape(rows, columns)
    v00, v01, v10, v11 = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    tris = np.stack([v00, v01, v11, v00, v11, v10], -1).reshape(-1, 3)
    uv = np.stack([s, t], -1).reshape(-1, 2) * 0.5 + 0.5
    return points, tris.astype(np.int64), uv


def _assemble(columns: int, rows: int) -> tuple[_Mesh, list[tuple[str, str, int, int, int]]]:
    """The whole mesh and its partitions (name, material, first tri, count, group)."""
    face = _compact(_face_surface(columns, rows))
    pieces_points = [face.points]
    pieces_uv = [face.uv]
    pieces_tris = [face.triangles]
    partitions = [("Face", "Face", 0, face.triangles.shape[0], 1)]
    eye_flag = [face.eye]
    socket_flag = [face.socket]
    offset = face.points.shape[0]
    first = face.triangles.shape[0]
    assert face.eye_centers is not None
    for center, side, suffix in ((face.eye_centers[0], -1.0, "R"), (face.eye_centers[1], 1.0, "L")):
        points, iris, sclera, uv = _sphere(center, _EYE_RADIUS, rings=12, segments=20, iris_rings=2)
        pieces_points.append(points)
        pieces_uv.append(uv * 0.1 + np.array([0.8 if side < 0 else 0.9, 0.0]))
        for name, material, tris in ((f"Sclera_{suffix}", "Sclera", sclera), (f"Iris_{suffix}", "Iris", iris)):
            pieces_tris.append(tris + offset)
            partitions.append((name, material, first, tris.shape[0], 2))
            first += tris.shape[0]
        eye_flag.append(np.full(points.shape[0], int(side), np.int8))
        socket_flag.append(np.zeros(points.shape[0], bool))
        offset += points.shape[0]
    mouth_front = face.points[face.slit_upper | face.slit_lower]
    points, tris, uv = _socket(float(mouth_front[:, 2].min()) - 0.2)
    pieces_points.append(points)
    pieces_uv.append(uv * 0.1 + np.array([0.8, 0.15]))
    pieces_tris.append(tris + offset)
    partitions.append(("MouthSocket", "MouthSocket", first, tris.shape[0], 3))
    eye_flag.append(np.zeros(points.shape[0], np.int8))
    socket_flag.append(np.ones(points.shape[0], bool))

    count = sum(p.shape[0] for p in pieces_points)
    extra = count - face.points.shape[0]

    def pad(values: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        return np.concatenate([values, np.zeros(extra, bool)])

    all_points = np.concatenate(pieces_points)
    socket = np.concatenate(socket_flag)
    lower = pad(face.lower_lip) | (socket & (all_points[:, 1] < _MOUTH_Y))
    mesh = _Mesh(all_points, np.concatenate(pieces_tris), np.concatenate(pieces_uv),
                 pad(face.face), lower, np.concatenate(eye_flag), socket,
                 pad(face.slit_upper), pad(face.slit_lower), face.eye_centers)
    return mesh, partitions


# --- shape modes ---------------------------------------------------------------

def _shape_modes(mesh: _Mesh, count: int, seed: int) -> F64:
    """Smooth identity modes (cm): global proportions, then low-order fields."""
    p = mesh.points
    x, y, z = p[:, 0] / _RX, p[:, 1] / _RY, p[:, 2] / _RZ
    radial = p / np.linalg.norm(p / np.array([_RX, _RY, _RZ]), axis=1, keepdims=True).clip(1e-6)
    radial /= np.linalg.norm(radial, axis=1, keepdims=True).clip(1e-6)
    px, py = p[:, 0], p[:, 1]
    zeros = np.zeros_like(x)
    lower = _smoothstep(0.0, -0.6, y)
    nose = np.exp(-((px / 1.4) ** 2)) * _smoothstep(3.0, 0.0, py) * _smoothstep(-3.2, -1.8, py)
    chin = _gauss(px, py, 0.0, -8.6, 2.5, 1.6)
    cheeks = _gauss(np.abs(px), py, 4.3, -1.5, 2.0, 2.0)
    forehead = _smoothstep(0.25, 0.7, y)
    eyes = _gauss(np.abs(px), py, _EYE_X, _EYE_Y, 1.8, 1.3) * np.sign(px)
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


def _blend_shapes(mesh: _Mesh, names: Sequence[str]) -> F64:
    p = mesh.points
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    face = mesh.face.astype(np.float64)
    upper_lip_side = face * (~mesh.lower_lip)
    lower_lip_side = face * mesh.lower_lip
    count = p.shape[0]

    def move(weight: F64, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0) -> F64:
        return weight[:, None] * np.array([dx, dy, dz])

    def side_gauss(side: float, cx: float, cy: float, sx: float, sy: float) -> F64:
        return _gauss(x, y, side * cx, cy, sx, sy) * face

    # The jaw: rotation about an axis through the ear region.
    jaw_weight = np.where(mesh.lower_lip, 1.0, 0.0) * (1.0 - _smoothstep(5.2, 7.4, np.abs(x)))
    jaw_weight *= np.where(mesh.socket | mesh.slit_lower, 1.0, _smoothstep(_MOUTH_Y + 0.2, _MOUTH_Y - 1.2, y))
    jaw_weight = np.where(mesh.eye != 0, 0.0, jaw_weight)
    pivot = np.array([0.0, -0.5, -3.0])
    mouth = _gauss(x, y, 0.0, _MOUTH_Y, 2.6, 1.3) * face

    def eyelid(side: float, upper: bool) -> F64:
        """Weight of the eyelid above/below the opening: 1 at its rim, 0 beyond 1.3 cm."""
        dx = (x - side * _EYE_X) / (_EYE_HALF_W + 0.3)
        dy = y - _EYE_Y
        rim = _EYE_HALF_H * np.sqrt(np.clip(1.0 - dx ** 2, 0.0, 1.0))
        beyond = (dy - rim) if upper else (-dy - rim)
        inside = (dy > 0) if upper else (dy < 0)
        w = (1.0 - _smoothstep(0.0, 1.3, beyond)) * (np.abs(dx) < 1.0) * inside * face
        return w * (1.0 - np.abs(dx) ** 2)

    def blink(side: float) -> F64:
        dx = (x - side * _EYE_X) / (_EYE_HALF_W + 0.3)
        rim = _EYE_HALF_H * np.sqrt(np.clip(1.0 - dx ** 2, 0.0, 1.0))
        up = eyelid(side, True)
        low = eyelid(side, False)
        # The upper lid's rim travels down past the opening's centre; the lower lid rises a little.
        lid = up[:, None] * np.stack([np.zeros(count), -1.75 * rim, np.full(count, 0.35)], -1)
        return lid + move(low, dy=0.25 * _EYE_HALF_H, dz=0.1)

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
        return _gauss(x, y, side * 1.2, _MOUTH_Y, 1.4, 1.0) * face

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
        "mouthShrugLower": lambda: move(_gauss(x, y, 0.0, -6.8, 2.2, 1.5) * lower_lip_side, dy=0.4, dz=0.15),
        "mouthShrugUpper": lambda: move(mouth * upper_lip_side, dy=0.3, dz=0.1),
    }
    def sided(side: float, s: str) -> dict[str, Callable[[], F64]]:
        corner = side_gauss(side, _MOUTH_HALF_W, _MOUTH_Y, 1.3, 1.0)
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


# --- landmarks -------------------------------------------------------------------

def _nearest(candidates: npt.NDArray[np.int64], points: F64, targets: F64) -> npt.NDArray[np.int64]:
    """For each (x, y) target, the candidate vertex nearest to it in the front view."""
    d = ((points[candidates, None, :2] - targets[None, :, :]) ** 2).sum(-1)
    result: npt.NDArray[np.int64] = candidates[np.argmin(d, axis=0)]
    return result


def _jaw_curve(count: int) -> F64:
    """Points along the jaw from the right ear (-X) past the chin to the left ear."""
    s = np.linspace(0.0, np.pi, count)
    return np.stack([-6.6 * np.cos(s), 0.6 - 9.4 * np.sin(s) ** 0.95], -1)


def _ibug_targets() -> F64:
    ex, ey, hw, hh = _EYE_X, _EYE_Y, _EYE_HALF_W, _EYE_HALF_H
    right_eye = [(-ex - hw, ey), (-ex - 0.45, ey + hh), (-ex + 0.45, ey + hh), (-ex + hw, ey),
                 (-ex + 0.45, ey - hh), (-ex - 0.45, ey - hh)]
    left_eye = [(ex - hw, ey), (ex - 0.45, ey + hh), (ex + 0.45, ey + hh), (ex + hw, ey),
                (ex + 0.45, ey - hh), (ex - 0.45, ey - hh)]
    my = _MOUTH_Y
    outer_lips = [(-2.3, my), (-1.4, my + 0.5), (-0.5, my + 0.75), (0.0, my + 0.65), (0.5, my + 0.75),
                  (1.4, my + 0.5), (2.3, my), (1.4, my - 0.7), (0.5, my - 1.0), (0.0, my - 1.05),
                  (-0.5, my - 1.0), (-1.4, my - 0.7)]
    brows = [(-5.0, 3.1), (-4.1, 3.5), (-3.1, 3.7), (-2.1, 3.6), (-1.2, 3.4),
             (1.2, 3.4), (2.1, 3.6), (3.1, 3.7), (4.1, 3.5), (5.0, 3.1)]
    nose = [(0.0, 2.2), (0.0, 0.9), (0.0, -0.4), (0.0, -1.9),
            (-1.1, -2.8), (-0.55, -2.95), (0.0, -3.0), (0.55, -2.95), (1.1, -2.8)]
    return np.concatenate([_jaw_curve(17), np.array(brows + nose + right_eye + left_eye + outer_lips)])


def _landmarks(mesh: _Mesh) -> tuple[LandmarkSet, LandmarkSet, Contours]:
    p = mesh.points
    front_face = np.flatnonzero(mesh.face & (p[:, 2] > 0.5) & ~mesh.slit_lower)
    targets = _ibug_targets()                                          # landmarks 1..60
    vertices = _nearest(front_face, p, targets)
    # Inner lips 61..68: on the slit's edges, upper edge for 61..65, lower for 66..68.
    my = _MOUTH_Y
    upper = _nearest(np.flatnonzero(mesh.slit_upper), p,
                     np.array([(-2.0, my), (-0.8, my), (0.0, my), (0.8, my), (2.0, my)]))
    lower = _nearest(np.flatnonzero(mesh.slit_lower), p, np.array([(0.8, my), (0.0, my), (-0.8, my)]))
    ibug_vertices = np.concatenate([vertices, upper, lower])
    numbers = np.arange(1, 69)
    ibug = LandmarkSet(
        pairs=np.stack([numbers, ibug_vertices], -1).astype(np.uint16),
        right_contour=np.arange(1, 9, dtype=np.uint16),
        left_contour=np.arange(10, 18, dtype=np.uint16))

    # NVLM: a 33-point contour (1..16 right, 17 chin, 18..33 left), then the
    # inner iBUG points 18..68 numbered on from 34 (the demo's own scheme).
    contour = _nearest(front_face, p, _jaw_curve(33))
    nvlm_vertices = np.concatenate([contour, ibug_vertices[17:]])
    nvlm = LandmarkSet(
        pairs=np.stack([np.arange(1, nvlm_vertices.size + 1), nvlm_vertices], -1).astype(np.uint16),
        right_contour=np.arange(1, 17, dtype=np.uint16),
        left_contour=np.arange(18, 34, dtype=np.uint16))

    # MCTR: 16 vertices per side, from the ear towards the chin.
    curve = _jaw_curve(35)
    right = _nearest(front_face, p, curve[:16])
    left = _nearest(front_face, p, curve[::-1][:16])
    return ibug, nvlm, Contours(right=right.astype(np.uint16), left=left.astype(np.uint16))


def _colors(mesh: _Mesh, modes: int) -> LinearModel:
    p = mesh.points
    skin = np.array([0.78, 0.60, 0.52])
    color = np.tile(skin, (p.shape[0], 1))
    lips = (_gauss(p[:, 0], p[:, 1], 0.0, _MOUTH_Y, 2.2, 0.7) * mesh.face)[:, None]
    color = color * (1.0 - lips) + np.array([0.72, 0.38, 0.38]) * lips
    color[mesh.eye != 0] = [0.92, 0.92, 0.90]
    # The iris colour: the front cap of each eyeball (blended out to the Iris partition's edge).
    eye_z = np.full(p.shape[0], -np.inf)
    for side in (-1, 1):
        mine = mesh.eye == side
        if mine.any():
            eye_z[mine] = p[mine, 2] - p[mine, 2].max()
    iris = (mesh.eye != 0) & (eye_z > -0.1)
    color[iris] = [0.25, 0.38, 0.52]
    color[mesh.socket] = [0.45, 0.2, 0.2]
    y = p[:, 1] / _RY
    fields = [np.ones_like(y), y, p[:, 0] / _RX, lips[:, 0], y ** 2]
    tints = [np.array([0.08, 0.06, 0.05]), np.array([0.03, -0.01, -0.02]), np.array([0.02, 0.02, 0.0]),
             np.array([0.06, -0.03, -0.02]), np.array([-0.02, 0.01, 0.02])]
    color_modes = np.stack([f[:, None] * t for f, t in zip(fields, tints)])[:modes]
    return LinearModel(
        mean=color.astype(np.float32), modes=color_modes.astype(np.float32),
        eigenvalues=np.ones(color_modes.shape[0], np.float32),
        triangles=np.zeros((0, 3), np.uint16))   # NVIDIA leaves the colour TRNG empty


def build_demo_model(
    *,
    shape_modes: int = 20,
    true_variances: bool = False,
    with_color: bool = False,
    color_modes: int = 5,
    blend_shape_names: Sequence[str] | None = None,
    resolution: tuple[int, int] = (61, 57),
    seed: int = 0,
) -> FaceModel:
    """A deterministic synthetic face model with every .nvf object.

    shape_modes: number of identity modes (offsets in cm). With
    true_variances False they are pre-scaled and every eigenvalue is 1.0
    (NVIDIA's convention); with True each mode has unit norm and its
    eigenvalue is the variance (squared scale), largest first.
    with_color: add a per-vertex colour model (RGB in 0..1, `color_modes`
    modes, empty colour TRNG as NVIDIA writes it).
    blend_shape_names: which expression shapes, in that order (default: all
    53 MAXINE_EXPRESSIONS).
    resolution: (columns, rows) of the face surface grid; the default gives
    about 3,600 vertices.
    Landmarks are placed on the nearest face vertices to iBUG-68 positions;
    partitions are Face, Sclera_R, Iris_R, Sclera_L, Iris_L, MouthSocket.
    The topology is left None (the writer rebuilds TOPO).
    """
    columns, rows = resolution
    if columns < 21 or rows < 21:
        raise ValueError("resolution must be at least (21, 21) for the features to exist")
    if shape_modes < 0:
        raise ValueError("shape_modes must be >= 0")
    mesh, parts = _assemble(columns, rows)
    modes = _shape_modes(mesh, shape_modes, seed) if shape_modes else np.zeros((0, mesh.points.shape[0], 3))
    if true_variances and shape_modes:
        scale = np.sqrt((modes ** 2).sum(axis=(1, 2)))
        order = np.argsort(-scale, kind="stable")
        scale = scale[order]
        modes = modes[order] / scale[:, None, None]
        eigenvalues = scale ** 2
    else:
        eigenvalues = np.ones(modes.shape[0])
    names = list(MAXINE_EXPRESSIONS if blend_shape_names is None else blend_shape_names)
    deltas = _blend_shapes(mesh, names)
    ibug, nvlm, contours = _landmarks(mesh)
    partitions = [
        Partition(index=i, face_start=start, face_count=n, vertex_start=3 * start, vertex_count=3 * n,
                  smoothing_group=group, name=name, material=material)
        for i, (name, material, start, n, group) in enumerate(parts)]
    triangles = mesh.triangles.astype(np.uint16)
    return FaceModel(
        shape=LinearModel(mean=mesh.points.astype(np.float32), modes=modes.astype(np.float32),
                          eigenvalues=eigenvalues.astype(np.float32), triangles=triangles),
        color=_colors(mesh, color_modes) if with_color else None,
        texcoords=mesh.uv.astype(np.float32),
        ibug=ibug, blend_shapes=BlendShapes(names=names, deltas=deltas.astype(np.float32)),
        model_contours=contours, topology=None, nvlm=nvlm, partitions=partitions)

