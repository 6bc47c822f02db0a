"""The sweeper: every grant that ended without its record gets one, or gives its room back.

DESIGN.md "The grant ledger": reconciliation walks the grants that ended (open in the ledger past
their expiry, the callback's grace and a settle time), not the bucket, so a run costs in
proportion to the uploads since the last run:
- an exact (or multipart) grant: its record already there → settle it (a callback that wrote the
  record but died before settling); else one HeadObject of its key: absent → expired, the
  reservation released; present → the record its callback would have written (same checks,
  the grant's owner, quota accounted as by the callback: records/uploads.py), or, refused by
  those checks, deleted as the callback deletes it;
- a multipart grant without its record is first AbortMultipartUpload-ed (its id is the
  UploadId): a session left open is gone then, and the HeadObject that follows finds an object
  only when a Complete went through whose callback was lost (then adopted as above);
- prefix grants: one listing of the prefix (pages of 1000) for every grant of that prefix in the
  batch, and a HeadObject only for an object without a record written during a grant's life;
  then expired (a prefix grant reserves nothing).
A grant that cannot be handled now (store or OSS down) stays open for the next run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from shared import logs
from shared.content import default_allowed_types
from shared.errors import AppError, Conflict, Rejected
from shared.grant import EXPIRY_GRACE_SECONDS
from shared.objects import Head, Objects
from shared.reconcile.report import Tally
from shared.records import Store
from shared.records.base import PutResult, Record
from shared.records.grants import EXPIRED, MULTIPART, OPEN, PREFIX, REJECTED, USED, LedgerGrant
from shared.records.uploads import record_upload, refusal
from shared.records.write import same_object
from shared.settings import Limits
from shared.verify import Claim, ObjectMissing, VerifyMode, upload_problem

SETTLE_SECONDS = 60  # a callback may still be in flight this long after the grace period
CLOCK_SKEW_SECONDS = 900  # OSS's LastModified against our clock, when matching a prefix's objects
BATCH = 500
WORKERS = 8

Clock = Callable[[], float]
CATEGORIES = ("recorded", "present", "released", "aborted", "rejected", "invalid", "failed")


@dataclass(frozen=True)
class Rules:
    """What an adopted upload must satisfy, as in the callback: the quotas and the allow-list."""

    limits: Limits
    allowed_types: Mapping[str, tuple[str, ...]]
    verify: VerifyMode = "content"  # UPLOAD_VERIFY: what OSS is asked before a record is written


@dataclass
class SweepReport(Tally):
    """What a sweep did, by CATEGORIES (report.Tally)."""

    dry_run: bool
    ended: int = 0  # grants walked
    counts: dict[str, int] = field(default_factory=dict)
    named: dict[str, list[str]] = field(default_factory=dict)
    deferred: int = 0

    def names(self, category: str) -> list[str]:
        return self.named.setdefault(category, [])

    def summary(self) -> dict[str, Any]:
        return {
            "mode": "sweep",
            "dryRun": self.dry_run,
            "ended": self.ended,
            **{name: self.count(name) for name in CATEGORIES},
            "deferred": self.deferred,
        }


def sweep(
    objects: Objects,
    store: Store,
    *,
    limits: Limits,
    allowed_types: Mapping[str, tuple[str, ...]] | None = None,
    verify: VerifyMode = "content",
    now: Clock = time.time,
    settle: int = SETTLE_SECONDS,
    dry_run: bool = False,
    budget: float | None = None,
    workers: int = WORKERS,
    batch: int = BATCH,
) -> SweepReport:
    """Walk the ended grants, batch by batch, until none is left (or the budget is spent)."""
    before = int(now()) - EXPIRY_GRACE_SECONDS - settle
    deadline = None if budget is None else time.monotonic() + budget
    report = SweepReport(dry_run=dry_run)
    types = allowed_types if allowed_types is not None else default_allowed_types()
    rules = Rules(limits, types, verify)
    lock = threading.Lock()
    seen: set[tuple[str, str]] = set()
    while deadline is None or time.monotonic() <= deadline:
        grants = [g for g in store.ended_grants(before, batch) if (g.owner, g.grant_id) not in seen]
        if not grants:
            break
        seen.update((g.owner, g.grant_id) for g in grants)
        report.ended += len(grants)
        jobs = _jobs(grants)

        def run(job: Callable[[], list[tuple[str, str]]]) -> None:
            if deadline is not None and time.monotonic() > deadline:
                outcomes = [("deferred", "")]
            else:
                outcomes = job()
            with lock:
                for category, name in outcomes:
                    if category == "deferred":
                        report.deferred += 1
                    else:
                        report.note(category, name)

        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sweep") as pool:
            list(pool.map(run, [_bind(job, objects, store, rules, dry_run) for job in jobs]))
        if dry_run:  # nothing was settled: the same grants would come back
            break
    logs.info("reconcile", **report.summary())
    return report


Job = tuple[str, list[LedgerGrant]]  # ("exact", [grant]) or ("prefix", grants of one prefix)


def _jobs(grants: Iterable[LedgerGrant]) -> list[Job]:
    jobs: list[Job] = []
    prefixes: dict[tuple[str, str], list[LedgerGrant]] = {}
    for grant in grants:
        if grant.mode == PREFIX:
            prefixes.setdefault((grant.bucket, grant.target), []).append(grant)
        else:
            jobs.append(("exact", [grant]))
    jobs += [("prefix", group) for group in prefixes.values()]
    return jobs


def _bind(
    job: Job, objects: Objects, store: Store, rules: Rules, dry_run: bool
) -> Callable[[], list[tuple[str, str]]]:
    kind, grants = job

    def call() -> list[tuple[str, str]]:
        try:
            # The walk may read an index that lags (Tablestore's global indexes are asynchronous):
            # act only on grants the ledger itself still holds open.
            current = [store.get_grant(g.owner, g.grant_id) for g in grants]
            still_open = [g for g in current if g is not None and g.state == OPEN]
            if not still_open:
                return []
            if kind == "exact":
                grant = still_open[0]
                aborted = grant.mode == MULTIPART and abort_session(grant, objects, store, dry_run)
                outcome = sweep_exact(grant, objects, store, rules, dry_run)
                return [("aborted", grant.target), outcome] if aborted else [outcome]
            return sweep_prefix(still_open, objects, store, rules, dry_run)
        except AppError as error:
            logs.warning("reconcile_failed", grant=grants[0].grant_id, code=error.code)
            return [("failed", grants[0].target)]

    return call


def abort_session(grant: LedgerGrant, objects: Objects, store: Store, dry_run: bool) -> bool:
    """A multipart session that ended without its record: AbortMultipartUpload (True when OSS
    still had the upload). Nothing is aborted in a dry run, or when the record is already there."""
    existing = store.get(grant.bucket, grant.target)
    if dry_run or (existing is not None and existing.owner == grant.owner):
        return False
    return objects.abort_upload(grant.target, grant.grant_id)


def sweep_exact(
    grant: LedgerGrant, objects: Objects, store: Store, rules: Rules, dry_run: bool
) -> tuple[str, str]:
    """One HeadObject at most: record what the callback missed, or release the reservation."""
    key = grant.target
    existing = store.get(grant.bucket, key)
    if existing is not None and existing.owner == grant.owner:
        if not dry_run:
            store.settle(grant.owner, grant.grant_id, USED, existing.size)
        return ("present", key)
    head = objects.head(key)
    if head is None:
        if not dry_run:
            store.settle(grant.owner, grant.grant_id, EXPIRED)
        return ("released", key)
    return adopt(grant, head, objects, store, rules=rules, dry_run=dry_run, exact=True)


def sweep_prefix(
    grants: list[LedgerGrant], objects: Objects, store: Store, rules: Rules, dry_run: bool
) -> list[tuple[str, str]]:
    """One listing of the prefix for all its ended grants; HEAD only the unrecorded objects."""
    first = grants[0]
    outcomes: list[tuple[str, str]] = []
    for item in objects.list(first.target):
        grant = covering(grants, item.key, item.last_modified)
        if grant is None:
            continue  # written outside these grants' lives: not theirs to adopt
        existing = store.get(grant.bucket, item.key)
        if existing is not None and same_object(existing.etag, item.etag):
            continue
        head = objects.head(item.key)
        if head is None:
            continue
        outcomes.append(
            adopt(grant, head, objects, store, rules=rules, dry_run=dry_run, exact=False)
        )
    if not dry_run:
        for grant in grants:
            store.settle(grant.owner, grant.grant_id, EXPIRED)
    return outcomes or [("released", first.target)]


def covering(grants: list[LedgerGrant], key: str, last_modified: int) -> LedgerGrant | None:
    """The latest grant that covers `key` and was alive when the object was written."""
    alive = [
        grant
        for grant in grants
        if grant.covers(grant.bucket, key)
        and grant.created_at // 1000 - CLOCK_SKEW_SECONDS
        <= last_modified
        <= grant.expires_at + EXPIRY_GRACE_SECONDS + CLOCK_SKEW_SECONDS
    ]
    return max(alive, key=lambda grant: grant.created_at, default=None)


def adopt(
    grant: LedgerGrant,
    head: Head,
    objects: Objects,
    store: Store,
    *,
    rules: Rules,
    dry_run: bool,
    exact: bool,
) -> tuple[str, str]:
    """The record the callback would have written, with its checks and the grant's owner."""
    problem = refusal(
        covered=grant.covers(grant.bucket, head.key),
        key=head.key,
        size=head.size,
        max_bytes=grant.max_bytes,
    )
    if problem is None:
        claim = Claim(head.key, head.etag, head.size, head.crc64, head.mime_type)
        try:
            # The callback's checks (DESIGN "Verification"): type, then what OSS holds.
            problem = upload_problem(objects, claim, rules.verify, rules.allowed_types)
        except ObjectMissing:
            return ("released", head.key)  # deleted since the HEAD: nothing to adopt
    if problem is not None:
        if not dry_run and exact:
            # Written with the grant and refused as the callback refuses it: deleted, as it
            # deletes (an Unavailable leaves the grant open for the next run). Under a prefix
            # the object may be someone else's: only reported.
            objects.remove(head.key, head.etag)
            store.settle(grant.owner, grant.grant_id, REJECTED)
        logs.warning("reconcile_refused", key=head.key[:256], reason=problem)
        return ("invalid", head.key)
    if dry_run:
        return ("recorded", head.key)
    try:
        outcome = record_upload(
            store,
            record_for(head, grant),
            grant_id=grant.grant_id,
            exact=exact,
            limits=rules.limits,
            delete=lambda key: objects.remove(key, head.etag),
        )
    except Rejected:
        if exact:
            store.settle(grant.owner, grant.grant_id, REJECTED)
        return ("rejected", head.key)
    except Conflict:  # a different object is recorded under this key: a human decides
        if exact:
            store.settle(grant.owner, grant.grant_id, REJECTED)
        return ("stale", head.key)
    return ("recorded" if outcome.result is PutResult.CREATED else "present", head.key)


def record_for(head: Head, grant: LedgerGrant) -> Record:
    """From HeadObject, owned by the grant's user (never read from the key), created at LastModified."""
    return Record(
        owner=grant.owner,
        bucket=grant.bucket,
        key=head.key,
        size=head.size,
        etag=head.etag,
        mime_type=head.mime_type,
        created_at=head.last_modified * 1000,
        crc64=head.crc64,
        content_md5=head.content_md5,
        grant_id=grant.grant_id,
        reconciled=True,
    )
