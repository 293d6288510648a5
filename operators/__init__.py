# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Operators: thin wrappers that read their properties into an options value,
call one bridge function, and report the outcome."""
