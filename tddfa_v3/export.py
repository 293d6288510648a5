# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writers for a `FaceResult`: a complete .npz, a textured OBJ + MTL, a landmarks JSON.

Every file is written to a temporary name next to its target and renamed into
place, so an interrupted run never leaves a half-written file behind.

OBJ vertex space: by default the posed model space the reference's own OBJ
writer uses (camera-space x, y and z = 10 - z_cam, i.e. the model rotated and
translated, decimetres for the real model, y up, z towards the camera at
z = 10). `space="model"` writes the unposed identity + expression shape
instead. UVs (`vt`, one per vertex, same order) are the vertices' positions
in the photo, so the photo itself, named by the MTL's ``map_Kd``, textures
the mesh.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np
import numpy.typing as npt

try:  # inside the add-on, and in tests: the one io_nv3dmm
    from ..io_nv3dmm.atomic import write_atomic
except ImportError:  # `python -m tddfa_v3` from a clone runs the packages top-level
    write_atomic = importlib.import_module("io_nv3dmm.atomic").write_atomic

from .errors import ReconstructionError
from .result import PART_NAMES, FaceResult

ObjSpace = Literal["posed", "model"]

#: Keys of the .npz file (besides the per-landmark-set and per-part keys listed in NPZ_KEY_DOCS).
NPZ_KEY_DOCS: dict[str, str] = {
    "photo_size": "(2,) int64 photo width, height",
    "source": "str, the photo's path when known",
    "face_box": "(4,) float64 x1, y1, x2, y2 in photo pixels",
    "face_score": "float64 detector score (1.0 for a given box or given points)",
    "landmarks106_detected": "(106, 2) float64 the landmark net's points, photo pixels, y down",
    "trans_params": "(5,) float64 alignment w0, h0, s, tx, ty",
    "alpha": "(257,) float32 the regressor output as is",
    "coeff_identity": "(80,) float32",
    "coeff_expression": "(64,) float32",
    "coeff_albedo": "(80,) float32",
    "coeff_angles": "(3,) float32 pitch x, yaw y, roll z in radians",
    "coeff_lighting": "(27,) float32 SH, 3 colours x 9, R first",
    "coeff_translation": "(3,) float32 tx, ty, tz in model units",
    "rotation": "(3, 3) float32 for row vectors: posed = vertices_model @ rotation + translation",
    "triangles": "(T, 3) int64 0-based, counter-clockwise outside",
    "vertices_model": "(V, 3) float32 unposed shape, model space",
    "vertices_camera": "(V, 3) float32 posed, camera space (z_cam = 10 - z)",
    "projection_crop": "(V, 2) float32 224-crop coordinates, v up",
    "projection_photo": "(V, 2) float32 photo pixels, y down",
    "normals": "(V, 3) float32 unrotated vertex normals",
    "normals_rotated": "(V, 3) float32",
    "albedo": "(V, 3) float32 in [0, 1]",
    "colors": "(V, 3) float32 SH-lit colour clipped to [0, 1]",
    "photo_uv": "(V, 2) float32 vertex position in the photo as UV (v up)",
    "visible": "(V,) bool vertex faces the camera and is not occluded",
    "camera_intrinsics": "(4,) float64 fx, fy, cx, cy in photo pixels (x right, y down)",
    "camera_distance": "float64 camera z in model space",
    "landmarks_crop_<set>": "(n, 2) float32 for <set> in 68, 106, 106_2d, 134; crop, v up",
    "landmarks_photo_<set>": "(n, 2) float32 same sets, photo pixels, y down",
    "landmark_indices_<set>": "(n,) int64 vertex indices for <set> in 68, 106, 134",
    "part_vertices_<part>": "int64 vertex indices of each part (right_eye ... skin)",
    "part_visible_<part>": "int64 the visible subset of each part",
}


class ExportError(ReconstructionError):
    """A result file cannot be written."""


