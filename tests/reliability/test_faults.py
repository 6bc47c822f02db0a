"""Faults through the real stack: what the browser sees, what is kept, and that reconciliation
leaves exactly one record per stored object (docs/reliability.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from local.oss_emulator import KEY_PATH
from shared.callback import app as callback_app
from shared.callback.app import STORE_DEADLINE_SECONDS
from shared.errors import Unavailable
from shared.grant import EXPIRY_GRACE_SECONDS
from shared.records.base import PutOutcome, Record, RecordStore
from tests.reliability.conftest import assert_one_record_per_object, census, reconcile
from tests.support.emulator import code_of, message_of
from tests.support.livestack import LiveStack, StartStack

pytestmark = pytest.mark.e2e
TTL = 300  # POLICY_TTL_SECONDS' default


class FaultyStore:
    """The callback's store with a fault: 'hang', or 'throttle' (every second write fails)."""

    def __init__(self, inner: RecordStore, mode: str) -> None:
        self.inner = inner
        self.mode = mode
        self.release = threading.Event()
        self.late_write = False  # after a hang: finish the write late (True) or fail (False)
        self.calls = 0
        self.finished = threading.Event()

    def put(self, record: Record, *, replace: bool) -> PutOutcome:
        self.calls += 1
        if self.mode == "throttle" and self.calls % 2 == 0:
            raise Unavailable("the record store is throttling")
        if self.mode == "hang":
            self.release.wait(30)
            try:
                if not self.late_write:
                    raise Unavailable("the record store timed out")
                return self.inner.put(record, replace=replace)
            finally:
                self.finished.set()
        return self.inner.put(record, replace=replace)

    def __getattr__(self, name: str) -> Any:
        """Reads and the grant ledger (open_grant, settle, charge…) are not what these faults
        are about."""
        return getattr(self.inner, name)


def text_grant(live: LiveStack) -> tuple[str, dict[str, Any]]:
    token = live.token("alice")
    return token, live.grant(token, path="docs", filename="a.txt", size="5", type="text/plain")


def with_faulty_store(start: StartStack, mode: str) -> tuple[LiveStack, list[FaultyStore]]:
    """A stack whose callback writes through a FaultyStore in `mode`; the stores it built."""
    stores: list[FaultyStore] = []

    def wrap(store: RecordStore) -> FaultyStore:
        stores.append(FaultyStore(store, mode))
        return stores[-1]

    return start(callback_store=wrap), stores


# --- the record store -------------------------------------------------------------------------


def test_store_down_gives_a_fast_203_and_reconciliation_repairs(
    start_stack: StartStack, mocker: Any
) -> None:
    live, _ = with_faulty_store(start_stack, "throttle")  # every second write fails
    token = live.token("alice")
    grant = live.grant(token, path="batch/")
    writes = mocker.spy(callback_app._WRITERS, "call")
    keys = [f"{grant['dir']}f{n}.txt" for n in range(6)]
    responses = [live.upload(grant, f"file {n}".encode(), key=key) for n, key in enumerate(keys)]

    failed = {key for key, r in zip(keys, responses, strict=True) if r.status_code != 200}
    assert len(failed) == 3
    for response in (r for r in responses if r.status_code != 200):
        assert (response.status_code, code_of(response)) == (203, "CallbackFailed")
        assert message_of(response) == "Error status : 503."
    # a store that is down answers at once, with its own error, not after our deadline
    assert writes.spy_exception.message == "the record store is throttling"
    assert census(live.stack.values).lost == failed  # the objects are kept

    report = reconcile(live.stack.values)
    assert (sorted(report.recorded), report.present) == (sorted(failed), 3)
    assert len(assert_one_record_per_object(live.stack.values).records) == 6
    records = live.uploads(token)
    assert {r["key"] for r in records if r["reconciled"]} == failed
    assert {(r["owner"], r["size"]) for r in records} == {("alice", 6)}


@pytest.mark.parametrize("late_write", [False, True], ids=["write-fails", "write-lands-late"])
def test_a_hanging_store_answers_503_inside_the_callback_limit(
    start_stack: StartStack, late_write: bool, mocker: Any
) -> None:
    live, stores = with_faulty_store(start_stack, "hang")
    _, grant = text_grant(live)
    writes = mocker.spy(callback_app._WRITERS, "call")
    response = live.upload(grant, b"hello")

    # 503, not OSS's "reply timeout": the callback answered inside OSS's 5 s, from its own
    # store deadline while the store still hung
    assert (response.status_code, message_of(response)) == (203, "Error status : 503.")
    (store,) = stores
    assert not store.finished.is_set()
    assert "did not answer within" in writes.spy_exception.message
    assert writes.call_args.args[1] <= STORE_DEADLINE_SECONDS
    store.late_write = late_write
    store.release.set()
    assert store.finished.wait(10)
    assert live.get_object(grant["key"]).status_code == 200
    report = reconcile(live.stack.values)
    assert (report.count("recorded"), report.present) == ((0, 1) if late_write else (1, 0))
    assert_one_record_per_object(live.stack.values)


# --- the callback and the key host ------------------------------------------------------------


Answer = tuple[str, bytes] | None


