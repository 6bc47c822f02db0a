"""SQLite backend specifics: WAL, schema on first use, index range scans, concurrent writers, faults."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from shared.errors import ConfigError, Conflict, Unavailable
from shared.records import clear_cache, open_store
from shared.records.base import Record
from shared.records.sqlite import LIST_AFTER, LIST_FIRST, SqliteStore
from shared.settings import Env, RecordsSettings
from tests.support.records import record
from tests.support.threads import concurrently

OBJECTS = 12
# The races below prove the write algorithm, not the busy timeout (the locked-database test does):
# on a loaded machine a writer may wait longer than the callback's 2 s for the lock.
RACE_TIMEOUT_SECONDS = 60.0


def item(i: int, etag: str = "A", **overrides: object) -> Record:
    values = {"key": f"uploads/alice/{i:03d}.bin", "created_at": 1_700_000_000_000 + i}
    return record(**{**values, "etag": f"{etag}{i}", **overrides})


def rows(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT bucket, key, etag FROM records ORDER BY key").fetchall()


def test_first_use_creates_the_directory_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "records.sqlite3"
    store = SqliteStore(str(path))
    try:
        store.put(item(1), replace=False)
        busy = store._connection().execute("PRAGMA busy_timeout").fetchone()
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        indexes = {row[1] for row in db.execute("PRAGMA index_list('records')")}
    assert "records_by_owner_newest" in indexes
    assert rows(path) == [("dev-bucket", "uploads/alice/001.bin", "A1")]
    assert busy == (2000,)  # connections wait briefly for a busy database


def query_plan(store: SqliteStore, query: str, args: tuple[object, ...]) -> str:
    connection = store._connection()
    return " | ".join(row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + query, args))


@pytest.mark.parametrize(
    ("query", "args", "seek"),
    [
        (LIST_FIRST, ("alice", 51), "(owner=?)"),
        (LIST_AFTER, ("alice", 5, 5, "k", "b", 51), "(owner=? AND created_at<?)"),
    ],
)
def test_listing_is_an_index_range_scan(
    store: SqliteStore, query: str, args: tuple[object, ...], seek: str
) -> None:
    store.ensure_schema()
    plan = query_plan(store, query, args)
    assert f"USING INDEX records_by_owner_newest {seek}" in plan  # a page seeks, never scans
    assert "TEMP B-TREE" not in plan  # the index already yields the order: no sort step


def test_a_file_with_the_earlier_key_desc_index_gets_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    first = SqliteStore(str(path))
    for i in (1, 2):
        first.put(item(i, created_at=7), replace=False)
    first.close()
    with sqlite3.connect(path) as db:  # the schema of files written before ties went key asc
        db.execute("DROP INDEX records_by_owner_newest")
        db.execute(
            "CREATE INDEX records_by_owner ON records (owner, created_at DESC, key DESC, bucket DESC)"
        )
    store = SqliteStore(str(path))
    try:
        keys = [r.key for r in store.list_by_owner("alice").items]
        plan = query_plan(store, LIST_FIRST, ("alice", 51))
    finally:
        store.close()
    assert keys == [item(1).key, item(2).key]
    assert "USING INDEX records_by_owner_newest" in plan
    assert "TEMP B-TREE" not in plan
    with sqlite3.connect(path) as db:
        indexes = {row[1] for row in db.execute("PRAGMA index_list('records')")}
    assert "records_by_owner" not in indexes  # no stale index left to maintain on every write


def test_a_locked_database_is_unavailable_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    SqliteStore(str(path)).ensure_schema()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    store = SqliteStore(str(path), timeout=0.2)
    try:
        with pytest.raises(Unavailable) as caught:
            store.put(item(1), replace=False)
        assert caught.value.status == 503
        busy_ms = store._connection().execute("PRAGMA busy_timeout").fetchone()[0]
        assert busy_ms == 200  # the wait SQLite was given, not a measured one
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        store.close()
    assert rows(path) == []  # nothing half-written


def test_an_unusable_path_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = SqliteStore(str(tmp_path / "file" / "records.sqlite3"))
    with pytest.raises(Unavailable):
        store.get("dev-bucket", "k")


@pytest.mark.parametrize("path", ["", ":memory:", "file:records?mode=memory"])
def test_an_in_memory_database_is_refused(path: str) -> None:
    with pytest.raises(ConfigError, match="SQLITE_PATH"):
        SqliteStore(path)


def write_all(store: SqliteStore, etag: str, replace: bool) -> Counter[str]:
    """Write every object once, counting outcomes (Conflict is allowed)."""
    outcomes: Counter[str] = Counter()
    for i in range(OBJECTS):
        try:
            outcomes[store.put(item(i, etag), replace=replace).result.value] += 1
        except Conflict:
            outcomes["conflict"] += 1
    return outcomes


def _process_writer(path: str, etag: str, replace: bool) -> Counter[str]:
    store = SqliteStore(path, timeout=RACE_TIMEOUT_SECONDS)
    try:
        return write_all(store, etag, replace)
    finally:
        store.close()


# Each writer: (etag, replace); a quarter bring another object under the same keys.
WRITERS = [("A", False), ("A", True), ("A", False), ("B", True)]


def test_concurrent_threads_leave_one_row_per_object(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    store = SqliteStore(str(path), timeout=RACE_TIMEOUT_SECONDS)
    results: list[Counter[str]] = []
    writers = 2 * len(WRITERS)
    outcomes = concurrently(writers, lambda n: results.append(write_all(store, *WRITERS[n % 4])))
    store.close()
    assert outcomes == [None] * writers  # a writer's fault would be raised or listed here
    assert_one_row_per_object(path, sum(results, Counter[str]()), writers=writers)


def test_concurrent_processes_leave_one_row_per_object(tmp_path: Path) -> None:
    path = str(tmp_path / "records.sqlite3")
    jobs = [(path, etag, replace) for etag, replace in WRITERS]
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        results = pool.starmap(_process_writer, jobs, chunksize=1)
    assert_one_row_per_object(Path(path), sum(results, Counter[str]()), writers=len(jobs))


def assert_one_row_per_object(path: Path, outcomes: Counter[str], writers: int) -> None:
    """Every write answered, each object created once and stored once, as one of the etags."""
    assert sum(outcomes.values()) == writers * OBJECTS
    assert outcomes["created"] == OBJECTS
    assert set(outcomes) <= {"created", "duplicate", "replaced", "conflict"}
    stored = rows(path)
    assert [key for _, key, _ in stored] == [item(i).key for i in range(OBJECTS)]
    assert all(etag in (f"A{i}", f"B{i}") for i, (_, _, etag) in enumerate(stored))


def test_open_store_reuses_one_store_per_settings(tmp_path: Path) -> None:
    clear_cache()
    first = RecordsSettings.load(Env({"SQLITE_PATH": str(tmp_path / "a.sqlite3")}))
    second = RecordsSettings.load(Env({"SQLITE_PATH": str(tmp_path / "b.sqlite3")}))
    try:
        store = open_store(first)
        assert open_store(first) is store
        store.put(item(1), replace=False)
        other = open_store(second)
        assert other is not store
        assert other.get("dev-bucket", item(1).key) is None
    finally:
        clear_cache()