@contextmanager
def _atomic_path(target: Path, mode: str = "wb") -> Iterator[Any]:
    """An in-memory file whose contents replace `target` whole on success (io_nv3dmm's
    `write_atomic`); on an error nothing is written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if "b" in mode:
        binary = io.BytesIO()
        yield binary
        write_atomic(target, binary.getbuffer(), fsync=False)
    else:
        text = io.StringIO(newline=None)
        yield text
        write_atomic(target, text.getvalue().encode("utf-8"), fsync=False)


def result_arrays(result: FaceResult) -> dict[str, npt.NDArray[Any]]:
    """Every array of a result under its .npz key (see `NPZ_KEY_DOCS`)."""
    coeffs = result.coefficients
    cam = result.camera
    arrays: dict[str, npt.NDArray[Any]] = {
        "photo_size": np.asarray(result.photo_size, dtype=np.int64),
        "source": np.asarray(result.source),
        "face_box": np.asarray(result.face_box, dtype=np.float64),
        "face_score": np.asarray(result.face_score, dtype=np.float64),
        "landmarks106_detected": np.asarray(result.landmarks106_detected, dtype=np.float64),
        "trans_params": np.asarray(result.trans_params, dtype=np.float64),
        "alpha": coeffs.raw,
        "coeff_identity": coeffs.identity,
        "coeff_expression": coeffs.expression,
        "coeff_albedo": coeffs.albedo,
        "coeff_angles": coeffs.angles,
        "coeff_lighting": coeffs.lighting,
        "coeff_translation": coeffs.translation,
        "rotation": result.rotation,
        "triangles": result.triangles,
        "vertices_model": result.vertices_model,
        "vertices_camera": result.vertices_camera,
        "projection_crop": result.projection_crop,
        "projection_photo": result.projection_photo,
        "normals": result.normals,
        "normals_rotated": result.normals_rotated,
        "albedo": result.albedo,
        "colors": result.colors,
        "photo_uv": result.photo_uv,
        "visible": np.asarray(result.visible, dtype=bool),
        "camera_intrinsics": np.array([cam.fx, cam.fy, cam.cx, cam.cy], dtype=np.float64),
        "camera_distance": np.asarray(cam.distance, dtype=np.float64),
    }
    for name, values in result.landmarks_crop.items():
        arrays[f"landmarks_crop_{name}"] = values
    for name, values in result.landmarks_photo.items():
        arrays[f"landmarks_photo_{name}"] = values
    for name, indices in result.landmark_indices.items():
        arrays[f"landmark_indices_{name}"] = indices
    for part, indices in zip(PART_NAMES, result.part_vertices):
        arrays[f"part_vertices_{part}"] = np.asarray(indices, dtype=np.int64)
    for part, indices in zip(PART_NAMES, result.part_visible):
        arrays[f"part_visible_{part}"] = np.asarray(indices, dtype=np.int64)
    return arrays


def save_npz(result: FaceResult, path: str | os.PathLike[str]) -> Path:
    """Write every array of `result` into one compressed .npz (keys: `NPZ_KEY_DOCS`)."""
    target = Path(path)
    try:
        with _atomic_path(target) as handle:
            np.savez_compressed(handle, **result_arrays(result))
    except OSError as exc:
        raise ExportError(f"Cannot write {target}: {exc}") from exc
    return target


def obj_vertices(result: FaceResult, space: ObjSpace = "posed") -> npt.NDArray[np.float32]:
    """The vertex positions an OBJ gets: posed model space (z = 10 - z_cam) or the unposed shape."""
    if space == "model":
        return np.asarray(result.vertices_model, dtype=np.float32)
    if space != "posed":
        raise ValueError(f"unknown OBJ space {space!r}; use 'posed' or 'model'")
    posed = np.array(result.vertices_camera, dtype=np.float32)
    posed[:, 2] = np.float32(result.camera.distance) - posed[:, 2]
    return posed


def _obj_text(result: FaceResult, mtl_name: str | None, space: ObjSpace, vertex_colors: bool) -> str:
    buffer = io.StringIO()
    buffer.write("# 3DDFA-V3 face reconstruction\n")
    if result.source:
        buffer.write(f"# photo: {result.source}\n")
    buffer.write(f"# vertices: {'posed model space (camera at z = 10 looking down -z)' if space == 'posed' else 'unposed model space'}, y up\n")
    if mtl_name is not None:
        buffer.write(f"mtllib {mtl_name}\n")
    vertices = obj_vertices(result, space)
    if vertex_colors:
        np.savetxt(buffer, np.hstack([vertices, result.colors.astype(np.float32)]),
                   fmt="v %.6f %.6f %.6f %.4f %.4f %.4f")
    else:
        np.savetxt(buffer, vertices, fmt="v %.6f %.6f %.6f")
    np.savetxt(buffer, result.photo_uv, fmt="vt %.6f %.6f")
    if mtl_name is not None:
        buffer.write("usemtl face\n")
    buffer.write("s 1\n")
    faces = np.asarray(result.triangles, dtype=np.int64) + 1
    np.savetxt(buffer, np.repeat(faces, 2, axis=1), fmt="f %d/%d %d/%d %d/%d")
    return buffer.getvalue()


def save_obj(result: FaceResult, path: str | os.PathLike[str], texture: str | os.PathLike[str] | None = None,
             space: ObjSpace = "posed", vertex_colors: bool = True) -> list[Path]:
    """Write `<path>` (OBJ with `vt` photo UVs) and, with a texture, `<stem>.mtl` naming it as map_Kd.

    `texture` is the photo file the UVs refer to; the MTL names it relative to
    the OBJ's folder when possible. `vertex_colors` adds the SH-lit colours
    as the common ``v x y z r g b`` extension. Returns the written paths.
    """
    target = Path(path)
    written: list[Path] = []
    mtl_path: Path | None = None
    if texture is not None:
        mtl_path = target.with_suffix(".mtl")
        texture_path = Path(texture)
        try:
            texture_ref = os.path.relpath(texture_path.resolve(), target.parent.resolve())
        except ValueError:  # another drive on Windows
            texture_ref = str(texture_path.resolve())
        mtl = ("# 3DDFA-V3 face: the photo as colour texture\n"
               "newmtl face\nKa 1.000 1.000 1.000\nKd 1.000 1.000 1.000\nKs 0.000 0.000 0.000\n"
               f"d 1.0\nillum 1\nmap_Kd {texture_ref.replace(os.sep, '/')}\n")
    try:
        text = _obj_text(result, mtl_path.name if mtl_path is not None else None, space, vertex_colors)
        if mtl_path is not None:
            with _atomic_path(mtl_path, "w") as handle:
                handle.write(mtl)
            written.append(mtl_path)
        with _atomic_path(target, "w") as handle:
            handle.write(text)
        written.append(target)
    except OSError as exc:
        for done in written:
            done.unlink(missing_ok=True)
        raise ExportError(f"Cannot write {target}: {exc}") from exc
    return written


def landmarks_document(result: FaceResult) -> dict[str, Any]:
    """The landmarks of a result as a JSON-ready dict (photo pixels, x right, y down)."""
    return {
        "photo": result.source,
        "width": int(result.photo_size[0]),
        "height": int(result.photo_size[1]),
        "coordinates": "photo pixels, x right, y down, integer values at pixel centres",
        "face_box": [float(v) for v in result.face_box],
        "face_score": float(result.face_score),
        "landmarks106_detected": np.asarray(result.landmarks106_detected, dtype=np.float64).round(4).tolist(),
        "model_landmarks": {name: np.asarray(values, dtype=np.float64).round(4).tolist()
                            for name, values in result.landmarks_photo.items()},
        "angles_rad": [float(v) for v in result.coefficients.angles],
        "translation": [float(v) for v in result.coefficients.translation],
    }


def save_landmarks(result: FaceResult, path: str | os.PathLike[str]) -> Path:
    """Write the landmarks JSON (see `landmarks_document`)."""
    target = Path(path)
    try:
        with _atomic_path(target, "w") as handle:
            json.dump(landmarks_document(result), handle, indent=1)
    except OSError as exc:
        raise ExportError(f"Cannot write {target}: {exc}") from exc
    return target


def save_texture(image: npt.NDArray[np.uint8], path: str | os.PathLike[str]) -> Path:
    """Write an RGB uint8 image (the photo, for ``map_Kd``) as PNG."""
    from PIL import Image

    target = Path(path)
    try:
        with _atomic_path(target) as handle:
            Image.fromarray(np.asarray(image, dtype=np.uint8)).save(handle, format="PNG")
    except OSError as exc:
        raise ExportError(f"Cannot write {target}: {exc}") from exc
    return target


def copy_file(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Copy a file (the photo next to its OBJ) atomically."""
    target = Path(path)
    try:
        with _atomic_path(target) as handle, open(source, "rb") as src:
            shutil.copyfileobj(src, handle)
    except OSError as exc:
        raise ExportError(f"Cannot copy {source} to {target}: {exc}") from exc
    return target


#: Photo formats Blender reads as image textures without conversion.
_TEXTURE_FORMATS = {"JPEG", "PNG", "BMP", "TIFF", "WEBP"}


def photo_needs_rewrite(path: str | os.PathLike[str]) -> bool:
    """Whether a photo file must be re-saved for its pixels to match the UVs.

    True when it carries an EXIF orientation other than "upright" (the
    reconstruction sees the rotated pixels, image viewers and Blender may not)
    or is in a format Blender does not read as a texture.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            orientation = image.getexif().get(0x0112, 1)
            return orientation not in (None, 1) or (image.format or "") not in _TEXTURE_FORMATS
    except OSError:
        return True
