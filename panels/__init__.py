# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sidebar panels of the add-on (3D View > Sidebar > Face): settings on the scene and a button to their operator.
May import bpy, the bridge, preferences and the operators; never the core or installer."""
