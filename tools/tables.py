"""`python -m tools.tables` (`make tables`): create the record table and grant ledger, idempotently.

Tablestore: the table (PK pk, bucket, key; predefined attribute columns) and its global index
`<table>_by_owner`; an existing table is left alone, and the index is added when it is missing
(after giving rows written before created_at_rev existed their value, so the index holds them).
An index of another shape (the earlier [owner, created_at, key]) cannot be altered: it is refused.
Works with the SDK of FC's python3.10 runtime (tablestore 5.4.1) and with 6.x: 5.4.1's
create_secondary_index has no include_base_data, so there the index is created first and every
row of ours is then rewritten (a write to a row updates its index rows).


Then the grant ledger `<table>_grants` (PK owner, grant_id) with its `_due` and `_by_target`
indexes (shared.records.tablestore_ledger); SQLite keeps the ledger in the same file.
Settings come from the environment (RECORDS_BACKEND, TABLESTORE_*, SQLITE_PATH); Tablestore
credentials from ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET[/SECURITY_TOKEN] or OSS_ACCESS_KEY_ID/SECRET.
Exit status: 0 ready, 1 the store refused, 2 missing or bad settings/credentials.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO, TypeGuard

from shared.credentials import Credentials, resolve_credentials
from shared.errors import ConfigError, Unavailable
from shared.records.cursor import MAX_TIMESTAMP_MS
from shared.settings import Env, RecordsSettings, Secret

ALREADY_EXISTS = "OTSObjectAlreadyExist"


def main(
    environ: Mapping[str, str] = os.environ,
    *,
    out: TextIO = sys.stdout,
    client_factory: Callable[[RecordsSettings, Credentials], Any] | None = None,
) -> int:
    """Read settings and credentials, then create what the configured backend needs."""
    env = Env(environ)
    try:
        settings = RecordsSettings.load(env)
    except ConfigError as exc:
        print(f"bootstrap: {exc}", file=out)
        return 2
    if settings.backend == "sqlite":
        return _sqlite(settings, out)
    key_id, key_secret = env.get("OSS_ACCESS_KEY_ID"), env.get("OSS_ACCESS_KEY_SECRET")
    try:
        credentials = resolve_credentials(
            None, environ, key_id, Secret(key_secret) if key_secret else None
        )
    except Unavailable:
        print(
            "bootstrap: no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and "
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET (or OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET)",
            file=out,
        )
        return 2
    import tablestore  # noqa: PLC0415 - the SDK is heavy: only for this backend

    from shared.records import tablestore_client as ots  # noqa: PLC0415

    factory = client_factory or (lambda s, c: ots.build_client(s, c, ots.ShortRetryPolicy()))
    try:
        client = factory(settings, credentials)
        status = create_tablestore_table(client, settings.tablestore_table, out)
        return status or create_ledger_table(client, settings.tablestore_table, out)
    except tablestore.OTSError as exc:
        print(f"bootstrap: Tablestore refused: {exc}", file=out)
        return 1
    except ots.NETWORK_ERRORS as exc:
        print(f"bootstrap: cannot reach {settings.tablestore_endpoint}: {exc}", file=out)
        return 1


def create_tablestore_table(client: Any, table: str, out: TextIO) -> int:
    """create_table with the index; on OTSObjectAlreadyExist, check the table and add the index."""
    import tablestore as sdk  # noqa: PLC0415 - the SDK is heavy: only for this backend

    from shared.records.tablestore_rows import (  # noqa: PLC0415
        DEFINED_COLUMNS,
        INDEX_COLUMNS,
        INDEX_PRIMARY_KEY,
        PRIMARY_KEY,
        index_name,
    )

    index = sdk.SecondaryIndexMeta(
        index_name(table),
        list(INDEX_PRIMARY_KEY),
        list(INDEX_COLUMNS),
        index_type=sdk.SecondaryIndexType.GLOBAL_INDEX,
    )
    try:
        client.create_table(
            sdk.TableMeta(table, list(PRIMARY_KEY), list(DEFINED_COLUMNS)),
            sdk.TableOptions(time_to_live=-1, max_version=1),
            sdk.ReservedThroughput(sdk.CapacityUnit(0, 0)),
            secondary_indexes=[index],
        )
    except sdk.OTSServiceError as exc:
        if exc.code != ALREADY_EXISTS:
            raise
    else:
        print(f"bootstrap: created table {table} and index {index.index_name}", file=out)
        return 0
    described = client.describe_table(table)
    schema = [tuple(column) for column in described.table_meta.schema_of_primary_key]
    if schema != PRIMARY_KEY:
        print(
            f"bootstrap: table {table} exists with primary key {schema}, expected {PRIMARY_KEY}",
            file=out,
        )
        return 1
    for existing in described.secondary_indexes:
        if existing.index_name == index.index_name:
            return _check_index(existing, table, out)
    defined = {tuple(column) for column in described.table_meta.defined_columns}
    missing = [column for column in DEFINED_COLUMNS if column not in defined]
    if missing:
        # The SDK cannot add predefined columns: that takes the console or the API.
        print(
            f"bootstrap: table {table} lacks predefined columns {missing}; add them, then rerun",
            file=out,
        )
        return 1
    if takes_base_data(client):  # tablestore 6.x: the index is built from the rows there
        filled = backfill_inverted_time(client, table)
        client.create_secondary_index(table, index, True)
    else:  # 5.4.1: an index starts empty; writing each row after its creation indexes it
        client.create_secondary_index(table, index)
        filled = backfill_inverted_time(client, table, rewrite=True)
    print(
        f"bootstrap: table {table} existed; set created_at_rev on {filled} rows;"
        f" created index {index.index_name}",
        file=out,
    )
    return 0


def takes_base_data(client: Any) -> bool:
    """Whether this SDK's create_secondary_index has include_base_data (6.x; not 5.4.1)."""
    try:
        parameters = inspect.signature(client.create_secondary_index).parameters.values()
    except (TypeError, ValueError):  # not introspectable: assume the current SDK
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters) or (
        sum(p.kind in positional for p in parameters) >= 3
    )


