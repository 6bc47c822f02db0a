"""One contract for the grant ledger (shared/records/grants.py), run against each backend.

SQLite on a real file; Tablestore through the real backend code against tests/support/ots.py (which
makes each request atomic, so the concurrent tests race on its conditions as on the server).
"""

from __future__ import annotations

import io
import sqlite3
from dataclasses import astuple
from typing import Any

import pytest
import tablestore

from shared.errors import AppError, QuotaExceeded, TooManyRequests
from shared.records import sqlite_ledger
from shared.records.grants import (
    EXACT,
    EXPIRED,
    MULTIPART,
    OPEN,
    PREFIX,
    USED,
    LedgerGrant,
    Limits,
    Usage,
    retry_after,
)
from shared.records.sqlite import SqliteStore
from tests.support.ots import FakeOTS, condition_of, requests_of, tablestore_over
from tests.support.records import BUCKET, MakeStore
from tests.support.threads import concurrently
from tools.tables import main

NOW = 1_700_000_040.0  # the start of a rate window (a multiple of 60)
_ids = iter(range(10**9))


def grant(**overrides: Any) -> LedgerGrant:
    number = next(_ids)
    values: dict[str, Any] = {
        "owner": "alice",
        "grant_id": f"G{number:08d}",
        "mode": EXACT,
        "target": f"uploads/alice/{number:08d}.png",
        "bucket": BUCKET,
        "max_bytes": 100,
        "expires_at": int(NOW) + 300,
        "created_at": int(NOW * 1000),
    }
    values.update(overrides)
    if values["mode"] == MULTIPART:
        values.setdefault("part_size", 5 * 1024 * 1024)
    return LedgerGrant(**values)


@pytest.fixture
def store(make_store: MakeStore) -> Any:
    return make_store()


def test_a_grant_is_read_back_by_its_owner_only_and_only_multipart_has_a_part_size(
    store: Any,
) -> None:
    issued = grant()
    session = grant(
        mode=MULTIPART,
        grant_id="0004B999EF5A239BB9138C6227D69F95",
        part_size=102_400,
        file_name="Holiday video é.mp4",
    )
    for item in (issued, session):
        store.open_grant(item, Limits(), NOW)
        assert store.get_grant("alice", item.grant_id) == item  # part_size, file_name included
    assert store.get_grant("bob", issued.grant_id) is None  # a foreign id reads nothing
    assert store.get_grant("alice", "~usage") is None
    for wrong in (grant(mode=MULTIPART, part_size=0), grant(part_size=8)):
        with pytest.raises(ValueError, match="part size"):
            store.open_grant(wrong, Limits(), NOW)


@pytest.mark.parametrize("mode", [EXACT, MULTIPART])
def test_an_exact_or_multipart_grant_reserves_its_bytes_and_one_file(store: Any, mode: str) -> None:
    store.open_grant(grant(mode=mode, max_bytes=70), Limits(bytes=100), NOW)
    usage = store.usage("alice")
    assert (usage.reserved_bytes, usage.reserved_files, usage.used_bytes) == (70, 1, 0)
    assert store.usage("bob") == Usage()


def test_a_prefix_grant_reserves_nothing(store: Any) -> None:
    store.open_grant(grant(mode=PREFIX, target="uploads/alice/"), Limits(bytes=10), NOW)
    assert (store.usage("alice").reserved_bytes, store.usage("alice").reserved_files) == (0, 0)


def test_a_grant_past_the_byte_quota_is_refused_and_not_written(store: Any) -> None:
    store.open_grant(grant(max_bytes=60), Limits(bytes=100), NOW)
    refused = grant(max_bytes=41)
    with pytest.raises(QuotaExceeded):
        store.open_grant(refused, Limits(bytes=100), NOW)
    assert store.get_grant("alice", refused.grant_id) is None
    assert store.usage("alice").reserved_bytes == 60
    store.open_grant(grant(max_bytes=40), Limits(bytes=100), NOW)  # exactly at the edge: fine


@pytest.mark.parametrize(
    ("limits", "mode"),
    [(Limits(files=1), EXACT), (Limits(bytes=100), PREFIX), (Limits(files=1), PREFIX)],
    ids=["past-the-file-quota", "prefix-when-not-one-byte-fits", "prefix-when-not-one-file-fits"],
)
def test_a_grant_is_refused_when_the_room_is_taken(store: Any, limits: Limits, mode: str) -> None:
    store.open_grant(grant(max_bytes=100), limits, NOW)
    with pytest.raises(QuotaExceeded):
        store.open_grant(grant(mode=mode, target="uploads/alice/"), limits, NOW)


def test_the_rate_limit_counts_grants_per_minute_and_says_when_to_return(store: Any) -> None:
    limits = Limits(grants_per_minute=3)
    for _ in range(3):
        store.open_grant(grant(), limits, NOW)
    with pytest.raises(TooManyRequests) as refused:
        store.open_grant(grant(), limits, NOW + 1)
    assert refused.value.retry_after == retry_after(NOW + 1) == 59
    assert ("Retry-After", "59") in refused.value.headers
    store.open_grant(grant(owner="bob", target="uploads/bob/x.png"), limits, NOW)  # per user
    store.open_grant(grant(), limits, NOW + 60)  # the next minute's window


