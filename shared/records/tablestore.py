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
This module imports the SDK; `shared.records` imports this module only for the tablestore backend.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import tablestore
import urllib3
from tablestore.retry import RetryPolicy

from shared import logs
from shared.credentials import Credentials
from shared.errors import Unavailable
from shared.records.base import DEFAULT_PAGE, Page, PutOutcome, Record
from shared.records.cursor import check_limit, decode_cursor, encode_cursor, position
from shared.records.grants import LedgerGrant, Limits, Usage
from shared.records.tablestore_ledger import ConditionFailed as _ConditionFailed
from shared.records.tablestore_ledger import TablestoreLedger
from shared.records.write import write_record
from shared.settings import RecordsSettings

SOCKET_TIMEOUT_SECONDS = 1.0  # per connect and per read; Tablestore answers in milliseconds
OPERATION_BUDGET_SECONDS = 2.0  # no new request starts after this; OSS waits 5 s in all
MAX_RETRIES = 2
FIRST_RETRY_DELAY = 0.1  # then 0.2: at most 0.3 s of sleeping per request
CONDITION_FAILED = "OTSConditionCheckFail"
CONDITIONAL_APIS = frozenset({"PutRow", "UpdateRow"})  # elsewhere that code would be a store fault
RETRIABLE_CODES = frozenset(
    {
        "OTSServerBusy",
        "OTSTimeout",
        "OTSServerUnavailable",
        "OTSRowOperationConflict",
        "OTSPartitionUnavailable",
        "OTSInternalServerError",
        "OTSNotEnoughCapacityUnit",
        "OTSOperationThrottled",
    }
)

PRIMARY_KEY = [("pk", "STRING"), ("bucket", "STRING"), ("key", "STRING")]
INDEX_PRIMARY_KEY = ["owner", "created_at_rev", "key"]  # Tablestore appends pk, bucket
INVERTED_BASE = 2**63 - 1  # Tablestore INTEGER is a signed 64-bit value; created_at is ≤ 2**53
# Attribute columns, predefined so that the index can be keyed on and carry them.
DEFINED_COLUMNS = [
    ("owner", "STRING"),
    ("created_at", "INTEGER"),
    ("created_at_rev", "INTEGER"),  # derived from created_at, never a Record field
    ("size", "INTEGER"),
    ("etag", "STRING"),
    ("mime_type", "STRING"),
    ("image_width", "INTEGER"),
    ("image_height", "INTEGER"),
    ("image_format", "STRING"),
    ("crc64", "STRING"),
    ("content_md5", "STRING"),
    ("client_ip", "STRING"),
    ("request_id", "STRING"),
    ("grant_id", "STRING"),
    ("reconciled", "BOOLEAN"),
    ("file_name", "STRING"),
    ("deleted_at", "INTEGER"),
]
INDEX_COLUMNS = [name for name, _ in DEFINED_COLUMNS if name not in INDEX_PRIMARY_KEY]
DERIVED_COLUMNS = frozenset({"created_at_rev"})
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "STRING": (str,),
    "INTEGER": (int,),
    "BOOLEAN": (bool,),
}
_OPTIONAL = frozenset(
    field.name for field in dataclasses.fields(Record) if field.default is not dataclasses.MISSING
)

# The SDK logs every failed request (each duplicate's condition failure, too) at ERROR level; we
# log one structured line per failure ourselves, so its logger stays quiet.
SDK_LOGGER = "oss_direct_upload.tablestore_sdk"
_sdk_logger = logging.getLogger(SDK_LOGGER)
_sdk_logger.addHandler(logging.NullHandler())
_sdk_logger.propagate = False

NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError)  # OSError covers socket timeouts


def index_name(table: str) -> str:
    return f"{table}_by_owner"


def partition_key(bucket: str, key: str) -> str:
    """8 hex digits of md5(bucket/key): spreads rows over partitions (not a security function)."""
    return hashlib.md5(f"{bucket}/{key}".encode(), usedforsecurity=False).hexdigest()[:8]


def primary_key(bucket: str, key: str) -> list[tuple[str, str]]:
    return [("pk", partition_key(bucket, key)), ("bucket", bucket), ("key", key)]


def inverted(created_at: int) -> int:
    """created_at mirrored in int64: an ascending (FORWARD) index read then lists newest first."""
    return INVERTED_BASE - created_at


