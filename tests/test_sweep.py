"""The sweeper (shared/reconcile/sweep.py): ended grants get their record or give their room back.

Unit level: an in-memory bucket (tests/test_reconcile.FakeObjects) over a real SQLite store and
ledger. Cost: the dev stack on loopback (sign → emulator → callback), uploads whose callback is
lost, a bucket seeded straight into the emulator; its request counters say what a sweep costs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local.dev import Stack
from local.oss_emulator.store import StoredObject
from shared.credentials import Credentials
from shared.errors import Unavailable
from shared.grant import EXPIRY_GRACE_SECONDS
from shared.http import Core
from shared.objects import OssObjects
from shared.reconcile.settings import ReconcileSettings
from shared.reconcile.sweep import sweep
from shared.records.base import Record
from shared.records.grants import (
    EXACT,
    EXPIRED,
    MULTIPART,
    OPEN,
    PREFIX,
    REJECTED,
    USED,
    LedgerGrant,
)
from shared.records.sqlite import SqliteStore
from shared.settings import Limits, Secret
from tests.support.devstack import StackClient, stack_settings, unanswered_callback_url
from tests.support.sign import NOW, call
from tests.test_reconcile import BUCKET, OLD, FakeObjects, etag

ENDED = NOW + 300 + EXPIRY_GRACE_SECONDS + 61  # past expiry, grace and the settle time


def opened(
    store: SqliteStore,
    key: str,
    *,
    owner: str = "alice",
    mode: str = EXACT,
    max_bytes: int = 100,
    limits: Limits | None = None,
) -> LedgerGrant:
    """A grant the sign function issued at NOW for `key` (a folder for PREFIX), open in the ledger."""
    grant = LedgerGrant(
        owner=owner,
        grant_id=f"G-{key}",
        mode=mode,
        target=key,
        bucket=BUCKET,
        max_bytes=max_bytes,
        expires_at=int(NOW) + 300,
        created_at=int(NOW) * 1000,
        part_size=102_400 if mode == MULTIPART else 0,
    )
    store.open_grant(grant, limits or Limits(), NOW)
    return grant


def run(objects: FakeObjects, store: SqliteStore, *, at: float = ENDED, **options: Any) -> Any:
    options.setdefault("limits", Limits())
    return sweep(objects, store, now=lambda: at, **options)


@pytest.mark.parametrize("mode", [EXACT, MULTIPART])
def test_a_lost_callback_is_recorded_with_the_grants_owner(store: SqliteStore, mode: str) -> None:
    """A multipart upload whose Complete went through has no session left to abort."""
    objects = FakeObjects()
    key = objects.add(
        "uploads/_0123456789abcdef0123456789abcdef01234567/a.txt", b"abc", at=int(NOW)
    )
    lost = opened(store, key, owner="alice@example.com", mode=mode)
    report = run(objects, store)
    record = store.get(BUCKET, key)
    assert record is not None
    assert (record.owner, record.size, record.etag, record.reconciled, record.grant_id) == (
        "alice@example.com",  # from the ledger, never the `_<hex>` folder name
        3,
        etag(b"abc"),
        True,
        lost.grant_id,
    )
    assert (report.count("recorded"), report.count("aborted")) == (1, 0)
    assert objects.heads == [key]
    assert store.get_grant("alice@example.com", lost.grant_id).state == USED
    assert store.usage("alice@example.com").used_files == 1
    assert run(objects, store).ended == 0  # settled: never walked again


@pytest.mark.parametrize("mode", [EXACT, MULTIPART])
def test_an_unused_grant_is_expired_and_its_reservation_released(
    store: SqliteStore, mode: str
) -> None:
    """A multipart session left open is aborted first (its id is OSS's UploadId); an exact
    grant's upload id is never asked for."""
    unused = opened(
        store, "uploads/alice/big.bin", mode=mode, max_bytes=300_000, limits=Limits(bytes=300_000)
    )
    assert store.usage("alice").reserved_bytes == 300_000
    objects = FakeObjects()
    objects.uploads[unused.grant_id] = unused.target
    report = run(objects, store)
    aborted = [unused.grant_id] if mode == MULTIPART else []
    assert objects.aborted == aborted
    assert (report.count("aborted"), report.count("released")) == (len(aborted), 1)
    assert report.summary()["aborted"] == len(aborted)
    assert store.get_grant("alice", unused.grant_id).state == EXPIRED
    assert store.usage("alice").reserved_bytes == 0
    assert store.get(BUCKET, unused.target) is None


@pytest.mark.parametrize("mode", [EXACT, MULTIPART])
def test_a_record_written_by_a_callback_that_died_before_settling_is_settled(
    store: SqliteStore, mode: str
) -> None:
    """No OSS request is needed: no HeadObject, and no abort of the session."""
    key = "uploads/alice/done.bin"
    done = opened(store, key, mode=mode, max_bytes=200)
    store.put(Record("alice", BUCKET, key, 42, "E1", "application/octet-stream", 1), replace=False)
    objects = FakeObjects()
    objects.uploads[done.grant_id] = key  # would be aborted if the sweep asked
    report = run(objects, store)
    assert (report.count("present"), objects.aborted, objects.heads) == (1, [], [])
    assert store.get_grant("alice", done.grant_id).state == USED
    assert store.usage("alice").used_bytes == 42


def test_grants_still_inside_their_life_grace_or_settle_time_wait(store: SqliteStore) -> None:
    soon = opened(store, "uploads/alice/soon.png")
    assert run(FakeObjects(), store, at=ENDED - 2).ended == 0
    assert store.get_grant("alice", soon.grant_id).state == OPEN


def down(key: str, etag_: str) -> str:
    raise Unavailable("OSS could not be reached")


@pytest.mark.parametrize(
    ("mode", "remove", "outcome", "deleted", "state"),
    [
        pytest.param(EXACT, None, "invalid", True, REJECTED, id="exact-deleted"),
        pytest.param(EXACT, down, "failed", False, OPEN, id="exact-undeletable-stays-open"),
        pytest.param(PREFIX, None, "invalid", False, EXPIRED, id="prefix-reported-not-deleted"),
    ],
)
def test_the_callbacks_checks_apply(
    *, store: SqliteStore, mode: str, remove: Any, outcome: str, deleted: bool, state: str
) -> None:
    """Larger than its grant or of a refused type: refused as the callback refuses it. Under an
    exact grant it is deleted, as the callback deletes it (a failed delete leaves the grant open
    for the next run); under a prefix it may be someone else's: a human decides (the report)."""
    objects = FakeObjects()
    big = objects.add("uploads/alice/docs/big.txt", b"x" * 101, at=int(NOW) + 10)
    html = objects.add("uploads/alice/docs/page.png", b"<html>", at=int(NOW) + 10, mime="text/html")
    targets = ["uploads/alice/docs/"] if mode == PREFIX else [big, html]
    grants = [opened(store, target, mode=mode) for target in targets]
    reserved = store.usage("alice").reserved_bytes
    if remove is not None:
        objects.remove = remove  # type: ignore[method-assign]
    report = run(objects, store)
    assert sorted(report.named[outcome]) == [big, html]
    assert (store.get(BUCKET, big), store.get(BUCKET, html)) == (None, None)
    assert sorted(objects.deleted) == ([big, html] if deleted else [])
    assert {store.get_grant("alice", g.grant_id).state for g in grants} == {state}
    assert store.usage("alice").reserved_bytes == (reserved if state == OPEN else 0)


def test_a_prefix_grant_lists_only_its_prefix_and_adopts_what_it_covered(
    store: SqliteStore,
) -> None:
    objects = FakeObjects()
    mine = objects.add("uploads/alice/docs/a.txt", b"a", at=int(NOW) + 10)
    before = objects.add("uploads/alice/docs/old.txt", b"o", at=int(NOW) - 86400)
    objects.add("uploads/bob/docs/b.txt", b"b", at=int(NOW) + 10)
    prefix = opened(store, "uploads/alice/docs/", mode=PREFIX)
    listed: list[str] = []
    original = objects.list

    def spy(prefix_: str) -> Iterable[Any]:
        listed.append(prefix_)
        return original(prefix_)

    objects.list = spy  # type: ignore[method-assign]
    report = run(objects, store)
    assert listed == ["uploads/alice/docs/"]
    assert report.named["recorded"] == [mine]
    assert objects.heads == [mine]  # the object from before the grant is not its to adopt
    assert store.get(BUCKET, before) is None
    assert store.get_grant("alice", prefix.grant_id).state == EXPIRED


def test_a_backfill_over_the_quota_is_deleted_not_recorded(store: SqliteStore) -> None:
    objects = FakeObjects()
    key = objects.add("uploads/alice/docs/a.txt", b"12345", at=int(NOW) + 10)
    opened(store, "uploads/alice/docs/", mode=PREFIX)
    store.charge("alice", 98, 1, Limits())
    report = run(objects, store, limits=Limits(bytes=100))
    assert report.named["rejected"] == [key]
    assert objects.deleted == [key]
    assert store.get(BUCKET, key) is None
    assert store.usage("alice").used_bytes == 98


def test_a_dry_run_writes_aborts_and_settles_nothing(store: SqliteStore) -> None:
    objects = FakeObjects()
    key = objects.add("uploads/alice/a.txt", b"abc", at=int(NOW))
    exact = opened(store, key, limits=Limits(bytes=1000))
    session = opened(store, "uploads/alice/open.bin", mode=MULTIPART, max_bytes=200)
    objects.uploads[session.grant_id] = session.target
    report = run(objects, store, dry_run=True)
    assert report.named["recorded"] == [key]
    assert store.get(BUCKET, key) is None
    assert objects.aborted == []
    assert {store.get_grant("alice", g.grant_id).state for g in (exact, session)} == {OPEN}


def test_batches_walk_every_ended_grant(store: SqliteStore) -> None:
    for number in range(7):
        opened(store, f"uploads/alice/{number}.png")
    report = run(FakeObjects(), store, batch=3)
    assert (report.ended, report.count("released")) == (7, 7)


def test_a_grant_a_lagging_index_still_lists_as_open_is_left_alone(store: SqliteStore) -> None:
    """Tablestore's global indexes are asynchronous: the ledger row decides, not the index."""
    done = opened(store, "uploads/alice/done.png")
    store.settle("alice", done.grant_id, USED, 7)

    class LaggingIndex:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def ended_grants(self, before: int, limit: int) -> list[LedgerGrant]:
            return [done]  # still `open` in the index

    objects = FakeObjects()
    report = sweep(objects, LaggingIndex(), limits=Limits(), now=lambda: ENDED)  # type: ignore[arg-type]
    assert (report.ended, report.counts, objects.heads) == (1, {}, [])
    assert store.usage("alice").used_bytes == 7


def test_a_user_at_quota_whose_grant_expired_can_upload_again(
    make_sign_app: Callable[..., Core], store: SqliteStore
) -> None:
    """DESIGN.md: an expired reservation is released by the sweeper."""

    def sign(at: float) -> int:
        app = make_sign_app(store_factory=lambda c: store, now=at, QUOTA_FILES_PER_USER="1")
        return call(app, "path=a&filename=x.png&size=10", now=at).status

    assert sign(NOW) == 200
    assert sign(NOW + 1) == 403  # the unused grant still holds the one file
    report = run(FakeObjects(), store)
    assert report.count("released") == 1
    assert sign(ENDED) == 200


# --- cost: what one sweep asks of OSS and the store, counted on the dev stack -------------------


def seed(stack: Stack, count: int) -> None:
    """Objects already in the bucket, straight into the emulator's store; every other one has its
    record (the rest are as another application's files: no record, no grant)."""
    assert stack.emulator is not None
    spool = Path(stack.values["SQLITE_PATH"]).parent / "seed"
    spool.mkdir(exist_ok=True)
    records = SqliteStore(stack.values["SQLITE_PATH"])
    try:
        for number in range(count):
            key, owner = f"uploads/seed{number % 50}/{number:06d}.txt", f"seed{number % 50}"
            (spool / str(number)).write_bytes(key.encode())
            stored = StoredObject(key, len(key), etag(key.encode()), "text/plain", "0", "", OLD)
            stack.emulator.store.put(stored, spool / str(number), forbid_overwrite=False)
            if number % 2 == 0:
                record = Record(owner, BUCKET, key, len(key), stored.etag, "text/plain", OLD * 1000)
                records.put(record, replace=False)
    finally:
        records.close()


class CountedStore:
    """The real store, counting the calls the sweeper makes on it."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner, self.calls = inner, Counter[str]()

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        return getattr(self.inner, name)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Stack]:
    """The dev stack with a callback URL nobody answers: every upload's callback is lost."""
    stack = Stack(stack_settings(tmp_path / "stack", CALLBACK_URL=unanswered_callback_url()))
    stack.start()
    yield stack
    stack.stop()


def lose_callbacks(client: StackClient, lost: int) -> list[str]:
    """Exact-key uploads as the browser makes them, each stored without its record (203)."""
    keys = []
    for number in range(lost):
        user = client.token(f"user{number % 7}")
        grant_ = client.grant(user, path="s", filename="f.txt", size="5")
        response = client.upload(grant_, b"hello", filename="f.txt", content_type="text/plain")
        assert response.status_code == 203, response.text
        keys.append(grant_["key"])
    return keys


def test_a_sweep_costs_per_ended_grant_whatever_the_bucket_holds(live: Stack) -> None:
    """docs/reliability.md: a run costs O(grants that ended since the last run). Two sweeps, the
    second with twice the lost callbacks and 1,200 more objects (half with records) in the bucket: the
    OSS requests and the store calls each sweep makes are the same per ended grant."""
    settings = ReconcileSettings.from_env(live.values)
    objects = OssObjects(
        settings.oss, Credentials("dev-access-key-id", Secret("dev-access-key-secret"))
    )
    client = StackClient(live.url("app"), live.url("oss"))
    store = SqliteStore(settings.records.sqlite_path)
    per_grant = []
    try:
        for seeded, lost in ((0, 2), (1200, 4)):
            seed(live, seeded)
            gone = lose_callbacks(client, lost)
            counted, before = CountedStore(store), client.emulator_stats()
            report = sweep(
                objects, counted, limits=settings.limits, now=lambda: time.time() + 600, settle=0
            )  # type: ignore[arg-type]
            after = client.emulator_stats()
            cost = {
                op: after[op] - before.get(op, 0) for op in after if after[op] != before.get(op)
            }
            assert sorted(report.named["recorded"]) == sorted(gone)
            assert (report.ended, report.count("recorded"), report.ok) == (lost, lost, True)
            # Per ended grant: its HeadObject, then the verification's one conditional ranged
            # GetObject (UPLOAD_VERIFY=content, the default); no listing, whatever the bucket holds.
            assert cost == {"HeadObject": lost, "GetObject": lost}
            assert counted.calls.pop("ended_grants") == 2  # the batch, then the empty one
            per_grant.append({name: calls / lost for name, calls in counted.calls.items()})
            assert all(store.get(BUCKET, key) is not None for key in gone)
    finally:
        store.close()
    assert per_grant[0] == per_grant[1]
