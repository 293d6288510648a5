# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""``face_model.npy``: the restricted unpickler (numpy arrays and nothing else) and the
validation that turns its dictionary into `FaceModelArrays`.

Imports numpy and the standard library only.
"""

from __future__ import annotations

import ast
import codecs
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from ..errors import AssetError
from .files import ASSET_SOURCE_HINT, FACE_MODEL_FILE, NPY_MAGIC


F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


#: Coefficient counts of the bases (fixed by the regressor heads).
N_ID, N_EXP, N_ALB = 80, 64, 80
N_PARTS, N_PARALLEL = 8, 33
LANDMARK_SETS: dict[str, int] = {"ldm68": 68, "ldm106": 106, "ldm134": 134}

# --------------------------------------------------------------------------- face model

@dataclass
class FaceModelArrays:
    """The face model as plain arrays, named as in ``face_model.npy``.

    V vertices, T triangles. Floats are float32, indices int64 (0-based).
    """

    u: F32                        # (3V, 1) mean shape, xyz interleaved
    id: F32                       # (3V, 80) identity basis
    exp: F32                      # (3V, 64) expression basis
    u_alb: F32                    # (3V, 1) mean albedo, rgb interleaved, 0..255
    alb: F32                      # (3V, 80) albedo basis
    tri: I64                      # (T, 3) counter-clockwise outside
    point_buf: I64                # (V, 8) adjacent triangles, padded with T
    uv_coords: F32                # (V, 2) in [0, 1]
    ldm68: I64                    # (68,) vertex indices
    ldm106: I64                   # (106,)
    ldm134: I64                   # (134,)
    annotation: list[I64]         # 8 vertex-index arrays, PART_NAMES order
    annotation_tri: list[I64]     # 8 (K, 3) triangle arrays
    parallel: list[I64]           # 33 vertex-index arrays, contour point i inwards
    source: str = ""              # the face_model.npy it came from
    loaded_from: str = ""         # "pickle" (parsed now), "cache" or "memory"

    @property
    def vertex_count(self) -> int:
        return int(self.point_buf.shape[0])

    @property
    def triangle_count(self) -> int:
        return int(self.tri.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """A dict laid out like the unpickled ``face_model.npy`` (lists for the ragged keys)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in ARRAY_KEYS}
        out["annotation"] = [a.tolist() for a in self.annotation]
        out["annotation_tri"] = [a.copy() for a in self.annotation_tri]
        out["parallel"] = [a.tolist() for a in self.parallel]
        return out


ARRAY_KEYS = ("u", "id", "exp", "u_alb", "alb", "tri", "point_buf", "uv_coords", "ldm68", "ldm106", "ldm134")
RAGGED_KEYS = ("annotation", "annotation_tri", "parallel")
REQUIRED_KEYS: tuple[str, ...] = ARRAY_KEYS + RAGGED_KEYS


# ----- restricted unpickling

def _numpy_reconstruct() -> Any:
    # Taken from numpy's own reduction so it is right for numpy 1.x and 2.x alike.
    return np.zeros(1).__reduce__()[0]


def _numpy_scalar() -> Any:
    return np.float64(0).__reduce__()[0]


def _numpy_frombuffer() -> Any:
    reduced: Any = np.zeros(1).__reduce_ex__(5)
    return reduced[0] if callable(reduced[0]) else None


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes, limited to latin-1."""
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1"):
        raise pickle.UnpicklingError(f"refused codec {encoding!r}")
    return codecs.encode(text, "latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    reconstruct, scalar, frombuffer = _numpy_reconstruct(), _numpy_scalar(), _numpy_frombuffer()
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    # numpy 1.x pickles say numpy.core, numpy 2.x numpy._core: accept both with today's functions.
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = scalar
        if frombuffer is not None:
            allowed[(f"{package}.numeric", "_frombuffer")] = frombuffer
    return allowed


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, dtypes, scalars and plain containers; refuses every other global."""

    def __init__(self, handle: BinaryIO, source_name: str) -> None:
        super().__init__(handle, encoding="latin1")
        self._source_name = source_name
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        target = self._allowed.get((module, name))
        if target is None:
            raise AssetError(
                f"{self._source_name} refused to load: it asks to run code ({module}.{name}), which a "
                f"face model never needs. The file may be malicious or is not the 3DDFA-V3 face model; "
                f"download it again from {ASSET_SOURCE_HINT}.")
        return target

    def persistent_load(self, pid: Any) -> Any:
        raise AssetError(f"{self._source_name} refused to load: it references external objects "
                         f"(not a face model); download it again from {ASSET_SOURCE_HINT}.")


