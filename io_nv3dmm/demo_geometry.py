# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The demo face model's geometry: the stylised head mask (nose, brows, cheeks, lips
with an open mouth slit, eye holes), two eyeballs and a mouth socket, put together
as one `Mesh` with per-vertex roles and its partitions.

Coordinates are NVIDIA model space: centimetres, +Y up, +Z out of the nose,
+X towards the model's left ear. Dev-only, like all of io_nv3dmm/demo_*.py (not
in the add-on's zip; see io_nv3dmm.demo_model).

May import: numpy and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

# Head ellipsoid half-axes (cm): 15.6 cm wide, 22 cm high, 19 cm deep.
RX, RY, RZ = 7.8, 11.0, 9.5
EYE_X, EYE_Y = 3.2, 1.5          # eye centres at (+-3.2, 1.5)
EYE_HALF_W, EYE_HALF_H = 1.1, 0.5
EYE_RADIUS = 1.25
EYE_PROTRUSION = 0.45            # eyeball front ahead of the socket floor
MOUTH_Y = -5.4                    # the mouth slit's height
MOUTH_HALF_W = 2.3


@dataclass
class Mesh:
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


def gauss(x: F64, y: F64, cx: float, cy: float, sx: float, sy: float) -> F64:
    """A 2-D Gaussian bump of height 1 at (cx, cy) with widths (sx, sy)."""
    result: F64 = np.exp(-(((x - cx) / sx) ** 2) - ((y - cy) / sy) ** 2)
    return result


def smoothstep(edge0: float, edge1: float, value: F64) -> F64:
    """0 before edge0, 1 after edge1, a smooth cubic between (edges may be decreasing)."""
    t = np.clip((value - edge0) / (edge1 - edge0), 0.0, 1.0)
    result: F64 = t * t * (3.0 - 2.0 * t)
    return result


def _face_relief(x: F64, y: F64) -> F64:
    """Forward (z) offset of the facial features over the plain ellipsoid."""
    dz = np.zeros_like(x)
    for side in (-1.0, 1.0):
        dz -= 1.35 * gauss(x, y, side * EYE_X, EYE_Y, 1.75, 1.15)        # eye sockets
        dz += 0.75 * gauss(x, y, side * 3.0, 3.35, 2.2, 0.65)              # brow ridge
        dz += 0.55 * gauss(x, y, side * 4.3, -0.6, 1.7, 1.4)               # cheekbones
        dz += 0.65 * gauss(x, y, side * 1.25, -2.3, 0.55, 0.5)             # nostril wings
        dz -= 0.35 * gauss(x, y, side * 6.2, 2.8, 1.2, 1.6)                # temples
    # Nose: a ridge from the brow down to the tip, widening towards its base.
    t = np.clip((2.9 - y) / 5.1, 0.0, 1.0)
    height = np.where(y > -2.2, 0.45 + 2.35 * t ** 1.6, 2.8 * np.exp(-(((y + 2.2) / 0.5) ** 2)))
    height = height * (1.0 - smoothstep(2.0, 3.6, y))
    width = 0.55 + 0.75 * t
    dz += height * np.exp(-((x / width) ** 2))
    dz += 0.85 * gauss(x, y, 0.0, -5.2, 3.0, 1.8)                          # muzzle
    dz += 0.45 * gauss(x, y, 0.0, -4.85, 1.9, 0.42)                        # upper lip
    dz += 0.55 * gauss(x, y, 0.0, -6.0, 1.7, 0.48)                         # lower lip
    dz -= 0.25 * gauss(x, y, 0.0, -6.9, 1.6, 0.35)                         # lip-chin fold
    dz += 0.85 * gauss(x, y, 0.0, -8.6, 2.1, 1.2)                          # chin
    result: F64 = dz
    return result


def _ellipsoid(theta: F64, phi: F64) -> F64:
    x = RX * np.sin(theta) * np.cos(phi)
    y = RY * np.sin(phi)
    # A face is flatter than an ellipsoid seen from the side: the chin and
    # mouth sit nearly as far forward as the brow.
    fullness = 0.85 - 0.35 * smoothstep(0.0, -0.6, np.sin(phi))
    z = RZ * np.cos(theta) * np.cos(phi) ** fullness
    # A narrower jaw.
    below = np.clip(-y / RY, 0.0, 1.0)
    x = x * (1.0 - 0.28 * below ** 1.4)
    return np.stack([x, y, z], axis=-1)


