# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The user-downloaded 3DDFA-V3 assets: checking, safe loading, and a fast face-model cache.

The assets are the ``assets/`` folder of the Hugging Face dataset
``Zidu-Wang/3DDFA-V3``; the add-on never downloads them itself.

Safety: every file here comes from the internet, and both ``.pth`` and
``face_model.npy`` are pickles, which can run code when loaded naively.
Checkpoints are read only with ``torch.load(weights_only=True)``;
``face_model.npy`` is read with a restricted unpickler that can rebuild numpy
arrays and nothing else, then converted once into a plain ``.npz`` cache
(``allow_pickle=False``) that later sessions load quickly.
"""

from __future__ import annotations

import ast
import codecs
import contextlib
import hashlib
import logging
import os
import pickle
import struct
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from .backbones import BACKBONE_TABLE, find_backbone
from .dependencies import require_scipy_io, require_torch
from .errors import AssetError, DependencyError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Where users download the assets from (the files live in its ``assets/`` folder).
ASSET_SOURCE_URL = "https://huggingface.co/datasets/Zidu-Wang/3DDFA-V3"
ASSET_SOURCE_HINT = f"{ASSET_SOURCE_URL} (folder assets/)"

FACE_MODEL_FILE = "face_model.npy"
LM3D_FILE = "similarity_Lm3D_all.mat"

#: Checkpoint file per network kind (the kind names of tddfa_v3.networks).
CHECKPOINT_FILES: dict[str, str] = {
    "recon_resnet50": "net_recon.pth",
    "recon_mbnetv3": "net_recon_mbnet.pth",
    "retinaface": "retinaface_resnet50_2020-07-20_old_torch.pth",
    "landmark106": "large_base_net.pth",
}

#: Every asset file, in the order reports list them.
ASSET_FILES: tuple[str, ...] = (
    FACE_MODEL_FILE,
    CHECKPOINT_FILES["recon_resnet50"],
    CHECKPOINT_FILES["recon_mbnetv3"],
    CHECKPOINT_FILES["retinaface"],
    CHECKPOINT_FILES["landmark106"],
    LM3D_FILE,
)

#: Regressor backbones (their printed names, `tddfa_v3.backbones`) and their network kind.
BACKBONE_KINDS: dict[str, str] = {b.name: b.kind for b in BACKBONE_TABLE}

#: Float32 parameter count of each network (from its state-dict layout). A file
#: holding less than about half of that (fp16 would be exactly half) is a
#: truncated or wrong download.
_PARAMETER_COUNTS: dict[str, int] = {
    "recon_resnet50": 24_087_745,
    "recon_mbnetv3": 3_243_329,
    "landmark106": 1_745_024,
    "retinaface": 27_351_584,
}
_MIN_SIZE_FRACTION = 0.45

#: What each asset file is for and about how big it is (float32 checkpoints: 4 bytes per
#: parameter), for the messages that say what to download.
ASSET_FILE_INFO: dict[str, tuple[str, str]] = {
    FACE_MODEL_FILE: ("the face model, the BFM09 front crop of 35,709 vertices", "about 100-200 MB"),
    CHECKPOINT_FILES["recon_resnet50"]: ("the ResNet-50 regressor, backbone resnet50", "about 92 MB"),
    CHECKPOINT_FILES["recon_mbnetv3"]: ("the MobileNet-V3 regressor, backbone mobilenetv3", "about 12 MB"),
    CHECKPOINT_FILES["retinaface"]: ("the RetinaFace face detector, not needed with a given face box",
                                     "about 104 MB"),
    CHECKPOINT_FILES["landmark106"]: ("the 106-point landmark network", "about 7 MB"),
    LM3D_FILE: ("the 5-point alignment template", "about 1 KB"),
}


def asset_listing() -> str:
    """Every asset file with what it is, its size and where it comes from, in one sentence."""
    files = "; ".join(f"{name} ({ASSET_FILE_INFO[name][0]}, {ASSET_FILE_INFO[name][1]})" for name in ASSET_FILES)
    return f"The 3DDFA-V3 assets are {len(ASSET_FILES)} files: {files}; download them from {ASSET_SOURCE_HINT}."

#: torch.save before zip archives (PyTorch < 1.6) starts with a pickle (PROTO opcode 0x80)
#: of the magic number 0x1950a86a20f9469cfc6c (a LONG1, little-endian bytes below).
_LEGACY_TORCH_MAGIC = b"\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_HEAD_BYTES = 16
_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"

#: Sizes that make no sense for the small files (guards against pointing at a wrong file).
_MAX_MAT_BYTES = 16 * 1024 * 1024
_MIN_FACE_MODEL_BYTES = 1024

#: Cache format version: bump when the cache layout or the conversion changes.
CACHE_FORMAT_VERSION = 1
CACHE_APP_NAME = "nv3dmm_face_tools"

#: Coefficient counts of the bases (fixed by the regressor heads).
N_ID, N_EXP, N_ALB = 80, 64, 80
N_PARTS, N_PARALLEL = 8, 33
LANDMARK_SETS: dict[str, int] = {"ldm68": 68, "ldm106": 106, "ldm134": 134}


# --------------------------------------------------------------------------- torch



# --------------------------------------------------------------------------- report

@dataclass(frozen=True)
class AssetFileStatus:
    """What the quick check found for one asset file."""

    name: str
    path: Path
    state: str            # "present", "missing" or "malformed"
    reason: str = ""
    size: int = 0

    @property
    def ok(self) -> bool:
        return self.state == "present"


@dataclass(frozen=True)
class AssetReport:
    """The result of `check_assets`: per-file state and what can run with it."""

    folder: Path
    files: dict[str, AssetFileStatus] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [s.name for s in self.files.values() if s.state == "missing"]

    @property
    def malformed(self) -> list[AssetFileStatus]:
        return [s for s in self.files.values() if s.state == "malformed"]

    @property
    def ok(self) -> bool:
        """Every asset file is present and looks right."""
        return all(s.ok for s in self.files.values())

    def required_for(self, backbone: str, detector: bool = True) -> list[str]:
        """The files a reconstruction with `backbone` (any accepted name) needs, with or
        without the face detector."""
        names = [FACE_MODEL_FILE, LM3D_FILE, find_backbone(backbone).checkpoint,
                 CHECKPOINT_FILES["landmark106"]]
        if detector:
            names.append(CHECKPOINT_FILES["retinaface"])
        return names

    def ok_for(self, backbone: str, detector: bool = True) -> bool:
        """Whether every file `backbone` needs passed the quick check."""
        return all(self.files[name].ok for name in self.required_for(backbone, detector))

    @property
    def usable_backbones(self) -> tuple[str, ...]:
        return tuple(b for b in BACKBONE_KINDS if self.ok_for(b))

    @property
    def message(self) -> str:
        """A human summary: what is usable, what is missing or broken, and where to get it."""
        if self.ok:
            return f"All 3DDFA-V3 assets found in {self.folder}."
        lines = []
        missing = self.missing
        if not self.folder.is_dir():
            lines.append(f"The 3DDFA-V3 assets folder {self.folder} does not exist; it should hold "
                         f"{', '.join(missing)}.")
        elif missing:
            lines.append(f"Missing in {self.folder}: {', '.join(missing)}.")
        for status in self.malformed:
            lines.append(f"{status.name} is unusable: {status.reason}.")
        usable = self.usable_backbones
        if usable:
            lines.append(f"Usable backbones: {', '.join(usable)}.")
        else:
            lines.append("No backbone can run yet.")
        lines.append(asset_listing())
        return " ".join(lines)

    def __str__(self) -> str:
        """One line per file, then the summary (what the command line prints)."""
        lines = [f"3DDFA-V3 assets in {self.folder}:"]
        for status in self.files.values():
            detail = f" ({status.reason})" if status.reason else ""
            size = f", {_human_size(status.size)}" if status.size else ""
            lines.append(f"  {status.state:9s} {status.name}{size}{detail}")
        lines.append(self.message)
        return "\n".join(lines)

    def raise_unless_ok_for(self, backbone: str, detector: bool = True) -> None:
        """Raise AssetError with the report's message unless `backbone` can run."""
        if not self.ok_for(backbone, detector):
            names = [n for n in self.required_for(backbone, detector) if not self.files[n].ok]
            raise AssetError(f"3DDFA-V3 with backbone {find_backbone(backbone).name} cannot run: "
                             f"{', '.join(names)} missing or broken. {self.message}")


