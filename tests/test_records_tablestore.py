"""Tablestore backend specifics, with pytest-mock at the SDK client (and loopback for timeouts).

What is sent (table, primary key, attribute columns, conditions), how SDK and network failures
map to our errors, the retry policy's bounds through the SDK's own retry loop, credential
rotation, lazy import, and the table bootstrap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import tablestore
import urllib3
from tablestore.encoder import OTSProtoBufferEncoder
from tablestore.retry import RetryPolicy

from shared.credentials import Credentials
from shared.errors import Unavailable
from shared.records import clear_cache, open_store
from shared.records import tablestore_client as backend
from shared.records import tablestore_ledger as ledger
from shared.records import tablestore_rows as rows
from shared.records.base import Record
from shared.records.cursor import MAX_TIMESTAMP_MS, SortKey, encode_cursor
from shared.records.tablestore import TablestoreStore
from shared.records.tablestore_client import ShortRetryPolicy, build_client
from shared.settings import Env, RecordsSettings, Secret
from tests.support.ots import FakeOTS, condition_of, requests_of
from tests.support.records import OTHER_ETAG, newest_first, record
from tools.tables import create_ledger_table, create_tablestore_table
from tools.tables import main as bootstrap

ENV = {
    "RECORDS_BACKEND": "tablestore",
    "TABLESTORE_ENDPOINT": "https://inst.cn-hangzhou.ots-internal.aliyuncs.com",
    "TABLESTORE_INSTANCE": "inst",
    "TABLESTORE_TABLE": "uploads",
}
SETTINGS = RecordsSettings.load(Env(ENV))
CREDENTIALS = Credentials("STS.first", Secret("secret-1"), "token-1")
ETAG = record().etag
BUSY = tablestore.OTSServiceError(503, "OTSTimeout", "timeout", "r")
EQUAL = tablestore.ComparatorType.EQUAL
AT_B = SortKey(1_700_000_000_000, "uploads/alice/b.png", "dev-bucket")  # a listing position
INDEX_KEY = ("owner", "created_at_rev", "key", "pk", "bucket")  # the owner index, table keys last


def condition_fail() -> tablestore.OTSServiceError:
    return tablestore.OTSServiceError(403, "OTSConditionCheckFail", "Condition check failed.", "r1")


@pytest.fixture
def client(mocker: Any) -> Any:
    """A pytest-mock OTSClient: tests script its answers and inspect its calls."""
    fake = mocker.MagicMock(name="OTSClient()")
    fake.put_row.return_value = (None, None)
    mocker.patch("tablestore.OTSClient", return_value=fake)
    return fake


@pytest.fixture
def store(client: Any) -> TablestoreStore:
    return TablestoreStore(SETTINGS, CREDENTIALS)


# --- what is sent -----------------------------------------------------------------------------


def test_writes_are_put_rows_conditional_on_absence_then_on_the_stored_etag(mocker: Any) -> None:
    """A new object, the same object again (read, never written) and a replacement."""
    fake = FakeOTS(table="uploads")
    mocker.patch("tablestore.OTSClient", return_value=fake)
    store = TablestoreStore(SETTINGS, CREDENTIALS)
    store.put(record(), replace=False)
    store.put(record(request_id="REQ-2"), replace=True)
    store.put(record(etag=OTHER_ETAG, created_at=record().created_at + 1), replace=True)
    assert fake.calls == ["PutRow", "PutRow", "GetRow", "PutRow", "GetRow", "PutRow"]
    puts = requests_of(fake, "PutRow")
    assert {table for table, _, _ in puts} == {"uploads"}
    (_, row, _), *_, (_, newer, _) = puts
    pk = hashlib.md5(b"dev-bucket/uploads/alice/0001.png").hexdigest()[:8]  # noqa: S324
    assert row.primary_key == [("pk", pk), ("bucket", "dev-bucket"), ("key", record().key)]
    # Every Record field but the identity, plus the inverted time the owner index is keyed on.
    fields = {k: v for k, v in dataclasses.asdict(record()).items() if k not in ("bucket", "key")}
    rev = 2**63 - 1 - record().created_at
    assert dict(row.attribute_columns) == {**fields, "created_at_rev": rev}
    assert dict(newer.attribute_columns)["etag"] == OTHER_ETAG
    absent = (tablestore.RowExistenceExpectation.EXPECT_NOT_EXIST,)
    guarded = (tablestore.RowExistenceExpectation.EXPECT_EXIST, "etag", ETAG, EQUAL, False)
    assert [condition_of(condition) for _, _, condition in puts] == [absent] * 3 + [guarded]


@pytest.mark.parametrize(
    ("cursor", "start"),
    [
        (None, ["alice", *[tablestore.INF_MIN] * 4]),
        (
            encode_cursor(AT_B),
            ["alice", 2**63 - 1 - AT_B.created_at, AT_B.key, "664c49f1", AT_B.bucket],
        ),
    ],
    ids=["first-page", "after-a-cursor"],
)
def test_listing_reads_the_owner_index_forward_from_the_cursors_index_key(
    store: TablestoreStore, client: Any, cursor: str | None, start: list[Any]
) -> None:
    client.get_range.return_value = (None, None, [], None)
    store.list_by_owner("alice", limit=10, cursor=cursor)
    # created_at_rev ascending is created_at descending; key ascending breaks ties (DESIGN.md).
    assert client.get_range.call_args.args == (
        "uploads_by_owner",
        tablestore.Direction.FORWARD,
        list(zip(INDEX_KEY, start, strict=True)),
        list(zip(INDEX_KEY, ["alice", *[tablestore.INF_MAX] * 4], strict=True)),
        None,  # every column the index carries
        11,  # one more than asked, to know whether a next page exists
    )


@pytest.mark.parametrize("created_at", [0, MAX_TIMESTAMP_MS])
def test_the_inverted_timestamp_fits_the_sdks_int64(created_at: int) -> None:
    """The SDK's own encoder takes a put_row at both ends of the allowed range (a value outside
    int64 would be a bare struct.error inside the SDK, hence check_record's bound)."""
    rec = record(created_at=created_at)
    row = tablestore.Row(rows.primary_key(rec.bucket, rec.key), rows.attribute_columns(rec))
    absent = tablestore.Condition(tablestore.RowExistenceExpectation.EXPECT_NOT_EXIST)
    OTSProtoBufferEncoder("utf-8").encode_request("PutRow", "uploads", row, absent, None, None)
    assert 0 < dict(row.attribute_columns)["created_at_rev"] < 2**63


