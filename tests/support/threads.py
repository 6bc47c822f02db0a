"""Threads released together, for the races the record store and the ledger must survive."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from shared.errors import AppError


def concurrently(count: int, action: Callable[[int], object]) -> list[AppError | None]:
    """Run `action(i)` for i in range(count) on `count` threads released together; each
    outcome is None or the AppError it raised (any other exception is raised here)."""
    barrier = threading.Barrier(count)

    def one(index: int) -> AppError | None:
        barrier.wait()
        try:
            action(index)
        except AppError as error:
            return error
        return None

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))