def read_npy_header(handle: BinaryIO) -> tuple[np.dtype[Any], tuple[int, ...], bool]:
    """(dtype, shape, fortran_order) from a .npy header, read with literal evaluation only."""
    magic = handle.read(8)
    if len(magic) < 8 or not magic.startswith(NPY_MAGIC):
        raise AssetError("not a numpy .npy file (bad magic bytes)")
    major = magic[6]
    if major == 1:
        raw_len = handle.read(2)
        length = struct.unpack("<H", raw_len)[0] if len(raw_len) == 2 else -1
    elif major in (2, 3):
        raw_len = handle.read(4)
        length = struct.unpack("<I", raw_len)[0] if len(raw_len) == 4 else -1
    else:
        raise AssetError(f"unsupported .npy format version {major}.{magic[7]}")
    if length < 0 or length > 1_000_000:
        raise AssetError("damaged .npy header (bad header length)")
    raw = handle.read(length)
    if len(raw) != length:
        raise AssetError("truncated .npy header")
    try:
        header = ast.literal_eval(raw.decode("utf8" if major == 3 else "latin1"))
        dtype = np.dtype(header["descr"])
        shape = tuple(int(s) for s in header["shape"])
        fortran = bool(header.get("fortran_order", False))
    except Exception as exc:  # any malformed header text
        raise AssetError(f"damaged .npy header ({exc})") from exc
    return dtype, shape, fortran


