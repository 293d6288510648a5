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
# Blender's actions changed in 4.4 (layered, slots) and again in 5.0: the keyframe
# tests also run on the oldest supported Blender, the bpy 4.2 module, in its own venv.
echo "== pytest, Blender 4.2 (keyframes and Live Link Face)"
VENV=.venv-bpy42 bash tools/bootstrap.sh requirements-bpy42.txt
.venv-bpy42/bin/python -m pytest -q -p no:cacheprovider tests/blender/test_animation_blender.py
# Blender 5.1 and later run Python 3.13 with numpy 2 (4.2-5.0: numpy 1, as .venv): the
# Blender-free layers' numpy-level tests (format, core, installer) also run under numpy 2 in
# .venv-np2 (no bpy there; Blender tests skip). Creating it took 2.4 min here (then pip skips
# it: 5 s); the tests ~53 s of CPU.
echo "== pytest, numpy 2 (Blender-free layers)"
VENV=.venv-np2 bash tools/bootstrap.sh requirements-np2.txt
.venv-np2/bin/python -m pytest -q -p no:cacheprovider -m "not blender" \
  tests/format/test_nvf_codec.py tests/format/test_nvf_hostile.py tests/format/test_nvf_topology.py \
  tests/format/test_nvf_samples.py tests/format/test_nvf_atomic.py \
  tests/core/test_tddfa_assets.py tests/core/test_tddfa_preprocess.py tests/core/test_tddfa_face_model.py \
  tests/core/test_tddfa_detection.py tests/core/test_tddfa_devices.py tests/core/test_animation.py \
  tests/core/test_installer.py tests/core/test_installer_download.py tests/test_layers.py
echo "== pytest"
.venv/bin/python -m pytest "$@"