def resolve_assets_folder(folder: str | os.PathLike[str]) -> Path:
    """The folder holding the asset files: `folder` itself, or its ``assets/`` subfolder
    when the user picked the downloaded dataset's root."""
    path = Path(folder).expanduser()
    if not (path / FACE_MODEL_FILE).exists() and (path / "assets" / FACE_MODEL_FILE).exists():
        return path / "assets"
    return path


def check_assets(folder: str | os.PathLike[str], *, load: bool = False,
                 cache_dir: str | os.PathLike[str] | None = None) -> AssetReport:
    """Check an assets folder.

    The quick check (the default, for a live preferences display) looks at
    existence, size, and the first bytes / archive directory of each file and
    loads nothing large. With `load=True` every file that passes it is then
    loaded exactly as a reconstruction loads it (`verify_asset_file`): the
    checkpoints read, checked for NaN / infinite weights and fitted key by key
    and shape by shape to their network, the face model parsed and validated
    (and its cache written to `cache_dir`), the template read; a file that
    fails is reported "malformed" with the loader's message. So a folder that
    passes the loading check will load. Raises DependencyError when a loader
    needs a package (torch, SciPy) that is missing.
    """
    root = resolve_assets_folder(folder)
    statuses: dict[str, AssetFileStatus] = {}
    for name in ASSET_FILES:
        status = _check_file(root / name, name)
        if load and status.ok:
            try:
                verify_asset_file(root, name, cache_dir=cache_dir)
            except AssetError as exc:
                status = AssetFileStatus(name, status.path, "malformed", str(exc).rstrip("."), status.size)
        statuses[name] = status
    return AssetReport(root, statuses)


