"""The whole-bucket audit (`make reconcile RECONCILE_ARGS=--full`; docs/reliability.md).

OSS never retries a failed callback: a store outage, a slow cold start or a network blip leaves an
object stored with no record (the browser got 203). The sweeper (sweep.py) repairs those from the
grant ledger at a cost per upload; this audit lists every object under the upload prefix instead,
looks up each one's record and, when there is none, adopts the object only if a grant of ours
covered it (its exact key, or its prefix while the grant was alive): the record is the one the
callback would have written, with the same checks and the grant's owner (never the folder name),
marked `reconciled`. Objects no grant covered (another application's, a console upload) are
reported as `uncovered` and never recorded. A watermark in the record store (watermark.py) makes
runs incremental; a run's outcome is a Report (report.py).

The command line is `tools.reconcile` (`make reconcile`), through `run` in app.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from shared import logs
from shared.content import default_allowed_types
from shared.errors import AppError, BadRequest, Conflict
from shared.keys import ANONYMOUS_USER, is_active_key, is_valid_key
from shared.objects import Listed, Objects
from shared.reconcile import sweep as sweeper
from shared.reconcile.report import Progress, Report
from shared.reconcile.watermark import Watermark
from shared.records import Store
from shared.records.grants import PREFIX, LedgerGrant
from shared.settings import USER_PLACEHOLDER, Limits
from shared.verify import VerifyMode

OVERLAP_SECONDS = 2  # LastModified has 1 s resolution; re-checking a little is free
WORKERS = 8


# --- keys ---------------------------------------------------------------------------------------


def listing_prefix(template: str) -> str:
    """The static part of UPLOAD_KEY_PREFIX (before `{user}`): where every upload lives."""
    return template.split(USER_PLACEHOLDER, 1)[0]


def owner_of(key: str, template: str) -> str | None:
    """Invert UPLOAD_KEY_PREFIX: the `{user}` segment of `key` (None when outside the prefix).

    It only tells whether a key lies where we issue keys. It is never a record's owner: a folder
    name is not a user id (a user id that is not key-safe is stored as `_` + 40 hex digits, which
    a look-alike `sub` could claim); owners come from the ledger grant that covered the object.
    """
    if USER_PLACEHOLDER not in template:  # AUTH_MODE=none: every upload is anonymous
        return ANONYMOUS_USER if key.startswith(template) and len(key) > len(template) else None
    head, tail = template.split(USER_PLACEHOLDER, 1)
    if not key.startswith(head):
        return None
    segment = key[len(head) :].split("/", 1)[0]
    folder = head + segment + tail
    if not segment or not key.startswith(folder) or len(key) == len(folder):
        return None
    return segment


# --- a run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Which objects a run examines: LastModified in (lower, cutoff], keys under `prefix`."""

    bucket: str
    template: str
    prefix: str
    lower: int | None
    cutoff: int
    dry_run: bool
    limits: Limits = field(default_factory=Limits)
    allowed_types: Mapping[str, tuple[str, ...]] = field(default_factory=default_allowed_types)
    verify: VerifyMode = "content"


def reconcile(
    objects: Objects,
    store: Store,
    *,
    bucket: str,
    template: str,
    limits: Limits | None = None,
    prefix: str | None = None,
    since: int | None = None,
    dry_run: bool = False,
    now: sweeper.Clock = time.time,
    settle: int = sweeper.SETTLE_SECONDS,  # younger objects: their callback may be in flight
    budget: float | None = None,
    progress: Progress | None = None,
    workers: int = WORKERS,
    allowed_types: Mapping[str, tuple[str, ...]] | None = None,
    verify: VerifyMode = "content",
) -> Report:
    """One run: list, check each settled object newer than the watermark, backfill, advance."""
    full = listing_prefix(template)
    prefix = full if prefix is None else prefix
    if not prefix.startswith(full):
        raise BadRequest(f"--prefix must lie inside the upload prefix {full!r}")
    watermark = Watermark(store, bucket)
    stored = watermark.read()
    lower = since if since is not None else (None if stored is None else stored - OVERLAP_SECONDS)
    plan = Plan(
        bucket,
        template,
        prefix,
        lower,
        int(now()) - settle,
        dry_run,
        limits or Limits(),
        verify=verify,
    )
    if allowed_types is not None:
        plan = replace(plan, allowed_types=allowed_types)
    report = Report(prefix=prefix, dry_run=dry_run, watermark_before=stored)
    candidates = select(objects.list(prefix), plan, report, progress)
    held_back = process(
        candidates,
        objects=objects,
        store=store,
        plan=plan,
        report=report,
        progress=progress,
        budget=budget,
        workers=workers,
    )
    covers_everything = prefix == full and (
        since is None or (stored is not None and since <= stored)
    )
    if not dry_run and covers_everything:
        report.watermark_after = min([plan.cutoff, *(lm - 1 for lm in held_back)])
        if stored is None or report.watermark_after > stored:
            watermark.advance(report.watermark_after)
    if progress is not None:
        progress.close()
    logs.info("reconcile", **report.summary())
    return report


