"""Tablestore record store, over the official `tablestore` SDK (5.4.x on FC's python3.10, 6.x here).

Key design (docs/records.md):
- main table, PK [pk, bucket, key], pk = first 8 hex of md5(bucket/key): the identity is the
  object, so writes are idempotent, and the hash spreads writes over partitions;
- global secondary index `<table>_by_owner`, PK [owner, created_at_rev, key] (+ pk, bucket
  appended by Tablestore), carrying every other attribute; created_at_rev = 2**63-1 - created_at
  is written with every row, so one FORWARD range read lists one owner's records newest first
  with ties by key ascending (DESIGN.md: createdAt descending, then key). The index is updated
  asynchronously: a fresh record may be missing for a moment.

Writes are conditional (EXPECT_NOT_EXIST, then EXPECT_EXIST + etag), retried at most twice within
0.3 s and a per-operation deadline, with a 1 s socket timeout: OSS's 5 s callback limit holds.
Beside it: `tablestore_rows.py` (the row layout and codec), `tablestore_client.py` (the SDK
client, its retries, the deadline and error mapping), `tablestore_ledger.py` (the grant ledger).
This module imports the SDK; `shared.records` imports this module only for the tablestore backend.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import tablestore

from shared.credentials import Credentials
from shared.errors import Unavailable
from shared.records.base import DEFAULT_PAGE, Page, PutOutcome, Record
from shared.records.cursor import check_limit, decode_cursor, encode_cursor, position
from shared.records.grants import LedgerGrant, Limits, Usage
from shared.records.tablestore_client import (
    OPERATION_BUDGET_SECONDS,
    ConditionFailed,
    ShortRetryPolicy,
    build_client,
    operation,
)
from shared.records.tablestore_ledger import TablestoreLedger
from shared.records.tablestore_rows import (
    attribute_columns,
    decode_row,
    index_key,
    index_name,
    inverted,
    partition_key,
    primary_key,
)
from shared.records.write import write_record
from shared.settings import RecordsSettings


class TablestoreStore:
    """`RecordStore` over a Tablestore table and its `<table>_by_owner` global index."""

    backend = "tablestore"

    def __init__(
        self,
        settings: RecordsSettings,
        credentials: Credentials,
        *,
        budget: float = OPERATION_BUDGET_SECONDS,
    ) -> None:
        if not settings.tablestore_endpoint or not settings.tablestore_instance:
            raise Unavailable("TABLESTORE_ENDPOINT and TABLESTORE_INSTANCE are required")
        self.settings = settings
        self.table = settings.tablestore_table
        self.index = index_name(self.table)
        self.budget = budget
        self.retry_policy = ShortRetryPolicy()
        self._lock = threading.Lock()
        self._identity: tuple[str, str | None] | None = None
        self._client: Any = None
        self._ledger: TablestoreLedger
        self.use_credentials(credentials)

    def use_credentials(self, credentials: Credentials) -> None:
        """Rebuild the client when the role's credentials rotated (new key id or token)."""
        with self._lock:
            if self._identity == credentials.identity:
                return
            self._client = build_client(self.settings, credentials, self.retry_policy)
            self._ledger = TablestoreLedger(self._client, self.table)
            self._identity = credentials.identity

    @property
    def client(self) -> Any:
        return self._client

    # --- RecordStore ----------------------------------------------------------------------------

    def put(self, record: Record, *, replace: bool) -> PutOutcome:
        """put_row EXPECT_NOT_EXIST, get_row, put_row EXPECT_EXIST + etag: the write algorithm (write.py)."""
        with self._operation() as call:

            def put_row(item: Record, condition: Any) -> bool:
                row = tablestore.Row(primary_key(item.bucket, item.key), attribute_columns(item))
                try:
                    call("PutRow", self._client.put_row, self.table, row, condition)
                except ConditionFailed:
                    return False
                return True

            def insert(item: Record) -> bool:
                absent = tablestore.RowExistenceExpectation.EXPECT_NOT_EXIST
                return put_row(item, tablestore.Condition(absent))

            def replace_if(item: Record, etag: str) -> bool:
                unchanged = tablestore.Condition(
                    tablestore.RowExistenceExpectation.EXPECT_EXIST,
                    tablestore.SingleColumnCondition(
                        "etag", etag, tablestore.ComparatorType.EQUAL, pass_if_missing=False
                    ),
                )
                return put_row(item, unchanged)

            return write_record(
                record,
                replace=replace,
                insert=insert,
                read=lambda bucket, key: self._read(call, bucket, key),
                replace_if=replace_if,
            )

    def get(self, bucket: str, key: str) -> Record | None:
        """get_row on the main table."""
        with self._operation() as call:
            return self._read(call, bucket, key)

    def tombstone(self, bucket: str, key: str, etag: str, deleted_at: int) -> bool:
        """update_row of deleted_at, EXPECT_EXIST with the deleted object's etag (base.py)."""
        with self._operation() as call:
            unchanged = tablestore.Condition(
                tablestore.RowExistenceExpectation.EXPECT_EXIST,
                tablestore.SingleColumnCondition(
                    "etag", etag, tablestore.ComparatorType.EQUAL, pass_if_missing=False
                ),
            )
            row = tablestore.Row(primary_key(bucket, key), {"put": [("deleted_at", deleted_at)]})
            try:
                call("UpdateRow", self._client.update_row, self.table, row, unchanged)
            except ConditionFailed:
                return False
            return True

    def list_by_owner(
        self, owner: str, *, limit: int = DEFAULT_PAGE, cursor: str | None = None
    ) -> Page:
        """get_range FORWARD on the owner index, resuming strictly after `cursor`; tombstones
        are read and skipped (a deleted upload is not listed)."""
        limit = check_limit(limit)
        after = decode_cursor(cursor) if cursor is not None else None
        inf_min, inf_max = tablestore.INF_MIN, tablestore.INF_MAX
        if after is None:
            start = index_key(owner, inf_min, inf_min, inf_min, inf_min)
        else:
            start = index_key(
                owner,
                inverted(after.created_at),
                after.key,
                partition_key(after.bucket, after.key),
                after.bucket,
            )
        end = index_key(owner, inf_max, inf_max, inf_max, inf_max)
        records: list[Record] = []
        with self._operation() as call:
            while start is not None and len(records) <= limit:
                _, start, rows, _ = call(
                    "GetRange",
                    self._client.get_range,
                    self.index,
                    tablestore.Direction.FORWARD,
                    start,
                    end,
                    None,  # columns_to_get: all the index carries
                    limit + 1 - len(records),
                )
                for row in rows:
                    item = decode_row(row)
                    if after is not None and position(item) == after:
                        continue  # the cursor's own row: the range start is inclusive
                    if not item.deleted:
                        records.append(item)
        items = records[:limit]
        more = len(records) > limit
        return Page(items=items, next=encode_cursor(position(items[-1])) if more else None)

    # --- GrantStore (grants.py; tablestore_ledger.py) --------------------------------------------

    def open_grant(self, grant: LedgerGrant, limits: Limits, now: float) -> None:
        with self._operation() as call:
            self._ledger.open_grant(call, grant, limits, now)

    def get_grant(self, owner: str, grant_id: str) -> LedgerGrant | None:
        with self._operation() as call:
            return self._ledger.get_grant(call, owner, grant_id)

    def usage(self, owner: str) -> Usage:
        with self._operation() as call:
            return self._ledger.usage(call, owner)

    def settle(self, owner: str, grant_id: str, state: str, size: int = 0) -> bool:
        with self._operation() as call:
            return self._ledger.settle(call, owner, grant_id, state, size)

    def charge(self, owner: str, size: int, files: int, limits: Limits) -> None:
        with self._operation() as call:
            self._ledger.charge(call, owner, size, files, limits)

    def refund(self, owner: str, size: int, files: int) -> None:
        with self._operation() as call:
            self._ledger.refund(call, owner, size, files)

    def ended_grants(self, before: int, limit: int) -> list[LedgerGrant]:
        with self._operation() as call:
            return self._ledger.ended_grants(call, before, limit)

    def grants_for(self, bucket: str, target: str) -> list[LedgerGrant]:
        with self._operation() as call:
            return self._ledger.grants_for(call, bucket, target)

    # --- internals ------------------------------------------------------------------------------

    def _operation(self) -> AbstractContextManager[Callable[..., Any]]:
        """One store operation (`tablestore_client.operation`): a deadline, faults → 503."""
        return operation(self.retry_policy, self.budget)

    def _read(self, call: Callable[..., Any], bucket: str, key: str) -> Record | None:
        _, row, _ = call("GetRow", self._client.get_row, self.table, primary_key(bucket, key))
        return decode_row(row) if row is not None else None