def test_an_index_row_whose_inverted_time_disagrees_is_a_store_fault(
    store: TablestoreStore, client: Any
) -> None:
    """Listed at one place but resumed from another, such a row could repeat on every page."""
    rec = record()
    columns = [(n, v, 1) for n, v in rows.attribute_columns(rec) if n != "created_at_rev"]
    pk = rows.partition_key(rec.bucket, rec.key)

    def listing(created_at_rev: int) -> list[Record]:
        key = rows.index_key("alice", created_at_rev, rec.key, pk, rec.bucket)
        client.get_range.return_value = (None, None, [tablestore.Row(key, columns)], None)
        return store.list_by_owner("alice").items

    assert listing(rows.inverted(rec.created_at)) == [rec]
    with pytest.raises(Unavailable):
        listing(rows.inverted(rec.created_at) - 5)


# --- failures ---------------------------------------------------------------------------------

FAULTS = [
    tablestore.OTSServiceError(503, "OTSServerBusy", "Server is busy.", "r"),
    tablestore.OTSServiceError(
        403, "OTSAuthFailed", "Request denied by instance ACL policies.", "r"
    ),
    tablestore.OTSServiceError(404, "OTSObjectNotExist", "Requested table does not exist.", "r"),
    tablestore.OTSClientError("protocol of end_point must be 'http' or 'https'"),
    TimeoutError("timed out"),
    urllib3.exceptions.ReadTimeoutError(None, "/PutRow", "Read timed out."),  # type: ignore[arg-type]
    urllib3.exceptions.MaxRetryError(None, "/PutRow"),  # type: ignore[arg-type]
    urllib3.exceptions.ProtocolError("Connection aborted."),
    ConnectionRefusedError(111, "Connection refused"),
]