def verify_asset_file(folder: str | os.PathLike[str], name: str,
                      cache_dir: str | os.PathLike[str] | None = None) -> None:
    """Load one asset file as reconstruction does and run the same checks; AssetError if it fails.

    Checkpoints go through `load_state_dict` (safe load, finite weights) and
    the same key and shape fit as `load_asset_network`, against the network
    built on torch's "meta" device (no memory, no time); the face model
    through `load_face_model_arrays`; the template through `load_five_point_template`.
    """
    root = resolve_assets_folder(folder)
    if name == FACE_MODEL_FILE:
        load_face_model_arrays(root / name, cache_dir=cache_dir)
    elif name == LM3D_FILE:
        load_five_point_template(root / name)
    else:
        kind = next((k for k, v in CHECKPOINT_FILES.items() if v == name), None)
        if kind is None:
            raise ValueError(f"{name} is not a 3DDFA-V3 asset file; expected one of {', '.join(ASSET_FILES)}")
        torch = require_torch()
        from .networks import build_network, normalize_state_dict

        state_dict = load_state_dict(root / name, kind)
        with torch.device("meta"):
            layout = build_network(kind)
        with _fit_errors(name, kind):
            normalize_state_dict(state_dict, layout, kind)


def _check_file(path: Path, name: str) -> AssetFileStatus:
    try:
        if not path.is_file():
            return AssetFileStatus(name, path, "missing")
        size = path.stat().st_size
    except OSError as exc:
        return AssetFileStatus(name, path, "missing", f"cannot be read ({exc.strerror})")
    try:
        if name == FACE_MODEL_FILE:
            reason = _quick_check_face_model(path, size)
        elif name == LM3D_FILE:
            reason = _quick_check_mat(path, size)
        else:
            kind = next(k for k, v in CHECKPOINT_FILES.items() if v == name)
            reason = _quick_check_checkpoint(path, size, kind)
    except OSError as exc:
        reason = f"cannot be read ({exc.strerror or exc})"
    return AssetFileStatus(name, path, "malformed" if reason else "present", reason, size)


