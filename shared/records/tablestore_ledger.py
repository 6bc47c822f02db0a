"""The grant ledger in Tablestore (grants.py), over the official SDK.

Table `<TABLESTORE_TABLE>_grants`, PK [owner, grant_id]: one row per grant, and one usage row
per owner (grant_id `~usage`: ids are base32, never `~`). The SDK cannot return an incremented
value (reference: next-capabilities §3.2), so the usage row carries a version and every change
is read → decide (grants.py) → put_row guarded by the version read (EXPECT_NOT_EXIST for a new
row), retried when another writer got there first; after MAX_ATTEMPTS the caller is refused
(TooManyRequests), which can only refuse a few extra, never admit one. A grant row moves out of
`open` once, by update_row guarded by `state = open`.

Global indexes (asynchronous, so every decision re-reads the main row): `<ledger>_due`
[state, expires_at] for the sweeper's walk over ended grants, `<ledger>_by_target` [target] for
the audit's "which grant covered this object".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tablestore

from shared.errors import Unavailable
from shared.records.grants import (
    MAX_ATTEMPTS,
    OPEN,
    LedgerGrant,
    Limits,
    Usage,
    admitted,
    charged,
    check_grant,
    contended,
    refunded,
    settled,
)
from shared.records.tablestore_client import ConditionFailed

USAGE_ID = "~usage"
PRIMARY_KEY = [("owner", "STRING"), ("grant_id", "STRING")]
DEFINED_COLUMNS = [
    ("mode", "STRING"),
    ("target", "STRING"),
    ("bucket", "STRING"),
    ("max_bytes", "INTEGER"),
    ("expires_at", "INTEGER"),
    ("created_at", "INTEGER"),
    ("state", "STRING"),
]
# Plain attribute columns (not predefined: no index carries them, and `make tables` need not
# change an existing ledger): read from the main row only, absent on rows written before them.
PLAIN_COLUMNS = [("part_size", "INTEGER"), ("file_name", "STRING")]
DUE_INDEX_KEY = ["state", "expires_at"]  # Tablestore appends owner, grant_id
TARGET_INDEX_KEY = ["target"]
USAGE_COLUMNS = (
    "used_bytes",
    "used_files",
    "reserved_bytes",
    "reserved_files",
    "rate_window",
    "rate_count",
    "version",
)

Call = Callable[..., Any]


def ledger_table(table: str) -> str:
    return f"{table}_grants"


def due_index(table: str) -> str:
    return f"{ledger_table(table)}_due"


def target_index(table: str) -> str:
    return f"{ledger_table(table)}_by_target"


def index_columns(key: list[str]) -> list[str]:
    return [name for name, _ in DEFINED_COLUMNS if name not in key]


class TablestoreLedger:
    """GrantStore over one ledger table; `call` runs one SDK request under the store's rules."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = ledger_table(table)
        self.due = due_index(table)
        self.by_target = target_index(table)

    def open_grant(self, call: Call, grant: LedgerGrant, limits: Limits, now: float) -> None:
        check_grant(grant)
        self._change_usage(call, grant.owner, lambda usage: admitted(usage, grant, limits, now))
        row = tablestore.Row(_key(grant.owner, grant.grant_id), _grant_columns(grant))
        absent = tablestore.Condition(tablestore.RowExistenceExpectation.EXPECT_NOT_EXIST)
        try:
            try:
                call("PutRow", self.client.put_row, self.table, row, absent)
            except ConditionFailed as exc:  # ids are random: a second write of the same grant
                raise Unavailable("the grant is already in the ledger") from exc
        except BaseException:
            # Nothing issued: give the reservation back (best effort; the sweeper never sees it).
            self._change_usage(call, grant.owner, lambda usage: settled(usage, grant, "", 0))
            raise

    def get_grant(self, call: Call, owner: str, grant_id: str) -> LedgerGrant | None:
        if grant_id == USAGE_ID:
            return None
        _, row, _ = call("GetRow", self.client.get_row, self.table, _key(owner, grant_id))
        return _decode_grant(row) if row is not None else None

    def usage(self, call: Call, owner: str) -> Usage:
        return self._read_usage(call, owner)[0]

    def settle(self, call: Call, owner: str, grant_id: str, state: str, size: int) -> bool:
        grant = self.get_grant(call, owner, grant_id)
        if grant is None or grant.state != OPEN:
            return False
        change = tablestore.Row(_key(owner, grant_id), {"put": [("state", state), ("size", size)]})
        still_open = tablestore.Condition(
            tablestore.RowExistenceExpectation.EXPECT_EXIST,
            tablestore.SingleColumnCondition(
                "state", OPEN, tablestore.ComparatorType.EQUAL, pass_if_missing=False
            ),
        )
        try:
            call("UpdateRow", self.client.update_row, self.table, change, still_open)
        except ConditionFailed:
            return False  # another writer settled it first: the usage is theirs to change
        self._change_usage(call, owner, lambda usage: settled(usage, grant, state, size))
        return True

    def charge(self, call: Call, owner: str, size: int, files: int, limits: Limits) -> None:
        self._change_usage(call, owner, lambda usage: charged(usage, size, files, limits))

    def refund(self, call: Call, owner: str, size: int, files: int) -> None:
        self._change_usage(call, owner, lambda usage: refunded(usage, size, files))

    def ended_grants(self, call: Call, before: int, limit: int) -> list[LedgerGrant]:
        low = tablestore.INF_MIN
        start: Any = [("state", OPEN), ("expires_at", low), ("owner", low), ("grant_id", low)]
        end = [("state", OPEN), ("expires_at", before), ("owner", low), ("grant_id", low)]
        grants: list[LedgerGrant] = []
        while start is not None and len(grants) < limit:
            _, start, rows, _ = call(
                "GetRange",
                self.client.get_range,
                self.due,
                tablestore.Direction.FORWARD,
                start,
                end,
                None,
                limit - len(grants),
            )
            grants.extend(_decode_grant(row) for row in rows)
        return grants

    def grants_for(self, call: Call, bucket: str, target: str) -> list[LedgerGrant]:
        low, high = tablestore.INF_MIN, tablestore.INF_MAX
        start: Any = [("target", target), ("owner", low), ("grant_id", low)]
        end = [("target", target), ("owner", high), ("grant_id", high)]
        grants: list[LedgerGrant] = []
        while start is not None:
            _, start, rows, _ = call(
                "GetRange",
                self.client.get_range,
                self.by_target,
                tablestore.Direction.FORWARD,
                start,
                end,
                None,
                100,
            )
            grants.extend(_decode_grant(row) for row in rows)
        return sorted((g for g in grants if g.bucket == bucket), key=lambda g: g.created_at)

    # --- the usage row --------------------------------------------------------------------------

    def _read_usage(self, call: Call, owner: str) -> tuple[Usage, bool]:
        _, row, _ = call("GetRow", self.client.get_row, self.table, _key(owner, USAGE_ID))
        if row is None:
            return Usage(), False
        values = {column[0]: column[1] for column in row.attribute_columns}
        numbers = [values.get(name, 0) for name in USAGE_COLUMNS]
        if not all(type(value) is int for value in numbers):
            raise Unavailable("a stored usage row is malformed")
        return Usage(*numbers), True

    def _change_usage(self, call: Call, owner: str, change: Callable[[Usage], Usage]) -> Usage:
        """Read, decide, write guarded by the version read; again when another writer won."""
        for _ in range(MAX_ATTEMPTS):
            current, exists = self._read_usage(call, owner)
            after = change(current)  # QuotaExceeded / TooManyRequests leave the row as it was
            columns = [(name, getattr(after, name)) for name in USAGE_COLUMNS]
            if exists:
                condition = tablestore.Condition(
                    tablestore.RowExistenceExpectation.EXPECT_EXIST,
                    tablestore.SingleColumnCondition(
                        "version",
                        current.version,
                        tablestore.ComparatorType.EQUAL,
                        pass_if_missing=False,
                    ),
                )
            else:
                condition = tablestore.Condition(
                    tablestore.RowExistenceExpectation.EXPECT_NOT_EXIST
                )
            row = tablestore.Row(_key(owner, USAGE_ID), columns)
            try:
                call("PutRow", self.client.put_row, self.table, row, condition)
            except ConditionFailed:
                continue
            return after
        raise contended()


