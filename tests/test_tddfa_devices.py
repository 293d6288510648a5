# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Device choice (issue 11's Apple Silicon part): Auto picks CUDA, then MPS, then the CPU;
an explicit MPS without one fails clearly; MPS failures count as GPU failures, so the
CPU fallback covers them. torch's availability checks are stood in for (no GPU here)."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is needed for device choice")

from tddfa_v3 import devices  # noqa: E402
from tddfa_v3.errors import DeviceError  # noqa: E402


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


def test_the_bridge_knows_the_mps_device_and_its_failures() -> None:
    import importlib
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    if "nv3dmm_face_tools" not in sys.modules:
        pytest.importorskip("bpy", reason="the bridge needs the bpy module")
        spec = importlib.util.spec_from_file_location(
            "nv3dmm_face_tools", root / "__init__.py", submodule_search_locations=[str(root)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["nv3dmm_face_tools"] = module
        spec.loader.exec_module(module)
    bridge = importlib.import_module("nv3dmm_face_tools.bridge.reconstruction")
    assert bridge.DEVICES["MPS"] == "mps"
    assert bridge.is_gpu_failure(RuntimeError("MPS backend out of memory"))
    preferences = importlib.import_module("nv3dmm_face_tools.preferences")
    assert [item[0] for item in preferences.DEVICE_ITEMS] == list(bridge.DEVICES)