class ShortRetryPolicy(RetryPolicy):  # type: ignore[misc] # the SDK ships no types
    """At most 2 retries, 0.1 s then 0.2 s, only for transient codes and within the deadline."""

    max_retry_times = MAX_RETRIES

    def __init__(self) -> None:
        self._local = threading.local()

    def start(self, budget: float) -> float:
        """Open this thread's operation deadline; returns it (monotonic seconds)."""
        deadline: float = time.monotonic() + budget
        self._local.deadline = deadline
        return deadline

    def should_retry(self, retry_times: int, exception: Any, api_name: str) -> bool:
        if retry_times >= self.max_retry_times:
            return False
        if getattr(exception, "code", None) not in RETRIABLE_CODES:
            return False
        deadline: float | None = getattr(self._local, "deadline", None)
        delay = self.get_retry_delay(retry_times, exception, api_name)
        return deadline is None or time.monotonic() + delay < deadline

    def get_retry_delay(self, retry_times: int, exception: Any, api_name: str) -> float:
        delay: float = FIRST_RETRY_DELAY * 2**retry_times
        return delay


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
                except _ConditionFailed:
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
            except _ConditionFailed:
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

    @contextmanager
    def _operation(self) -> Iterator[Callable[..., Any]]:
        """One store operation: a deadline for all its requests; SDK and network faults → 503."""
        deadline = self.retry_policy.start(self.budget)

        def call(api: str, method: Callable[..., Any], *args: Any) -> Any:
            if time.monotonic() >= deadline:
                logs.warning("records_unavailable", backend="tablestore", api=api, error="deadline")
                raise Unavailable("the record store is too slow; try again")
            try:
                return method(*args)
            except tablestore.OTSServiceError as exc:
                if exc.code == CONDITION_FAILED and api in CONDITIONAL_APIS:
                    raise _ConditionFailed(api) from exc
                logs.warning(
                    "records_unavailable",
                    backend="tablestore",
                    api=api,
                    error=exc.code,
                    status=exc.http_status,
                    detail=exc.message,
                    ots_request_id=exc.request_id,
                )
                raise Unavailable(
                    f"the record store is unavailable ({exc.code}); try again"
                ) from exc
            except tablestore.OTSClientError as exc:
                logs.warning(
                    "records_unavailable",
                    backend="tablestore",
                    api=api,
                    error="OTSClientError",
                    detail=str(exc),
                )
                raise Unavailable("the record store is unavailable; try again") from exc
            except NETWORK_ERRORS as exc:
                logs.warning(
                    "records_unavailable",
                    backend="tablestore",
                    api=api,
                    error=type(exc).__name__,
                    detail=str(exc),
                )
                raise Unavailable("the record store is unreachable; try again") from exc

        yield call

    def _read(self, call: Callable[..., Any], bucket: str, key: str) -> Record | None:
        _, row, _ = call("GetRow", self._client.get_row, self.table, primary_key(bucket, key))
        return decode_row(row) if row is not None else None


def build_client(
    settings: RecordsSettings, credentials: Credentials, retry_policy: RetryPolicy
) -> Any:
    """OTSClient with a short socket timeout, our retry policy and no urllib3 connect retries."""
    client = tablestore.OTSClient(
        settings.tablestore_endpoint,
        credentials.access_key_id,
        credentials.access_key_secret.value,
        settings.tablestore_instance,
        sts_token=credentials.security_token,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        retry_policy=retry_policy,
        logger_name=SDK_LOGGER,
    )
    # urllib3 would retry a failed connect three times (4 × the timeout): one attempt only; the
    # SDK's retry policy above decides about retries.
    pool = getattr(getattr(client, "connection", None), "pool", None)
    if isinstance(pool, urllib3.PoolManager):
        pool.connection_pool_kw["retries"] = urllib3.Retry(
            total=0, redirect=False, raise_on_status=False
        )
    return client


def index_key(
    owner: str, created_at_rev: Any, key: Any, pk: Any, bucket: Any
) -> list[tuple[str, Any]]:
    """The index's full primary key: owner, created_at_rev, key, then the appended pk and bucket."""
    return [
        ("owner", owner),
        ("created_at_rev", created_at_rev),
        ("key", key),
        ("pk", pk),
        ("bucket", bucket),
    ]


def attribute_columns(record: Record) -> list[tuple[str, Any]]:
    """Every Record field but the primary key, and created_at_rev; absent image sizes left out."""
    values = record.as_dict()
    values["created_at_rev"] = inverted(record.created_at)
    return [(name, values[name]) for name, _ in DEFINED_COLUMNS if values[name] is not None]


def decode_row(row: Any) -> Record:
    """A Record from a main-table or index row; absent optional columns take the Record default."""
    values: dict[str, Any] = dict(row.primary_key)
    values.update((column[0], column[1]) for column in row.attribute_columns)
    fields: dict[str, Any] = {}
    for name, kind in PRIMARY_KEY[1:] + DEFINED_COLUMNS:
        if name in DERIVED_COLUMNS:
            continue
        value = values.get(name)
        if value is None and name in _OPTIONAL:
            continue
        if not isinstance(value, _PYTHON_TYPES[kind]) or (
            kind == "INTEGER" and isinstance(value, bool)
        ):
            # A row we did not write (or a column retyped by hand): a store fault, not a 500.
            logs.warning("records_malformed_row", backend="tablestore", column=name)
            raise Unavailable("a stored record is malformed")
        fields[name] = value
    rev = values.get("created_at_rev")  # absent from main-table rows written before it existed
    if rev is not None and rev != inverted(fields["created_at"]):
        # Listed at one place, resumed from another: a cursor could repeat or skip rows.
        logs.warning("records_malformed_row", backend="tablestore", column="created_at_rev")
        raise Unavailable("a stored record is malformed")
    return Record(**fields)