def unpickle_face_model_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``face_model.npy`` (np.save of a dict) without running any code from it."""
    file = Path(path)
    name = file.name
    try:
        handle = open(file, "rb")
    except OSError as exc:
        raise AssetError(f"{name} cannot be opened ({exc.strerror}). "
                         f"Download it from {ASSET_SOURCE_HINT}.") from exc
    with handle:
        try:
            dtype, shape, _ = read_npy_header(handle)
        except AssetError as exc:
            raise AssetError(f"{name} is unusable: {exc}. Download it again from {ASSET_SOURCE_HINT}.") from exc
        if dtype != np.dtype(object) or shape != ():
            raise AssetError(f"{name} is unusable: it holds a {dtype} array of shape {shape}, not the "
                             f"face-model dictionary. Download it again from {ASSET_SOURCE_HINT}.")
        try:
            loaded = _ArrayOnlyUnpickler(handle, name).load()
        except AssetError:
            raise
        except MemoryError as exc:
            raise AssetError(f"{name} asks for more memory than this computer has; it is not the 3DDFA-V3 "
                             f"face model (about 100-200 MB). Download it again from {ASSET_SOURCE_HINT}.") from exc
        except Exception as exc:  # truncated or garbled pickle streams raise many types
            raise AssetError(f"{name} is damaged and cannot be read ({type(exc).__name__}: {exc}); "
                             f"download it again from {ASSET_SOURCE_HINT}.") from exc
    content = loaded.item() if isinstance(loaded, np.ndarray) and loaded.shape == () else loaded
    if not isinstance(content, dict):
        raise AssetError(f"{name} is unusable: it holds a {type(content).__name__}, not the face-model "
                         f"dictionary. Download it again from {ASSET_SOURCE_HINT}.")
    return content


# ----- validation

class _Validator:
    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, what: str) -> AssetError:
        return AssetError(f"{self.name} is not a valid 3DDFA-V3 face model: {what}. "
                          f"Download it again from {ASSET_SOURCE_HINT}.")

    def floats(self, value: Any, key: str, shapes: Sequence[tuple[int, ...]]) -> F32:
        if not isinstance(value, np.ndarray) or not (np.issubdtype(value.dtype, np.floating)
                                                     or np.issubdtype(value.dtype, np.integer)):
            raise self.fail(f"'{key}' must be a numeric array, found {_describe(value)}")
        if value.shape not in shapes:
            raise self.fail(f"'{key}' has shape {value.shape}, expected {_shapes_text(shapes)}")
        array = np.ascontiguousarray(value, dtype=np.float32)
        if not np.all(np.isfinite(array)):
            raise self.fail(f"'{key}' holds NaN or infinite values")
        return array

    def indices(self, value: Any, key: str, upper: int, shape: tuple[int | None, ...] | None = None,
                inclusive: bool = False) -> I64:
        """An int64 index array with every value in [0, upper) (or [0, upper] when inclusive)."""
        if isinstance(value, (list, tuple)):
            try:
                value = np.asarray(value) if len(value) else np.zeros(0, dtype=np.int64)
            except ValueError as exc:
                raise self.fail(f"'{key}' is not a regular index list ({exc})") from exc
        if not isinstance(value, np.ndarray) or value.dtype == object:
            raise self.fail(f"'{key}' must be an index array, found {_describe(value)}")
        if np.issubdtype(value.dtype, np.floating):
            if value.size and not np.all(np.isfinite(value) & (value == np.round(value))):
                raise self.fail(f"'{key}' holds non-integer indices")
        elif not np.issubdtype(value.dtype, np.integer):
            raise self.fail(f"'{key}' must hold integers, found dtype {value.dtype}")
        if shape is not None and value.size == 0:
            value = value.reshape(tuple(0 if s is None else s for s in shape))
        if shape is not None:
            if len(shape) == 1 and value.ndim == 2 and 1 in value.shape:
                value = value.reshape(-1)   # (n, 1) / (1, n) index vectors are fine
            if value.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, value.shape)):
                expected = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
                raise self.fail(f"'{key}' has shape {value.shape}, expected {expected}")
        array = np.ascontiguousarray(value, dtype=np.int64)
        if array.size:
            low, high = int(array.min()), int(array.max())
            limit = upper if inclusive else upper - 1
            if low < 0 or high > limit:
                raise self.fail(f"'{key}' holds index {low if low < 0 else high} outside 0..{limit}")
        return array

    def ragged(self, value: Any, key: str, count: int) -> list[Any]:
        if isinstance(value, np.ndarray) and value.dtype == object:
            value = list(value)
        elif isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == count:
            value = list(value)
        if not isinstance(value, (list, tuple)):
            raise self.fail(f"'{key}' must be a list of {count} index lists, found {_describe(value)}")
        if len(value) != count:
            raise self.fail(f"'{key}' must have {count} entries, found {len(value)}")
        return list(value)


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    return f"a {type(value).__name__}"


def _shapes_text(shapes: Sequence[tuple[int, ...]]) -> str:
    return " or ".join(str(s) for s in shapes)


def face_model_arrays_from_dict(model: Mapping[str, Any], source: str = FACE_MODEL_FILE,
                                loaded_from: str = "memory") -> FaceModelArrays:
    """Validate a face-model dict (keys, dtypes, shapes, index ranges) into FaceModelArrays."""
    check = _Validator(Path(source).name if source else FACE_MODEL_FILE)
    if not isinstance(model, Mapping):
        raise check.fail(f"expected a dictionary, found {_describe(model)}")
    missing = [k for k in REQUIRED_KEYS if k not in model]
    if missing:
        raise check.fail(f"keys {', '.join(missing)} are missing")
    u_raw = model["u"]
    if not isinstance(u_raw, np.ndarray) or u_raw.size == 0 or u_raw.size % 3:
        raise check.fail(f"'u' must be a (3V, 1) array, found {_describe(u_raw)}")
    n3 = int(u_raw.size)
    n_vertices = n3 // 3
    u = check.floats(u_raw, "u", [(n3, 1), (n3,)]).reshape(n3, 1)
    basis_id = check.floats(model["id"], "id", [(n3, N_ID)])
    basis_exp = check.floats(model["exp"], "exp", [(n3, N_EXP)])
    u_alb = check.floats(model["u_alb"], "u_alb", [(n3, 1), (n3,)]).reshape(n3, 1)
    basis_alb = check.floats(model["alb"], "alb", [(n3, N_ALB)])
    uv = check.floats(model["uv_coords"], "uv_coords", [(n_vertices, 2), (n_vertices, 3)])[:, :2]
    uv = np.ascontiguousarray(uv)
    tri = check.indices(model["tri"], "tri", n_vertices, (None, 3))
    if tri.shape[0] == 0:
        raise check.fail("'tri' has no triangles")
    n_tri = int(tri.shape[0])
    point_buf = check.indices(model["point_buf"], "point_buf", n_tri, (n_vertices, None), inclusive=True)
    if point_buf.shape[1] == 0:
        raise check.fail("'point_buf' has no columns")
    landmarks = {key: check.indices(model[key], key, n_vertices, (count,))
                 for key, count in LANDMARK_SETS.items()}
    annotation = [check.indices(part, f"annotation[{i}]", n_vertices, (None,))
                  for i, part in enumerate(check.ragged(model["annotation"], "annotation", N_PARTS))]
    annotation_tri = [check.indices(part, f"annotation_tri[{i}]", n_vertices, (None, 3))
                      for i, part in enumerate(check.ragged(model["annotation_tri"], "annotation_tri", N_PARTS))]
    parallel = [check.indices(chain, f"parallel[{i}]", n_vertices, (None,))
                for i, chain in enumerate(check.ragged(model["parallel"], "parallel", N_PARALLEL))]
    return FaceModelArrays(
        u=u, id=basis_id, exp=basis_exp, u_alb=u_alb, alb=basis_alb, tri=tri, point_buf=point_buf,
        uv_coords=uv, ldm68=landmarks["ldm68"], ldm106=landmarks["ldm106"], ldm134=landmarks["ldm134"],
        annotation=annotation, annotation_tri=annotation_tri, parallel=parallel,
        source=str(source), loaded_from=loaded_from)


