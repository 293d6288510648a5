# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The 3DDFA-V3 parametric face model in PyTorch (the formulas of the reference's model/recon.py).

Everything is batched: B coefficient vectors (B, 257) go through in one call,
in float32, on the model's device. On top of the reference's outputs this
module computes what a Blender scene needs: where each vertex lands in the
original photo (pixels and UVs), a pinhole camera reproducing the photo's
framing, per-vertex visibility (facing the camera and not occluded, by a
vectorised software z-buffer: no compiled rasteriser) and the 8-part
segmentation.

Frames: model space (x right, y up, z towards the camera); camera space
z_cam = 10 - z; crop coordinates (u right, v up, 224 x 224, row = 223 - v);
photo pixels (x right, y down, integers at pixel centres).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .assets import FaceModelArrays
from .dependencies import require_torch
from .errors import ReconstructionError
from .result import Coefficients, PhotoCamera

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - exercised only without torch
    require_torch()
    raise

FOCAL = 1015.0
CROP_SIZE = 224
CROP_CENTRE = 112.0
CAMERA_DISTANCE = 10.0
COEFFICIENT_COUNT = 257

#: (name, start, stop) of the 257-vector, as the reference's split_alpha.
COEFFICIENT_SLICES: tuple[tuple[str, int, int], ...] = (
    ("id", 0, 80), ("exp", 80, 144), ("alb", 144, 224), ("angle", 224, 227),
    ("sh", 227, 254), ("trans", 254, 257),
)