def _face_surface(columns: int, rows: int) -> Mesh:
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
        keep &= ((quad_x - side * EYE_X) / EYE_HALF_W) ** 2 + ((quad_y - EYE_Y) / EYE_HALF_H) ** 2 > 1.0
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
        floor = int(np.argmin((x - side * EYE_X) ** 2 + (y - EYE_Y) ** 2))
        eye_centers[k] = [side * EYE_X, EYE_Y, points[floor, 2] + EYE_PROTRUSION - EYE_RADIUS]
        mine = rim[np.sign(x[rim]) == side]
        dx = (x[mine] - side * EYE_X) / EYE_HALF_W
        dy = (y[mine] - EYE_Y) / EYE_HALF_H
        d = np.sqrt(dx ** 2 + dy ** 2).clip(1e-6)
        px = side * EYE_X + dx / d * EYE_HALF_W
        py = EYE_Y + dy / d * EYE_HALF_H
        r2 = (px - side * EYE_X) ** 2 + (py - EYE_Y) ** 2
        points[mine, 0] = px
        points[mine, 1] = py
        points[mine, 2] = eye_centers[k, 2] + np.sqrt(np.clip(EYE_RADIUS ** 2 - r2, 0.0, None)) + 0.04
        # Skin over the eyeball stays in front of it (the lids cover it beyond the opening).
        r2_all = (points[:, 0] - side * EYE_X) ** 2 + (points[:, 1] - EYE_Y) ** 2
        over = r2_all < EYE_RADIUS ** 2
        cover = eye_centers[k, 2] + np.sqrt(np.clip(EYE_RADIUS ** 2 - r2_all[over], 0.0, None)) + 0.06
        points[over, 2] = np.maximum(points[over, 2], cover)
    x, y = points[:, 0], points[:, 1]

    # Mouth slit: the front row nearest the mouth height, split between the lips.
    middle = columns // 2
    slit_row = int(np.argmin(np.abs(y.reshape(rows, columns)[:, middle] - MOUTH_Y)))
    row_x = x.reshape(rows, columns)[slit_row]
    inside = np.flatnonzero(np.abs(row_x) < MOUTH_HALF_W)
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
    return Mesh(points, triangles.astype(np.int64), uv, np.ones(count, bool), lower,
                 np.zeros(count, np.int8), np.zeros(count, bool), slit_upper, slit_lower, eye_centers)


def _compact(mesh: Mesh) -> Mesh:
    """Drops vertices no triangle uses (those inside the eye openings)."""
    used = np.zeros(mesh.points.shape[0], dtype=bool)
    used[mesh.triangles.ravel()] = True
    new_index = np.cumsum(used) - 1
    return Mesh(mesh.points[used], new_index[mesh.triangles], mesh.uv[used], mesh.face[used],
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
    points = np.stack([2.1 * s, MOUTH_Y + 1.2 * t, center_z - 0.4 - 1.3 * (s ** 2 + t ** 2)], -1).reshape(-1, 3)
    index = np.arange(rows * columns).reshape(rows, columns)
    v00, v01, v10, v11 = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    tris = np.stack([v00, v01, v11, v00, v11, v10], -1).reshape(-1, 3)
    uv = np.stack([s, t], -1).reshape(-1, 2) * 0.5 + 0.5
    return points, tris.astype(np.int64), uv


def assemble(columns: int, rows: int) -> tuple[Mesh, list[tuple[str, str, int, int, int]]]:
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
        points, iris, sclera, uv = _sphere(center, EYE_RADIUS, rings=12, segments=20, iris_rings=2)
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
    lower = pad(face.lower_lip) | (socket & (all_points[:, 1] < MOUTH_Y))
    mesh = Mesh(all_points, np.concatenate(pieces_tris), np.concatenate(pieces_uv),
                 pad(face.face), lower, np.concatenate(eye_flag), socket,
                 pad(face.slit_upper), pad(face.slit_lower), face.eye_centers)
    return mesh, partitions