def create_ledger_table(client: Any, table: str, out: TextIO) -> int:
    """The grant ledger `<table>_grants` and its two indexes; missing indexes added to an old one."""
    import tablestore as sdk  # noqa: PLC0415 - the SDK is heavy: only for this backend

    from shared.records import tablestore_ledger as ledger  # noqa: PLC0415

    name = ledger.ledger_table(table)
    indexes = [
        sdk.SecondaryIndexMeta(
            index,
            list(key),
            ledger.index_columns(key),
            index_type=sdk.SecondaryIndexType.GLOBAL_INDEX,
        )
        for index, key in (
            (ledger.due_index(table), ledger.DUE_INDEX_KEY),
            (ledger.target_index(table), ledger.TARGET_INDEX_KEY),
        )
    ]
    try:
        client.create_table(
            sdk.TableMeta(name, list(ledger.PRIMARY_KEY), list(ledger.DEFINED_COLUMNS)),
            sdk.TableOptions(time_to_live=-1, max_version=1),
            sdk.ReservedThroughput(sdk.CapacityUnit(0, 0)),
            secondary_indexes=indexes,
        )
    except sdk.OTSServiceError as exc:
        if exc.code != ALREADY_EXISTS:
            raise
    else:
        print(f"bootstrap: created ledger {name} and its indexes", file=out)
        return 0
    described = client.describe_table(name)
    schema = [tuple(column) for column in described.table_meta.schema_of_primary_key]
    if schema != ledger.PRIMARY_KEY:
        print(f"bootstrap: ledger {name} exists with primary key {schema}", file=out)
        return 1
    present = {index.index_name for index in described.secondary_indexes}
    for index in indexes:
        if index.index_name not in present:
            # An index added to an existing ledger indexes rows written after it on 5.4.1 (no
            # include_base_data); open grants are short-lived, so the sweeper sees every one soon.
            if takes_base_data(client):
                client.create_secondary_index(name, index, True)
            else:
                client.create_secondary_index(name, index)
            print(f"bootstrap: created index {index.index_name}", file=out)
    print(f"bootstrap: ledger {name} ready", file=out)
    return 0