OPERATIONS = {
    "put": lambda store: store.put(record(), replace=False),
    "get": lambda store: store.get("dev-bucket", "k"),
    "list": lambda store: store.list_by_owner("alice"),
    "replace": lambda store: store.put(record(), replace=True),
}


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: type(f).__name__ + getattr(f, "code", ""))
@pytest.mark.parametrize("operation", ["put", "get", "list"])
def test_store_and_network_faults_are_unavailable(
    store: TablestoreStore, client: Any, fault: Exception, operation: str
) -> None:
    client.put_row.side_effect = fault
    client.get_row.side_effect = fault
    client.get_range.side_effect = fault
    with pytest.raises(Unavailable) as caught:
        OPERATIONS[operation](store)
    assert caught.value.status == 503


BROKEN_ROW = tablestore.Row(
    rows.primary_key("dev-bucket", "k"), [("owner", "alice", 1), ("created_at", "yesterday", 1)]
)


@pytest.mark.parametrize(
    ("put_row", "get_row", "operation"),
    [
        (None, (None, BROKEN_ROW, None), "get"),  # a column of the wrong type
        (None, condition_fail(), "get"),  # a condition failure outside a conditional write
        (condition_fail(), FAULTS[0], "replace"),  # a fault reading the row a put collided with
    ],
    ids=["wrong-column-type", "condition-failure-on-a-read", "fault-reading-the-stored-row"],
)
def test_an_answer_that_makes_no_sense_is_a_store_fault(
    store: TablestoreStore, client: Any, put_row: Any, get_row: Any, operation: str
) -> None:
    client.put_row.side_effect = put_row
    client.get_row.side_effect = get_row if isinstance(get_row, Exception) else None
    client.get_row.return_value = get_row
    with pytest.raises(Unavailable):
        OPERATIONS[operation](store)


def test_no_request_starts_after_the_operation_deadline(client: Any) -> None:
    store = TablestoreStore(SETTINGS, CREDENTIALS, budget=0.05)

    def slow_condition_fail(*_: Any) -> None:
        time.sleep(0.06)
        raise condition_fail()

    client.put_row.side_effect = slow_condition_fail
    with pytest.raises(Unavailable, match="too slow"):
        store.put(record(), replace=True)
    client.get_row.assert_not_called()


# --- retries ----------------------------------------------------------------------------------


DEFINITE = ["OTSConditionCheckFail", "OTSAuthFailed", "OTSParameterInvalid", "OTSObjectNotExist"]


@pytest.mark.parametrize(
    ("code", "budget", "decisions"),
    [(code, None, [True, True, False, False]) for code in sorted(backend.RETRIABLE_CODES)]
    + [(code, None, [False] * 4) for code in DEFINITE]
    + [("OTSServerBusy", 0.05, [False] * 4)],  # the deadline is nearer than the first delay
)
def test_the_retry_policy_retries_only_transient_codes_at_most_twice_within_the_deadline(
    code: str, budget: float | None, decisions: list[bool]
) -> None:
    policy = ShortRetryPolicy()
    if budget is not None:
        policy.start(budget)
    error = tablestore.OTSServiceError(503, code, "no", "r")
    assert [policy.should_retry(n, error, "PutRow") for n in range(4)] == decisions
    assert sum(policy.get_retry_delay(n, error, "PutRow") for n in range(2)) <= 0.3 + 1e-9


@pytest.fixture
def real_client(mocker: Any) -> tuple[Any, Any, list[float]]:
    """The SDK's own OTSClient, with only its wire (send/receive, response check) scripted."""
    client = build_client(SETTINGS, CREDENTIALS, ShortRetryPolicy())
    send = mocker.patch.object(client.connection, "send_receive", return_value=(200, "OK", {}, b""))
    sleeps: list[float] = []
    mocker.patch("tablestore.client.time.sleep", side_effect=sleeps.append)
    mocker.patch("tablestore.OTSClient", return_value=client)
    return client, send, sleeps


