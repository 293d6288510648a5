#!/usr/bin/env bash
# Installs what the tests need into .venv, type-checks the add-on with mypy
# against the fake-bpy-module stubs, then runs the whole pytest suite
# (format, reconstruction and real-bpy Blender tests).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# The bpy stubs are fake-bpy-module-4.2 (the add-on's minimum Blender). The
# latest-Blender distribution, fake-bpy-module, writes the same bpy-stubs folders:
# a .venv that has it gets both removed and the 4.2 stubs installed afresh.
if [ -x .venv/bin/python ] && .venv/bin/python -m pip show fake-bpy-module >/dev/null 2>&1; then
  .venv/bin/python -m pip uninstall -y -q fake-bpy-module fake-bpy-module-4.2
fi
bash tools/bootstrap.sh requirements-test.txt
echo "== mypy"
.venv/bin/python -m mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
