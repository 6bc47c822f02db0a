"""`make bench`: measure both functions, print a table, write bench/RESULTS.md.

Usage: `.venv/bin/python -m bench.run [--quick] [--runs N] [--output PATH] [--dist DIR]`.
Loopback only: the one HTTP server is a key server on 127.0.0.1 for the naive verifier and
the callback's one cold key fetch.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
from typing import Any

from bench.collect import Plan, Results, collect
from bench.components import parts_section, profile_section
from bench.machine import describe
from bench.presign_parts import report as presign_report
from bench.report import (
    PREFACE,
    Section,
    Target,
    render_markdown,
    render_text,
    targets_section,
)
from bench.sections import cold_section, ratio_section, tablestore_section, warm_section
from bench.sizes import size_section
from bench.targets import targets_for
from bench.throughput import Throughput, throughput_section
from bench.throughput import attempt as measure_throughput
from bench.verify import verify_section, verify_targets

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _ok(value: Any) -> Any:
    return value if not isinstance(value, str) else None


def build_report(
    results: Results, dist: pathlib.Path, upload: Throughput | str
) -> tuple[list[Section], list[Target]]:
    cold = {k: _ok(v) for k, v in results.cold.items()}
    warm = {k: _ok(v) for k, v in results.warm.items()}
    parts_urls, parts_targets = presign_report(results.plan)
    sections = [
        cold_section(results, cold),
        warm_section(results),
        verify_section(results),
        parts_urls,
        ratio_section(warm),
        tablestore_section(cold),
        size_section(results, dist),
        parts_section(results),
        profile_section(results),
    ]
    upload_section, upload_target = throughput_section(upload)
    sections.append(upload_section)
    targets = [
        *targets_for(results, cold, warm),
        *verify_targets(results),
        *parts_targets,
        upload_target,
    ]
    return [targets_section(targets), *sections], targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny iteration counts (smoke test)")
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per cold start")
    parser.add_argument("--output", default=str(ROOT / "bench" / "RESULTS.md"))
    parser.add_argument("--dist", default=str(ROOT / "dist"))
    args = parser.parse_args(argv)
    plan = Plan.quick() if args.quick else Plan.full(max(1, args.runs))
    dist = pathlib.Path(args.dist)
    load_before = _load()
    started = time.monotonic()
    results = collect(plan, dist)
    upload = measure_throughput(quick=args.quick)
    sections, targets = build_report(results, dist, upload)
    machine = describe()
    command = "make bench" + (
        "" if not args.quick else "  (quick mode: python -m bench.run --quick)"
    )
    header = [
        *machine.lines(),
        f"Load average before/after: {load_before} / {_load()} (other processes inflate figures)",
        f"Run time: {time.monotonic() - started:.0f} s",
        f"Reproduce: `{command}` (or `.venv/bin/python -m bench.run`)",
    ]
    print(render_text(header, sections))
    output = pathlib.Path(args.output)
    output.write_text(
        render_markdown("Benchmarks", header, sections, targets, PREFACE), encoding="utf-8"
    )
    print(f"wrote {output}")
    return 0


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
