# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""One job off Blender's main thread (`WorkerJob`), shared by the photo reconstruction
and the video tracking.

The job's body (`_work`) runs on a daemon thread (`start`: Blender may quit while it
runs) or on this one (`run`); it never touches bpy. Its result, or its error, is held
by a `concurrent.futures.Future`; progress goes through `messages`. The main thread
polls `drain()` on a timer: the messages posted so far, then, once the run has ended,
exactly one final message made from the future (`_final`). Esc calls `cancel()`,
which the body polls (`cancel_requested`). Standard library only; no bpy.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Generic, TypeVar

ResultT = TypeVar("ResultT")
MessageT = TypeVar("MessageT")


class WorkerJob(Generic[ResultT, MessageT]):
    """A job whose body runs once, on a daemon thread or on the caller's."""

    #: The worker thread's name (shown by debuggers and in thread dumps).
    thread_name = "nv3dmm worker"

    def __init__(self) -> None:
        self.messages: queue.SimpleQueue[MessageT] = queue.SimpleQueue()
        self.future: Future[ResultT] = Future()
        self.thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._reported = False

    # -- to implement
    def _work(self) -> ResultT:
        """The job's body (worker thread; no bpy): its result, or an error raised."""
        raise NotImplementedError

    def _final(self) -> MessageT:
        """The one final message, made from `future` once the run has ended."""
        raise NotImplementedError

    # -- main-thread side
    def start(self) -> threading.Thread:
        """Run the job on a new daemon thread."""
        self.thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self.thread.start()
        return self.thread

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        return self.future.done()

    def drain(self) -> list[MessageT]:
        """Every message posted so far, oldest first, and once the run has ended its one
        final message last (never blocks)."""
        ended = self.future.done()     # read first: every message of the run is queued by then
        drained: list[MessageT] = []
        while True:
            try:
                drained.append(self.messages.get_nowait())
            except queue.Empty:
                break
        if ended and not self._reported:
            self._reported = True
            drained.append(self._final())
        return drained

    # -- worker side
    def run(self) -> None:
        """Run the body on this thread; its result or error goes to `future`. Never raises."""
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self._work()
        except BaseException as error:  # noqa: BLE001 - every failure is reported
            self.future.set_exception(error)
        else:
            self.future.set_result(result)
