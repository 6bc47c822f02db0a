"""An in-memory stand-in for `tablestore.OTSClient`, for the record-store tests.

It keeps the semantics our backend relies on: row existence and single-column conditions
(failing with the SDK's real `OTSServiceError(403, "OTSConditionCheckFail", …)`), whole-row
put_row, update_row, get_row returning None for a missing row, and get_range on a table or
on a global index (index PK columns first, then the table's remaining PK columns), inclusive start,
exclusive end, FORWARD or BACKWARD, with `INF_MIN`/`INF_MAX` bounds and short pages that hand back
`next_start_primary_key`. Values must be types the SDK can encode (no None). Two tables: the
records table and its grant ledger (`<table>_grants`, shared.records.tablestore_ledger), each with
its own primary key checked on every request. A lock makes each request atomic, as the server's
row operations are, so concurrent tests race on conditions exactly as they would for real.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import tablestore

TABLE_PK = ("pk", "bucket", "key")


@dataclass
class Index:
    primary_key: tuple[str, ...]
    columns: tuple[str, ...]
    base: str = ""  # the table it indexes


@dataclass
class FakeOTS:
    table: str = "oss_uploads"
    page_cap: int | None = None  # rows per get_range answer, like the server's 5000/4 MB cut
    rows: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    ledger_rows: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    sent: list[tuple[str, str, Any, Any]] = field(default_factory=list)  # (api, table, row, cond)

    def __post_init__(self) -> None:
        from shared.records import tablestore_ledger as ledger

        self.ledger = ledger.ledger_table(self.table)
        self.primary_keys = {
            self.table: TABLE_PK,
            self.ledger: tuple(name for name, _ in ledger.PRIMARY_KEY),
        }
        self._lock = threading.RLock()
        if not self.indexes:
            from shared.records.tablestore_rows import INDEX_COLUMNS, INDEX_PRIMARY_KEY, index_name

            self.indexes[index_name(self.table)] = Index(
                tuple(INDEX_PRIMARY_KEY), tuple(INDEX_COLUMNS), self.table
            )
        for name, key in (
            (ledger.due_index(self.table), ledger.DUE_INDEX_KEY),
            (ledger.target_index(self.table), ledger.TARGET_INDEX_KEY),
        ):
            self.indexes.setdefault(
                name, Index(tuple(key), tuple(ledger.index_columns(key)), self.ledger)
            )

    def _table(self, table_name: str) -> dict[tuple[Any, ...], dict[str, Any]]:
        return self.rows if table_name == self.table else self.ledger_rows

    # --- the SDK surface ------------------------------------------------------------------------

    def put_row(self, table_name: str, row: Any, condition: Any = None, *_: Any) -> Any:
        with self._lock:
            self.calls.append("PutRow")
            self.sent.append(("PutRow", table_name, row, condition))
            rows = self._table(table_name)
            key = self._key(table_name, row.primary_key)
            self._check(condition, rows.get(key))
            rows[key] = self._attributes(row.attribute_columns)
            return None, None

    def update_row(self, table_name: str, row: Any, condition: Any, *_: Any) -> Any:
        with self._lock:
            self.calls.append("UpdateRow")
            self.sent.append(("UpdateRow", table_name, row, condition))
            rows = self._table(table_name)
            key = self._key(table_name, row.primary_key)
            self._check(condition, rows.get(key))
            assert set(row.attribute_columns) <= {"put", "delete_all"}, row.attribute_columns
            current = dict(rows.get(key, {}))
            current.update(self._attributes(row.attribute_columns.get("put", [])))
            for name in row.attribute_columns.get("delete_all", []):
                current.pop(name, None)
            rows[key] = current
            return None, None

    def get_row(
        self, table_name: str, primary_key: list[tuple[str, Any]], *_: Any, **__: Any
    ) -> Any:
        with self._lock:
            self.calls.append("GetRow")
            stored = self._table(table_name).get(self._key(table_name, primary_key))
            if stored is None:
                return None, None, None
            row = tablestore.Row(list(primary_key), [(n, v, 1) for n, v in sorted(stored.items())])
            return None, row, None

    def get_range(  # noqa: PLR0917 - mirrors OTSClient.get_range
        self,
        table_name: str,
        direction: str,
        start: list[tuple[str, Any]],
        end: list[tuple[str, Any]],
        columns_to_get: Any = None,
        limit: int | None = None,
        *_: Any,
        **__: Any,
    ) -> Any:
        with self._lock:
            self.calls.append("GetRange")
            rows = self._view(table_name)
        names = [name for name, _ in rows[0][0]] if rows else [name for name, _ in start]
        assert [name for name, _ in start] == names == [name for name, _ in end], "bad range key"
        low, high = _order(start), _order(end)
        if direction == tablestore.Direction.BACKWARD:
            chosen = [r for r in rows if high < _order(r[0]) <= low]
            chosen.sort(key=lambda r: _order(r[0]), reverse=True)
        else:
            chosen = [r for r in rows if low <= _order(r[0]) < high]
            chosen.sort(key=lambda r: _order(r[0]))
        count = min(x for x in (limit, self.page_cap, len(chosen)) if x is not None)
        page, rest = chosen[:count], chosen[count:]
        out = [tablestore.Row(pk, [(n, v, 1) for n, v in attrs]) for pk, attrs in page]
        return None, (list(rest[0][0]) if rest else None), out, None

    # --- internals ------------------------------------------------------------------------------

    def _key(self, table_name: str, primary_key: list[tuple[str, Any]]) -> tuple[Any, ...]:
        assert table_name in self.primary_keys, f"unexpected table {table_name!r}"
        names = self.primary_keys[table_name]
        assert tuple(name for name, _ in primary_key) == names, primary_key
        assert all(isinstance(value, str) and value for _, value in primary_key), primary_key
        return tuple(value for _, value in primary_key)

    @staticmethod
    def _attributes(columns: list[tuple[Any, ...]]) -> dict[str, Any]:
        result = {}
        for name, value, *_ in columns:
            if not isinstance(value, (str, int, float, bytes, bool)):
                raise tablestore.OTSClientError(f"unsupported value for {name}: {value!r}")
            result[name] = value
        return result

    @staticmethod
    def _check(condition: Any, stored: dict[str, Any] | None) -> None:
        expectation = tablestore.RowExistenceExpectation
        wanted = condition.row_existence_expectation if condition else expectation.IGNORE
        ok = {
            expectation.IGNORE: True,
            expectation.EXPECT_EXIST: stored is not None,
            expectation.EXPECT_NOT_EXIST: stored is None,
        }[wanted]
        column = condition.column_condition if condition else None
        if ok and column is not None and stored is not None:
            assert isinstance(column, tablestore.SingleColumnCondition), column
            if column.column_name not in stored:
                ok = column.pass_if_missing
            elif column.comparator == tablestore.ComparatorType.EQUAL:
                ok = stored[column.column_name] == column.column_value
            elif column.comparator == tablestore.ComparatorType.NOT_EQUAL:
                ok = stored[column.column_name] != column.column_value
            else:
                raise NotImplementedError(column.comparator)
        if not ok:
            raise tablestore.OTSServiceError(
                403, "OTSConditionCheckFail", "Condition check failed.", "fake-request-id"
            )

    def _view(self, table_name: str) -> list[tuple[list[tuple[str, Any]], list[tuple[str, Any]]]]:
        """Rows of the table or of an index, as (primary key, attributes)."""
        if table_name in self.primary_keys:
            table_pk = self.primary_keys[table_name]
            return [
                (list(zip(table_pk, key, strict=True)), sorted(attrs.items()))
                for key, attrs in self._table(table_name).items()
            ]
        index = self.indexes[table_name]
        table_pk = self.primary_keys[index.base]
        view = []
        for key, attrs in self._table(index.base).items():
            values = dict(zip(table_pk, key, strict=True)) | attrs
            if any(name not in values for name in index.primary_key):
                continue  # a row without the index key columns is not indexed
            names = list(index.primary_key) + [n for n in table_pk if n not in index.primary_key]
            pk = [(name, values[name]) for name in names]
            view.append((pk, [(n, attrs[n]) for n in index.columns if n in attrs]))
        return view


def _order(primary_key: list[tuple[str, Any]]) -> tuple[tuple[Any, ...], ...]:
    """Sortable form of a primary key: INF_MIN < any value < INF_MAX."""
    out = []
    for _, value in primary_key:
        if value is tablestore.INF_MIN:
            out.append((0,))
        elif value is tablestore.INF_MAX:
            out.append((2,))
        else:
            out.append((1, value))
    return tuple(out)


# The API names the SDK's OTSClient passes to `_request_helper`, and the fake's methods for them.
_FAKE_METHODS = {
    "PutRow": "put_row",
    "UpdateRow": "update_row",
    "GetRow": "get_row",
    "GetRange": "get_range",
    "CreateTable": "create_table",
    "DescribeTable": "describe_table",
    "CreateIndex": "create_secondary_index",
}


def sdk_backed_client_class(fake: FakeOTS) -> Any:
    """The installed SDK's own OTSClient (its constructor, method signatures and request
    encoding), answering from `fake` instead of the network: every call is encoded as the SDK
    would send it, then handed to the fake's method of the same name. For the 5.x SDK of FC's
    python3.10 runtime, whose `_request_helper(api_name, *args)` does the encoding."""

    class SdkBacked(tablestore.OTSClient):  # type: ignore[misc] # the SDK ships no types
        def _request_helper(self, api_name: str, *call: Any, **options: Any) -> Any:
            self.protocol.make_request(api_name, *call, **options)  # raises on what cannot encode
            return getattr(fake, _FAKE_METHODS[api_name])(*call, **options)

    return SdkBacked


class FakeOTSClient(FakeOTS):
    """FakeOTS taking `tablestore.OTSClient`'s constructor arguments, to stand in for the SDK
    class itself (bench swaps it in, also inside fresh interpreters)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    @property
    def put_rows(self) -> int:
        return self.calls.count("PutRow")