def test_settling_an_exact_grant_turns_its_reservation_into_usage_once(store: Any) -> None:
    issued = grant(max_bytes=100)
    store.open_grant(issued, Limits(bytes=1000), NOW)
    assert store.settle("mallory", issued.grant_id, USED, 1) is False  # a foreign grant id
    assert store.settle("alice", issued.grant_id, USED, 80) is True
    assert store.settle("alice", issued.grant_id, USED, 80) is False  # a replay: counted once
    assert astuple(store.usage("alice"))[:4] == (80, 1, 0, 0)  # used, then reserved
    assert store.usage("mallory") == Usage()
    assert store.get_grant("alice", issued.grant_id).state == USED


def test_expiry_gives_the_reservation_back(store: Any) -> None:
    issued = grant(max_bytes=100)
    store.open_grant(issued, Limits(bytes=100), NOW)
    with pytest.raises(QuotaExceeded):
        store.open_grant(grant(max_bytes=1), Limits(bytes=100), NOW)
    assert store.settle("alice", issued.grant_id, EXPIRED) is True
    assert store.usage("alice").reserved_bytes == 0
    store.open_grant(grant(max_bytes=100), Limits(bytes=100), NOW)  # room again


def test_the_same_grant_twice_is_refused_and_its_reservation_given_back(store: Any) -> None:
    issued = grant()
    store.open_grant(issued, Limits(), NOW)
    with pytest.raises(AppError):  # the grant row exists
        store.open_grant(issued, Limits(), NOW)
    assert store.usage("alice").reserved_bytes == issued.max_bytes


def test_a_charge_counts_within_the_quota_and_cannot_take_room_a_grant_reserved(store: Any) -> None:
    limits = Limits(bytes=100, files=5)
    store.open_grant(grant(max_bytes=10), limits, NOW)
    store.charge("alice", 80, 1, limits)
    with pytest.raises(QuotaExceeded):  # 91 bytes used, but 10 of the 100 are reserved
        store.charge("alice", 11, 1, limits)
    assert (store.usage("alice").used_bytes, store.usage("alice").used_files) == (80, 1)


def test_a_refund_releases_committed_usage_never_below_zero(store: Any) -> None:
    store.charge("alice", 50, 2, Limits())
    store.refund("alice", 20, 1)
    assert (store.usage("alice").used_bytes, store.usage("alice").used_files) == (30, 1)
    store.refund("alice", 500, 5)
    assert (store.usage("alice").used_bytes, store.usage("alice").used_files) == (0, 0)


def test_ended_grants_lists_open_grants_expired_before_a_time_oldest_first(store: Any) -> None:
    late = grant(expires_at=2000)
    early = grant(owner="bob", target="uploads/bob/a.png", expires_at=1000)
    used = grant(expires_at=500)
    future = grant(expires_at=5000)
    for item in (late, early, used, future):
        store.open_grant(item, Limits(), NOW)
    store.settle("alice", used.grant_id, USED, 1)
    assert [g.grant_id for g in store.ended_grants(3000, 10)] == [early.grant_id, late.grant_id]
    assert [g.grant_id for g in store.ended_grants(3000, 1)] == [early.grant_id]
    assert store.ended_grants(1000, 10) == []


def test_grants_for_finds_every_grant_of_a_target_in_the_bucket(store: Any) -> None:
    first = grant(mode=PREFIX, target="uploads/alice/")
    second = grant(mode=PREFIX, target="uploads/alice/", created_at=int(NOW * 1000) + 1)
    other_bucket = grant(mode=PREFIX, target="uploads/alice/", bucket="other-bucket")
    for item in (second, first, other_bucket, grant()):
        store.open_grant(item, Limits(), NOW)
    assert store.grants_for(BUCKET, "uploads/alice/") == [first, second]
    assert store.grants_for(BUCKET, "uploads/nobody/") == []


@pytest.mark.parametrize(
    ("limits", "max_bytes", "room"),
    [(Limits(bytes=1000), 100, 10), (Limits(files=7), 1, 7)],
    ids=["bytes", "files"],
)
def test_fifty_concurrent_grants_at_the_quota_edge_never_pass_it(
    store: Any, limits: Limits, max_bytes: int, room: int
) -> None:
    """DESIGN: committed + reserved never exceeds the quota, under any concurrency."""
    store.open_grant(grant(max_bytes=max_bytes), limits, NOW)  # the user is already one in
    outcomes = concurrently(50, lambda _: store.open_grant(grant(max_bytes=max_bytes), limits, NOW))
    admitted = [o for o in outcomes if o is None]
    assert all(isinstance(o, (QuotaExceeded, TooManyRequests)) for o in outcomes if o is not None)
    usage = store.usage("alice")
    assert 1 <= len(admitted) <= room - 1
    assert usage.reserved_bytes == max_bytes * (len(admitted) + 1)
    assert usage.reserved_files == len(admitted) + 1
    if limits.bytes is not None:
        assert usage.used_bytes + usage.reserved_bytes <= limits.bytes
    if limits.files is not None:
        assert usage.used_files + usage.reserved_files <= limits.files


