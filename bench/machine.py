"""What the figures were measured on: they mean nothing without the machine and the Python."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    python: str
    implementation: str
    system: str
    date: str

    def lines(self) -> list[str]:
        return [
            f"CPU: {self.cpu} ({self.cores} cores)",
            f"Python: {self.implementation} {self.python}",
            f"System: {self.system}",
            f"Date: {self.date}",
        ]


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else whatever `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def describe(now: datetime.datetime | None = None) -> Machine:
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    return Machine(
        cpu=cpu_model(),
        cores=os.cpu_count() or 1,
        python=platform.python_version(),
        implementation=platform.python_implementation(),
        system=f"{platform.system()} {platform.release()} {platform.machine()}",
        date=moment.strftime("%Y-%m-%d %H:%M UTC"),
    )


def interpreter() -> str:
    return sys.executable