def _key(owner: str, grant_id: str) -> list[tuple[str, str]]:
    return [("owner", owner), ("grant_id", grant_id)]


def _grant_columns(grant: LedgerGrant) -> list[tuple[str, Any]]:
    return [(name, getattr(grant, name)) for name, _ in DEFINED_COLUMNS + PLAIN_COLUMNS]


def _decode_grant(row: Any) -> LedgerGrant:
    values: dict[str, Any] = dict(row.primary_key)
    values.update((column[0], column[1]) for column in row.attribute_columns)
    fields: dict[str, Any] = {name: values.get(name) for name in ("owner", "grant_id")}
    fields.update({name: values.get(name) for name, _ in DEFINED_COLUMNS})
    kinds = {"STRING": str, "INTEGER": int}
    types = dict(PRIMARY_KEY + DEFINED_COLUMNS)
    for name, value in fields.items():
        if type(value) is not kinds[types[name]]:
            raise Unavailable("a stored grant is malformed")
    # An index row carries only the predefined columns; the main row has the plain ones too.
    plain = {name: values.get(name, 0 if kind == "INTEGER" else "") for name, kind in PLAIN_COLUMNS}
    for name, kind in PLAIN_COLUMNS:
        if type(plain[name]) is not kinds[kind]:
            raise Unavailable("a stored grant is malformed")
    return LedgerGrant(**fields, **plain)