def test_fifty_concurrent_charges_never_pass_the_quota(store: Any) -> None:
    limits = Limits(bytes=1000, files=20)
    outcomes = concurrently(50, lambda _: store.charge("alice", 60, 1, limits))
    usage = store.usage("alice")
    assert usage.used_bytes <= 1000
    assert usage.used_files <= 20
    assert usage.used_bytes == 60 * outcomes.count(None)
    assert outcomes.count(None) >= 1


def test_fifty_concurrent_grants_never_pass_the_rate_limit(store: Any) -> None:
    limits = Limits(grants_per_minute=12)
    outcomes = concurrently(50, lambda _: store.open_grant(grant(), limits, NOW))
    assert 1 <= outcomes.count(None) <= 12
    assert store.usage("alice").rate_count == outcomes.count(None)


# --- what the Tablestore backend sends ------------------------------------------------------------


@pytest.fixture
def fake_ots(mocker: Any) -> Any:
    fake = FakeOTS()
    return fake, tablestore_over(mocker, lambda: fake)()


def test_tablestore_guards_the_usage_row_by_its_version_a_grant_by_absence_a_settle_by_state(
    fake_ots: Any,
) -> None:
    fake, store = fake_ots
    issued, second = grant(), grant()
    store.open_grant(issued, Limits(bytes=1000), NOW)
    store.open_grant(second, Limits(bytes=1000), NOW)
    assert store.settle("alice", issued.grant_id, USED, 5)
    puts = requests_of(fake, "PutRow")
    assert {table for table, _, _ in puts} == {"oss_uploads_grants"}
    ids = [dict(row.primary_key)["grant_id"] for _, row, _ in puts]
    assert ids == ["~usage", issued.grant_id, "~usage", second.grant_id, "~usage"]
    expect, equal = tablestore.RowExistenceExpectation, tablestore.ComparatorType.EQUAL
    absent = (expect.EXPECT_NOT_EXIST,)
    conditions = [condition_of(condition) for _, _, condition in puts]
    version = [(expect.EXPECT_EXIST, "version", n, equal, False) for n in (1, 2)]
    assert conditions == [absent, absent, version[0], absent, version[1]]
    ((table, update, still_open),) = requests_of(fake, "UpdateRow")
    assert table == "oss_uploads_grants"
    assert condition_of(still_open) == (expect.EXPECT_EXIST, "state", OPEN, equal, False)
    assert dict(update.attribute_columns["put"]) == {"state": USED, "size": 5}


def test_tablestore_refuses_after_losing_every_optimistic_attempt(fake_ots: Any) -> None:
    fake, store = fake_ots
    store.charge("alice", 1, 1, Limits())
    real_put = fake.put_row

    def racing_put(table: str, row: Any, condition: Any, *rest: Any) -> Any:
        # Another writer bumps the version between every read and write.
        key = ("alice", "~usage")
        fake.ledger_rows[key]["version"] += 1
        return real_put(table, row, condition, *rest)

    fake.put_row = racing_put  # type: ignore[method-assign]
    with pytest.raises(TooManyRequests):
        store.charge("alice", 1, 1, Limits())
    assert fake.ledger_rows[("alice", "~usage")]["used_bytes"] == 1


# --- make tables on SQLite ------------------------------------------------------------------------


def test_make_tables_on_sqlite_creates_the_ledger_in_the_records_file(tmp_path: Any) -> None:
    path = tmp_path / "new" / "r.sqlite3"  # its directory too
    environ = {"RECORDS_BACKEND": "sqlite", "SQLITE_PATH": str(path)}
    out = io.StringIO()
    assert main(environ, out=out) == 0
    assert "ready" in out.getvalue()
    assert main(environ, out=io.StringIO()) == 0  # idempotent
    names = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert {"records", "grants", "quota_usage", "grants_due", "grants_by_target"} <= names


def test_a_ledger_from_before_part_size_gains_the_column_and_reads_zero(tmp_path: Any) -> None:
    path = tmp_path / "old.sqlite3"
    old_schema = sqlite_ledger.SCHEMA.replace(
        "    part_size  INTEGER NOT NULL DEFAULT 0,\n    file_name  TEXT    NOT NULL DEFAULT '',\n",
        "",
    )
    assert "part_size" not in old_schema
    assert "file_name" not in old_schema
    with sqlite3.connect(path) as db:
        db.executescript(old_schema)
        db.execute(
            "INSERT INTO grants (owner, grant_id, mode, target, bucket, max_bytes, expires_at,"
            " created_at, state) VALUES ('alice', 'G1', 'exact', 'uploads/alice/a.png', ?, 5,"
            " 10, 0, 'open')",
            (BUCKET,),
        )
    store = SqliteStore(str(path))
    try:
        assert (
            store.get_grant("alice", "G1").part_size,
            store.get_grant("alice", "G1").file_name,
        ) == (0, "")
        session = grant(mode=MULTIPART)
        store.open_grant(session, Limits(), NOW)
        assert store.get_grant("alice", session.grant_id) == session
    finally:
        store.close()