@pytest.mark.parametrize(
    ("operation", "answers", "sends", "refusal"),
    [
        ("get", [BUSY] * 3, 3, "OTSTimeout"),
        ("get", [BUSY, None], 2, None),
        ("put", [condition_fail(), None], 2, "changed while it was written"),  # PutRow, GetRow
    ],
    ids=["busy-gives-up", "busy-recovers", "condition-failure-not-retried"],
)
def test_the_sdk_retries_only_a_busy_server_twice_within_0_3_s(  # noqa: PLR0917
    real_client: tuple[Any, Any, list[float]],
    mocker: Any,
    operation: str,
    answers: list[Any],
    sends: int,
    refusal: str | None,
) -> None:
    client, send, sleeps = real_client
    mocker.patch.object(client.protocol, "handle_error", side_effect=answers)
    mocker.patch.object(client.protocol, "parse_response", return_value=(None, None, None))
    store = TablestoreStore(SETTINGS, CREDENTIALS)
    if refusal is None:
        assert OPERATIONS[operation](store) is None
    else:
        with pytest.raises(Unavailable, match=refusal):
            OPERATIONS[operation](store)
    assert send.call_count == sends
    assert len(sleeps) == (sends - 1 if answers[0] is BUSY else 0)
    assert sum(sleeps) <= 0.3 + 1e-9


# --- real sockets on loopback -----------------------------------------------------------------


def test_a_hanging_or_refusing_store_is_unavailable_within_the_socket_timeout() -> None:
    # A listener that never accepts: the kernel completes the connection and holds the request.
    # It closes after 30 s, so a client without a timeout fails the test instead of hanging it.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        hang_up = threading.Timer(30, listener.close)
        hang_up.start()
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
        settings = RecordsSettings.load(Env({**ENV, "TABLESTORE_ENDPOINT": endpoint}))
        store = TablestoreStore(settings, CREDENTIALS)  # the real SDK, real urllib3
        try:
            with pytest.raises(Unavailable, match="unreachable"):
                store.put(record(), replace=False)
        finally:
            hang_up.cancel()
        listener.settimeout(5)
        connection, _ = listener.accept()
        with connection:  # the SDK encoded our row and condition
            assert connection.recv(65536).startswith(b"POST /PutRow ")
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # one attempt: no SDK or urllib3 retry
    with pytest.raises(Unavailable):  # nothing listens there now: the connection is refused
        store.get("dev-bucket", "k")
    pool = store._client.connection.pool
    assert pool.connection_pool_kw["timeout"] == backend.SOCKET_TIMEOUT_SECONDS == 1.0
    retries = pool.connection_pool_kw["retries"]
    assert isinstance(retries, urllib3.Retry)
    assert retries.total == 0  # urllib3 makes one connection attempt


# --- open_store, credentials, lazy import ------------------------------------------------------


def test_open_store_builds_the_client_for_the_instance_again_only_when_credentials_rotate(
    client: Any,
) -> None:
    otsclient = tablestore.OTSClient
    clear_cache()
    try:
        with pytest.raises(Unavailable):
            open_store(SETTINGS, None)
        otsclient.assert_not_called()  # type: ignore[attr-defined]
        first = open_store(SETTINGS, CREDENTIALS)
        args, kwargs = otsclient.call_args  # type: ignore[attr-defined]
        assert args == (ENV["TABLESTORE_ENDPOINT"], "STS.first", "secret-1", "inst")
        assert kwargs["sts_token"] == "token-1"
        assert 0 < kwargs["socket_timeout"] <= 2
        assert isinstance(kwargs["retry_policy"], RetryPolicy)
        assert kwargs["retry_policy"].max_retry_times <= 2
        assert kwargs["logger_name"] == backend.SDK_LOGGER
        same = Credentials("STS.first", Secret("secret-1"), "token-1")
        assert open_store(SETTINGS, same) is first
        assert otsclient.call_count == 1  # type: ignore[attr-defined]
        rotated = Credentials("STS.second", Secret("secret-2"), "token-2")
        assert open_store(SETTINGS, rotated) is first
        assert open_store(SETTINGS, rotated) is first
        assert otsclient.call_count == 2  # type: ignore[attr-defined]
        args, kwargs = otsclient.call_args  # type: ignore[attr-defined]
        assert (*args[1:3], kwargs["sts_token"]) == ("STS.second", "secret-2", "token-2")
    finally:
        clear_cache()