def select(
    listing: Iterable[Listed], plan: Plan, report: Report, progress: Progress | None
) -> list[Listed]:
    """Keep the settled objects newer than the lower bound whose keys we could have issued."""
    candidates: list[Listed] = []
    for item in listing:
        report.listed += 1
        if progress is not None:
            progress.show(f"listed {report.listed}")
        if plan.lower is not None and item.last_modified <= plan.lower:
            report.skipped_old += 1
        elif item.last_modified > plan.cutoff:
            report.young += 1
        elif (
            not is_valid_key(item.key)
            or is_active_key(item.key)  # the callback refuses these too (security.md §2.8)
            or owner_of(item.key, plan.template) is None
        ):
            report.note("invalid", item.key)  # reported, never recorded
        else:
            candidates.append(item)
    return candidates


def process(
    candidates: list[Listed],
    *,
    objects: Objects,
    store: Store,
    plan: Plan,
    report: Report,
    progress: Progress | None,
    budget: float | None,
    workers: int,
) -> list[int]:
    """Check every candidate on a small pool; return the LastModified of those not handled."""
    deadline = None if budget is None else time.monotonic() + budget
    lock = threading.Lock()
    held_back: list[int] = []
    done = 0

    def one(item: Listed) -> None:
        nonlocal done
        if deadline is not None and time.monotonic() > deadline:
            outcome = "deferred"
        else:
            outcome = check_object(item, objects, store, plan)
        with lock:
            done += 1
            report.checked += 0 if outcome == "deferred" else 1
            if outcome == "present":
                report.present += 1
            elif outcome == "deferred":
                report.deferred += 1
            else:
                report.note(outcome, item.key)
            if outcome in ("failed", "deferred"):
                held_back.append(item.last_modified)
            if progress is not None:
                progress.show(f"checked {done}/{len(candidates)}", done, len(candidates))

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="reconcile") as pool:
        list(pool.map(one, candidates))
    return held_back


def check_object(item: Listed, objects: Objects, store: Store, plan: Plan) -> str:
    """present | stale | recorded | invalid | uncovered | rejected | vanished | failed."""
    try:
        existing = store.get(plan.bucket, item.key)
        if existing is not None and not existing.deleted:  # a tombstone judges in put (write.py)
            return "present" if _same(existing.etag, item.etag) else "stale"
        grant = covering_grant(store, plan.bucket, item.key, item.last_modified)
        if grant is None:
            return "uncovered"  # another application's object: reported, never adopted
        if plan.dry_run:
            return "recorded"  # would be recorded
        return backfill(item, grant, objects, store, plan)
    except Conflict:
        return "stale"  # a different object is recorded under this key: a human decides
    except AppError as error:
        logs.warning("reconcile_failed", key=item.key[:256], code=error.code, reason=error.message)
        return "failed"


def covering_grant(store: Store, bucket: str, key: str, last_modified: int) -> LedgerGrant | None:
    """The ledger grant that allowed `key`: its exact key, else a prefix alive at LastModified."""
    exact = [g for g in store.grants_for(bucket, key) if g.mode != PREFIX and g.covers(bucket, key)]
    if exact:
        return exact[-1]
    folders = [key[: index + 1] for index, char in enumerate(key) if char == "/"]
    prefixed = [
        g for folder in folders for g in store.grants_for(bucket, folder) if g.mode == PREFIX
    ]
    return sweeper.covering(prefixed, key, last_modified)


def backfill(item: Listed, grant: LedgerGrant, objects: Objects, store: Store, plan: Plan) -> str:
    """HEAD an unrecorded object and write the record its callback would have written."""
    head = objects.head(item.key)
    if head is None:
        return "vanished"
    category, _ = sweeper.adopt(
        grant,
        head,
        objects,
        store,
        rules=sweeper.Rules(plan.limits, plan.allowed_types, plan.verify),
        dry_run=False,
        exact=grant.mode != PREFIX,
    )
    return category


def _same(stored: str, listed: str) -> bool:
    return stored.strip('"').upper() == listed.strip('"').upper()
