# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Operators: thin wrappers that read their properties into the bridge's options, call one bridge function and report.
May import bpy, the bridge, preferences and UI siblings; installer only in the installer UI (installer.py)."""
