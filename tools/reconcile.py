"""`make reconcile`: one reconciliation run from the command line (docs/reliability.md).

python -m tools.reconcile [--dry-run]          the sweeper: grants that ended without a record
python -m tools.reconcile --full [--since WHEN] [--prefix PREFIX] [--dry-run] [--progress]
                                               the whole-bucket audit
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TextIO

from shared.credentials import resolve_credentials
from shared.errors import AppError, BadRequest, ConfigError
from shared.objects import Objects
from shared.reconcile.app import run, run_sweep
from shared.reconcile.report import Progress, Report
from shared.reconcile.settings import ReconcileSettings
from shared.reconcile.sweep import SETTLE_SECONDS, SweepReport


def parse_since(text: str) -> int:
    """`--since`: Unix seconds, a date (YYYY-MM-DD) or a UTC time (YYYY-MM-DDTHH:MM:SSZ)."""
    value = text.strip()
    if re.fullmatch(r"[0-9]{1,12}", value):
        return int(value)
    for pattern in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S"):
        try:
            moment = datetime.strptime(value, pattern).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
        return int(moment.timestamp())
    raise BadRequest(f"--since {text!r}: use Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ")


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    objects: Objects | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """`make reconcile`: exit 0 all handled, 1 something failed (run again), 2 bad settings/usage."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = argparse.ArgumentParser(prog="python -m shared.reconcile", description=__doc__)
    parser.add_argument(
        "--full", action="store_true", help="audit the whole bucket instead of the ended grants"
    )
    parser.add_argument(
        "--since", help="with --full: objects modified after this (ignores the watermark)"
    )
    parser.add_argument("--prefix", help="with --full: only keys under this prefix")
    parser.add_argument("--dry-run", action="store_true", help="report only; write nothing")
    parser.add_argument("--progress", action="store_true", help="progress bar even without a TTY")
    parser.add_argument("--settle", type=int, default=SETTLE_SECONDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if environ is None:
        import os  # noqa: PLC0415 - the one place the process environment is read

        environ = os.environ
    try:
        settings = ReconcileSettings.from_env(environ)
        credentials = resolve_credentials(
            None, environ, settings.oss.access_key_id, settings.oss.access_key_secret
        )
        since = parse_since(args.since) if args.since is not None else None
        if not args.full:
            if args.since is not None or args.prefix is not None:
                raise BadRequest("--since and --prefix go with --full (the whole-bucket audit)")
            swept = run_sweep(
                settings,
                credentials,
                objects=objects,
                dry_run=args.dry_run,
                settle=max(0, args.settle),
            )
            print(describe_sweep(swept), file=out)
            return 0 if swept.ok else 1
        show = args.progress or err.isatty()
        report = run(
            settings,
            credentials,
            objects=objects,
            prefix=args.prefix,
            since=since,
            dry_run=args.dry_run,
            settle=max(0, args.settle),
            progress=Progress(err) if show else None,
        )
    except ConfigError as exc:
        print(f"reconcile: {exc}", file=err)
        return 2
    except BadRequest as exc:
        print(f"reconcile: {exc.message}", file=err)
        return 2
    except AppError as exc:
        print(f"reconcile: {exc.code}: {exc.message}", file=err)
        return 1
    print(describe(report), file=out)
    return 0 if report.ok else 1


def describe_sweep(report: SweepReport) -> str:
    """The human summary of a sweep."""
    verb = "would record" if report.dry_run else "recorded"
    lines = [
        f"ended grants {report.ended}: {verb} {report.count('recorded')}, "
        f"already recorded {report.count('present')}, released {report.count('released')}, "
        f"over quota {report.count('rejected')}, refused {report.count('invalid')}, "
        f"failed {report.count('failed')}, deferred {report.deferred}",
    ]
    for category in ("recorded", "rejected", "invalid", "stale", "failed"):
        for key in report.named.get(category, []):
            lines.append(f"  {category:<8} {key}")
    return "\n".join(lines)


def describe(report: Report) -> str:
    """The human summary `make reconcile` prints."""
    verb = "would record" if report.dry_run else "recorded"
    lines = [
        f"prefix {report.prefix!r}: listed {report.listed}, checked {report.checked} "
        f"(older than the watermark {report.skipped_old}, too young {report.young})",
        f"  already recorded {report.present}, {verb} {report.count('recorded')}, "
        f"stale {report.count('stale')}, vanished {report.count('vanished')}, "
        f"no grant of ours {report.count('uncovered')}, over quota {report.count('rejected')}, "
        f"failed {report.count('failed')}, deferred {report.deferred}",
    ]
    for category in ("recorded", "stale", "invalid", "uncovered", "rejected", "failed"):
        for key in getattr(report, category):
            lines.append(f"  {category:<8} {key}")
    lines.append(f"  watermark {report.watermark_before} -> {report.watermark_after}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
