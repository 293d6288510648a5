# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Compute devices: the one table of device names, choosing a device, telling a GPU
failure from other errors, and the one GPU-to-CPU fallback (`with_cpu_fallback`).

Imports only the standard library and `tddfa_v3.errors` at load time (torch lazily,
inside the functions that need a torch device), so the bridge and the add-on's
preferences may import it without PyTorch installed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from .errors import Cancelled, DeviceError, ReconstructionError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Device:
    """One compute device choice and every name it goes by."""

    name: str          # the core's and the command line's name ("auto", "cuda", ...)
    identifier: str    # the Blender enum identifier (operators, preferences, panels)
    label: str         # the UI label
    description: str


#: Every device choice, the default ("auto") first.
DEVICE_TABLE: tuple[Device, ...] = (
    Device("auto", "AUTO", "Auto", "The GPU (CUDA, else Apple Silicon's MPS) when there is one, else the CPU; "
                                   "retries on the CPU if the GPU fails"),
    Device("cuda", "CUDA", "CUDA", "An NVIDIA GPU through CUDA"),
    Device("mps", "MPS", "MPS", "An Apple Silicon GPU through Metal (MPS)"),
    Device("cpu", "CPU", "CPU", "The processor (slower, always works)"),
)

#: The device names the core accepts, in table order.
DEVICES: tuple[str, ...] = tuple(d.name for d in DEVICE_TABLE)
DEFAULT_DEVICE = DEVICE_TABLE[0].name
#: Device names by Blender enum identifier ({"AUTO": "auto", ...}).
DEVICE_BY_IDENTIFIER: dict[str, str] = {d.identifier: d.name for d in DEVICE_TABLE}

#: Words in an error's text that mark a GPU (driver, library or memory) failure.
_GPU_WORDS = ("CUDA", "cuDNN", "CUBLAS", "cublas", "NCCL", "MPS")


def enum_items() -> list[tuple[str, str, str]]:
    """Blender EnumProperty items (identifier, label, description) of every device."""
    return [(d.identifier, d.label, d.description) for d in DEVICE_TABLE]


def resolve_device(device: str) -> "torch.device":
    """"auto" -> CUDA when available, else Apple Silicon's MPS, else the CPU; "cuda" and
    "mps" fail clearly (DeviceError) without that GPU."""
    from .dependencies import require_torch

    torch = require_torch()
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    if device == "cpu":
        return torch.device("cpu")
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if device == "cuda":
        raise DeviceError("CUDA was asked for, but this PyTorch sees no CUDA GPU "
                          f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}); choose Auto or CPU")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    if device == "mps":
        raise DeviceError("MPS was asked for, but this PyTorch sees no Apple Silicon GPU "
                          f"(torch {torch.__version__}); choose Auto or CPU")
    return torch.device("cpu")


def describe_device(device: "torch.device") -> str:
    """A readable device description, e.g. "CUDA (NVIDIA H100 80GB HBM3)" or "CPU"."""
    if device.type == "cuda":
        from .dependencies import require_torch

        return f"CUDA ({require_torch().cuda.get_device_name(device)})"
    if device.type == "mps":
        return "MPS (Apple Silicon GPU)"
    return "CPU"


def set_tf32(enabled: bool) -> None:
    """Allow or forbid TF32 in CUDA matmuls and cuDNN convolutions (process-wide torch flags).

    Off, float32 results match the CPU to ~1e-6; on, they move by ~1e-2 px.
    Sets the ``allow_tf32`` flags: torch maps them onto its newer per-backend
    ``fp32_precision`` settings, while setting those directly would make later
    reads of ``allow_tf32`` (by other code in the process) raise.
    """
    from .dependencies import require_torch

    torch = require_torch()
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def is_gpu_failure(error: BaseException) -> bool:
    """True for CUDA out-of-memory, other CUDA / cuDNN / cuBLAS / MPS failures and
    `DeviceError`, anywhere in the cause chain (torch's errors matched by name and
    text: torch is not imported here). The core's other errors are not GPU failures
    by their text, only by what they were raised from."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DeviceError) or type(current).__name__ == "OutOfMemoryError":
            return True   # torch.cuda.OutOfMemoryError
        # Our own errors' texts name photos and files ("No face found in JUMPS.jpg"): only
        # what they were raised from counts.
        if not isinstance(current, ReconstructionError) and any(word in str(current) for word in _GPU_WORDS):
            return True   # RuntimeError("CUDA error: ..."), NotImplementedError("... MPS device"), ...
        current = current.__cause__ or current.__context__
    return False


def first_line(error: BaseException) -> str:
    """The first line of an error's message (its type name when it has none)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def free_gpu_memory() -> None:
    """Forget the core's loaded networks and hand torch's cached GPU memory back
    (before a CPU retry). Best effort: never raises, imports nothing new."""
    try:
        loaded = sys.modules.get(__name__.rpartition(".")[0] + ".loaded")
        if loaded is not None:
            loaded.clear_cache()
        torch: Any = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort before the CPU retry
        pass


def with_cpu_fallback(attempt: Callable[[str], T], device: str, *,
                      on_retry: Callable[[str], None] | None = None, fallback: bool = True) -> T:
    """`attempt(device)`; on a GPU failure (see `is_gpu_failure`), `attempt("cpu")` once.

    The retry happens only for device "auto" (and `fallback`): it first calls
    `on_retry(message)` and `free_gpu_memory()`. Any other device (or `fallback`
    False) turns the GPU failure into a `DeviceError` saying what to choose.
    Cancellation and errors that are not the GPU's pass through unchanged.
    """
    try:
        return attempt(device)
    except BaseException as error:  # noqa: BLE001 - re-raised unless it is the GPU's
        if isinstance(error, Cancelled) or not is_gpu_failure(error):
            raise
        if device != "auto" or not fallback:
            raise DeviceError(f"the GPU failed ({first_line(error)}); choose the CPU or Auto device, "
                              "or close other programs using the GPU") from error
        if on_retry is not None:
            on_retry(f"The GPU failed ({first_line(error)}); retrying on the CPU")
        free_gpu_memory()
    return attempt("cpu")