#: Light directions (before normalisation) and intensity of the reference's gray render.
_GRAY_LIGHTS = ((-1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (-1.0, -1.0, 1.0), (1.0, -1.0, 1.0), (0.0, 0.0, 1.0))
_GRAY_INTENSITY = 1.7
_GRAY_ALBEDO = 0.78

#: z-buffer resolution bounds (pixels along the longer side of the projected face).
MIN_VISIBILITY_RESOLUTION, MAX_VISIBILITY_RESOLUTION = 64, 1024
_MAX_RASTER_PAIRS = 4_000_000      # triangle-pixel pairs per chunk: bounds the rasteriser's memory
_MAX_BATCH_TRIANGLES = 1_200_000   # samples x triangles per visibility pass (16 real-size faces)


def auto_visibility_resolution(triangle_count: int) -> int:
    """The default z-buffer resolution for a mesh: 1.5 sqrt(T) rounded up to 32, in [64, 1024]
    (416 for the real 70,789-triangle model, 96 for the small synthetic one): about two
    pixels per triangle. Occlusion counts change by ~1% from there to twice the resolution
    at four times the cost."""
    size = int(math.ceil(1.5 * math.sqrt(max(triangle_count, 1)) / 32.0)) * 32
    return max(MIN_VISIBILITY_RESOLUTION, min(MAX_VISIBILITY_RESOLUTION, size))


def _as_tensor(value: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(value), dtype=dtype, device=device)


# --------------------------------------------------------------------------- crop <-> photo

def crop_geometry(trans_params: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(B, 4) [w, h, left, up] of the resized photo and crop window, per row of (B, 5)
    trans_params [w0, h0, s, tx, ty], computed as the reference's alignment does (float64,
    truncation toward zero like Python's int())."""
    params = np.asarray(trans_params, dtype=np.float64).reshape(-1, 5)
    w0, h0, scale, tx, ty = params.T
    w = np.trunc(w0 * scale)
    h = np.trunc(h0 * scale)
    left = np.trunc(w / 2 - CROP_CENTRE + (tx - w0 / 2) * scale)
    up = np.trunc(h / 2 - CROP_CENTRE + (h0 / 2 - ty) * scale)
    return np.stack([w, h, left, up], axis=1)


def identity_trans_params(batch: int) -> npt.NDArray[np.float64]:
    """trans_params for which the photo IS the 224 crop (w0 = h0 = 224, s = 1, no offset)."""
    return np.tile(np.array([CROP_SIZE, CROP_SIZE, 1.0, CROP_CENTRE, CROP_CENTRE]), (batch, 1))


def photo_camera_intrinsics(trans_params: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(B, 4) [fx, fy, cx, cy] of the photo camera (pixels; integer = pixel centre).

    From x = (u + left) w0 / w with u = 1015 X / Z + 112, and
    y = (223 - v + up) h0 / h with v = 1015 Y / Z + 112:
    fx = 1015 w0 / w, fy = 1015 h0 / h, cx = (112 + left) w0 / w, cy = (111 + up) h0 / h.
    """
    params = np.asarray(trans_params, dtype=np.float64).reshape(-1, 5)
    w, h, left, up = crop_geometry(params).T
    w0, h0 = params[:, 0], params[:, 1]
    return np.stack([FOCAL * w0 / w, FOCAL * h0 / h, (CROP_CENTRE + left) * w0 / w,
                     (CROP_SIZE - 1 - CROP_CENTRE + up) * h0 / h], axis=1)


# --------------------------------------------------------------------------- visibility

def rasterize_depth(screen: torch.Tensor, depth: torch.Tensor, triangles: torch.Tensor,
                    resolution: int) -> torch.Tensor:
    """A depth buffer (B, R, R) of the nearest surface (smallest `depth`) at each pixel centre.

    `screen` (B, N, 2) are raster coordinates (pixel i spans [i, i + 1)), `depth`
    (B, N) positive camera distances, `triangles` (T, 3). Vertices with depth <= 0
    make their triangles skip. Empty pixels hold +inf. Triangles of either winding
    are drawn; depth is interpolated perspective-correctly (1/z linear on screen).
    Vectorised: every triangle is expanded to the pixel centres of its bounding box,
    and each pair is tested with the triangle's precomputed linear edge functions.
    """
    batch = screen.shape[0]
    device = screen.device
    size = int(resolution)
    buffer = torch.full((batch * size * size,), float("inf"), dtype=depth.dtype, device=device)
    corners = screen[:, triangles].reshape(-1, 3, 2)          # (B*T, 3, 2)
    corner_depth = depth[:, triangles].reshape(-1, 3)         # (B*T, 3)
    x0, y0 = corners[:, 0, 0], corners[:, 0, 1]
    x1, y1 = corners[:, 1, 0], corners[:, 1, 1]
    x2, y2 = corners[:, 2, 0], corners[:, 2, 1]
    area2 = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
    lower = torch.ceil(corners.amin(dim=1) - 0.5).clamp(0, size - 1)
    upper = torch.floor(corners.amax(dim=1) - 0.5).clamp(-1, size - 1)
    extent = (upper - lower + 1).clamp(min=0)
    usable = ((corner_depth > 0).all(dim=1) & (area2.abs() > 1e-12) & torch.isfinite(corners).all(dim=2).all(dim=1))
    counts = (extent[:, 0] * extent[:, 1]).long() * usable.long()
    selected = torch.nonzero(counts, as_tuple=True)[0]
    if selected.numel() == 0:
        return buffer.view(batch, size, size)
    # Linear forms in the pixel centre (cx, cy): barycentric b0, b1 and the inverse depth.
    inv_area = 1.0 / area2[selected]
    sx0, sy0, sx1, sy1, sx2, sy2 = (t[selected] for t in (x0, y0, x1, y1, x2, y2))
    a0, b0, c0 = -(sy2 - sy1) * inv_area, (sx2 - sx1) * inv_area, (sx1 * sy2 - sx2 * sy1) * inv_area
    a1, b1, c1 = -(sy0 - sy2) * inv_area, (sx0 - sx2) * inv_area, (sx2 * sy0 - sx0 * sy2) * inv_area
    inv_z = 1.0 / corner_depth[selected]
    dz0, dz1 = inv_z[:, 0] - inv_z[:, 2], inv_z[:, 1] - inv_z[:, 2]
    coefficients = torch.stack([a0, b0, c0, a1, b1, c1,
                                a0 * dz0 + a1 * dz1, b0 * dz0 + b1 * dz1, c0 * dz0 + c1 * dz1 + inv_z[:, 2]], 1)
    sample = torch.div(selected, triangles.shape[0], rounding_mode="floor")
    placement = torch.stack([lower[selected, 0].long(), lower[selected, 1].long(),
                             extent[selected, 0].long(), sample * size * size], 1)
    sel_counts = counts[selected]
    # Chunks of bounded pair counts (usually one) keep memory in check for huge triangles.
    cumulative = torch.cumsum(sel_counts, 0)
    chunk_of = torch.div(cumulative - 1, _MAX_RASTER_PAIRS, rounding_mode="floor")
    boundaries = torch.nonzero(chunk_of[1:] != chunk_of[:-1], as_tuple=True)[0] + 1
    starts = [0] + boundaries.tolist() + [int(selected.numel())]
    eps = 1e-5
    for begin, end in zip(starts[:-1], starts[1:]):
        chunk_counts = sel_counts[begin:end]
        owner = torch.repeat_interleave(torch.arange(begin, end, device=device), chunk_counts)
        first = torch.cumsum(chunk_counts, 0) - chunk_counts
        local = torch.arange(owner.numel(), device=device) - first[owner - begin]
        place = placement[owner]
        px = place[:, 0] + local % place[:, 2]
        py = place[:, 1] + torch.div(local, place[:, 2], rounding_mode="floor")
        cx = px.to(depth.dtype) + 0.5
        cy = py.to(depth.dtype) + 0.5
        k = coefficients[owner]
        w0 = k[:, 0] * cx + k[:, 1] * cy + k[:, 2]
        w1 = k[:, 3] * cx + k[:, 4] * cy + k[:, 5]
        inside = (w0 >= -eps) & (w1 >= -eps) & (w0 + w1 <= 1.0 + eps)
        inverse = k[:, 6] * cx + k[:, 7] * cy + k[:, 8]
        target = place[:, 3] + py * size + px
        buffer.scatter_reduce_(0, target[inside], 1.0 / inverse[inside], reduce="amin", include_self=True)
    return buffer.view(batch, size, size)


def vertex_visibility(vertices_camera: torch.Tensor, normals_rotated: torch.Tensor, triangles: torch.Tensor,
                      resolution: int | None = None, return_parts: bool = False) -> Any:
    """(B, V) bool: the vertex faces the camera and no surface lies in front of it.

    Facing: the rotated normal points towards the camera position, i.e.
    n . (camera - p) > 0 with the camera at model-space (0, 0, 10) (for a
    frontal vertex this is the reference's n_z > 0 test, made exact for the
    perspective view). Occlusion: the mesh is z-buffered at `resolution`
    pixels over the face's projected extent; a vertex is occluded when the
    buffer at all 4 pixel centres around it is nearer than its own depth by
    more than a tolerance of about one pixel's worth of depth along the local
    surface slope.
    With `return_parts`, returns (visible, facing, unoccluded).
    """
    if resolution is None:
        resolution = auto_visibility_resolution(int(triangles.shape[0]))
    if resolution < 8:
        raise ValueError(f"visibility resolution {resolution} is too small")
    batch = int(vertices_camera.shape[0])
    per_call = max(1, _MAX_BATCH_TRIANGLES // max(1, int(triangles.shape[0])))
    if batch > per_call:
        # Large batches go through in slices: the per-triangle tables grow with B x T.
        pieces = [vertex_visibility(vertices_camera[i:i + per_call], normals_rotated[i:i + per_call], triangles,
                                    resolution, return_parts) for i in range(0, batch, per_call)]
        if return_parts:
            return tuple(torch.cat([p[k] for p in pieces]) for k in range(3))
        return torch.cat(pieces)
    x, y, z_cam = vertices_camera.unbind(dim=-1)
    nx, ny, nz = normals_rotated.unbind(dim=-1)
    # cosine between the normal and the direction to the camera, (-x, -y, z_cam) normalised
    towards_camera = (-nx * x - ny * y + nz * z_cam) / torch.sqrt(x * x + y * y + z_cam * z_cam).clamp(min=1e-12)
    facing = towards_camera > 0
    in_front = z_cam > 1e-3
    u = FOCAL * x / z_cam.clamp(min=1e-3)
    v = FOCAL * y / z_cam.clamp(min=1e-3)
    big = torch.finfo(u.dtype).max
    u_valid_min = torch.where(in_front, u, torch.full_like(u, big)).amin(dim=1, keepdim=True)
    u_valid_max = torch.where(in_front, u, torch.full_like(u, -big)).amax(dim=1, keepdim=True)
    v_valid_min = torch.where(in_front, v, torch.full_like(v, big)).amin(dim=1, keepdim=True)
    v_valid_max = torch.where(in_front, v, torch.full_like(v, -big)).amax(dim=1, keepdim=True)
    span = torch.maximum(u_valid_max - u_valid_min, v_valid_max - v_valid_min)
    pixel = (span / (resolution - 2)).clamp(min=1e-6)            # image-plane units per raster pixel
    pixel = torch.where(torch.isfinite(pixel), pixel, torch.ones_like(pixel))
    screen = torch.stack([(u - u_valid_min) / pixel + 1.0, (v - v_valid_min) / pixel + 1.0], dim=-1)
    screen = torch.where(in_front[..., None], screen, torch.full_like(screen, -1.0))
    depth = torch.where(in_front, z_cam, torch.full_like(z_cam, -1.0))
    buffer = rasterize_depth(screen, depth, triangles, resolution)
    # The farthest surface among the 4 pixel centres around the vertex: the vertex is only
    # occluded when every nearby sample is in front of it (keeps grazing vertices visible).
    flat = buffer.reshape(buffer.shape[0], -1)
    col0 = (screen[..., 0] - 0.5).floor().long()
    row0 = (screen[..., 1] - 0.5).floor().long()
    nearest = torch.full_like(z_cam, -float("inf"))
    for dc, dr in ((0, 0), (1, 0), (0, 1), (1, 1)):
        col = (col0 + dc).clamp(0, resolution - 1)
        row = (row0 + dr).clamp(0, resolution - 1)
        nearest = torch.maximum(nearest, torch.gather(flat, 1, row * resolution + col))
    # Depth tolerance: one pixel at the vertex's distance, scaled by how steeply the
    # surface recedes from the view ray (tan of the view angle), so the vertex's own
    # surface never hides it.
    world_pixel = pixel * z_cam / FOCAL
    cosine = towards_camera.abs().clamp(min=0.2, max=1.0)
    slope = torch.sqrt(1.0 - cosine * cosine) / cosine
    tolerance = world_pixel * (1.0 + 1.5 * slope) + 1e-6 * z_cam
    unoccluded = in_front & (z_cam <= nearest + tolerance)
    visible = facing & unoccluded
    if return_parts:
        return visible, facing, unoccluded
    return visible


# --------------------------------------------------------------------------- output

@dataclass
class FaceModelOutput:
    """Everything the model computes for B coefficient vectors (torch tensors).

    Per-sample arrays have a leading batch axis. `result_fields(b)` converts one
    sample into numpy values named as `tddfa_v3.result.FaceResult` fields.
    """

    coefficients: torch.Tensor             # (B, 257)
    split: dict[str, torch.Tensor]         # id, exp, alb, angle, sh, trans
    rotation: torch.Tensor                 # (B, 3, 3), p_rot = p @ rotation
    vertices_model: torch.Tensor           # (B, V, 3) unposed shape
    vertices_transformed: torch.Tensor     # (B, V, 3) posed, model frame (before the camera flip)
    vertices_camera: torch.Tensor          # (B, V, 3) z_cam = 10 - z
    projection_crop: torch.Tensor          # (B, V, 2) crop, v up
    projection_photo: torch.Tensor         # (B, V, 2) photo pixels, y down
    normals: torch.Tensor                  # (B, V, 3) unrotated
    normals_rotated: torch.Tensor          # (B, V, 3)
    albedo: torch.Tensor                   # (B, V, 3)
    texture: torch.Tensor                  # (B, V, 3) SH-lit, unclipped
    colors: torch.Tensor                   # (B, V, 3) texture clipped to [0, 1]
    gray_shading: torch.Tensor             # (B, V, 3) the reference's gray render colour
    landmarks_crop: dict[str, torch.Tensor]     # "68", "106", "106_2d", "134" -> (B, n, 2)
    landmarks_photo: dict[str, torch.Tensor]    # same keys, photo pixels
    landmark_indices: dict[str, torch.Tensor]   # "68", "106", "134" -> (n,); "106_2d" -> (B, 106)
    trans_params: torch.Tensor             # (B, 5) float64, on the CPU
    camera: torch.Tensor                   # (B, 4) float64 fx, fy, cx, cy (photo pixels), on the CPU
    photo_uv: torch.Tensor                 # (B, V, 2) in [0, 1], v up
    visible: torch.Tensor | None           # (B, V) bool, None when not computed
    part_masks: torch.Tensor               # (8, V) bool
    part_vertices: list[torch.Tensor] = field(default_factory=list)   # 8 index tensors

    @property
    def batch_size(self) -> int:
        return int(self.coefficients.shape[0])

    def part_visible(self, index: int) -> list[torch.Tensor]:
        """The visible vertices of each part for sample `index` (8 index tensors)."""
        if self.visible is None:
            raise ReconstructionError("visibility was not computed for this reconstruction")
        masks = self.part_masks & self.visible[index][None, :]
        return [torch.nonzero(m, as_tuple=True)[0] for m in masks]

    def result_fields(self, index: int) -> dict[str, Any]:
        """FaceResult fields of sample `index` as numpy values (the pipeline adds photo_size,
        face_box, face_score, landmarks106_detected, trans_params and source)."""
        def f32(t: torch.Tensor) -> npt.NDArray[np.float32]:
            return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32, copy=False))

        def i64(t: torch.Tensor) -> npt.NDArray[np.int64]:
            return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.int64, copy=False))

        split = {k: f32(v[index]) for k, v in self.split.items()}
        params = self.trans_params[index].detach().cpu().numpy()
        fx, fy, cx, cy = (float(v) for v in self.camera[index].detach().cpu().numpy())
        indices = {k: i64(v if v.dim() == 1 else v[index]) for k, v in self.landmark_indices.items()}
        visible = (self.visible[index].detach().cpu().numpy().astype(bool) if self.visible is not None
                   else np.ones(self.vertices_model.shape[1], dtype=bool))
        return {
            "coefficients": Coefficients(
                identity=split["id"], expression=split["exp"], albedo=split["alb"], angles=split["angle"],
                lighting=split["sh"], translation=split["trans"], raw=f32(self.coefficients[index])),
            "rotation": f32(self.rotation[index]),
            "vertices_model": f32(self.vertices_model[index]),
            "vertices_camera": f32(self.vertices_camera[index]),
            "projection_crop": f32(self.projection_crop[index]),
            "projection_photo": f32(self.projection_photo[index]),
            "normals": f32(self.normals[index]),
            "normals_rotated": f32(self.normals_rotated[index]),
            "albedo": f32(self.albedo[index]),
            "colors": f32(self.colors[index]),
            "landmarks_crop": {k: f32(v[index]) for k, v in self.landmarks_crop.items()},
            "landmarks_photo": {k: f32(v[index]) for k, v in self.landmarks_photo.items()},
            "landmark_indices": indices,
            "camera": PhotoCamera(width=int(round(float(params[0]))), height=int(round(float(params[1]))),
                                  fx=fx, fy=fy, cx=cx, cy=cy, distance=CAMERA_DISTANCE),
            "photo_uv": f32(self.photo_uv[index]),
            "visible": visible,
            "part_vertices": [i64(p) for p in self.part_vertices],
            "part_visible": ([i64(p) for p in self.part_visible(index)] if self.visible is not None
                             else [i64(p) for p in self.part_vertices]),
        }


# --------------------------------------------------------------------------- the model

class ParametricFaceModel:
    """The 3DDFA-V3 face model on a torch device; every method takes a batch."""

    def __init__(self, arrays: FaceModelArrays, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.arrays = arrays
        dev = self.device

        def floats(a: npt.ArrayLike) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a, dtype=np.float32), device=dev)

        def longs(a: npt.ArrayLike) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a, dtype=np.int64), device=dev)

        self.u = floats(arrays.u).reshape(-1, 1)
        self.id = floats(arrays.id)
        self.exp = floats(arrays.exp)
        self.u_alb = floats(arrays.u_alb).reshape(-1, 1)
        self.alb = floats(arrays.alb)
        self.tri = longs(arrays.tri)
        self.point_buf = longs(arrays.point_buf)
        self.uv_coords = floats(arrays.uv_coords)
        self.ldm68 = longs(arrays.ldm68)
        self.ldm106 = longs(arrays.ldm106)
        self.ldm134 = longs(arrays.ldm134)
        self.vertex_count = arrays.vertex_count
        self.triangle_count = arrays.triangle_count

        # v_parallel as the reference builds it (a later chain overrides an earlier one),
        # then each chain's members in ascending vertex order, padded: argmin / argmax over
        # a padded row picks the same vertex the reference's flattened argmin does.
        v_parallel = torch.full((self.vertex_count,), -1, dtype=torch.int64)
        for chain_index, chain in enumerate(arrays.parallel):      # 33 chains
            v_parallel[torch.as_tensor(chain, dtype=torch.int64)] = chain_index
        members = [torch.nonzero(v_parallel == i, as_tuple=True)[0] for i in range(len(arrays.parallel))]
        width = max(1, max(int(m.numel()) for m in members))
        chain_index_table = torch.zeros((len(members), width), dtype=torch.int64)
        chain_valid = torch.zeros((len(members), width), dtype=torch.bool)
        for i, m in enumerate(members):
            chain_index_table[i, :m.numel()] = m
            chain_valid[i, :m.numel()] = True
        self.v_parallel = v_parallel.to(dev)
        self.chain_index = chain_index_table.to(dev)
        self.chain_valid = chain_valid.to(dev)

        self.part_vertices = [longs(p) for p in arrays.annotation]
        part_masks = torch.zeros((len(arrays.annotation), self.vertex_count), dtype=torch.bool)
        for i, part in enumerate(arrays.annotation):                 # 8 parts
            part_masks[i, torch.as_tensor(part, dtype=torch.int64)] = True
        self.part_masks = part_masks.to(dev)
        self.part_triangles = [longs(t) for t in arrays.annotation_tri]

        # Constants of the reference (float32, as it builds them).
        self.persc_proj = torch.tensor([FOCAL, 0, CROP_CENTRE, 0, FOCAL, CROP_CENTRE, 0, 0, 1],
                                       dtype=torch.float32, device=dev).reshape(3, 3).transpose(0, 1)
        self.init_lit = torch.tensor([0.8, 0, 0, 0, 0, 0, 0, 0, 0], dtype=torch.float32,
                                     device=dev).reshape(1, 1, -1)
        self.sh_a = torch.tensor([math.pi, 2 * math.pi / math.sqrt(3.0), 2 * math.pi / math.sqrt(8.0)],
                                 dtype=torch.float32, device=dev)
        self.sh_c = torch.tensor([1 / math.sqrt(4 * math.pi), math.sqrt(3.0) / math.sqrt(4 * math.pi),
                                  3 * math.sqrt(5.0) / math.sqrt(12 * math.pi)], dtype=torch.float32, device=dev)
        lights = torch.tensor(_GRAY_LIGHTS, dtype=torch.float32, device=dev)
        self.gray_light_dirs = F.normalize(lights, dim=-1)

    # ----- the reference's formulas

    def split_alpha(self, alpha: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split (B, 257) into id 80, exp 64, alb 80, angle 3, sh 27, trans 3."""
        if alpha.dim() != 2 or alpha.shape[1] != COEFFICIENT_COUNT:
            raise ReconstructionError(f"expected coefficients of shape (B, {COEFFICIENT_COUNT}), "
                                      f"got {tuple(alpha.shape)}")
        return {name: alpha[:, start:stop] for name, start, stop in COEFFICIENT_SLICES}

    def compute_shape(self, alpha_id: torch.Tensor, alpha_exp: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) u + id a_id + exp a_exp, model space, unposed."""
        batch = alpha_id.shape[0]
        shape = (torch.einsum("ij,aj->ai", self.id, alpha_id) + torch.einsum("ij,aj->ai", self.exp, alpha_exp)
                 + self.u.reshape(1, -1))
        return shape.reshape(batch, -1, 3)

    def compute_albedo(self, alpha_alb: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """(B, V, 3) (u_alb + alb a_alb) / 255."""
        batch = alpha_alb.shape[0]
        albedo = torch.einsum("ij,aj->ai", self.alb, alpha_alb) + self.u_alb.reshape(1, -1)
        if normalize:
            albedo = albedo / 255.0
        return albedo.reshape(batch, -1, 3)

    def compute_norm(self, face_shape: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) vertex normals: normalised sums of the adjacent face normals
        normalize((v1 - v2) x (v2 - v3)) (point_buf padding hits an appended zero row)."""
        v1 = face_shape[:, self.tri[:, 0]]
        v2 = face_shape[:, self.tri[:, 1]]
        v3 = face_shape[:, self.tri[:, 2]]
        face_norm = F.normalize(torch.cross(v1 - v2, v2 - v3, dim=-1), dim=-1, p=2)
        face_norm = torch.cat([face_norm, face_norm.new_zeros(face_norm.shape[0], 1, 3)], dim=1)
        vertex_norm = torch.sum(face_norm[:, self.point_buf], dim=2)
        return F.normalize(vertex_norm, dim=-1, p=2)

    def compute_rotation(self, angles: torch.Tensor) -> torch.Tensor:
        """(B, 3, 3) (Rz Ry Rx)^T for row vectors (p_rot = p @ rot); angles (pitch, yaw, roll)."""
        batch = angles.shape[0]
        ones = angles.new_ones(batch, 1)
        zeros = angles.new_zeros(batch, 1)
        x, y, z = angles[:, :1], angles[:, 1:2], angles[:, 2:]
        rot_x = torch.cat([ones, zeros, zeros, zeros, torch.cos(x), -torch.sin(x),
                           zeros, torch.sin(x), torch.cos(x)], dim=1).reshape(batch, 3, 3)
        rot_y = torch.cat([torch.cos(y), zeros, torch.sin(y), zeros, ones, zeros,
                           -torch.sin(y), zeros, torch.cos(y)], dim=1).reshape(batch, 3, 3)
        rot_z = torch.cat([torch.cos(z), -torch.sin(z), zeros, torch.sin(z), torch.cos(z), zeros,
                           zeros, zeros, ones], dim=1).reshape(batch, 3, 3)
        return (rot_z @ rot_y @ rot_x).permute(0, 2, 1)

    @staticmethod
    def transform(face_shape: torch.Tensor, rotation: torch.Tensor, trans: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) face_shape @ rotation + trans."""
        return face_shape @ rotation + trans.unsqueeze(1)

    @staticmethod
    def to_camera(face_shape: torch.Tensor) -> torch.Tensor:
        """Camera space: z_cam = 10 - z (a new tensor; the input is left untouched)."""
        out = face_shape.clone()
        out[..., -1] = CAMERA_DISTANCE - face_shape[..., -1]
        return out

    def to_image(self, vertices_camera: torch.Tensor) -> torch.Tensor:
        """(B, V, 2) crop coordinates, v up: u = 1015 x / z + 112, v = 1015 y / z + 112."""
        projected = vertices_camera @ self.persc_proj
        return projected[..., :2] / projected[..., 2:]

    def compute_texture(self, albedo: torch.Tensor, normals_rotated: torch.Tensor,
                        alpha_sh: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) SH-lit colour, NOT clipped (the reference clips when storing it)."""
        batch = alpha_sh.shape[0]
        a, c = self.sh_a, self.sh_c
        gamma = (alpha_sh.reshape(batch, 3, 9) + self.init_lit).permute(0, 2, 1)     # (B, 9, 3)
        nx, ny, nz = normals_rotated[..., :1], normals_rotated[..., 1:2], normals_rotated[..., 2:]
        basis = torch.cat([
            a[0] * c[0] * torch.ones_like(nx),
            -a[1] * c[1] * ny,
            a[1] * c[1] * nz,
            -a[1] * c[1] * nx,
            a[2] * c[2] * nx * ny,
            -a[2] * c[2] * ny * nz,
            0.5 * a[2] * c[2] / math.sqrt(3.0) * (3 * nz ** 2 - 1),
            -a[2] * c[2] * nx * nz,
            0.5 * a[2] * c[2] * (nx ** 2 - ny ** 2),
        ], dim=-1)
        r = basis @ gamma[..., :1]
        g = basis @ gamma[..., 1:2]
        b = basis @ gamma[..., 2:]
        return torch.cat([r, g, b], dim=-1) * albedo

    def compute_gray_shading(self, normals_rotated: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) the reference's gray render colour: 0.78 x mean over its 5 lights of
        clamp(n . l, 0, 1) x 1.7."""
        dots = torch.clamp(torch.einsum("bvc,lc->blv", normals_rotated, self.gray_light_dirs), 0.0, 1.0)
        shading = (dots * _GRAY_INTENSITY).mean(dim=1)                      # (B, V)
        return (_GRAY_ALBEDO * shading)[..., None].expand(-1, -1, 3).contiguous()

    def landmarks_106_2d(self, v2d: torch.Tensor, face_shape: torch.Tensor, angles: torch.Tensor,
                         trans: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference's ``get_landmarks_106_2d``, right for any batch size.

        Contour points 0-15 move to the vertex of their parallel chain with the
        smallest u, 17-32 to the largest, u from the projection with roll 0
        (same pitch, yaw, translation); point 16 stays. Returns
        (landmarks (B, 106, 2), chosen vertex indices (B, 106)).
        """
        batch = v2d.shape[0]
        no_roll = angles.clone()
        no_roll[:, 2] = 0
        rotation = self.compute_rotation(no_roll)
        u_no_roll = self.to_image(self.to_camera(self.transform(face_shape, rotation, trans)))[..., 0]
        values = u_no_roll[:, self.chain_index]                              # (B, 33, L)
        valid = self.chain_valid.unsqueeze(0)
        lowest = torch.where(valid, values, torch.full_like(values, float("inf"))).argmin(dim=-1)
        highest = torch.where(valid, values, torch.full_like(values, float("-inf"))).argmax(dim=-1)
        table = self.chain_index.unsqueeze(0).expand(batch, -1, -1)
        chosen_low = torch.gather(table, 2, lowest.unsqueeze(-1)).squeeze(-1)     # (B, 33)
        chosen_high = torch.gather(table, 2, highest.unsqueeze(-1)).squeeze(-1)
        has_members = self.chain_valid.any(dim=1).unsqueeze(0)                # empty chain: keep ldm106
        index = self.ldm106.unsqueeze(0).expand(batch, -1).clone()
        n_chains = self.chain_index.shape[0]
        low_rows = min(16, n_chains)
        index[:, :low_rows] = torch.where(has_members[:, :low_rows], chosen_low[:, :low_rows],
                                          index[:, :low_rows])
        if n_chains > 17:
            index[:, 17:n_chains] = torch.where(has_members[:, 17:], chosen_high[:, 17:], index[:, 17:n_chains])
        points = torch.gather(v2d, 1, index.unsqueeze(-1).expand(-1, -1, 2))
        return points, index

    # ----- crop -> photo

    def crop_to_photo(self, points: torch.Tensor, trans_params: torch.Tensor) -> torch.Tensor:
        """Crop coordinates (v up) -> photo pixels (y down), per sample, in float32 step by
        step as the reference's back-mapping: x = (u + left) / w * w0, y = (223 - v + up) / h * h0."""
        params = trans_params.detach().cpu().numpy()
        g = torch.as_tensor(crop_geometry(params), dtype=points.dtype, device=points.device)
        w0h0 = torch.as_tensor(params[:, :2], dtype=points.dtype, device=points.device)
        shape = (-1,) + (1,) * (points.dim() - 2)
        w, h, left, up = (g[:, i].reshape(shape) for i in range(4))
        w0, h0 = w0h0[:, 0].reshape(shape), w0h0[:, 1].reshape(shape)
        rows = (CROP_SIZE - 1) - points[..., 1]
        x = (points[..., 0] + left) / w * w0
        y = (rows + up) / h * h0
        return torch.stack([x, y], dim=-1)

    @staticmethod
    def photo_uv(projection_photo: torch.Tensor, trans_params: torch.Tensor) -> torch.Tensor:
        """(B, V, 2) UV of each vertex in the photo used as an image texture (Blender / OpenGL:
        origin bottom-left, [0, 1] across the image's edges). Pixel coordinates are pixel
        centres, so u = (x + 0.5) / W and v = 1 - (y + 0.5) / H."""
        size = trans_params[:, :2].to(device=projection_photo.device,
                                      dtype=projection_photo.dtype).unsqueeze(1)      # (B, 1, 2)
        u = (projection_photo[..., 0] + 0.5) / size[..., 0]
        v = 1.0 - (projection_photo[..., 1] + 0.5) / size[..., 1]
        return torch.stack([u, v], dim=-1)

    # ----- everything at once

    @torch.no_grad()
    def reconstruct(self, coefficients: torch.Tensor | npt.ArrayLike,
                    trans_params: torch.Tensor | npt.ArrayLike | None = None,
                    visibility: bool = True,
                    visibility_resolution: int | None = None) -> FaceModelOutput:
        """Run B coefficient vectors (B, 257) through the model.

        `trans_params` (B, 5) [w0, h0, s, tx, ty] per sample map the crop back to
        the original photo; without them the photo is the 224 crop itself.
        `visibility_resolution` None picks `auto_visibility_resolution` of the mesh.
        """
        alpha = _as_tensor(coefficients, self.device, torch.float32)
        if alpha.dim() == 1:
            alpha = alpha.unsqueeze(0)
        split = self.split_alpha(alpha)
        batch = alpha.shape[0]
        if trans_params is None:
            params = torch.as_tensor(identity_trans_params(batch), dtype=torch.float64)
        else:
            # Kept on the CPU in float64 (a few numbers; some devices have no float64).
            params = _as_tensor(trans_params, torch.device("cpu"), torch.float64).reshape(-1, 5)
            if params.shape[0] != batch:
                raise ReconstructionError(f"{params.shape[0]} trans_params rows for {batch} coefficient rows")
            if not bool(torch.isfinite(params).all()) or bool((params[:, :3] <= 0).any()):
                raise ReconstructionError("trans_params need a positive photo size and scale")

        shape = self.compute_shape(split["id"], split["exp"])
        rotation = self.compute_rotation(split["angle"])
        transformed = self.transform(shape, rotation, split["trans"])
        v3d = self.to_camera(transformed)
        v2d = self.to_image(v3d)
        albedo = self.compute_albedo(split["alb"])
        normals = self.compute_norm(shape)
        normals_rotated = normals @ rotation
        texture = self.compute_texture(albedo, normals_rotated, split["sh"])
        gray = self.compute_gray_shading(normals_rotated)

        ldm106_2d, index_106_2d = self.landmarks_106_2d(v2d, shape, split["angle"], split["trans"])
        landmarks_crop = {"68": v2d[:, self.ldm68], "106": v2d[:, self.ldm106], "106_2d": ldm106_2d,
                          "134": v2d[:, self.ldm134]}
        projection_photo = self.crop_to_photo(v2d, params)
        landmarks_photo = {k: self.crop_to_photo(v, params) for k, v in landmarks_crop.items()}
        camera = torch.as_tensor(photo_camera_intrinsics(params.numpy()), dtype=torch.float64)
        visible = (vertex_visibility(v3d, normals_rotated, self.tri, visibility_resolution)
                   if visibility else None)
        return FaceModelOutput(
            coefficients=alpha, split=split, rotation=rotation, vertices_model=shape,
            vertices_transformed=transformed, vertices_camera=v3d, projection_crop=v2d,
            projection_photo=projection_photo, normals=normals, normals_rotated=normals_rotated,
            albedo=albedo, texture=texture, colors=texture.clamp(0.0, 1.0), gray_shading=gray,
            landmarks_crop=landmarks_crop, landmarks_photo=landmarks_photo,
            landmark_indices={"68": self.ldm68, "106": self.ldm106, "106_2d": index_106_2d,
                              "134": self.ldm134},
            trans_params=params, camera=camera, photo_uv=self.photo_uv(projection_photo, params),
            visible=visible, part_masks=self.part_masks, part_vertices=list(self.part_vertices))