def tablestore_over(mocker: Any, fake: Callable[[], FakeOTS]) -> Callable[[], Any]:
    """A factory of our TablestoreStore (the real backend code) whose SDK client is `fake()`,
    patched in with pytest-mock for `tablestore.OTSClient`; the table is `oss_uploads`."""
    from shared.credentials import Credentials
    from shared.records.tablestore import TablestoreStore
    from shared.settings import Env, RecordsSettings, Secret

    mocker.patch("tablestore.OTSClient", side_effect=lambda *a, **k: fake())
    settings = RecordsSettings.load(
        Env(
            {
                "RECORDS_BACKEND": "tablestore",
                "TABLESTORE_ENDPOINT": "https://inst.cn-hangzhou.ots.aliyuncs.com",
                "TABLESTORE_INSTANCE": "inst",
            }
        )
    )
    credentials = Credentials("LTAI-test", Secret("test-secret"), "sts-token")
    return lambda: TablestoreStore(settings, credentials)


def requests_of(fake: FakeOTS, api: str) -> list[tuple[str, Any, Any]]:
    """The (table, row, condition) of each `api` request the fake was sent, in order."""
    return [(table, row, condition) for name, table, row, condition in fake.sent if name == api]


def condition_of(condition: Any) -> tuple[Any, ...]:
    """A request's condition as one comparable tuple: (existence,) for a bare row-existence
    condition, else (existence, column, value, comparator, pass_if_missing)."""
    assert isinstance(condition, tablestore.Condition), condition
    column = condition.column_condition
    if column is None:
        return (condition.row_existence_expectation,)
    assert isinstance(column, tablestore.SingleColumnCondition), column
    return (
        condition.row_existence_expectation,
        column.column_name,
        column.column_value,
        column.comparator,
        column.pass_if_missing,
    )
