# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""NVIDIA's own .nvf reader and writer, for tests: the judge of what we write.

The harness lives outside the repository (../shared/tools/nvidia-faceio: NVIDIA's
unmodified FaceIO.cpp with a small driver; not ours to redistribute). .ci/run names
its folder in NVIDIA_FACEIO; the `nvidia_faceio` fixture (tests/conftest.py) builds
it once per session with g++ and skips, saying why, without the folder or a compiler.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def _status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


@dataclass(frozen=True)
class NvidiaFaceIO:
    """A built nvf_check binary and the folder it came from."""

    tool_dir: Path
    binary: Path

    @classmethod
    def build(cls, tool_dir: Path, build_dir: Path) -> "NvidiaFaceIO":
        if shutil.which("g++") is None:
            raise FileNotFoundError("no C++ compiler (g++) to build NVIDIA's reader")
        run = subprocess.run(["bash", str(tool_dir / "build.sh"), str(build_dir)],
                             capture_output=True, text=True, timeout=600)
        if run.returncode != 0:
            raise RuntimeError(f"building NVIDIA's reader failed:\n{run.stderr[-4000:]}")
        return cls(tool_dir, Path(run.stdout.split()[-1]))

    def read(self, path: Path | str, adapter: str = "full") -> dict[str, Any]:
        """NVIDIA's reader's JSON summary of `path`; AssertionError when it fails or crashes."""
        run = subprocess.run([str(self.binary), "read", "--adapter", adapter, str(path)],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, (
            f"NVIDIA's reader ({adapter} adapter) failed on {path}: {_status(run.returncode)}; "
            f"{run.stderr.strip()[-2000:]}")
        summary: dict[str, Any] = json.loads(run.stdout)
        return summary

    def check(self, path: Path | str) -> dict[str, Any]:
        """Reads `path` through both adapters (ours and NVIDIA's SimpleFaceModelAdapter)
        and checks that NVIDIA's data equals io_nv3dmm's (counts and checksums of every
        array, name, landmark and partition). Returns the full adapter's summary."""
        summary = self.read(path, "full")
        self.read(path, "nvidia")
        run = subprocess.run(
            [sys.executable, str(self.tool_dir / "compare_io_nv3dmm.py"), "--project", str(REPO_ROOT),
             "--bin", str(self.binary), str(path)],
            capture_output=True, text=True, timeout=300)
        assert run.returncode == 0 and run.stdout.startswith("SAME"), (
            f"NVIDIA's reader and io_nv3dmm disagree on {path} ({_status(run.returncode)}):\n"
            f"{run.stdout.strip()[-3000:]}\n{run.stderr.strip()[-2000:]}")
        return summary

    def time(self, path: Path | str, repeats: int, adapter: str = "full") -> str:
        """The harness's `time` output (min/median/max µs of N reads and N writes)."""
        run = subprocess.run([str(self.binary), "time", "--adapter", adapter, str(path), str(repeats)],
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, f"nvf_check time failed: {_status(run.returncode)} {run.stderr}"
        return run.stdout