def _quick_check_checkpoint(path: Path, size: int, kind: str) -> str:
    minimum = int(_PARAMETER_COUNTS[kind] * 4 * _MIN_SIZE_FRACTION)
    if size < minimum:
        return (f"only {_human_size(size)}, expected about {_human_size(_PARAMETER_COUNTS[kind] * 4)} "
                "(an incomplete or wrong download)")
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, ValueError) as exc:
            return f"a damaged PyTorch archive ({exc}); the download is probably incomplete"
        if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
            return "a zip archive, but not a PyTorch checkpoint (no data.pkl)"
        return ""
    if _is_legacy_torch(head):
        return ""
    return "not a PyTorch checkpoint (neither a torch zip archive nor a legacy torch file)"


def _is_legacy_torch(head: bytes) -> bool:
    return head.startswith(b"\x80") and _LEGACY_TORCH_MAGIC in head


def _quick_check_face_model(path: Path, size: int) -> str:
    if size < _MIN_FACE_MODEL_BYTES:
        return f"only {_human_size(size)}: too small to be the face model"
    with open(path, "rb") as handle:
        try:
            header = _read_npy_header(handle)
        except AssetError as exc:
            return str(exc)
    if header[0] != np.dtype(object) or header[1] != ():
        return f"a numpy array of dtype {header[0]} and shape {header[1]}, not the face-model dictionary"
    return ""


def _quick_check_mat(path: Path, size: int) -> str:
    if size > _MAX_MAT_BYTES:
        return f"{_human_size(size)}: far too large for the 68-point template"
    try:
        return _read_lm68(path)[1]
    except DependencyError:
        # Without SciPy (it reads the file at load time) only the MATLAB header is checked.
        with open(path, "rb") as handle:
            head = handle.read(20)
        return "" if head.startswith(b"MATLAB 5.0 MAT-file") else "not a MATLAB 5 .mat file"


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


# --------------------------------------------------------------------------- checkpoints