def test_the_sdk_is_imported_only_for_the_tablestore_backend(tmp_path: Any) -> None:
    code = (
        "import sys\n"
        "from shared.records import open_store\n"
        "from shared.settings import Env, RecordsSettings\n"
        f"s = RecordsSettings.load(Env({{'SQLITE_PATH': {str(tmp_path / 'r.sqlite3')!r}}}))\n"
        "open_store(s).list_by_owner('alice')\n"
        "assert 'tablestore' not in sys.modules, 'SDK imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)  # noqa: S603


# --- bootstrap --------------------------------------------------------------------------------


def test_bootstrap_creates_the_table_with_its_owner_index_and_the_ledger_with_two(
    mocker: Any,
) -> None:
    client = mocker.MagicMock()
    assert create_tablestore_table(client, "uploads", io.StringIO()) == 0
    assert create_ledger_table(client, "uploads", io.StringIO()) == 0
    records, grants = client.create_table.call_args_list
    for call in (records, grants):
        _, options, throughput = call.args
        assert (options.time_to_live, options.max_version) == (-1, 1)
        assert (throughput.capacity_unit.read, throughput.capacity_unit.write) == (0, 0)
    meta = records.args[0]
    assert meta.table_name == "uploads"
    assert meta.schema_of_primary_key == [("pk", "STRING"), ("bucket", "STRING"), ("key", "STRING")]
    indexed = {("owner", "STRING"), ("created_at", "INTEGER"), ("created_at_rev", "INTEGER")}
    assert indexed <= set(meta.defined_columns)
    (index,) = records.kwargs["secondary_indexes"]
    assert index.index_name == "uploads_by_owner"
    assert index.primary_key_names == ["owner", "created_at_rev", "key"]
    assert index.index_type == tablestore.SecondaryIndexType.GLOBAL_INDEX
    defined = {name for name, _ in meta.defined_columns}
    assert set(index.defined_column_names) == defined - {"owner", "created_at_rev"}
    meta = grants.args[0]
    assert meta.table_name == "uploads_grants"
    assert meta.schema_of_primary_key == [("owner", "STRING"), ("grant_id", "STRING")]
    assert ("expires_at", "INTEGER") in meta.defined_columns
    due, by_target = grants.kwargs["secondary_indexes"]
    assert [(i.index_name, i.primary_key_names) for i in (due, by_target)] == [
        ("uploads_grants_due", ["state", "expires_at"]),
        ("uploads_grants_by_target", ["target"]),
    ]
    assert "target" in due.defined_column_names
    assert "state" not in due.defined_column_names
    client.create_secondary_index.assert_not_called()


def described(*, indexes: list[Any], defined: list[tuple[str, str]] | None = None) -> Any:
    meta = tablestore.TableMeta(
        "uploads",
        list(rows.PRIMARY_KEY),
        rows.DEFINED_COLUMNS if defined is None else defined,
    )
    return tablestore.DescribeTableResponse(meta, tablestore.TableOptions(), None, indexes)


def exists() -> tablestore.OTSServiceError:
    return tablestore.OTSServiceError(
        409, "OTSObjectAlreadyExist", "Requested table already exists.", "r"
    )


def owner_index(keyed: list[str], carried: list[str]) -> tablestore.SecondaryIndexMeta:
    return tablestore.SecondaryIndexMeta(
        "uploads_by_owner", keyed, carried, index_type=tablestore.SecondaryIndexType.GLOBAL_INDEX
    )


@pytest.fixture
def existing(mocker: Any) -> Any:
    """A mocked client whose table already exists (bootstrap then describes it)."""
    client = mocker.MagicMock()
    client.create_table.side_effect = exists()
    return client


@pytest.mark.parametrize(
    ("keyed", "carried", "code"),
    [
        (list(rows.INDEX_PRIMARY_KEY), list(rows.INDEX_COLUMNS), 0),
        # Tablestore appends the table's remaining primary key columns to a global index's key.
        ([*rows.INDEX_PRIMARY_KEY, "pk", "bucket"], list(rows.INDEX_COLUMNS), 0),
        (["owner", "created_at", "key"], [c for c in rows.INDEX_COLUMNS if c != "created_at"], 1),
        (list(rows.INDEX_PRIMARY_KEY), ["etag", "size"], 1),
        ([*rows.INDEX_PRIMARY_KEY, "bucket", "pk"], list(rows.INDEX_COLUMNS), 1),
        (rows.INDEX_PRIMARY_KEY[:2], list(rows.INDEX_COLUMNS), 1),
    ],
    ids=[
        "ours",
        "ours-with-table-keys-appended",
        "earlier-key-desc-shape",
        "missing-columns",
        "other-key-after-ours",
        "key-prefix-only",
    ],
)
def test_bootstrap_accepts_its_owner_index_and_refuses_another_shape(
    existing: Any, keyed: list[str], carried: list[str], code: int
) -> None:
    """Rerunning is idempotent; an index cannot be altered, so one of another shape is refused
    (saying "already exist" would leave every listing a 503)."""
    existing.describe_table.return_value = described(indexes=[owner_index(keyed, carried)])
    out = io.StringIO()
    assert create_tablestore_table(existing, "uploads", out) == code
    if code == 0:
        assert "already exist" in out.getvalue()
        existing.get_range.assert_not_called()  # no scan of the table when nothing is to be done
    else:
        assert "cannot be altered" in out.getvalue()
        assert str(rows.INDEX_PRIMARY_KEY) in out.getvalue()
    existing.create_secondary_index.assert_not_called()
    existing.delete_secondary_index.assert_not_called()  # deleting is the operator's decision


def test_bootstrap_adds_only_the_missing_ledger_index(existing: Any) -> None:
    due = tablestore.SecondaryIndexMeta("uploads_grants_due", ledger.DUE_INDEX_KEY, [])
    meta = tablestore.TableMeta("uploads_grants", list(ledger.PRIMARY_KEY), ledger.DEFINED_COLUMNS)
    response = tablestore.DescribeTableResponse(meta, tablestore.TableOptions(), None, [due])
    existing.describe_table.return_value = response
    assert create_ledger_table(existing, "uploads", io.StringIO()) == 0
    (call,) = existing.create_secondary_index.call_args_list
    assert call.args[0] == "uploads_grants"
    assert call.args[1].index_name == "uploads_grants_by_target"


class BootstrapOTS(FakeOTS):
    """The in-memory store, plus the table-level calls bootstrap makes on an existing table."""

    def create_table(self, *_: Any, **__: Any) -> None:
        raise exists()

    def describe_table(self, table: str) -> Any:
        return described(indexes=[])

    def create_secondary_index(self, table: str, index: Any, include_base_data: bool) -> None:
        self.calls.append(f"CreateIndex {table} {index.index_name} {include_base_data}")


def test_bootstrap_gives_earlier_rows_their_inverted_time_before_indexing(mocker: Any) -> None:
    fake = BootstrapOTS(table="uploads", page_cap=2)
    mocker.patch("tablestore.OTSClient", return_value=fake)
    store = TablestoreStore(SETTINGS, CREDENTIALS)
    written = [record(key=f"uploads/alice/{n}", created_at=100 + n // 2) for n in range(5)]
    for rec in written:
        store.put(rec, replace=False)
    for attrs in list(fake.rows.values())[:4]:  # rows written before created_at_rev existed
        del attrs["created_at_rev"]
    fake.rows[("00000000", "dev-bucket", "not-ours")] = {"owner": "x", "created_at": "yesterday"}
    assert len(store.list_by_owner("alice").items) == 1  # the index skips rows without its key
    out = io.StringIO()
    assert create_tablestore_table(fake, "uploads", out) == 0
    assert "set created_at_rev on 4 rows" in out.getvalue()
    assert fake.calls[-1] == "CreateIndex uploads uploads_by_owner True"
    assert fake.calls.count("UpdateRow") == 4
    assert store.list_by_owner("alice").items == newest_first(written)
    fake.calls.clear()
    assert create_tablestore_table(fake, "uploads", io.StringIO()) == 0  # a rerun changes nothing
    assert "UpdateRow" not in fake.calls


class Bootstrap541OTS(BootstrapOTS):
    """tablestore 5.4.1 (FC's python3.10 runtime): create_secondary_index has no
    include_base_data, and the index it creates starts empty."""

    def create_secondary_index(self, table: str, index: Any) -> None:  # type: ignore[override]
        self.calls.append(f"CreateIndex {index.index_name}")


def test_bootstrap_on_the_runtimes_sdk_indexes_every_row_after_creating_the_index(
    mocker: Any,
) -> None:
    fake = Bootstrap541OTS(table="uploads")
    mocker.patch("tablestore.OTSClient", return_value=fake)
    store = TablestoreStore(SETTINGS, CREDENTIALS)
    for n in range(3):
        store.put(record(key=f"uploads/alice/{n}", created_at=100 + n), replace=False)
    (first, *_) = fake.rows.values()
    del first["created_at_rev"]  # written before created_at_rev existed
    fake.calls.clear()
    out = io.StringIO()
    assert create_tablestore_table(fake, "uploads", out) == 0
    created = fake.calls.index("CreateIndex uploads_by_owner")
    assert fake.calls[created + 1 :].count("UpdateRow") == 3  # each row written after, once
    assert "UpdateRow" not in fake.calls[:created]
    assert all(
        attrs["created_at_rev"] == 2**63 - 1 - attrs["created_at"] for attrs in fake.rows.values()
    )


def test_the_backfill_skips_a_row_deleted_while_it_ran(mocker: Any) -> None:
    fake = BootstrapOTS(table="uploads")
    mocker.patch("tablestore.OTSClient", return_value=fake)
    TablestoreStore(SETTINGS, CREDENTIALS).put(record(), replace=False)
    (attrs,) = fake.rows.values()
    del attrs["created_at_rev"]
    update_row = fake.update_row

    def deleted_first(table: str, row: Any, condition: Any, *rest: Any) -> Any:
        fake.rows.clear()  # another client deleted it between the read and the write
        return update_row(table, row, condition, *rest)

    fake.update_row = deleted_first
    assert create_tablestore_table(fake, "uploads", io.StringIO()) == 0
    assert fake.rows == {}  # nothing resurrected


@pytest.mark.parametrize("bad", ["no-defined-columns", "another-primary-key"])
def test_bootstrap_refuses_a_table_it_cannot_index(existing: Any, bad: str) -> None:
    response = described(indexes=[], defined=[] if bad == "no-defined-columns" else None)
    if bad == "another-primary-key":
        response.table_meta.schema_of_primary_key = [("id", "STRING")]
    existing.describe_table.return_value = response
    out = io.StringIO()
    assert create_tablestore_table(existing, "uploads", out) == 1
    if bad == "no-defined-columns":
        assert "predefined columns" in out.getvalue()
    existing.create_secondary_index.assert_not_called()


OSS_KEYS = {"OSS_ACCESS_KEY_ID": "oss", "OSS_ACCESS_KEY_SECRET": "osk"}
ROLE_KEYS = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "ak",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "sk",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "tok",
}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({**ROLE_KEYS, **OSS_KEYS}, ("ak", "sk", "tok")), (OSS_KEYS, ("oss", "osk", None))],
)
def test_bootstrap_uses_the_environment_credentials(
    client: Any, environ: dict[str, str], expected: tuple[Any, ...]
) -> None:
    out = io.StringIO()
    assert bootstrap({**ENV, **environ}, out=out) == 0
    args, kwargs = tablestore.OTSClient.call_args  # type: ignore[attr-defined]
    assert (args[1], args[2], kwargs["sts_token"]) == expected
    created = [call.args[0].table_name for call in client.create_table.call_args_list]
    assert created == ["uploads", "uploads_grants"]  # the records, then the grant ledger
    assert "created table uploads" in out.getvalue()


@pytest.mark.parametrize(
    ("environ", "code", "says"),
    [
        (ENV, 2, "no credentials"),
        ({"RECORDS_BACKEND": "tablestore"}, 2, "TABLESTORE_ENDPOINT"),
        ({**ENV, **OSS_KEYS}, 1, "OTSNoPermission"),
    ],
    ids=["no-credentials", "missing-settings", "refused"],
)
def test_bootstrap_says_what_stopped_it(
    client: Any, environ: dict[str, str], code: int, says: str
) -> None:
    client.create_table.side_effect = tablestore.OTSServiceError(403, "OTSNoPermission", "no", "r")
    out = io.StringIO()
    assert bootstrap(environ, out=out) == code
    assert says in out.getvalue()
    if code == 2:
        tablestore.OTSClient.assert_not_called()  # type: ignore[attr-defined]
