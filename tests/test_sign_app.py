"""The sign function through its core: bad input by security.md §8.1 (S1–S8; S7 is in
test_quota.py), each the exact status, code and error shape only; routes, CORS, listing."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from shared.http import Core
from shared.records.base import Record
from shared.records.sqlite import SqliteStore
from tests.support.data import HOSTILE
from tests.support.sign import (
    ORIGIN,
    SIGN_ENV,
    FakeStore,
    assert_error,
    body,
    call,
    conditions,
    ok,
    token,
)

ROOT = Path(__file__).resolve().parent.parent
EXACT = {"path": "avatars/", "filename": "me.png", "size": "1000", "type": "image/png"}


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic YWxpY2U6cGFzcw==", "Bearer not-a-jwt", f"Bearer {token('alice', ttl=-31)}"],
    ids=["missing", "basic", "garbage", "expired"],
)  # which tokens are bad: test_auth.py; here, what the core answers for any of them
@pytest.mark.parametrize("query", [EXACT, {"bucket": "other"}], ids=["good", "bad-query"])
def test_s1_bad_or_missing_token_is_401_before_the_query_is_read(
    sign_app: Core, authorization: str | None, query: dict[str, str]
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = call(sign_app, query, user=None, headers=headers)
    assert_error(response, 401, "Unauthorized")
    assert (response.header("WWW-Authenticate") or "").startswith("Bearer ")
    assert response.header("Cache-Control") == "no-store"


# --- S4: the client never chooses key, bucket, prefix, expiry, limits or redirects --------------


GRANT_NAMES = ["bucket", "key", "prefix", "dir", "expire", "expiration", "max", "user", "version"]
FORM_NAMES = ["callback", "callbackUrl", "success_action_redirect", "success_action_status"]
POLICY_NAMES = ["policy", "content-length-range", "x-oss-forbid-overwrite"]


@pytest.mark.parametrize("name", GRANT_NAMES + FORM_NAMES + POLICY_NAMES)
def test_s4_client_chosen_parameters_are_refused(sign_app: Core, name: str) -> None:
    response = call(sign_app, {"path": "a", name: "x"})
    data = assert_error(response, 400, "BadRequest")
    assert name in data["message"]


REPEATED = ["path=a&path=b", "path=a&path=", "path=a&filename=x.png&size=1&filename=y.png"]
UNKNOWN = ["path=a&Path=b", "path=a&x-oss-object-acl=public-read"]  # case makes another name
WITHOUT_A_FILENAME = ["path=a&size=10", "path=a&type=image/png"]
BAD_SIZES = ["0", "-1", "1.5", "abc", "", " 5", "1e3", "0x10", "+5", "٣", "５", "1_000"]
OTHER_TYPES = ["image/jpeg", "text/html", "image/svg+xml", "image/*", "*/*"]
PNG_SPELLED_OTHERWISE = ["image/png; charset=utf-8", " image/png", "image/png\n"]
REFUSED = [
    *(f"path=avatars/&filename={name}&size=1000" for name in HOSTILE["filenames"]),  # S2, S3
    *REPEATED,  # S4
    *UNKNOWN,
    *WITHOUT_A_FILENAME,
    "path=avatars/&filename=me.png&type=image/png",  # S5: the size is missing, or not one
    *(urlencode({**EXACT, "size": size}) for size in BAD_SIZES),
    *(urlencode({**EXACT, "type": mime}) for mime in OTHER_TYPES + PNG_SPELLED_OTHERWISE),  # S6
]


@pytest.mark.parametrize("query", REFUSED)
def test_s2_to_s6_refused_queries_are_400(sign_app: Core, query: str) -> None:
    assert_error(call(sign_app, query), 400, "BadRequest")


@pytest.mark.parametrize("size", ["10485761", "99999999999", "9" * 40])
def test_s5_sizes_over_the_limit_are_413(sign_app: Core, size: str) -> None:
    assert_error(call(sign_app, {**EXACT, "size": size}), 413, "TooLarge")


def test_a_postobject_grant_stays_within_5_gib_when_multipart_may_take_more(
    make_sign_app: Callable[..., Core],
) -> None:
    """UPLOAD_MAX_BYTES may exceed PostObject's 5 GiB (POST /multipart takes it): /signature
    then refuses more than 5 GiB, saying where to go, and a prefix policy caps at 5 GiB."""
    app = make_sign_app(UPLOAD_MAX_BYTES=str(6 * 1024**3))
    five = 5 * 1024**3
    refused = assert_error(call(app, {**EXACT, "size": str(five + 1)}), 413, "TooLarge")
    assert refused["message"] == (
        f"size is over the limit of {five} bytes for one PostObject: use POST /multipart"
    )
    assert ["content-length-range", 1, five] in conditions(ok(app, {**EXACT, "size": str(five)}))
    assert ["content-length-range", 1, five] in conditions(ok(app, {"path": "docs"}))


def test_s6_the_allow_list_is_honoured(sign_app: Core, make_sign_app: Callable[..., Core]) -> None:
    for mime in ("image/heic", "image/heif"):  # an extension with several types accepts each
        answer = ok(sign_app, {**EXACT, "filename": "a.heic", "type": mime})
        assert answer["fields"]["Content-Type"] == mime
    app = make_sign_app(UPLOAD_ALLOWED_TYPES="png=image/png,svg=image/svg+xml")
    assert ok(app, EXACT)["key"].endswith(".png")
    assert_error(call(app, {**EXACT, "filename": "a.jpg", "type": ""}), 400, "BadRequest")
    svg = {**EXACT, "filename": "a.svg", "type": "image/svg+xml"}
    assert_error(call(app, svg), 400, "BadRequest")


# --- Routing, methods, headers -----------------------------------------------------------------


FC2 = "/2016-08-15/proxy/upload-svc/sign"  # FC 2.0's path prefix for an HTTP trigger


@pytest.mark.parametrize(
    "path", ["/signature", "/signature/", FC2 + "/signature", FC2 + "/signature/"]
)
def test_signature_route_with_and_without_the_fc2_prefix(sign_app: Core, path: str) -> None:
    assert ok(sign_app, {"path": "a"}, path=path)["dir"] == "uploads/alice/a/"
    assert ok(sign_app, "", path=path)["dir"] == "uploads/alice/"  # no path: the caller's root


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        *(("GET", p, 404, "NotFound") for p in ("/", "/sign", "/signatures", "/uploads/x")),
        ("GET", "/2016-08-15/proxy/svc/fn/", 404, "NotFound"),
        *((m, "/signature", 405, "MethodNotAllowed") for m in ("POST", "PUT", "DELETE", "HEAD")),
        ("PATCH", "/signature", 405, "MethodNotAllowed"),
    ],
)
def test_unknown_paths_are_404_and_other_methods_405(
    sign_app: Core, method: str, path: str, status: int, code: str
) -> None:
    response = call(sign_app, {"path": "a"}, method=method, path=path)
    assert_error(response, status, code)
    assert response.header("Allow") == ("GET, OPTIONS" if status == 405 else None)


def test_answers_are_never_cached(sign_app: Core) -> None:
    response = call(sign_app, {"path": "a"})
    assert response.header("Cache-Control") == "no-store"
    assert response.header("Content-Type") == "application/json"
    assert response.log_fields["user"] == "alice"
    assert response.log_fields["dir"] == "uploads/alice/a/"
    exact = call(sign_app, EXACT)
    assert exact.log_fields["key"] == body(exact)["key"]


def preflight(app: Core, origin: str | None, path: str = "/signature", **headers: str) -> Any:
    with_origin = {"Origin": origin} if origin is not None else {}
    sent = {"Access-Control-Request-Method": "GET", **with_origin, **headers}
    return call(app, user=None, method="OPTIONS", path=path, headers=sent)


@pytest.mark.parametrize("path", ["/signature", "/2016-08-15/proxy/svc/fn/uploads"])
def test_s8_allowed_origin_preflight_on_any_path(sign_app: Core, path: str) -> None:
    asked = {"Access-Control-Request-Headers": "authorization, content-type"}
    response = preflight(sign_app, ORIGIN, path, **asked)
    assert response.status == 204
    assert response.body == b""
    assert response.header("Access-Control-Allow-Origin") == ORIGIN
    assert response.header("Access-Control-Allow-Methods") == "GET, POST, DELETE, OPTIONS"
    assert response.header("Access-Control-Allow-Headers") == "Authorization, Content-Type"
    assert int(response.header("Access-Control-Max-Age")) > 0
    assert response.header("Vary") == "Origin"
    assert response.header("Access-Control-Allow-Credentials") is None


@pytest.mark.parametrize(
    ("origin", "headers", "settings"),
    [  # every other unlisted origin: test_attacks.py::test_cors_never_reflects_an_unlisted_origin
        ("https://evil.example.com", {}, {}),
        (ORIGIN, {"Access-Control-Request-Method": "PUT"}, {}),
        (ORIGIN, {"Access-Control-Request-Headers": "x-secret"}, {}),
        (ORIGIN, {}, {"CORS_ALLOWED_ORIGINS": None}),  # no origin configured: none allowed
    ],
)
def test_s8_refused_preflights_are_403(
    make_sign_app: Callable[..., Core],
    origin: str,
    headers: dict[str, str],
    settings: dict[str, Any],
) -> None:
    response = preflight(make_sign_app(**settings), origin, **headers)
    assert_error(response, 403, "Forbidden")
    if origin != ORIGIN:
        assert response.header("Access-Control-Allow-Origin") is None


def test_allowed_origin_can_read_answers_and_errors_and_no_origin_is_not_cors(
    sign_app: Core,
) -> None:
    response = preflight(sign_app, None)
    assert response.status == 204
    assert response.header("Allow") == "GET, POST, DELETE, OPTIONS"
    assert response.header("Access-Control-Allow-Origin") is None
    good = call(sign_app, {"path": "a"}, headers={"Origin": ORIGIN})
    bad = call(sign_app, {"path": "/a"}, headers={"Origin": ORIGIN})
    unauthorized = call(sign_app, {"path": "a"}, user=None, headers={"Origin": ORIGIN})
    for response in (good, bad, unauthorized):
        assert response.header("Access-Control-Allow-Origin") == ORIGIN
        assert response.header("Access-Control-Allow-Credentials") is None


def record(owner: str, n: int) -> Record:
    """owner, bucket, key, size, etag, mime type, created at: the nth is the newest."""
    key, at = f"uploads/{owner}/{n:04d}.png", 1_700_000_000_000 + n
    return Record(owner, "example-bucket", key, n + 1, f"etag{n}", "image/png", at)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore([record("alice", n) for n in range(5)] + [record("bob", 9)], [])


@pytest.fixture
def list_app(make_sign_app: Callable[..., Core], store: FakeStore) -> Core:
    return make_sign_app(store_factory=lambda credentials: store)


def test_uploads_pass_the_callers_page_through(list_app: Core, store: FakeStore) -> None:
    """The store orders and pages; the app asks for the caller's own, with a limit of 1 to 200
    (default 50, an empty value too; larger asks get 200) and the cursor, and returns each
    record's fields. Ordering and paging of the real stores: test_contracts.py."""
    data = ok(list_app, "limit=2", path="/uploads")
    keys = [item["key"] for item in data["items"]]
    assert (keys, data["next"]) == (["uploads/alice/0004.png", "uploads/alice/0003.png"], "2")
    urls = ("url", "thumbnailUrl")  # minted and checked in tests/test_private_files.py
    first = data["items"][0]
    assert {k: v for k, v in first.items() if k not in urls} == record("alice", 4).to_json()
    assert set(urls) <= set(first)
    last = ok(list_app, {"limit": "2", "cursor": "4"}, path="/uploads")
    assert [item["key"] for item in last["items"]] == ["uploads/alice/0000.png"]
    assert last["next"] is None
    for query in ("limit=1", "limit=200", "limit=201", "limit=99999999999999999999", "limit="):
        ok(list_app, query, path="/uploads")
    ok(list_app, "", path="/2016-08-15/proxy/svc/fn/uploads")
    assert {owner for owner, _, _ in store.calls} == {"alice"}
    asked = [(limit, cursor) for _, limit, cursor in store.calls]
    assert asked == [(2, None), (2, "4"), (1, None), *[(200, None)] * 3, *[(50, None)] * 2]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=000", "limit=abc", "limit=-1", "limit=1.5", "limit=+5", "user=bob"]
)
def test_uploads_bad_query_is_400_after_the_token_is_checked(
    list_app: Core, store: FakeStore, query: str
) -> None:
    assert_error(call(list_app, query, path="/uploads"), 400, "BadRequest")
    assert_error(call(list_app, query, path="/uploads", user=None), 401, "Unauthorized")
    assert store.calls == []


