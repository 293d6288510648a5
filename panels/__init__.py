# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sidebar panels of the add-on (3D View > Sidebar > Face)."""