def load_state_dict(path: str | os.PathLike[str], kind: str) -> dict[str, "torch.Tensor"]:
    """Load one checkpoint safely (weights only) and unwrap it as the real files are laid out.

    ``net_recon.pth`` / ``net_recon_mbnet.pth`` hold ``{"net_recon": sd}``,
    ``large_base_net.pth`` holds ``{"state_dict": sd}`` (keys may start with
    ``module.``), the RetinaFace file is a plain state dict.
    """
    if kind not in CHECKPOINT_FILES:
        raise ValueError(f"unknown network kind {kind!r}; expected one of {sorted(CHECKPOINT_FILES)}")
    torch = require_torch()
    file = Path(path)
    name = file.name
    if not file.is_file():
        raise AssetError(f"{name} is missing ({file}). Download it from {ASSET_SOURCE_HINT}.")
    try:
        with open(file, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as exc:
        raise AssetError(f"{name} cannot be opened ({exc.strerror}).") from exc
    if not (head.startswith(_ZIP_MAGIC) or _is_legacy_torch(head)):
        raise AssetError(f"{name} is not a PyTorch checkpoint (neither a torch zip archive nor a legacy "
                         f"torch file). Download it again from {ASSET_SOURCE_HINT}.")
    try:
        loaded = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise AssetError(f"{name} was refused: {_weights_only_reason(str(exc))}. The file is damaged, "
                         f"not the 3DDFA-V3 checkpoint, or malicious; download it again from "
                         f"{ASSET_SOURCE_HINT}.") from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, ValueError... for bad archives
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AssetError(
            f"{name} cannot be read as a PyTorch checkpoint ({first}); the download is probably "
            f"incomplete or damaged. Download it again from {ASSET_SOURCE_HINT}.") from exc
    return unwrap_state_dict(loaded, name)


def _weights_only_reason(message: str) -> str:
    """The useful line of torch's weights-only refusal (its advice to disable the check is dropped)."""
    for line in message.splitlines():
        if "GLOBAL" in line:
            words = line.split()
            target = words[words.index("GLOBAL") + 1] if "GLOBAL" in words[:-1] else line.strip()
            return f"it asks to run code ({target}), which a weights file never needs"
    for line in message.splitlines():
        if line.strip().startswith("Unsupported"):
            return f"it holds data a weights file never holds ({line.strip()})"
    return "it is not a plain weights file"


def unwrap_state_dict(loaded: Any, name: str) -> dict[str, "torch.Tensor"]:
    """The state dict inside a loaded checkpoint object, checked to map names to tensors."""
    torch = require_torch()
    state = loaded
    if isinstance(state, Mapping):
        for wrapper in ("net_recon", "state_dict"):
            inner = state.get(wrapper)
            if isinstance(inner, Mapping):
                state = inner
                break
    if not isinstance(state, Mapping) or not state:
        raise AssetError(
            f"{name} does not hold a network state dict (found {type(loaded).__name__}). "
            f"Download it again from {ASSET_SOURCE_HINT}.")
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise AssetError(
            f"{name} is laid out unexpectedly: entries {', '.join(bad[:5])} are not named tensors. "
            f"Download it again from {ASSET_SOURCE_HINT}.")
    check_finite_weights(state, name)
    return dict(state)


def check_finite_weights(state: Mapping[str, "torch.Tensor"], name: str) -> None:
    """AssetError naming the file and its tensors when any floating weight is NaN or infinite
    (such a network loads, then turns every photo into NaN)."""
    torch = require_torch()
    bad = [key for key, tensor in state.items()
           if tensor.is_floating_point() and tensor.numel() and not bool(torch.isfinite(tensor).all())]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise AssetError(f"{name} holds NaN or infinite weights (in {shown}): the file is damaged; "
                         f"download it again from {ASSET_SOURCE_HINT}.")


@contextlib.contextmanager
def _fit_errors(name: str, kind: str) -> Iterator[None]:
    """Turn a checkpoint that does not fit its network into one AssetError naming the file."""
    try:
        yield
    except (DependencyError, MemoryError):
        raise
    except Exception as exc:
        detail = getattr(exc, "details", None) or (
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        detail = detail.rstrip(".")
        if len(detail) > 400:
            detail = detail[:400] + "..."
        raise AssetError(
            f"{name} does not fit the {kind} network: {detail}. It is probably another model's file "
            f"or damaged; download it again from {ASSET_SOURCE_HINT}.") from exc


def load_asset_network(folder: str | os.PathLike[str], kind: str, device: Any = None) -> "torch.nn.Module":
    """Build the network `kind` from its checkpoint in the assets folder, in eval mode.

    Weights are loaded strictly (see ``tddfa_v3.networks.load_network``); any
    mismatch becomes an AssetError naming the file.
    """
    if kind not in CHECKPOINT_FILES:
        raise ValueError(f"unknown network kind {kind!r}; expected one of {sorted(CHECKPOINT_FILES)}")
    path = resolve_assets_folder(folder) / CHECKPOINT_FILES[kind]
    state_dict = load_state_dict(path, kind)
    from .networks import load_network

    with _fit_errors(path.name, kind):
        network = load_network(kind, state_dict)
    if device is not None:
        network = network.to(device)
    return network.eval()


# --------------------------------------------------------------------------- 68-point template

def _read_lm68(path: Path) -> tuple[F64 | None, str]:
    """(the 'lm' array, "") or (None, what is wrong)."""
    loadmat = require_scipy_io().loadmat
    try:
        content = loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError... for junk
        return None, f"not a readable MATLAB file ({exc})"
    lm = content.get("lm")
    if not isinstance(lm, np.ndarray) or lm.shape != (68, 3) or not np.issubdtype(lm.dtype, np.floating):
        found = "no 'lm' array" if not isinstance(lm, np.ndarray) else f"'lm' of shape {lm.shape} {lm.dtype}"
        return None, f"expected a 68x3 float array 'lm', found {found}"
    if not np.all(np.isfinite(lm)):
        return None, "its 'lm' array holds NaN or infinite values"
    return lm, ""


def load_lm68_template(path: str | os.PathLike[str]) -> F64:
    """The (68, 3) landmark template of ``similarity_Lm3D_all.mat`` (its ``lm`` array, dtype kept)."""
    file = Path(path)
    if not file.is_file():
        raise AssetError(f"{file.name} is missing ({file}). Download it from {ASSET_SOURCE_HINT}.")
    lm, reason = _read_lm68(file)
    if lm is None:
        raise AssetError(f"{file.name} is unusable: {reason}. Download it again from {ASSET_SOURCE_HINT}.")
    return lm


def five_point_template(lm68: npt.ArrayLike) -> F64:
    """The 5-point crop template from the 68 points, as the reference's ``load_lm3d``.

    Rows (1-based): mean(37, 40), mean(43, 46), 31, 49, 55, i.e. image-left
    eye, image-right eye, nose tip, mouth corners. Computed in the file's
    dtype (float32 for the real file) and returned as float64, like the reference.
    """
    lm = np.asarray(lm68)
    if lm.shape != (68, 3):
        raise AssetError(f"the landmark template must be 68x3, got {lm.shape}")
    rows = np.array([31, 37, 40, 43, 46, 49, 55]) - 1
    five = np.stack([lm[rows[0]], np.mean(lm[rows[[1, 2]]], 0), np.mean(lm[rows[[3, 4]]], 0),
                     lm[rows[5]], lm[rows[6]]], axis=0)
    return five[[1, 2, 0, 3, 4]].astype(np.float64)


def load_five_point_template(folder_or_file: str | os.PathLike[str]) -> F64:
    """The (5, 3) crop template from ``similarity_Lm3D_all.mat`` (a folder or the file itself)."""
    path = Path(folder_or_file)
    if path.is_dir() or not path.suffix:
        path = resolve_assets_folder(path) / LM3D_FILE
    return five_point_template(load_lm68_template(path))


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
        out: dict[str, Any] = {k: getattr(self, k) for k in _ARRAY_KEYS}
        out["annotation"] = [a.tolist() for a in self.annotation]
        out["annotation_tri"] = [a.copy() for a in self.annotation_tri]
        out["parallel"] = [a.tolist() for a in self.parallel]
        return out


_ARRAY_KEYS = ("u", "id", "exp", "u_alb", "alb", "tri", "point_buf", "uv_coords", "ldm68", "ldm106", "ldm134")
_RAGGED_KEYS = ("annotation", "annotation_tri", "parallel")
REQUIRED_KEYS: tuple[str, ...] = _ARRAY_KEYS + _RAGGED_KEYS


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


def _read_npy_header(handle: BinaryIO) -> tuple[np.dtype[Any], tuple[int, ...], bool]:
    """(dtype, shape, fortran_order) from a .npy header, read with literal evaluation only."""
    magic = handle.read(8)
    if len(magic) < 8 or not magic.startswith(_NPY_MAGIC):
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
            dtype, shape, _ = _read_npy_header(handle)
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


# ----- cache

def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/nv3dmm_face_tools, else ~/.cache/nv3dmm_face_tools."""
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root / CACHE_APP_NAME


def cache_path_for(source: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache file of one face_model.npy (named after a hash of its absolute path)."""
    absolute = str(Path(source).expanduser().resolve())
    digest = hashlib.sha256(absolute.encode("utf-8")).hexdigest()[:20]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return folder / f"face_model_{digest}.v{CACHE_FORMAT_VERSION}.npz"


def _flatten(parts: Sequence[I64]) -> tuple[I64, I64]:
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in parts])
    flat = np.concatenate([p.reshape(len(p), -1) for p in parts]) if parts else np.zeros((0, 1), np.int64)
    return np.ascontiguousarray(flat, dtype=np.int64), offsets


