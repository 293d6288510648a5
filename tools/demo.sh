#!/usr/bin/env bash
# Installs the runtime into .venv, builds the embedded demo face model, writes
# it as .nvf, imports it headless with the add-on, and saves out/demo.blend and
# a Cycles render out/demo.png.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash tools/bootstrap.sh requirements.txt
.venv/bin/python tools/demo.py --out "${1:-out}"