def test_uploads_with_auth_mode_none_lists_anonymous(make_sign_app: Callable[..., Core]) -> None:
    store = FakeStore([record("anonymous", 1), record("alice", 2)], [])
    app = make_sign_app(
        AUTH_MODE="none", AUTH_JWT_SECRET=None, store_factory=lambda credentials: store
    )
    data = ok(app, "", path="/uploads", user=None)
    assert [item["owner"] for item in data["items"]] == ["anonymous"]


def test_uploads_pages_past_the_longest_key_oss_accepts(
    make_sign_app: Callable[..., Core], tmp_path: Path
) -> None:
    """A page that ends on a 1,023-byte key (OSS's limit) yields a cursor the next call takes."""
    store = SqliteStore(str(tmp_path / "records.sqlite3"))
    folder = "uploads/alice/"
    for n in range(3):
        key = folder + "d" * (1023 - len(folder) - 5) + f"{n}.png"
        store.put(dataclasses.replace(record("alice", n), key=key), replace=False)
    app = make_sign_app(store_factory=lambda credentials: store)
    first = ok(app, "limit=2", path="/uploads")
    assert len(first["next"]) > 1024
    rest = ok(app, {"limit": "2", "cursor": first["next"]}, path="/uploads")
    assert [len(item["key"]) for item in rest["items"]] == [1023]
    assert rest["next"] is None
    assert_error(call(app, "cursor=not-a-cursor", path="/uploads"), 400, "BadRequest")


def test_uploads_store_gets_credentials_only_for_tablestore(
    make_sign_app: Callable[..., Core],
) -> None:
    seen: list[Any] = []

    def factory(credentials: Any) -> FakeStore:
        seen.append(credentials)
        return FakeStore([], [])

    ok(make_sign_app(store_factory=factory), "", path="/uploads")
    tablestore = make_sign_app(
        store_factory=factory,
        RECORDS_BACKEND="tablestore",
        TABLESTORE_ENDPOINT="https://inst.cn-hangzhou.ots.aliyuncs.com",
        TABLESTORE_INSTANCE="inst",
    )
    ok(tablestore, "", path="/uploads")
    assert seen[0] is None
    assert seen[1].access_key_id == "test-access-key-id"


# --- The adapters: functions/sign/index.py ------------------------------------------------------


def test_sign_path_opens_no_socket_and_imports_no_cloud_sdk(
    sign_app: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the sign path must not open a socket")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert ok(sign_app, EXACT)["key"]
    script = (
        "import os, sys\n"
        "os.environ.update(" + repr(SIGN_ENV) + ")\n"
        "import functions.sign.index\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tablestore', 'requests', 'oss2')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run(  # noqa: S603 - a fixed script with this interpreter
        [sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60
    )