def _unflatten(flat: I64, offsets: I64, width: int | None) -> list[I64]:
    parts = [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    if width is None:
        return [np.ascontiguousarray(p.reshape(-1)) for p in parts]
    return [np.ascontiguousarray(p.reshape(-1, width)) for p in parts]


def _source_key(source: Path) -> tuple[str, int, int]:
    stat = source.stat()
    return str(source.resolve()), int(stat.st_size), int(stat.st_mtime_ns)


def write_face_model_cache(arrays: FaceModelArrays, cache_file: Path, key: tuple[str, int, int]) -> None:
    """Write the plain-array cache atomically (temporary file + rename)."""
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, np.ndarray] = {k: getattr(arrays, k) for k in _ARRAY_KEYS}
    for ragged_key in _RAGGED_KEYS:
        flat, offsets = _flatten(getattr(arrays, ragged_key))
        payload[f"{ragged_key}__flat"] = flat
        payload[f"{ragged_key}__offsets"] = offsets
    payload["cache__version"] = np.array(CACHE_FORMAT_VERSION, dtype=np.int64)
    payload["cache__source"] = np.array(key[0])
    payload["cache__size"] = np.array(key[1], dtype=np.int64)
    payload["cache__mtime_ns"] = np.array(key[2], dtype=np.int64)
    handle, tmp_name = tempfile.mkstemp(prefix=cache_file.name + ".", suffix=".tmp", dir=cache_file.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **payload)
        os.replace(tmp_name, cache_file)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _read_stored_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an uncompressed .npz, read straight from the file.

    About three times as fast as ``np.load`` for ~100 MB (no zip-stream copy, no
    CRC pass: the cache is our own, written atomically; structural damage and
    out-of-range indices are caught by the checks after reading). Never
    unpickles (object arrays are refused). Falls back to
    ``np.load(allow_pickle=False)`` for compressed members.
    """
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
        members = archive.infolist()
        if any(info.compress_type != zipfile.ZIP_STORED for info in members):
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        for info in members:
            handle.seek(info.header_offset)
            local = handle.read(30)
            if len(local) != 30 or not local.startswith(_ZIP_MAGIC):
                raise ValueError(f"bad local header for {info.filename}")
            name_length, extra_length = struct.unpack("<HH", local[26:30])
            handle.seek(info.header_offset + 30 + name_length + extra_length)
            dtype, shape, fortran = _read_npy_header(handle)
            if dtype.hasobject:
                raise ValueError(f"{info.filename} holds Python objects")
            count = int(np.prod(shape, dtype=np.int64))
            flat = np.fromfile(handle, dtype=dtype, count=count)
            if flat.size != count:
                raise ValueError(f"{info.filename} is truncated")
            array = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
            arrays[info.filename.removesuffix(".npy")] = array
    return arrays


def read_face_model_cache(cache_file: Path, key: tuple[str, int, int]) -> FaceModelArrays | None:
    """The cached arrays if the cache exists and was made from exactly this source; else None."""
    if not cache_file.is_file():
        return None
    try:
        data = _read_stored_npz(cache_file)
        if (int(data["cache__version"]) != CACHE_FORMAT_VERSION or str(data["cache__source"]) != key[0]
                or int(data["cache__size"]) != key[1] or int(data["cache__mtime_ns"]) != key[2]):
            return None
        fields: dict[str, Any] = {k: data[k] for k in _ARRAY_KEYS}
        fields["annotation"] = _unflatten(data["annotation__flat"], data["annotation__offsets"], None)
        fields["annotation_tri"] = _unflatten(data["annotation_tri__flat"], data["annotation_tri__offsets"], 3)
        fields["parallel"] = _unflatten(data["parallel__flat"], data["parallel__offsets"], None)
    except Exception as exc:  # a damaged cache is simply rebuilt
        log.warning("ignoring the damaged face-model cache %s (%s)", cache_file, exc)
        return None
    if not _cache_shapes_ok(fields):
        log.warning("ignoring the inconsistent face-model cache %s", cache_file)
        return None
    return FaceModelArrays(**fields, source=key[0], loaded_from="cache")


def _cache_shapes_ok(f: dict[str, Any]) -> bool:
    """Cheap consistency check of cached arrays: shapes, dtypes and every index in range
    (the cache is ours, but files can be damaged; a bad index would crash the model later)."""
    try:
        n3 = f["u"].shape[0]
        n_vertices = n3 // 3
        n_tri = f["tri"].shape[0]
        shapes_ok = (
            f["u"].shape == (n3, 1) and f["id"].shape == (n3, N_ID) and f["exp"].shape == (n3, N_EXP)
            and f["u_alb"].shape == (n3, 1) and f["alb"].shape == (n3, N_ALB)
            and f["uv_coords"].shape == (n_vertices, 2) and f["point_buf"].shape[0] == n_vertices
            and f["tri"].ndim == 2 and f["tri"].shape[1] == 3 and n_tri > 0
            and all(f[k].dtype == np.float32 for k in ("u", "id", "exp", "u_alb", "alb", "uv_coords"))
            and all(f[k].dtype == np.int64 for k in ("tri", "point_buf", "ldm68", "ldm106", "ldm134"))
            and all(f[k].shape == (n,) for k, n in LANDMARK_SETS.items())
            and len(f["annotation"]) == N_PARTS and len(f["annotation_tri"]) == N_PARTS
            and len(f["parallel"]) == N_PARALLEL)
        if not shapes_ok:
            return False
        vertex_indices = [f["tri"], f["ldm68"], f["ldm106"], f["ldm134"], *f["annotation"],
                          *f["annotation_tri"], *f["parallel"]]
        return bool(all(a.size == 0 or (a.min() >= 0 and a.max() < n_vertices) for a in vertex_indices)
                    and f["point_buf"].min() >= 0 and f["point_buf"].max() <= n_tri)
    except (KeyError, AttributeError, IndexError, ValueError):
        return False


def load_face_model_arrays(path: str | os.PathLike[str],
                           cache_dir: str | os.PathLike[str] | None = None,
                           use_cache: bool = True) -> FaceModelArrays:
    """Load ``face_model.npy`` (a file, or an assets folder holding it), validated.

    The first load parses the pickle safely and writes a plain ``.npz`` cache
    into `cache_dir` (default `default_cache_dir()`); later loads read the
    cache as long as the source's path, size and modification time are
    unchanged. A cache that cannot be written only costs speed.
    """
    source = Path(path).expanduser()
    if source.is_dir():
        source = resolve_assets_folder(source) / FACE_MODEL_FILE
    if not source.is_file():
        raise AssetError(f"{source.name} is missing ({source}). Download it from {ASSET_SOURCE_HINT}.")
    try:
        key = _source_key(source)
    except OSError as exc:
        raise AssetError(f"{source.name} cannot be read ({exc.strerror}).") from exc
    cache_file: Path | None = None
    if use_cache:
        try:
            cache_file = cache_path_for(source, cache_dir)
        except (OSError, RuntimeError) as exc:   # e.g. no home folder to put the default cache in
            log.warning("no face-model cache (%s); loading stays slow", exc)
    if cache_file is not None:
        cached = read_face_model_cache(cache_file, key)
        if cached is not None:
            return cached
    started = time.perf_counter()
    arrays = face_model_arrays_from_dict(unpickle_face_model_dict(source), key[0], loaded_from="pickle")
    log.info("parsed %s in %.2f s", source, time.perf_counter() - started)
    if cache_file is not None:
        try:
            write_face_model_cache(arrays, cache_file, key)
        except OSError as exc:
            log.warning("could not write the face-model cache %s (%s); loading stays slow", cache_file, exc)
    return arrays
