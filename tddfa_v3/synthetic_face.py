# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""A synthetic stand-in for the 3DDFA-V3 assets folder (face model, template, checkpoints).

The real assets are large user downloads under a non-commercial licence, so
tests, benchmarks and demos use a small synthetic face model with the same
keys and semantics as ``face_model.npy``:

- from the reference fixtures (``face_model.npz`` + ``face_model_lists.json``,
  rebuilt as their README describes), when a fixtures folder is given;
- otherwise generated here: a 41 x 49 grid bent into a dome with a nose, smooth
  random identity / expression / albedo bases, landmarks laid out like the
  landmark network's points, an 8-part annotation and 33 contour chains.

`write_synthetic_assets` writes a complete assets folder (plus the synthetic
checkpoints of `tddfa_v3.synthetic`) that every loader accepts.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

try:  # inside the add-on, and in tests: the one io_nv3dmm
    from ..io_nv3dmm.atomic import write_atomic
except ImportError:  # `python -m tddfa_v3` from a clone runs the packages top-level
    write_atomic = importlib.import_module("io_nv3dmm.atomic").write_atomic

from .assets import FACE_MODEL_FILE, LM3D_FILE, N_ALB, N_EXP, N_ID
from .errors import AssetError

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Grid of the generated mesh: columns along x, rows along y (the fixture's size).
GRID_COLUMNS, GRID_ROWS = 41, 49
X_HALF, Y_HALF = 0.9, 0.96

# The 5 template points of the reference crop (docs: eye centres, nose tip, mouth corners).
_LEFT_EYE = np.array([-0.311487, 0.290361, 0.133780])
_RIGHT_EYE = np.array([0.309799, 0.289720, 0.131795])
_NOSE_TIP = np.array([0.003253, -0.046179, 0.552442])
_MOUTH_LEFT = np.array([-0.252169, -0.381339, 0.224057])
_MOUTH_RIGHT = np.array([0.248466, -0.381282, 0.222358])


# --------------------------------------------------------------------------- from the fixtures

def face_model_dict_from_fixtures(fixtures_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The face-model dict the fixtures describe (face_model.npz + face_model_lists.json)."""
    folder = Path(fixtures_dir)
    try:
        with np.load(folder / "face_model.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        with open(folder / "face_model_lists.json", encoding="utf-8") as handle:
            lists = json.load(handle)
    except (OSError, ValueError, KeyError) as exc:
        raise AssetError(f"cannot read the synthetic face model from {folder}: {exc}") from exc
    model: dict[str, Any] = {k: v for k, v in arrays.items() if not k.startswith("annotation_tri_")}
    model["annotation_tri"] = [arrays[f"annotation_tri_{i}"] for i in range(8)]
    model["annotation"] = [[int(v) for v in part] for part in lists["annotation"]]
    model["parallel"] = [[int(v) for v in chain] for chain in lists["parallel"]]
    return model


# --------------------------------------------------------------------------- generated

def grid_vertices(columns: int = GRID_COLUMNS, rows: int = GRID_ROWS) -> F64:
    """(V, 3) vertices of the dome: row-major from the bottom-left, z towards the camera."""
    xs = np.linspace(-X_HALF, X_HALF, columns)
    ys = np.linspace(-Y_HALF, Y_HALF, rows)
    x, y = np.meshgrid(xs, ys)       # (rows, columns), vertex id = row * columns + column
    z = dome_height(x, y)
    return np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)


def dome_height(x: npt.NDArray[Any], y: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A face-like height field: an elliptic dome with a nose ridge peaking at the nose tip."""
    dome = 0.38 - 0.55 * (x / X_HALF) ** 2 - 0.45 * (y / Y_HALF) ** 2
    nose = 0.22 * np.exp(-((x - _NOSE_TIP[0]) / 0.1) ** 2 - ((y - _NOSE_TIP[1]) / 0.22) ** 2)
    return dome + nose


def grid_triangles(columns: int = GRID_COLUMNS, rows: int = GRID_ROWS) -> I64:
    """(T, 3) triangles of the grid, counter-clockwise seen from +z, diagonals alternating
    in a checkerboard so vertices touch 2, 4 or 8 triangles."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(columns - 1), indexing="ij")
    a = (r * columns + c).ravel()          # bottom-left corner of each quad
    b, d, e = a + 1, a + columns + 1, a + columns    # bottom-right, top-right, top-left
    flip = ((r + c) % 2).ravel().astype(bool)
    # Diagonal a-d: (a, b, d), (a, d, e); diagonal b-e: (a, b, e), (b, d, e).
    first = np.where(flip[:, None], np.stack([a, b, e], 1), np.stack([a, b, d], 1))
    second = np.where(flip[:, None], np.stack([b, d, e], 1), np.stack([a, d, e], 1))
    return np.stack([first, second], axis=1).reshape(-1, 3).astype(np.int64)


def adjacent_triangles(tri: I64, n_vertices: int, width: int = 8) -> I64:
    """``point_buf``: per vertex its triangles in triangle order, padded with T."""
    n_tri = tri.shape[0]
    vertex = tri.ravel()
    owner = np.repeat(np.arange(n_tri), 3)
    order = np.argsort(vertex, kind="stable")          # keeps triangle order within a vertex
    vertex, owner = vertex[order], owner[order]
    starts = np.searchsorted(vertex, np.arange(n_vertices))
    rank = np.arange(vertex.size) - starts[vertex]
    if rank.size and rank.max() >= width:
        raise ValueError(f"a vertex touches more than {width} triangles")
    buf = np.full((n_vertices, width), n_tri, dtype=np.int64)
    buf[vertex, rank] = owner
    return buf


def smooth_basis(vertices: F64, count: int, rms: float, decay: float, rng: np.random.Generator) -> F64:
    """(3V, count) smooth random fields (low cosine modes), interleaved per vertex,
    per-vertex RMS `rms` for column 0 decaying by `decay` per column."""
    u = (vertices[:, 0] + X_HALF) / (2 * X_HALF)
    v = (vertices[:, 1] + Y_HALF) / (2 * Y_HALF)
    modes = np.arange(4)
    phi = (np.cos(np.pi * modes[None, :, None] * u[:, None, None])
           * np.cos(np.pi * modes[None, None, :] * v[:, None, None])).reshape(len(u), -1)   # (V, 16)
    coefficients = rng.standard_normal((count, phi.shape[1], 3))
    fields = np.einsum("vf,kfc->vck", phi, coefficients)                                  # (V, 3, K)
    per_vertex_rms = np.sqrt(np.mean(np.sum(fields ** 2, axis=1), axis=0))
    fields *= (rms * decay ** np.arange(count) / per_vertex_rms)[None, None, :]
    return fields.reshape(-1, count)


def _nearest_grid_vertex(points: F64, columns: int = GRID_COLUMNS, rows: int = GRID_ROWS) -> I64:
    """Index of the grid vertex nearest (in x, y) to each point."""
    col = np.clip(np.rint((points[:, 0] + X_HALF) / (2 * X_HALF) * (columns - 1)), 0, columns - 1)
    row = np.clip(np.rint((points[:, 1] + Y_HALF) / (2 * Y_HALF) * (rows - 1)), 0, rows - 1)
    return (row * columns + col).astype(np.int64)


def _arc(start: F64, end: F64, n: int, bulge: float) -> F64:
    """n points from start to end (xy), bowed by `bulge` in y."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    points: F64 = np.asarray(start[None, :2] * (1 - t) + end[None, :2] * t, dtype=np.float64)
    points[:, 1] += bulge * np.sin(np.pi * t[:, 0])
    return points


def _ring(centre: F64, radius_x: float, radius_y: float, n: int, start_angle: float = np.pi) -> F64:
    angles = start_angle - 2 * np.pi * np.arange(n) / n
    return np.stack([centre[0] + radius_x * np.cos(angles), centre[1] + radius_y * np.sin(angles)], 1)


def _contour(n: int) -> F64:
    """The face outline from image-left through the chin to image-right."""
    t = np.linspace(0.0, np.pi, n)
    return np.stack([-0.78 * np.cos(t), 0.25 - np.sin(t)], axis=1)


def landmark_template_68() -> F32:
    """A plausible (68, 3) template in the iBUG 68 layout (1-based rows 37/40, 43/46, 31, 49, 55
    give exactly the reference's 5 crop points)."""
    xy = np.zeros((68, 2))
    xy[0:17] = _contour(17)
    xy[17:22] = _arc(np.array([-0.58, 0.42]), np.array([-0.12, 0.46]), 5, 0.06)
    xy[22:27] = _arc(np.array([0.12, 0.46]), np.array([0.58, 0.42]), 5, 0.06)
    xy[27:31] = np.stack([np.full(4, _NOSE_TIP[0]), np.linspace(0.30, _NOSE_TIP[1], 4)], 1)
    xy[31:36] = _arc(np.array([-0.12, -0.13]), np.array([0.12, -0.13]), 5, -0.02)
    for first, centre in ((36, _LEFT_EYE), (42, _RIGHT_EYE)):
        # corners symmetric about the centre, so mean(37, 40) is the centre exactly
        ring = _ring(centre, 0.1, 0.035, 6)
        xy[first:first + 6] = ring
    xy[48:60] = np.concatenate([
        _arc(_MOUTH_LEFT, _MOUTH_RIGHT, 7, 0.07), _arc(_MOUTH_RIGHT, _MOUTH_LEFT, 7, -0.08)[1:-1]])
    mouth_centre = (_MOUTH_LEFT + _MOUTH_RIGHT) / 2
    inner_left = mouth_centre[:2] + np.array([-0.17, 0.0])
    inner_right = mouth_centre[:2] + np.array([0.17, 0.0])
    xy[60:68] = np.concatenate([_arc(inner_left, inner_right, 5, 0.025),
                                _arc(inner_right, inner_left, 5, -0.025)[1:-1]])
    z = dome_height(xy[:, 0], xy[:, 1])
    template = np.concatenate([xy, z[:, None]], axis=1)
    template[[30, 48, 54]] = np.stack([_NOSE_TIP, _MOUTH_LEFT, _MOUTH_RIGHT])
    # keep the eye centres (means of the corners) on the documented values, z included
    for a, b, centre in ((36, 39, _LEFT_EYE), (42, 45, _RIGHT_EYE)):
        template[a, 2] = template[b, 2] = centre[2]
    return template.astype(np.float32)


def landmark_layout_106() -> F64:
    """(106, 2) positions laid out like the landmark network's points: 0-32 contour
    (16 = chin), 54 nose tip, 74 / 83 eye centres, 84 / 90 mouth corners."""
    xy = np.zeros((106, 2))
    xy[0:33] = _contour(33)
    xy[33:38] = _arc(np.array([-0.58, 0.42]), np.array([-0.12, 0.46]), 5, 0.06)     # brows, upper
    xy[38:43] = _arc(np.array([0.12, 0.46]), np.array([0.58, 0.42]), 5, 0.06)
    xy[43:47] = np.stack([np.zeros(4), np.linspace(0.30, 0.05, 4)], 1)               # nose bridge
    xy[47:54] = _arc(np.array([-0.15, -0.10]), np.array([0.15, -0.10]), 7, -0.04)    # nostrils
    xy[54] = _NOSE_TIP[:2]
    xy[55:59] = _arc(np.array([-0.50, 0.40]), np.array([-0.16, 0.42]), 4, 0.0)      # brows, lower
    xy[59:63] = _arc(np.array([0.16, 0.42]), np.array([0.50, 0.40]), 4, 0.0)
    xy[63:66] = np.array([[-0.06, -0.02], [0.06, -0.02], [0.0, 0.15]])               # nose sides
    xy[66:74] = _ring(_LEFT_EYE, 0.1, 0.035, 8)
    xy[74] = _LEFT_EYE[:2]
    xy[75:83] = _ring(_RIGHT_EYE, 0.1, 0.035, 8)
    xy[83] = _RIGHT_EYE[:2]
    xy[84:96] = np.concatenate([_arc(_MOUTH_LEFT, _MOUTH_RIGHT, 7, 0.07),
                                _arc(_MOUTH_RIGHT, _MOUTH_LEFT, 7, -0.08)[1:-1]])    # outer lip
    mouth_centre = ((_MOUTH_LEFT + _MOUTH_RIGHT) / 2)[:2]
    xy[96:104] = np.concatenate([_arc(mouth_centre - [0.17, 0], mouth_centre + [0.17, 0], 5, 0.025),
                                 _arc(mouth_centre + [0.17, 0], mouth_centre - [0.17, 0], 5, -0.025)[1:-1]])
    xy[104:106] = np.array([[-0.05, 0.20], [0.05, 0.20]])
    return xy


def _extra_134() -> F64:
    """28 forehead and cheek points appended to the 106 for the 134 set."""
    forehead = np.stack([np.linspace(-0.5, 0.5, 14), np.full(14, 0.68)], 1)
    left_cheek = np.stack([np.full(7, -0.5), np.linspace(0.15, -0.45, 7)], 1)
    right_cheek = np.stack([np.full(7, 0.5), np.linspace(0.15, -0.45, 7)], 1)
    return np.concatenate([forehead, left_cheek, right_cheek])


def _part_masks(vertices: F64) -> list[npt.NDArray[np.bool_]]:
    """8 disjoint vertex masks in PART_NAMES order (subject's right = image left, x < 0)."""
    x, y = vertices[:, 0], vertices[:, 1]

    def ellipse(cx: float, cy: float, rx: float, ry: float) -> npt.NDArray[np.bool_]:
        return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0

    mouth_y = float((_MOUTH_LEFT[1] + _MOUTH_RIGHT[1]) / 2)
    lips = ellipse(0.0, mouth_y, 0.27, 0.11)
    parts = [
        ellipse(_LEFT_EYE[0], _LEFT_EYE[1], 0.14, 0.065),
        ellipse(_RIGHT_EYE[0], _RIGHT_EYE[1], 0.14, 0.065),
        ellipse(-0.35, 0.45, 0.24, 0.05),
        ellipse(0.35, 0.45, 0.24, 0.05),
        ellipse(0.0, 0.08, 0.15, 0.3),
        lips & (y > mouth_y),
        lips & (y <= mouth_y),
        ellipse(0.0, 0.05, 0.82, 0.97),
    ]
    taken = np.zeros(len(x), dtype=bool)
    masks = []
    for mask in parts:          # earlier parts win; skin is what is left of the face oval
        mask = mask & ~taken
        taken |= mask
        masks.append(mask)
    return masks


def _parallel_chains(contour_ids: I64, vertices: F64, columns: int, rows: int,
                     steps: int = 12) -> list[list[int]]:
    """33 disjoint chains: chain i from contour vertex i towards the face centre."""
    centre = np.array([0.0, 0.05])
    spacing = 2 * X_HALF / 40      # the same length in model units at any grid resolution
    used: set[int] = set()
    chains = []
    for start in contour_ids:                       # 33 chains: a tiny loop
        origin = vertices[start, :2]
        direction = centre - origin
        direction /= np.linalg.norm(direction)
        points = origin[None, :] + direction[None, :] * spacing * np.arange(steps)[:, None]
        chain = []
        for vertex in _nearest_grid_vertex(points, columns, rows).tolist():
            if vertex not in used:
                used.add(vertex)
                chain.append(vertex)
        chains.append(chain)
    return chains


def generate_face_model_dict(seed: int = 1, columns: int = GRID_COLUMNS, rows: int = GRID_ROWS) -> dict[str, Any]:
    """A synthetic face-model dict with the keys and semantics of ``face_model.npy``.

    The default grid (41 x 49: 2009 vertices, 3840 triangles) matches the
    fixtures' size; 189 x 189 gives a mesh about as large as the real model.
    """
    if columns < 41 or rows < 49:
        raise ValueError("the grid needs at least 41 x 49 vertices to hold the landmarks and parts")
    rng = np.random.default_rng([seed, columns * rows])
    vertices = grid_vertices(columns, rows)
    n_vertices = vertices.shape[0]
    tri = grid_triangles(columns, rows)
    base_colour = np.array([180.0, 135.0, 115.0])
    albedo_field = smooth_basis(vertices, 1, 1.0, 1.0, rng).reshape(n_vertices, 3)
    u_alb = base_colour[None, :] + 8.0 * albedo_field[:, :1]
    uv = np.stack([(vertices[:, 0] + X_HALF) / (2 * X_HALF), (vertices[:, 1] + Y_HALF) / (2 * Y_HALF)], 1)
    layout106 = landmark_layout_106()
    ldm106 = _nearest_grid_vertex(layout106, columns, rows)
    ldm134 = np.concatenate([ldm106, _nearest_grid_vertex(_extra_134(), columns, rows)])
    ldm68 = _nearest_grid_vertex(landmark_template_68().astype(np.float64), columns, rows)
    masks = _part_masks(vertices)
    annotation = [np.flatnonzero(m).tolist() for m in masks]
    annotation_tri = [tri[np.all(m[tri], axis=1)] for m in masks]
    return {
        "u": vertices.reshape(-1, 1).astype(np.float32),
        "id": smooth_basis(vertices, N_ID, 0.012, 0.96, rng).astype(np.float32),
        "exp": smooth_basis(vertices, N_EXP, 0.008, 0.95, rng).astype(np.float32),
        "u_alb": u_alb.reshape(-1, 1).astype(np.float32),
        "alb": smooth_basis(vertices, N_ALB, 8.0, 0.97, rng).astype(np.float32),
        "point_buf": adjacent_triangles(tri, n_vertices),
        "tri": tri,
        "uv_coords": uv.astype(np.float32),
        "ldm68": ldm68,
        "ldm106": ldm106,
        "ldm134": ldm134,
        "annotation": annotation,
        "annotation_tri": annotation_tri,
        "parallel": _parallel_chains(ldm106[:33], vertices, columns, rows),
    }


# --------------------------------------------------------------------------- writing

def _atomic_write(target: Path, write: Any) -> None:
    """`write(handle)` onto `target` whole or not at all (io_nv3dmm's `write_atomic`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, write, fsync=False)


def write_face_model_npy(path: str | os.PathLike[str], model: dict[str, Any]) -> Path:
    """Write a face-model dict as the real file is: ``np.save(dict, allow_pickle=True)``."""
    target = Path(path)
    _atomic_write(target, lambda out: np.save(out, np.array(model, dtype=object), allow_pickle=True))
    return target


def write_lm68_mat(path: str | os.PathLike[str], lm: npt.ArrayLike) -> Path:
    """Write a ``similarity_Lm3D_all.mat`` with a (68, 3) ``lm`` array."""
    import importlib

    savemat = importlib.import_module("scipy.io").savemat
    target = Path(path)
    array = np.asarray(lm)
    if array.shape != (68, 3):
        raise ValueError(f"lm must be 68x3, got {array.shape}")
    _atomic_write(target, lambda out: savemat(out, {"lm": array}))
    return target


def write_synthetic_face_model(folder: str | os.PathLike[str], seed: int = 1,
                               fixtures_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Write ``face_model.npy`` and ``similarity_Lm3D_all.mat`` into `folder`.

    From the fixtures when `fixtures_dir` is given (the template file is copied
    as is), otherwise generated with `seed`.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    if fixtures_dir is not None:
        model = face_model_dict_from_fixtures(fixtures_dir)
        write_face_model_npy(out / FACE_MODEL_FILE, model)
        source_mat = Path(fixtures_dir) / LM3D_FILE
        _atomic_write(out / LM3D_FILE, lambda handle: handle.write(source_mat.read_bytes()))
    else:
        write_face_model_npy(out / FACE_MODEL_FILE, generate_face_model_dict(seed))
        write_lm68_mat(out / LM3D_FILE, landmark_template_68())
    return {"face_model": out / FACE_MODEL_FILE, "lm3d": out / LM3D_FILE}


def write_synthetic_assets(folder: str | os.PathLike[str], seed: int = 1,
                           fixtures_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Write a complete synthetic assets folder: face model, template and the four checkpoints.

    With `fixtures_dir` (the reference fixtures) the face model, template and
    checkpoint layouts are the fixtures' own, so results can be compared with
    the recorded numbers; without it everything is generated in code.
    Returns {"face_model", "lm3d", <network kind>...: path}.
    """
    from .synthetic import write_synthetic_checkpoints

    written = write_synthetic_face_model(folder, seed=seed, fixtures_dir=fixtures_dir)
    written.update(write_synthetic_checkpoints(folder, seed, keys_dir=fixtures_dir))
    return written


__all__ = [
    "face_model_dict_from_fixtures", "generate_face_model_dict", "landmark_template_68",
    "write_face_model_npy", "write_lm68_mat", "write_synthetic_face_model", "write_synthetic_assets",
]
