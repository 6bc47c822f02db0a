"""The callback core and both FC adapters, driven by signed requests from `tests/support/callbacks.py`.

Each negative test changes one thing of a valid signed callback and asserts the exact status and
code (security.md §8.3–8.5); records go to a real SqliteStore. UPLOAD_VERIFY is off (C13/C14, F7:
test_callback_verify.py, tests/e2e/test_e2e_verify.py, tests/reliability/test_faults.py).
Replays (R1/R2/R6) and overwrites: test_contracts.py and test_records_contract.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shared.callback import app as callback_app
from shared.callback.app import MAX_BODY, STORE_DEADLINE_SECONDS, create_app
from shared.errors import Unavailable
from shared.grant import EXPIRY_GRACE_SECONDS
from shared.http import Core, Request, Response, serve
from shared.http.fc2 import wsgi_adapter
from shared.http.fc3 import event_adapter
from shared.records.base import RecordStore
from shared.records.sqlite import SqliteStore
from tests.support import fc
from tests.support.callbacks import (
    BUCKET,
    CALLBACK_PATH,
    EXACT_KEY,
    NOW,
    OTHER_SECRET,
    PREFIX,
    TEST_KEY_URL,
    USER,
    CallbackBuilder,
    Clock,
    DownStore,
    HangingStore,
    KeyServer,
    Removals,
    callback_settings,
    fc3_event,
    rsa_key,
    wsgi_environ,
)


@pytest.fixture
def app(make_callback_app: Callable[..., Core]) -> Core:
    return make_callback_app()


def call(app: Core, request: Request) -> tuple[int, dict[str, Any], Response]:
    response = serve(app, request, function="callback")
    return response.status, json.loads(response.body), response


def assert_error(app: Core, request: Request, status: int, code: str) -> dict[str, Any]:
    got_status, payload, _ = call(app, request)
    assert (got_status, payload.get("code")) == (status, code), payload
    assert payload["Status"] == "Error"
    return payload


def test_genuine_callback_is_recorded_and_answered(
    app: Core, build: CallbackBuilder, store: SqliteStore, keyserver: KeyServer
) -> None:
    """C1: 200 JSON with Status OK and the record (no url without a download host), < 1 KB."""
    status, payload, response = call(app, build.request())
    values = build.values()
    assert status == 200
    assert payload == {
        "Status": "OK",
        "key": EXACT_KEY,
        "size": 5120,
        "etag": values["etag"],
        "mimeType": "image/png",
        "owner": USER,
        "createdAt": NOW * 1000,
        "bucket": BUCKET,
        "imageInfo": {"width": 640, "height": 480, "format": "png"},
        "crc64": values["crc64"],
        "contentMd5": values["contentMd5"],
        "clientIp": values["clientIp"],
        "reqId": values["reqId"],
        "grantId": "g-0001",
        "reconciled": False,
        "fileName": "",
    }
    assert response.header("Content-Type") == "application/json"
    assert response.header("Content-Length") == str(len(response.body))
    assert len(response.body) < 1024
    stored = store.get(BUCKET, EXACT_KEY)
    assert stored is not None
    assert {"Status": "OK", **stored.to_json()} == payload
    assert keyserver.calls == [TEST_KEY_URL]


# --- C2–C16: forged, tampered, malformed, unusable -------------------------------------------

USABLE = b"bucket=test-bucket&object=a&etag=b&size=1&mimeType=x"  # all but the grant token
# One change each to a valid signed callback, and the answer. None writes or deletes anything;
# a wrong method or a missing signature header is refused before any key lookup.
REFUSED = [
    *(
        ({"method": m}, 405, "MethodNotAllowed")
        for m in ("GET", "PUT", "DELETE", "HEAD", "OPTIONS")
    ),
    ({"omit": ("authorization",)}, 401, "SignatureInvalid"),  # C2
    ({"omit": ("x-oss-pub-key-url",)}, 401, "KeyUrlUntrusted"),
    *(  # C3: a malformed Authorization is a domain error (never a 500)
        ({"headers": {"authorization": value}}, 401, "SignatureInvalid")
        for value in (
            "",
            " ",
            "not base64!",
            "OSS ak:c2lnbmF0dXJl",
            "c2lnbmF0dXJl",  # valid base64, far too short
            base64.b64encode(bytes(255)).decode(),  # canonical, one byte short of a 2048-bit one
            "QQ==" * 400,  # over-long
            "QR==",  # non-canonical padding bits
            "c2lnbmF0dXJl, c2lnbmF0dXJl",  # C16: a repeated header, joined with ', '
        )
    ),
    # C4: signed over a body, sent with one byte changed
    (
        {"body": USABLE.replace(b"=1", b"=2"), "signed": b"/oss-callback\n" + USABLE},
        401,
        "SignatureInvalid",
    ),
    *(  # C5: signed for another path or query than the one sent
        ({"path": path, "query": query, "signed_prefix": signed}, 401, "SignatureInvalid")
        for path, query, signed in (
            (b"/oss-callbacK", "", b"/oss-callback"),  # path changed
            (b"/oss-callback", "a=1", b"/oss-callback?a=2"),  # query changed
            (b"/oss-callback", "a=1", b"/oss-callback"),  # query added
            (b"/oss-callback", "", b"/oss-callback?a=1"),  # query dropped
            (b"/oss-callback", "", b"/oss-callback?"),  # a '?' OSS never signs
        )
    ),
    ({"body": USABLE}, 403, "GrantInvalid"),  # C10: no grant token
    ({"body": USABLE + b"&grant="}, 403, "GrantInvalid"),
    *(  # C15: signed correctly, unusable (JSON, repeated fields, bad sizes and escapes:
        # test_attacks.py::test_authentic_bodies_that_cannot_be_one_upload_are_400)
        ({"body": body}, 400, "BadRequest")
        for body in (
            b"",
            b"bucket=test-bucket",
            b"\xff\xfe=\xff",
            b"bucket=test-bucket&object=a&etag=b&size=12a&mimeType=x",
            b"bucket=test-bucket&object=a&etag=b&size=1&mimeType=x&imageInfo.width=wide",
            b"bucket=&object=a&etag=b&size=1&mimeType=x",
        )
    ),
]


@pytest.mark.parametrize(("change", "status", "code"), REFUSED)
def test_refused_callbacks(
    *,
    app: Core,
    build: CallbackBuilder,
    store: SqliteStore,
    keyserver: KeyServer,
    removals: Removals,
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    assert_error(app, build.request(**change), status, code)
    assert store.list_by_owner(USER).items == []
    assert removals.calls == []
    if "omit" in change or status == 405:
        assert keyserver.calls == []


# --- C10–C12: authentic, but not our grant --------------------------------------------------


@pytest.mark.parametrize(
    ("values", "outcome"),
    [
        ({"size": "0"}, "deleted"),
        ({"size": "1048577"}, "deleted"),
        ({"size": "99999999999"}, "deleted"),
        ({"size": "1048577"}, "undeletable"),  # 503 (OSS: CallbackFailed); swept later
        ({"size": "1048576"}, "recorded"),
        ({"size": "1"}, "recorded"),
        # An oversized object under another key or bucket is not ours to touch.
        ({"size": "99999999", "object": EXACT_KEY + "x"}, "refused"),
        ({"size": "99999999", "bucket": "attacker-bucket"}, "refused"),
    ],
)
def test_size_must_be_within_the_grant(
    *,
    app: Core,
    build: CallbackBuilder,
    store: SqliteStore,
    removals: Removals,
    values: dict[str, str],
    outcome: str,
) -> None:
    """Size in [1, grant.max_bytes]; 0 or one byte over is GrantInvalid, and the object (which a
    presigned PUT stores whatever its size) is deleted: it must not stay unrecorded, unquoted."""
    if outcome == "undeletable":
        removals.error = Unavailable("OSS could not be reached")
    got, payload, _ = call(app, build.request(values=values))
    answers = {"recorded": (200, None), "undeletable": (503, "Unavailable")}
    assert (got, payload.get("code")) == answers.get(outcome, (403, "GrantInvalid"))
    if outcome == "undeletable":  # the same for a refused type (one `refuse` path)
        assert "could not be deleted" in payload["message"]
    tried = outcome in ("deleted", "undeletable")
    assert removals.calls == ([(EXACT_KEY, build.values()["etag"])] if tried else [])
    assert (store.get(BUCKET, EXACT_KEY) is not None) == (outcome == "recorded")


# --- C15/C16: what OSS sends that is still usable, odd headers --------------------------------


def test_unknown_fields_and_empty_image_fields_are_accepted(
    app: Core, build: CallbackBuilder
) -> None:
    """Fields we do not know are ignored; real OSS renders `imageInfo.*` empty for non-images."""
    body = build.body() + b"&x:extra=1&vpcId="
    assert call(app, build.request(body=body))[0] == 200
    values = {"object": PREFIX + "report.pdf", "mimeType": "application/pdf"}
    values |= {"imageInfo.height": "", "imageInfo.width": "", "imageInfo.format": ""}
    status, payload, _ = call(app, build.request(grant=build.prefix_grant(), values=values))
    assert (status, payload["imageInfo"]) == (200, None)


def test_header_names_differing_in_case_are_handled_deterministically(
    app: Core, build: CallbackBuilder
) -> None:
    """C16: an FC 3.0 event with `Authorization` and `authorization`: the last one counts."""
    handler = event_adapter(app, function="callback", max_body=MAX_BODY)
    event = json.loads(fc3_event(build.request()))
    good = event["headers"].pop("authorization")
    for first, last, expected in (("QUFBQQ==", good, 200), (good, "QUFBQQ==", 401)):
        event["headers"] = {"Authorization": first, **event["headers"], "authorization": last}
        assert handler(json.dumps(event).encode(), None)["statusCode"] == expected


# --- R4/R5/F10: expiry and clock skew ------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "status"),
    [
        (-300 - 3 * 3600, 200),  # F10: a clock hours behind is no reason to refuse
        (0, 200),
        (EXPIRY_GRACE_SECONDS - 1, 200),  # R5: within the grace for clock skew
        (EXPIRY_GRACE_SECONDS, 200),
        (EXPIRY_GRACE_SECONDS + 1, 403),  # R4: past expiry + grace
        (3 * 3600, 403),  # F10: clock jumped hours ahead
    ],
)
def test_expiry_with_grace(
    app: Core, build: CallbackBuilder, clock: Clock, offset: int, status: int
) -> None:
    """Accepted ones are stamped with the injected clock's time, not the grant's."""
    clock.now = build.grant.expires_at + offset
    got, payload, _ = call(app, build.request())
    if status == 200:
        assert (got, payload["createdAt"]) == (200, clock.now * 1000)
    else:
        assert (got, payload["code"]) == (403, "GrantInvalid")


# --- F1–F11: faults and timeouts ------------------------------------------------------------


def test_key_fetch_failure_is_503_and_cached(
    make_callback_app: Callable[..., Core], build: CallbackBuilder
) -> None:
    """F1: fail closed with 503; the next callback within 30 s does not fetch again."""
    down = KeyServer()  # serves no key: every fetch fails
    app = make_callback_app(fetch=down)
    for _ in range(2):
        assert_error(app, build.request(), 503, "Unavailable")
    assert down.calls == [TEST_KEY_URL]


def test_store_down_is_503_at_once(
    make_callback_app: Callable[..., Core], build: CallbackBuilder
) -> None:
    """F5: the store reports an outage: 503 with its answer (not our deadline's), nothing written."""
    down = DownStore()
    app = make_callback_app(records=down)
    payload = assert_error(app, build.request(), 503, "Unavailable")
    assert payload["message"] == "the record store is unavailable; try again"
    assert down.puts == 1


def test_a_hanging_store_is_answered_503_at_the_store_deadline(
    make_callback_app: Callable[..., Core], build: CallbackBuilder, mocker: Any
) -> None:
    """The store stops answering: OSS still gets 503 from our deadline (≤ 2.5 s; its limit is 5 s)."""
    hanging = HangingStore()
    app = make_callback_app(records=hanging)
    writes = mocker.spy(callback_app._WRITERS, "call")
    try:
        payload = assert_error(app, build.request(), 503, "Unavailable")
        assert hanging.entered.is_set()
        assert not hanging.finished.is_set()  # answered without waiting for the store
    finally:
        hanging.release.set()
    assert payload["message"].startswith("the record store did not answer within")
    assert writes.call_args.args[1] <= STORE_DEADLINE_SECONDS


def test_the_store_opens_at_the_first_callback_and_again_for_new_credentials(
    tmp_path: Path, build: CallbackBuilder, keyserver: KeyServer, store: SqliteStore
) -> None:
    """F8: building the app neither fetches nor opens the store. Role credentials come from the
    FC context per request: a new set builds a new store, the same set shares it."""
    opened: list[object] = []

    def factory(credentials: Any) -> RecordStore:
        opened.append(credentials.identity if credentials else None)
        return store

    settings = callback_settings(tmp_path)
    app = create_app(settings, environ={}, store_factory=factory, fetch=keyserver, now=lambda: NOW)
    assert (opened, keyserver.calls) == ([], [])
    assert call(app, build.request())[0] == 200  # its speed: bench/coldstart.py
    assert opened == [None]  # SQLite backend, no credentials in the environment: None
    for token in ("t1", "t1", "t2"):
        creds = SimpleNamespace(access_key_id="STS.id", access_key_secret="s", security_token=token)
        request = replace(build.request(), context=SimpleNamespace(credentials=creds))
        assert call(app, request)[0] == 200
    assert opened == [None, ("STS.id", "t1"), ("STS.id", "t2")]


def test_tablestore_without_credentials_is_503(
    make_callback_app: Callable[..., Core], build: CallbackBuilder
) -> None:
    """The Tablestore backend needs role credentials; without them: 503, not a crash."""
    app = make_callback_app(
        RECORDS_BACKEND="tablestore",
        TABLESTORE_ENDPOINT="https://inst.cn-hangzhou.ots.aliyuncs.com",
        TABLESTORE_INSTANCE="inst",
    )
    assert_error(app, build.request(), 503, "Unavailable")


def test_one_log_line_per_request(
    app: Core, build: CallbackBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    """F11: outcome code, key and grant id (that no secret or token is logged:
    test_attacks.py::test_no_secret_or_token_in_any_answer_or_log_line)."""
    call(app, build.request())
    call(app, build.request(token=build.token(secret=OTHER_SECRET)))
    call(app, build.request(signing_key=rsa_key(1024)))
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    requests = [line for line in lines if line["event"] == "request"]
    assert [line["outcome"] for line in requests] == ["OK", "GrantInvalid", "SignatureInvalid"]
    first, forged = requests[0], requests[1]
    assert (first["key"], first["grant_id"], first["result"]) == (EXACT_KEY, "g-0001", "created")
    assert forged["key"] == EXACT_KEY


# --- adapters: FC 2.0 WSGI and FC 3.0 events -------------------------------------------------


def test_wsgi_without_query_string_key(app: Core, build: CallbackBuilder) -> None:
    environ = wsgi_environ(build.request())
    del environ["QUERY_STRING"]
    answer = fc.call(wsgi_adapter(app, function="callback", max_body=MAX_BODY), environ)
    assert answer.status == 200


def test_fc3_event_with_a_signature_made_for_other_bytes(app: Core, build: CallbackBuilder) -> None:
    """A base64 body is verified after decoding: signing the base64 text does not verify."""
    forged = build.request(signed=CALLBACK_PATH.encode() + b"\n" + base64.b64encode(build.body()))
    handler = event_adapter(app, function="callback", max_body=MAX_BODY)
    result = handler(fc3_event(forged, base64_body=True), None)
    assert (result["statusCode"], json.loads(result["body"])["code"]) == (401, "SignatureInvalid")
