# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every long-running modal operator shows while its worker runs: the status-bar
text, the window's progress, and redraws of the sidebars and preferences that show
its state. One home for the reconstruct, Maxine-model, video and installer operators."""

from __future__ import annotations

from bpy.types import Context, Timer


def redraw(context: Context) -> None:
    """Tags every 3D View (the sidebar panels) and Preferences area of every window."""
    wm = context.window_manager
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in ('VIEW_3D', 'PREFERENCES'):
                area.tag_redraw()


def show(context: Context, text: str | None, fraction: float | None = None) -> None:
    """Status-bar text (None clears it), the window's progress (0-1) when given, and a redraw."""
    if context.workspace is not None:
        context.workspace.status_text_set(text)
    if fraction is not None and context.window_manager is not None:
        context.window_manager.progress_update(int(100 * fraction))
    redraw(context)


def end(context: Context, timer: Timer | None, *, progress: bool = True) -> None:
    """Removes the operator's timer, ends the window's progress (when it began one) and
    clears the status text."""
    wm = context.window_manager
    if wm is not None:
        if timer is not None:
            wm.event_timer_remove(timer)
        if progress:
            wm.progress_end()
    show(context, None)
