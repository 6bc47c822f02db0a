"""SQLite record store (stdlib): the embedded default for local runs and single-machine use.

One row per object, keyed by (bucket, key); the index (owner, created_at DESC, key, bucket) makes
one owner's listing (newest first, ties by key ascending) an index range scan with no sort step. WAL lets readers run beside a writer, and a
short busy timeout makes writers from other threads and processes wait briefly instead of failing.
Every statement runs in autocommit: the insert is atomic on its own, and a replacement is an
UPDATE guarded by the etag that was read, so concurrent writers never overwrite each other blindly.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared import logs
from shared.errors import ConfigError, Unavailable
from shared.records import sqlite_ledger as ledger
from shared.records.base import DEFAULT_PAGE, Page, PutOutcome, Record
from shared.records.cursor import check_limit, decode_cursor, encode_cursor, position
from shared.records.grants import LedgerGrant, Limits, Usage
from shared.records.write import write_record

BUSY_TIMEOUT_SECONDS = 2.0  # the callback must answer OSS well inside its 5 s limit

_COLUMNS = (
    "bucket",
    "key",
    "owner",
    "created_at",
    "size",
    "etag",
    "mime_type",
    "image_width",
    "image_height",
    "image_format",
    "crc64",
    "content_md5",
    "client_ip",
    "request_id",
    "grant_id",
    "reconciled",
    "file_name",
    "deleted_at",
)
# Columns added after the first release, with what older files get (`_migrate`).
ADDED_COLUMNS = (
    ("file_name", "TEXT    NOT NULL DEFAULT ''"),
    ("deleted_at", "INTEGER NOT NULL DEFAULT 0"),
)
# Statements are built from the constant column list above, never from input (hence S608 noqa).
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM records"  # noqa: S608

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    bucket       TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    owner        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    etag         TEXT    NOT NULL,
    mime_type    TEXT    NOT NULL,
    image_width  INTEGER,
    image_height INTEGER,
    image_format TEXT    NOT NULL,
    crc64        TEXT    NOT NULL,
    content_md5  TEXT    NOT NULL,
    client_ip    TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    grant_id     TEXT    NOT NULL,
    reconciled   INTEGER NOT NULL,
    file_name    TEXT    NOT NULL DEFAULT '',
    deleted_at   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
DROP INDEX IF EXISTS records_by_owner;  -- an earlier file's index ordered ties by key DESC
CREATE INDEX IF NOT EXISTS records_by_owner_newest
    ON records (owner, created_at DESC, key ASC, bucket ASC);
"""

INSERT = (
    f"INSERT INTO records ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"  # noqa: S608
    " ON CONFLICT (bucket, key) DO NOTHING"
)
REPLACE = (  # guarded by the etag read just before: never overwrites another writer's row
    f"UPDATE records SET {', '.join(f'{name} = ?' for name in _COLUMNS[2:])}"  # noqa: S608
    " WHERE bucket = ? AND key = ? AND etag = ?"
)
_ORDER = "ORDER BY created_at DESC, key ASC, bucket ASC"  # DESIGN: createdAt desc, then key
TOMBSTONE = "UPDATE records SET deleted_at = ? WHERE bucket = ? AND key = ? AND etag = ?"
LIST_FIRST = f"{_SELECT} WHERE owner = ? AND deleted_at = 0 {_ORDER} LIMIT ?"
# Strictly after the cursor in that mixed order: older, or as old with a greater (key, bucket).
# `created_at <= ?` bounds the index range; the rest filters within the cursor's millisecond.
LIST_AFTER = (
    f"{_SELECT} WHERE owner = ? AND deleted_at = 0 AND created_at <= ?"
    " AND (created_at < ? OR (key, bucket) > (?, ?))"
    f" {_ORDER} LIMIT ?"
)


class _Connection(sqlite3.Connection):
    """A connection the store can track weakly: it closes when its thread is gone."""


