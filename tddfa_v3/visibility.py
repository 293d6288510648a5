# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-vertex visibility of posed faces: facing the camera and not occluded, found with a
vectorised software z-buffer (`rasterize_depth`, no compiled rasteriser), batched.

Imports torch (callers import it through `face_model`, which needs torch anyway).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .crop import FOCAL

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
