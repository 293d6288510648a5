# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Builds the extension zip with Blender's own extension builder, the one
`blender --command extension build` runs, taken from the `bpy` module in
.venv, so no Blender binary is needed. The zip is the same: the builder reads
blender_manifest.toml (its [build] paths_exclude_pattern decides what ships).

    .venv/bin/python tools/build_extension.py            # -> build/nv3dmm_face_tools-<version>.zip
    .venv/bin/python tools/build_extension.py --output-dir DIR
    .venv/bin/python tools/build_extension.py --validate  # also validate the manifest and the zip

Prints the zip's path as the last line. Exit status 0 when built, 1 when the
builder refused (its message is shown), 2 when the builder cannot be found.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class BuilderNotFound(Exception):
    pass


def blender_builder() -> Path:
    """The path of Blender's extension builder (bl_pkg/cli/blender_ext.py) in the bpy module."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise BuilderNotFound(
            "the bpy module is not installed in this Python: run `bash tools/demo.sh` (or "
            "`bash tools/bootstrap.sh`) and use .venv/bin/python, or build with a Blender binary: "
            "`blender --command extension build --output-dir build`")
    found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise BuilderNotFound(
            f"the bpy module at {Path(spec.origin).parent} has no extension builder "
            "(*/scripts/addons_core/bl_pkg/cli/blender_ext.py); build with a Blender binary: "
            "`blender --command extension build --output-dir build`")
    return found[-1]


def build(output_dir: Path, validate: bool = False) -> Path:
    """Builds the zip into output_dir and returns its path; RuntimeError with the builder's output."""
    tool = blender_builder()
    output_dir.mkdir(parents=True, exist_ok=True)
    if validate:
        _run(tool, "validate", str(REPO_ROOT))
    before = {path: path.stat().st_mtime_ns for path in output_dir.glob("*.zip")}
    out = _run(tool, "build", "--source-dir", str(REPO_ROOT), "--output-dir", str(output_dir))
    made = [path for path in output_dir.glob("*.zip")
            if path not in before or path.stat().st_mtime_ns != before[path]]
    if len(made) != 1:
        raise RuntimeError(f"Blender's builder did not report one new zip in {output_dir}:\n{out}")
    if validate:
        _run(tool, "validate", str(made[0]))
    return made[0]


def _run(tool: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, str(tool), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"Blender's extension tool failed ({' '.join(args[:1])}):\n"
                           f"{result.stdout}{result.stderr}".rstrip())
    return result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "build",
                        help="folder for the zip (default: build/ in the repository)")
    parser.add_argument("--validate", action="store_true",
                        help="also run Blender's validation on the manifest and the zip")
    args = parser.parse_args(argv)
    try:
        path = build(args.output_dir.resolve(), validate=args.validate)
    except BuilderNotFound as error:
        print(f"build_extension: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"build_extension: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
