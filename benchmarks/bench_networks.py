# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Forward time of each 3DDFA-V3 network, memory layouts and BatchNorm folding side by side.

    .venv/bin/python benchmarks/bench_networks.py [--device cpu|cuda] [--threads N]
        [--batch N] [--repeat N] [--kinds recon_resnet50,recon_mbnetv3,landmark106,retinaface]

For every network (synthetic weights from our own modules, the real layouts)
prints the best and median time of a forward pass at B = 1 and at the given
batch, for three variants measured in one run: NCHW weights, channels-last
weights (the `load_network` default) and channels-last with BatchNorm folded
(`fuse_bn=True`); ratios are relative to NCHW. Also prints the largest output
difference of each variant from the NCHW one. On CUDA, TF32 is off (the
reference numbers are float32) and times are synchronised.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))  # to import checkout_addon
from checkout_addon import import_checkout  # noqa: E402

import torch  # noqa: E402

import_checkout()
from nv3dmm_face_tools.tddfa_v3.networks import NETWORK_KINDS, load_network  # noqa: E402
from nv3dmm_face_tools.tddfa_v3.synthetic import synthetic_network_state_dict  # noqa: E402

INPUT_SIZE = {"recon_resnet50": 224, "recon_mbnetv3": 224, "landmark106": 224, "retinaface": 512}
VARIANTS: dict[str, dict[str, bool]] = {
    "nchw": {"channels_last": False, "fuse_bn": False},
    "channels_last": {"channels_last": True, "fuse_bn": False},
    "channels_last+fused": {"channels_last": True, "fuse_bn": True},
}


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def _time(fn: Callable[[], Any], repeat: int, sync: Callable[[], None]) -> tuple[float, float]:
    fn()
    fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[0], times[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--batch", type=int, default=0, help="batched size (default: 8 on CPU, 64 on CUDA)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--kinds", default=",".join(NETWORK_KINDS))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("CUDA is not available")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    sync: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    batch = args.batch or (64 if device.type == "cuda" else 8)
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else f'{args.threads} threads'}), "
          f"torch {torch.__version__}")

    for kind in args.kinds.split(","):
        weights = synthetic_network_state_dict(kind, seed=1)
        size = INPUT_SIZE[kind]
        nets = {name: load_network(kind, weights, device=device, **options) for name, options in VARIANTS.items()}
        for count in (1, batch):
            x = torch.rand(count, 3, size, size, device=device)
            results: dict[str, tuple[float, float]] = {}
            with torch.inference_mode():
                reference = _first(nets["nchw"](x)).float()
                for name, net in nets.items():
                    results[name] = _time(lambda: net(x), args.repeat, sync)
                    diff = float((_first(net(x)).float() - reference).abs().max())
                    base = results["nchw"][0]
                    best, median = results[name]
                    print(f"{kind:15s} B={count:<4d} {name:20s} best {best * 1e3:8.1f} ms  median {median * 1e3:8.1f} ms"
                          f"  {count / best:8.1f} img/s  x{base / best:4.2f} vs nchw  max|diff| {diff:.1e}")
        del nets


if __name__ == "__main__":
    main()