class SqliteStore:
    """`RecordStore` over one SQLite file; one connection per thread (and per process)."""

    backend = "sqlite"

    def __init__(self, path: str, *, timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        if not path or path == ":memory:" or path.startswith("file:"):
            # Each thread opens its own connection: an in-memory database would not be shared.
            raise ConfigError("SQLITE_PATH", "must be a file path")
        self.path = path
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._schema_ready = False

    # --- RecordStore ----------------------------------------------------------------------------

    def put(self, record: Record, *, replace: bool) -> PutOutcome:
        """INSERT OR IGNORE, SELECT, UPDATE … WHERE etag = stored: the write algorithm (write.py)."""
        with self._db() as db:

            def insert(item: Record) -> bool:
                return bool(db.execute(INSERT, _row(item)).rowcount == 1)

            def replace_if(item: Record, etag: str) -> bool:
                guarded = (*_row(item)[2:], item.bucket, item.key, etag)
                return bool(db.execute(REPLACE, guarded).rowcount == 1)

            return write_record(
                record,
                replace=replace,
                insert=insert,
                read=lambda bucket, key: self._read(db, bucket, key),
                replace_if=replace_if,
            )

    def get(self, bucket: str, key: str) -> Record | None:
        """The record for (bucket, key), or None."""
        with self._db() as db:
            return self._read(db, bucket, key)

    def tombstone(self, bucket: str, key: str, etag: str, deleted_at: int) -> bool:
        """UPDATE … SET deleted_at WHERE etag = the deleted object's (base.py)."""
        with self._db() as db:
            return bool(db.execute(TOMBSTONE, (deleted_at, bucket, key, etag)).rowcount == 1)

    def list_by_owner(
        self, owner: str, *, limit: int = DEFAULT_PAGE, cursor: str | None = None
    ) -> Page:
        """Live records, newest first (created_at desc, then key, bucket asc), resuming strictly after `cursor`."""
        limit = check_limit(limit)
        after = decode_cursor(cursor) if cursor is not None else None
        with self._db() as db:
            if after is None:
                rows = db.execute(LIST_FIRST, (owner, limit + 1)).fetchall()
            else:
                at = after.created_at
                rows = db.execute(
                    LIST_AFTER, (owner, at, at, after.key, after.bucket, limit + 1)
                ).fetchall()
        items = [_record(row) for row in rows[:limit]]
        more = len(rows) > limit  # we read one row more than asked: is there a next page?
        return Page(items=items, next=encode_cursor(position(items[-1])) if more else None)

    # --- GrantStore (grants.py; sqlite_ledger.py) -----------------------------------------------

    def open_grant(self, grant: LedgerGrant, limits: Limits, now: float) -> None:
        with self._db() as db:
            ledger.open_grant(db, grant, limits, now)

    def get_grant(self, owner: str, grant_id: str) -> LedgerGrant | None:
        with self._db() as db:
            return ledger.get_grant(db, owner, grant_id)

    def usage(self, owner: str) -> Usage:
        with self._db() as db:
            return ledger.read_usage(db, owner)

    def settle(self, owner: str, grant_id: str, state: str, size: int = 0) -> bool:
        with self._db() as db:
            return ledger.settle(db, owner, grant_id, state, size)

    def charge(self, owner: str, size: int, files: int, limits: Limits) -> None:
        with self._db() as db:
            ledger.charge(db, owner, size, files, limits)

    def refund(self, owner: str, size: int, files: int) -> None:
        with self._db() as db:
            ledger.refund(db, owner, size, files)

    def ended_grants(self, before: int, limit: int) -> list[LedgerGrant]:
        with self._db() as db:
            return ledger.ended_grants(db, before, limit)

    def grants_for(self, bucket: str, target: str) -> list[LedgerGrant]:
        with self._db() as db:
            return ledger.grants_for(db, bucket, target)

    # --- housekeeping ---------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create the parent directory, the table and the listing index (idempotent)."""
        with self._db():
            pass

    def close(self) -> None:
        """Close every connection this store opened (tests, shutdown)."""
        with self._lock:
            connections, self._connections = list(self._connections), weakref.WeakSet()
            self._local = threading.local()
        for connection in connections:
            connection.close()

    # --- internals ------------------------------------------------------------------------------

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection; sqlite3 and OS errors (locked, disk, I/O) become Unavailable."""
        try:
            yield self._connection()
        except (sqlite3.Error, OSError) as exc:
            logs.warning(
                "records_unavailable", backend="sqlite", error=type(exc).__name__, detail=str(exc)
            )
            raise Unavailable("the record store is unavailable; try again") from exc

    def _connection(self) -> sqlite3.Connection:
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is not None and getattr(self._local, "pid", None) == os.getpid():
            return connection
        # New thread, or a forked child (a connection must never cross a fork): open our own.
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        # Only this thread uses the connection; close() may run on another (hence no same-thread
        # check). A finished thread's connection is collected with its thread-local and closes.
        connection = sqlite3.connect(
            self.path,
            timeout=self.timeout,
            isolation_level=None,
            check_same_thread=False,
            factory=_Connection,
        )
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")  # durable with WAL, not fsync per row
            if not self._schema_ready:
                with self._lock:  # one thread creates the schema; the others wait, not race
                    if not self._schema_ready:
                        connection.executescript(SCHEMA + ledger.SCHEMA)
                        _migrate(connection)
                        ledger.migrate(connection)
                        self._schema_ready = True
        except BaseException:
            connection.close()
            raise
        self._local.connection = connection
        self._local.pid = os.getpid()
        with self._lock:
            self._connections.add(connection)
        return connection

    @staticmethod
    def _read(db: sqlite3.Connection, bucket: str, key: str) -> Record | None:
        row = db.execute(f"{_SELECT} WHERE bucket = ? AND key = ?", (bucket, key)).fetchone()
        return _record(row) if row is not None else None


def _migrate(connection: sqlite3.Connection) -> None:
    """Add the columns a file made by an earlier release lacks (ALTER TABLE is not idempotent)."""
    present = {row[1] for row in connection.execute("PRAGMA table_info(records)")}
    for name, definition in ADDED_COLUMNS:
        if name not in present:
            connection.execute(f"ALTER TABLE records ADD COLUMN {name} {definition}")


def _row(record: Record) -> tuple[Any, ...]:
    values = record.as_dict()
    values["reconciled"] = int(record.reconciled)
    return tuple(values[name] for name in _COLUMNS)


def _record(row: tuple[Any, ...]) -> Record:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["reconciled"] = bool(values["reconciled"])
    return Record(**values)