def _check_index(existing: Any, table: str, out: TextIO) -> int:
    """An index is immutable: ours must have our key and carry every column, or be recreated."""
    from shared.records.tablestore_rows import INDEX_COLUMNS, INDEX_PRIMARY_KEY  # noqa: PLC0415

    keyed = list(existing.primary_key_names)
    carried = set(existing.defined_column_names)
    if same_index_key(keyed) and carried >= set(INDEX_COLUMNS):
        print(f"bootstrap: table {table} and index {existing.index_name} already exist", file=out)
        return 0
    print(
        f"bootstrap: index {existing.index_name} is keyed {keyed} carrying {sorted(carried)};"
        f" the listing needs {INDEX_PRIMARY_KEY} carrying {INDEX_COLUMNS}."
        " An index cannot be altered: delete it (console or DeleteIndex), then rerun",
        file=out,
    )
    return 1


def same_index_key(keyed: list[str]) -> bool:
    """Our index key, maybe followed by the table's remaining primary key columns, which
    Tablestore appends to a global index's key (and DescribeTable may list)."""
    from shared.records.tablestore_rows import INDEX_PRIMARY_KEY, PRIMARY_KEY  # noqa: PLC0415

    ours = INDEX_PRIMARY_KEY
    appended = [name for name, _ in PRIMARY_KEY if name not in ours]
    return keyed[: len(ours)] == ours and keyed[len(ours) :] in ([], appended)


def backfill_inverted_time(client: Any, table: str, *, rewrite: bool = False) -> int:
    """Give every row lacking created_at_rev its value (so include_base_data indexes it);
    with `rewrite`, write it on every row of ours (so an existing index picks each row up)."""
    import tablestore as sdk  # noqa: PLC0415 - the SDK is heavy: only for this backend

    from shared.records.tablestore_client import CONDITION_FAILED  # noqa: PLC0415
    from shared.records.tablestore_rows import PRIMARY_KEY, inverted  # noqa: PLC0415

    names = [name for name, _ in PRIMARY_KEY]
    start: Any = [(name, sdk.INF_MIN) for name in names]
    end = [(name, sdk.INF_MAX) for name in names]
    filled = 0
    while start is not None:
        _, start, rows, _ = client.get_range(
            table, sdk.Direction.FORWARD, start, end, ["created_at", "created_at_rev"]
        )
        for row in rows:
            values = {column[0]: column[1] for column in row.attribute_columns}
            created_at = values.get("created_at")
            if not _timestamp(created_at) or ("created_at_rev" in values and not rewrite):
                continue  # not a row of ours (the store's reads will say so), or already set
            change = sdk.Row(
                row.primary_key,
                {"put": [("created_at_rev", inverted(created_at))]},
            )
            unchanged = sdk.Condition(  # a writer in between wrote created_at_rev itself
                sdk.RowExistenceExpectation.EXPECT_EXIST,
                sdk.SingleColumnCondition(
                    "created_at", created_at, sdk.ComparatorType.EQUAL, pass_if_missing=False
                ),
            )
            try:
                client.update_row(table, change, unchanged)
            except sdk.OTSServiceError as exc:
                if exc.code != CONDITION_FAILED:
                    raise
                continue
            filled += 1
    return filled


def _timestamp(value: object) -> TypeGuard[int]:
    """A created_at check_record would accept: only those have an int64 inverse."""
    return type(value) is int and 0 <= value <= MAX_TIMESTAMP_MS


def _sqlite(settings: RecordsSettings, out: TextIO) -> int:
    from shared.records.sqlite import SqliteStore  # noqa: PLC0415 - imports per backend

    try:
        store = SqliteStore(settings.sqlite_path)
    except ConfigError as exc:
        print(f"bootstrap: {exc}", file=out)
        return 2
    try:
        store.ensure_schema()
    except Unavailable as exc:
        print(f"bootstrap: cannot create {settings.sqlite_path}: {exc.message}", file=out)
        return 1
    finally:
        store.close()
    print(f"bootstrap: SQLite records ready at {settings.sqlite_path}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
