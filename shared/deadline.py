"""Blocking calls with a hard deadline: OSS waits at most 5 s for the callback answer.

Calls run on a small pool of long-lived daemon threads. When the deadline passes the caller gets
`Unavailable` at once; a call still queued is dropped, a call already running is left to finish
on its own (its dependency has its own, shorter timeouts). The pool is bounded, so a hanging
dependency cannot pile up threads, and long-lived workers keep per-thread resources (SQLite
connections) bounded too. Daemon threads never hold up interpreter exit, unlike
`concurrent.futures` workers.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from shared.errors import Unavailable

T = TypeVar("T")


class _Job(Generic[T]):
    def __init__(self, call: Callable[[], T]) -> None:
        self.call = call
        self.done = threading.Event()
        self.abandoned = False
        self.value: list[T] = []
        self.error: list[BaseException] = []

    def run(self) -> None:
        if self.abandoned:
            return
        try:
            self.value.append(self.call())
        except BaseException as exc:  # handed to the caller
            self.error.append(exc)
        finally:
            self.done.set()


class DeadlinePool:
    """Run calls on at most `workers` daemon threads, each caller waiting at most its deadline."""

    def __init__(self, name: str, workers: int = 8) -> None:
        self._name = name
        self._workers = workers
        self._jobs: queue.SimpleQueue[_Job[object]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = 0

    def call(self, call: Callable[[], T], seconds: float, *, what: str) -> T:
        """Return `call()`, re-raise what it raised, or raise Unavailable after `seconds`."""
        job: _Job[T] = _Job(call)
        self._ensure_worker()
        self._jobs.put(job)  # type: ignore[arg-type]
        if not job.done.wait(seconds):
            job.abandoned = True
            raise Unavailable(f"{what} did not answer within {seconds:g} s")
        if job.error:
            raise job.error[0]
        return job.value[0]

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._started >= self._workers:
                return
            self._started += 1
            number = self._started
        threading.Thread(target=self._work, name=f"{self._name}-{number}", daemon=True).start()

    def _work(self) -> None:
        while True:
            self._jobs.get().run()
