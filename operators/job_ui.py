# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every long-running modal operator shares: running synchronously when there is no
window, starting the timer and progress, the modal event dispatch (Esc, timer ticks), the
status-bar text, the window's progress, and redraws of the sidebars and preferences that show
its state. One home for the reconstruct, Maxine-model, video and installer operators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import bpy
from bpy.types import Context, Event, Operator, Timer

from .properties import OperatorResult


@dataclass
class RunState:
    """What an interactive run is doing (its stage and 0-1 progress), for its panel to draw."""

    stage: str = ""
    fraction: float = 0.0
    running: bool = False

    def begin(self) -> None:
        self.running, self.stage, self.fraction = True, "starting", 0.0

    def reset(self) -> None:
        self.running, self.stage, self.fraction = False, "", 0.0

    def status(self, doing: str) -> str:
        """The status-bar text: "<doing>: <stage> <percent>%  (Esc to cancel)"."""
        return f"{doing}: {self.stage} {int(100 * self.fraction)}%  (Esc to cancel)"

    def panel_text(self) -> str:
        """The panel's line while the run goes on."""
        return f"{self.stage}: {int(100 * self.fraction)}%  (Esc cancels)"


def interactive(context: Context) -> bool:
    """Whether an operator can run modally here: not background mode, a window to draw in."""
    return not bpy.app.background and context.window is not None and context.window_manager is not None


def begin(context: Context, operator: Operator, *, interval: float = 0.1, progress: bool = True) -> Timer | None:
    """Starts `operator`'s modal run: a timer ticking every `interval` seconds, the window's
    progress (when `progress`) and the modal handler. Returns the timer for `end`."""
    wm = context.window_manager
    if wm is None:
        return None
    timer = wm.event_timer_add(interval, window=context.window)
    if progress:
        wm.progress_begin(0, 100)
    wm.modal_handler_add(operator)
    return timer


class Worker(Protocol):
    """What a modal operator's background job offers: a cancel request."""

    def cancel(self) -> None: ...


class ModalJob(Operator):
    """The base of the modal job operators (never registered itself). `invoke` runs `execute`
    when there is no window (scripts, background mode), refuses a second run of the same kind
    (`_already_running`: the error `_busy`), else calls `_start`, which checks the inputs and
    `_launch`es the worker. `modal` hands Esc to `_on_escape` and timer ticks to `_on_tick` and lets
    every other event through; `cancel` (Blender ending the operator: file load, quit) asks
    `_worker` to stop and tidies up (`_finish`: the run's state `_run`, the timer, the
    window's progress when `_progress`, the status text). `_show_status` shows `_run` in the
    status bar as "<_doing>: <stage> <percent>%"."""

    _worker: Worker | None = None
    _timer: Timer | None = None
    _progress = True
    _run: RunState | None = None
    _doing = ""
    _busy = ""

    def _is_running(self) -> bool:
        return self._run is not None and self._run.running

    def _busy_message(self) -> str:
        return self._busy

    def _already_running(self) -> bool:
        """True, with an error report, while another run of this kind goes on."""
        if self._is_running():
            self.report({'ERROR'}, self._busy_message())
            return True
        return False

    def invoke(self, context: Context, event: Event) -> OperatorResult:
        return self._run_modal(context)

    def _run_modal(self, context: Context) -> OperatorResult:
        if not interactive(context):
            return self.execute(context)
        if self._already_running():
            return {'CANCELLED'}
        return self._start(context)

    def _start(self, context: Context) -> OperatorResult:
        """Checks the inputs and `_launch`es the worker (or reports why not)."""
        raise NotImplementedError

    def _launch(self, context: Context, worker: Worker, *, interval: float = 0.1) -> OperatorResult:
        """Goes modal with `worker` (started): the run's state, a timer every `interval` seconds,
        the window's progress when `_progress`, the status text."""
        self._worker = worker
        if self._run is not None:
            self._run.begin()
        self._timer = begin(context, self, interval=interval, progress=self._progress)
        self._show_status(context)
        return {'RUNNING_MODAL'}

    def _on_escape(self, context: Context) -> OperatorResult:
        raise NotImplementedError

    def _on_tick(self, context: Context) -> OperatorResult:
        raise NotImplementedError

    def _show_status(self, context: Context) -> None:
        if self._run is not None:
            show(context, self._run.status(self._doing))

    def _reset_state(self) -> None:
        """Marks the run's state (what the panel draws) as not running."""
        if self._run is not None:
            self._run.reset()

    def _finish(self, context: Context) -> None:
        self._reset_state()
        end(context, self._timer, progress=self._progress)
        self._timer = None

    def modal(self, context: Context, event: Event) -> OperatorResult:
        if event.type == 'ESC' and event.value == 'PRESS':
            return self._on_escape(context)
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        return self._on_tick(context)

    def cancel(self, context: Context) -> None:
        # Blender ends the operator (file load, quit): stop the worker, drop its result.
        if self._worker is not None:
            self._worker.cancel()
        self._finish(context)


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
