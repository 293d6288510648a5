# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Device choice (issue 11's Apple Silicon part): Auto picks CUDA, then MPS, then the CPU;
an explicit MPS without one fails clearly; MPS failures count as GPU failures, so the
CPU fallback covers them. torch's availability checks are stood in for (no GPU here)."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is needed for device choice")

from nv3dmm_face_tools.tddfa_v3 import devices  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.errors import DeviceError  # noqa: E402


@pytest.fixture()
def gpus(monkeypatch: pytest.MonkeyPatch) -> Any:
    def set_available(cuda: bool, mps: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    return set_available


@pytest.mark.parametrize("cuda, mps, requested, expected", [
    (True, True, "auto", "cuda"),
    (False, True, "auto", "mps"),
    (False, False, "auto", "cpu"),
    (True, True, "mps", "mps"),
    (True, True, "cpu", "cpu"),
    (True, False, "cuda", "cuda"),
])
def test_auto_picks_cuda_then_mps_then_cpu(gpus: Any, cuda: bool, mps: bool, requested: str,
                                           expected: str) -> None:
    gpus(cuda, mps)
    assert devices.resolve_device(requested).type == expected


def test_an_explicit_mps_without_one_says_so(gpus: Any) -> None:
    gpus(False, False)
    with pytest.raises(DeviceError, match="MPS was asked for.*choose Auto or CPU"):
        devices.resolve_device("mps")
    with pytest.raises(ValueError, match="auto, cuda, mps, cpu"):
        devices.resolve_device("metal")


@pytest.mark.parametrize("error, gpu", [
    (NotImplementedError("The operator 'aten::grid_sampler_2d_backward' is not currently implemented for the "
                         "MPS device."), True),
    (TypeError("Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support float64."),
     True),
    (RuntimeError("MPS backend out of memory (MPS allocated: 9.5 GB)"), True),
    (RuntimeError("CUDA error: an illegal memory access was encountered"), True),
    (RuntimeError("shape mismatch"), False),
    (TypeError("bad argument"), False),
])
def test_mps_failures_are_device_failures(error: BaseException, gpu: bool) -> None:
    assert devices.is_gpu_failure(error) is gpu
