# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The 3DDFA-V3 parametric face model in PyTorch (the formulas of the reference's model/recon.py).

Everything is batched: B coefficient vectors (B, 257) go through in one call,
in float32, on the model's device. On top of the reference's outputs this
module computes what a Blender scene needs: where each vertex lands in the
original photo (pixels and UVs), a pinhole camera reproducing the photo's
framing, per-vertex visibility (facing the camera and not occluded, by a
vectorised software z-buffer: no compiled rasteriser; `tddfa_v3.visibility`) and
the 8-part segmentation. The crop and camera geometry is `tddfa_v3.crop`.
Imports numpy and torch.

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
from .crop import (
    CAMERA_DISTANCE, CROP_CENTRE, CROP_SIZE, FOCAL, crop_geometries, identity_trans_params, photo_camera_intrinsics,
)
from .result import Coefficients, PhotoCamera
from .visibility import vertex_visibility

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - exercised only without torch
    require_torch()
    raise

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

def _as_tensor(value: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(value), dtype=dtype, device=device)


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
        g = torch.as_tensor(crop_geometries(params), dtype=points.dtype, device=points.device)
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