def in_front(
    live: LiveStack, listener: str, hit: Callable[[dict[str, Any]], bool], answer: Answer = None
) -> tuple[threading.Event, threading.Event, threading.Event]:
    """A fault in front of one listener's WSGI app while `broken` is set: the requests it hits get
    `answer`, or (None) wait for `release` (a slow cold start or host), then go through and set
    `done`."""
    broken, release, done = threading.Event(), threading.Event(), threading.Event()
    broken.set()
    slot = live.stack.servers[listener].app
    app = slot.app  # type: ignore[attr-defined]

    def respond(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not (broken.is_set() and hit(environ)):
            return app(environ, start_response)  # type: ignore[no-any-return]
        if answer is not None:
            start_response(answer[0], [("Content-Type", "application/xml")])
            return [answer[1]]
        release.wait(30)
        try:
            return list(app(environ, start_response))
        finally:
            done.set()

    slot.app = respond  # type: ignore[attr-defined]
    return broken, release, done


def test_a_callback_slower_than_5_s_is_a_203_and_lands_late_once(start_stack: StartStack) -> None:
    live = start_stack()
    token, grant = text_grant(live)
    # a cold start longer than OSS waits: until OSS has given up
    _, release, done = in_front(live, "callback", lambda _: True)
    response = live.upload(grant, b"hello")
    assert (response.status_code, code_of(response)) == (203, "CallbackFailed")
    assert "reply timeout" in message_of(response)
    assert not done.is_set()  # OSS gave up on its own 5 s, not on our answer
    release.set()
    assert live.get_object(grant["key"]).content == b"hello"
    assert done.wait(10)  # our function still ran to the end: its record is written late
    report = reconcile(live.stack.values)
    assert (report.count("recorded"), report.present) == (0, 1)
    assert_one_record_per_object(live.stack.values)
    assert len(live.uploads(token)) == 1


# --- clocks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "version", "status", "code"),
    [
        (TTL - 30, "v4", 200, ""),  # emulator ahead, policy still valid
        (TTL + 30, "v4", 403, "AccessDenied"),  # emulator ahead past expiry: Policy expired
        (-600, "v4", 200, ""),  # emulator behind within V4's 15 min
        (-3600, "v4", 400, "InvalidArgument"),  # behind past it: x-oss-date too far ahead
        # V1 forms carry no date: the object is stored. The callback's own signed read (its
        # verification, UPLOAD_VERIFY) is 15 min off for OSS: 503, then reconciliation.
        (-3600, "v1", 203, "CallbackFailed"),
    ],
)
def test_emulator_clock_skew(
    start_stack: StartStack, offset: float, version: str, status: int, code: str
) -> None:
    live = start_stack(OSS_SIGNATURE_VERSION=version)
    _, grant = text_grant(live)
    live.clock.offset = offset
    response = live.upload(grant, b"hello")
    assert (response.status_code, code_of(response)) == (status, code), response.text
    stored = live.get_object(grant["key"]).status_code == 200
    assert stored is (status in (200, 203))
    live.clock.offset = 0  # the census signs its listing now; OSS refuses requests 15 min off
    if status == 203:
        assert reconcile(live.stack.values).recorded == [grant["key"]]
    assert_one_record_per_object(live.stack.values)


@pytest.mark.parametrize(
    ("ahead", "status"),
    [(TTL + EXPIRY_GRACE_SECONDS - 20, 200), (TTL + EXPIRY_GRACE_SECONDS + 20, 203)],
    ids=["within-grace", "past-grace"],
)
def test_callback_clock_ahead_of_the_signer(
    start_stack: StartStack, ahead: float, status: int
) -> None:
    live = start_stack(callback_clock=lambda: time.time() + ahead)
    token, grant = text_grant(live)
    response = live.upload(grant, b"hello")
    assert response.status_code == status
    if status == 203:
        assert message_of(response) == "Error status : 403."  # GrantInvalid: expired
        assert reconcile(live.stack.values).recorded == [grant["key"]]
    assert_one_record_per_object(live.stack.values)
    (record,) = live.uploads(token)
    assert record["reconciled"] is (status == 203)


# --- what the callback reads: the key URL, and the object itself (UPLOAD_VERIFY) -----------------


def key_fetch(environ: dict[str, Any]) -> bool:
    return environ.get("PATH_INFO") == KEY_PATH


def object_read(environ: dict[str, Any]) -> bool:
    """The callback's own read of the object: conditional (If-Match)."""
    return "HTTP_IF_MATCH" in environ and environ["REQUEST_METHOD"] in ("GET", "HEAD")


def oss_error(status: str, code: str) -> tuple[str, bytes]:
    return status, f"<Error><Code>{code}</Code></Error>".encode()


@pytest.mark.parametrize(
    ("hit", "answer"),
    [
        pytest.param(key_fetch, ("503 Service Unavailable", b""), id="key-host-failing"),
        # past the 2 s fetch deadline: until the test has its answer
        pytest.param(key_fetch, None, id="key-host-slow"),
        pytest.param(
            object_read, oss_error("500 Internal Server Error", "InternalError"), id="oss-failing"
        ),
        # past the callback's 2 s for reads and retries
        pytest.param(object_read, None, id="oss-slow"),
        pytest.param(
            object_read, oss_error("404 Not Found", "NoSuchKey"), id="oss-not-showing-the-object"
        ),
    ],
)
def test_a_failing_or_slow_read_is_a_203_then_reconciled(
    start_stack: StartStack,
    hit: Callable[[dict[str, Any]], bool],
    answer: Answer,
) -> None:
    """The key host fails or hangs; or the callback's read of the object fails, hangs past the
    verification budget or 404s: OSS gets a 503 (never a 500 or a timeout), nothing is recorded
    unconfirmed, and reconciliation, which verifies the same way (without the key), records the
    object once OSS answers again."""
    live = start_stack()
    _, grant = text_grant(live)
    broken, release, served = in_front(live, "oss", hit, answer)
    response = live.upload(grant, b"hello")
    # 503, not OSS's "reply timeout": our deadline answered while the read still hung
    assert (response.status_code, message_of(response)) == (203, "Error status : 503.")
    assert not served.is_set()
    assert census(live.stack.values).lost == {grant["key"]}
    broken.clear()
    release.set()
    assert reconcile(live.stack.values).recorded == [grant["key"]]
    assert_one_record_per_object(live.stack.values)
