"""Timing helpers: per-call cost in process, wall time of fresh interpreters, medians."""

from __future__ import annotations

import gc
import json
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

REPORT_MARK = "BENCH-CHILD-REPORT "  # children print one line starting with this


@dataclass(frozen=True)
class PerCall:
    """Microseconds per call: the median over batches (the spread is the min and max batch)."""

    median_us: float
    min_us: float
    max_us: float
    iterations: int


def per_call(
    call: Callable[[int], object], iterations: int, *, batches: int = 5, warmup: int = 20
) -> PerCall:
    """Call `call(i)` `iterations` times in `batches`; GC stays on, as it does in production."""
    batches = max(1, min(batches, iterations))
    for i in range(min(warmup, iterations)):
        call(i)
    gc.collect()
    size = max(1, iterations // batches)
    samples: list[float] = []
    index = 0
    for _ in range(batches):
        started = time.perf_counter_ns()
        for _ in range(size):
            call(index)
            index += 1
        samples.append((time.perf_counter_ns() - started) / size / 1000)
    return PerCall(statistics.median(samples), min(samples), max(samples), size * batches)


@dataclass(frozen=True)
class ChildRun:
    wall_ms: float  # spawn to exit, measured by the parent
    report: dict[str, Any]  # what the child printed after REPORT_MARK


def run_child(
    argv: Sequence[str], env: Mapping[str, str], *, cwd: str | None = None, timeout: float = 60
) -> ChildRun:
    """Spawn a fresh interpreter, time it from the outside, and read its one-line JSON report."""
    started = time.perf_counter()
    done = subprocess.run(
        list(argv),
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    wall_ms = (time.perf_counter() - started) * 1000
    stdout = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace")[-2000:]
        raise RuntimeError(f"{argv[-1][:80]!r} exited {done.returncode}: {tail}")
    report: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith(REPORT_MARK):
            report = json.loads(line[len(REPORT_MARK) :])
    return ChildRun(wall_ms, report)


def median_runs(
    argv: Sequence[str], env: Mapping[str, str], runs: int, *, cwd: str | None = None
) -> tuple[float, list[ChildRun]]:
    """Median wall time (ms) of `runs` fresh interpreters, plus every run for its report."""
    results = [run_child(argv, env, cwd=cwd) for _ in range(max(1, runs))]
    return statistics.median(r.wall_ms for r in results), results
