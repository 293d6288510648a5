# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run an install or a download on a worker thread for a UI to poll.

The UI's timer reads `latest` (the newest Progress) and `done`, asks for
`cancel()`, and takes the outcome with `result()`. The job receives `progress`
and `cancel` callables; it must stop (raising Cancelled) soon after `cancel`
turns true.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Generic, TypeVar

from .progress import CancelCheck, Progress, ProgressCallback

_T = TypeVar("_T")


class Task(Generic[_T]):
    """One background job with its latest progress and a cancel flag."""

    def __init__(self, job: Callable[[ProgressCallback, CancelCheck], _T], name: str = "installer") -> None:
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._latest = Progress("starting")
        self._events = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"nv3dmm-{name}")
        self._future: Future[_T] = self._executor.submit(job, self._on_progress, self._cancel.is_set)
        self._executor.shutdown(wait=False)

    def _on_progress(self, event: Progress) -> None:
        with self._lock:
            self._latest = event
            self._events += 1

    @property
    def latest(self) -> Progress:
        with self._lock:
            return self._latest

    @property
    def events(self) -> int:
        """How many progress events the job has sent."""
        with self._lock:
            return self._events

    @property
    def done(self) -> bool:
        return self._future.done()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def result(self, timeout: float | None = None) -> _T:
        """The job's return value, or its exception raised here."""
        return self._future.result(timeout)

    def error(self) -> BaseException | None:
        """The exception the job ended with (only once done)."""
        return self._future.exception(0) if self._future.done() else None
