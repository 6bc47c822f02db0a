"""The grant ledger in SQLite (grants.py): each change is one `BEGIN IMMEDIATE` transaction.

The write lock taken at BEGIN makes read-decide-write atomic across threads and processes, so
the usage row needs no version check here; the version still moves so both backends agree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from shared.records.grants import (
    OPEN,
    LedgerGrant,
    Limits,
    Usage,
    admitted,
    charged,
    check_grant,
    refunded,
    settled,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS grants (
    owner      TEXT    NOT NULL,
    grant_id   TEXT    NOT NULL,
    mode       TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    bucket     TEXT    NOT NULL,
    max_bytes  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    size       INTEGER NOT NULL DEFAULT 0,
    part_size  INTEGER NOT NULL DEFAULT 0,
    file_name  TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (owner, grant_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS grants_due ON grants (state, expires_at);
CREATE INDEX IF NOT EXISTS grants_by_target ON grants (target, bucket);
CREATE TABLE IF NOT EXISTS quota_usage (
    owner          TEXT    NOT NULL PRIMARY KEY,
    used_bytes     INTEGER NOT NULL,
    used_files     INTEGER NOT NULL,
    reserved_bytes INTEGER NOT NULL,
    reserved_files INTEGER NOT NULL,
    rate_window    INTEGER NOT NULL,
    rate_count   INTEGER NOT NULL,
    version        INTEGER NOT NULL
) WITHOUT ROWID;
"""

_GRANT_COLUMNS = (
    "owner",
    "grant_id",
    "mode",
    "target",
    "bucket",
    "max_bytes",
    "expires_at",
    "created_at",
    "state",
    "part_size",
    "file_name",
)
# Columns a ledger made by an earlier release lacks: (name, definition), added by `migrate`.
ADDED_COLUMNS = (
    ("part_size", "INTEGER NOT NULL DEFAULT 0"),
    ("file_name", "TEXT NOT NULL DEFAULT ''"),
)
_USAGE_COLUMNS = (
    "used_bytes",
    "used_files",
    "reserved_bytes",
    "reserved_files",
    "rate_window",
    "rate_count",
    "version",
)
# Built from the constant column lists above, never from input (hence S608 noqa).
_SELECT_GRANT = f"SELECT {', '.join(_GRANT_COLUMNS)} FROM grants"  # noqa: S608
_INSERT_GRANT = (
    f"INSERT INTO grants ({', '.join(_GRANT_COLUMNS)})"  # noqa: S608
    f" VALUES ({', '.join('?' * len(_GRANT_COLUMNS))})"
)
_SELECT_USAGE = f"SELECT {', '.join(_USAGE_COLUMNS)} FROM quota_usage WHERE owner = ?"  # noqa: S608
_UPSERT_USAGE = (
    f"INSERT INTO quota_usage (owner, {', '.join(_USAGE_COLUMNS)})"  # noqa: S608
    f" VALUES (?, {', '.join('?' * len(_USAGE_COLUMNS))})"
    f" ON CONFLICT (owner) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _USAGE_COLUMNS)}"
)

Db = Callable[[], Any]  # the store's `_db()` context manager


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on any error): one writer at a time, all or nothing."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def migrate(db: sqlite3.Connection) -> None:
    """Add the columns an earlier release's ledger lacks (ALTER TABLE is not idempotent)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(grants)")}
    for name, definition in ADDED_COLUMNS:
        if name not in present:
            db.execute(f"ALTER TABLE grants ADD COLUMN {name} {definition}")


def open_grant(db: sqlite3.Connection, grant: LedgerGrant, limits: Limits, now: float) -> None:
    check_grant(grant)
    with transaction(db):
        usage = admitted(read_usage(db, grant.owner), grant, limits, now)
        write_usage(db, grant.owner, usage)
        db.execute(_INSERT_GRANT, _grant_row(grant))


def get_grant(db: sqlite3.Connection, owner: str, grant_id: str) -> LedgerGrant | None:
    row = db.execute(
        f"{_SELECT_GRANT} WHERE owner = ? AND grant_id = ?", (owner, grant_id)
    ).fetchone()
    return _grant(row) if row is not None else None


def settle(db: sqlite3.Connection, owner: str, grant_id: str, state: str, size: int) -> bool:
    with transaction(db):
        grant = get_grant(db, owner, grant_id)
        if grant is None or grant.state != OPEN:
            return False
        db.execute(
            "UPDATE grants SET state = ?, size = ? WHERE owner = ? AND grant_id = ?",
            (state, size, owner, grant_id),
        )
        write_usage(db, owner, settled(read_usage(db, owner), grant, state, size))
        return True


def charge(db: sqlite3.Connection, owner: str, size: int, files: int, limits: Limits) -> None:
    with transaction(db):
        write_usage(db, owner, charged(read_usage(db, owner), size, files, limits))


def refund(db: sqlite3.Connection, owner: str, size: int, files: int) -> None:
    with transaction(db):
        write_usage(db, owner, refunded(read_usage(db, owner), size, files))


def ended_grants(db: sqlite3.Connection, before: int, limit: int) -> list[LedgerGrant]:
    rows = db.execute(
        f"{_SELECT_GRANT} WHERE state = ? AND expires_at < ? ORDER BY expires_at LIMIT ?",
        (OPEN, before, limit),
    ).fetchall()
    return [_grant(row) for row in rows]


def grants_for(db: sqlite3.Connection, bucket: str, target: str) -> list[LedgerGrant]:
    rows = db.execute(
        f"{_SELECT_GRANT} WHERE target = ? AND bucket = ? ORDER BY created_at", (target, bucket)
    ).fetchall()
    return [_grant(row) for row in rows]


def read_usage(db: sqlite3.Connection, owner: str) -> Usage:
    row = db.execute(_SELECT_USAGE, (owner,)).fetchone()
    return Usage(*row) if row is not None else Usage()


def write_usage(db: sqlite3.Connection, owner: str, usage: Usage) -> None:
    db.execute(_UPSERT_USAGE, (owner, *(getattr(usage, name) for name in _USAGE_COLUMNS)))


def _grant_row(grant: LedgerGrant) -> tuple[Any, ...]:
    return tuple(getattr(grant, name) for name in _GRANT_COLUMNS)


def _grant(row: tuple[Any, ...]) -> LedgerGrant:
    return LedgerGrant(**dict(zip(_GRANT_COLUMNS, row, strict=True)))
