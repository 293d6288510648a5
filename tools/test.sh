#!/usr/bin/env bash
# Installs what the tests need into .venv, type-checks the add-on with mypy
# against the fake-bpy-module stubs, then runs the whole pytest suite
# (format, reconstruction and real-bpy Blender tests).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash tools/bootstrap.sh requirements-test.txt
echo "== mypy"
.venv/bin/python -m mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
