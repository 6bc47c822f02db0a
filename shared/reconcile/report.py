"""What a whole-bucket audit run tells: its Report (counts and capped key lists) and the Progress
bar `make reconcile RECONCILE_ARGS="--full --progress"` draws on stderr while it runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

MAX_LISTED_KEYS = 100  # keys named per category in a report; counts are always complete


class Tally:
    """Counting by category, for the audit's Report and the sweeper's: counts are complete, the
    keys of a category named up to MAX_LISTED_KEYS. Its subclass holds `counts` and `deferred`
    and says where a category's names go."""

    counts: dict[str, int]
    deferred: int

    def names(self, category: str) -> list[str]:
        raise NotImplementedError

    def note(self, category: str, key: str) -> None:
        """Count `key` under `category` and name it while the list is short."""
        self.counts[category] = self.counts.get(category, 0) + 1
        names = self.names(category)
        if len(names) < MAX_LISTED_KEYS:
            names.append(key)

    def count(self, category: str) -> int:
        return self.counts.get(category, 0)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0 and self.deferred == 0


@dataclass
class Report(Tally):
    """What a run saw and did; counts are complete, key lists capped at MAX_LISTED_KEYS."""

    prefix: str
    dry_run: bool
    watermark_before: int | None = None
    watermark_after: int | None = None
    listed: int = 0
    skipped_old: int = 0
    young: int = 0
    checked: int = 0
    present: int = 0
    recorded: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)  # no grant of ours: never recorded
    rejected: list[str] = field(default_factory=list)  # over the owner's quota: deleted
    vanished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    deferred: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def names(self, category: str) -> list[str]:
        names: list[str] = getattr(self, category)
        return names

    def summary(self) -> dict[str, Any]:
        """One flat mapping for logs and the timer function's result."""
        return {
            "prefix": self.prefix,
            "dryRun": self.dry_run,
            "listed": self.listed,
            "skippedOld": self.skipped_old,
            "young": self.young,
            "checked": self.checked,
            "present": self.present,
            **{name: self.count(name) for name in ("recorded", "stale", "invalid")},
            **{name: self.count(name) for name in ("uncovered", "rejected")},
            **{name: self.count(name) for name in ("vanished", "failed")},
            "deferred": self.deferred,
            "watermarkBefore": self.watermark_before,
            "watermarkAfter": self.watermark_after,
        }


class Progress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    WIDTH = 30

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.clock = clock
        self.last = float("-inf")
        self.drawn = False

    def show(self, label: str, done: int = 0, total: int = 0) -> None:
        now = self.clock()
        if now - self.last < 0.1 and not (total and done == total):
            return
        self.last = now
        bar = ""
        if total:
            filled = self.WIDTH * done // total
            bar = "[" + "#" * filled + " " * (self.WIDTH - filled) + "] "
        self.stream.write(f"\rreconcile {bar}{label}\x1b[K")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
