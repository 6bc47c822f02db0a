"""The sign function through its core: routes, bad input, CORS, listing, adapters.

Bad input follows security.md §8.1 (S1–S8; S7, rate limits, is in test_quota.py): each case
asserts the exact status and code and that nothing was issued (the body is the error shape only).
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.http import Core
from shared.records import clear_cache
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


# --- S1: authentication ------------------------------------------------------------------------


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


# --- S2, S3: file names ------------------------------------------------------------------------


@pytest.mark.parametrize("filename", HOSTILE["filenames"])
def test_s2_s3_refused_file_names(sign_app: Core, filename: str) -> None:
    response = call(sign_app, f"path=avatars/&filename={filename}&size=1000")
    assert_error(response, 400, "BadRequest")


# --- S4: the client never chooses key, bucket, prefix, expiry, limits or redirects --------------


@pytest.mark.parametrize(
    "name",
    [
        "bucket",
        "key",
        "prefix",
        "dir",
        "expire",
        "expiration",
        "callback",
        "callbackUrl",
        "success_action_redirect",
        "success_action_status",
        "max",
        "content-length-range",
        "x-oss-forbid-overwrite",
        "policy",
        "user",
        "version",
    ],
)
def test_s4_client_chosen_parameters_are_refused(sign_app: Core, name: str) -> None:
    response = call(sign_app, {"path": "a", name: "x"})
    data = assert_error(response, 400, "BadRequest")
    assert name in data["message"]


@pytest.mark.parametrize(
    "query",
    [
        "path=a&path=b",  # repeated: never a silent pick
        "path=a&path=",
        "path=a&filename=x.png&size=1&filename=y.png",
        "path=a&Path=b",  # a name differing only in case is another, unknown name
        "path=a&x-oss-object-acl=public-read",
    ],
)
def test_s4_repeated_parameters_are_refused(sign_app: Core, query: str) -> None:
    response = call(sign_app, query)
    assert_error(response, 400, "BadRequest")


# --- S5: sizes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size", [None, "0", "-1", "1.5", "abc", "", " 5", "1e3", "0x10", "+5", "٣", "５", "1_000"]
)
def test_s5_bad_or_missing_sizes_are_400(sign_app: Core, size: str | None) -> None:
    query = {k: v for k, v in {**EXACT, "size": size}.items() if v is not None}
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


@pytest.mark.parametrize("extra", [{"size": "10"}, {"type": "image/png"}])
def test_size_and_type_need_a_filename(sign_app: Core, extra: dict[str, str]) -> None:
    assert_error(call(sign_app, {"path": "a", **extra}), 400, "BadRequest")


# --- S6: content types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "image/jpeg",
        "text/html",
        "image/svg+xml",
        "image/png; charset=utf-8",
        "image/*",
        "*/*",
        " image/png",
        "image/png\n",
    ],
)
def test_s6_type_not_allowed_for_the_extension(sign_app: Core, content_type: str) -> None:
    assert_error(call(sign_app, {**EXACT, "type": content_type}), 400, "BadRequest")


def test_s6_an_extension_with_several_types_accepts_each(sign_app: Core) -> None:
    for mime in ("image/heic", "image/heif"):
        answer = ok(sign_app, {**EXACT, "filename": "a.heic", "type": mime})
        assert answer["fields"]["Content-Type"] == mime


def test_s6_allow_list_setting_is_honoured(make_sign_app: Callable[..., Core]) -> None:
    app = make_sign_app(UPLOAD_ALLOWED_TYPES="png=image/png,svg=image/svg+xml")
    assert ok(app, EXACT)["key"].endswith(".png")
    assert_error(call(app, {**EXACT, "filename": "a.jpg", "type": ""}), 400, "BadRequest")
    svg = {**EXACT, "filename": "a.svg", "type": "image/svg+xml"}
    assert_error(call(app, svg), 400, "BadRequest")


# --- Paths (DESIGN.md "Sign function") --------------------------------------------------------


def test_missing_path_is_the_callers_root(sign_app: Core) -> None:
    assert ok(sign_app, "")["dir"] == "uploads/alice/"


# --- Routing, methods, headers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/signature",
        "/signature/",
        "/2016-08-15/proxy/upload-svc/sign/signature",
        "/2016-08-15/proxy/upload-svc/sign/signature/",
    ],
)
def test_signature_route_with_and_without_the_fc2_prefix(sign_app: Core, path: str) -> None:
    assert ok(sign_app, {"path": "a"}, path=path)["dir"] == "uploads/alice/a/"


@pytest.mark.parametrize(
    "path", ["/", "/sign", "/signatures", "/2016-08-15/proxy/svc/fn/", "/uploads/x"]
)
def test_unknown_paths_are_404(sign_app: Core, path: str) -> None:
    assert_error(call(sign_app, {"path": "a"}, path=path), 404, "NotFound")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD", "PATCH"])
def test_other_methods_are_405(sign_app: Core, method: str) -> None:
    response = call(sign_app, {"path": "a"}, method=method)
    assert_error(response, 405, "MethodNotAllowed")
    assert response.header("Allow") == "GET, OPTIONS"


def test_answers_are_never_cached(sign_app: Core) -> None:
    response = call(sign_app, {"path": "a"})
    assert response.header("Cache-Control") == "no-store"
    assert response.header("Content-Type") == "application/json"
    assert response.log_fields["user"] == "alice"
    assert response.log_fields["dir"] == "uploads/alice/a/"
    exact = call(sign_app, EXACT)
    assert exact.log_fields["key"] == body(exact)["key"]


# --- S8: CORS ----------------------------------------------------------------------------------


def preflight(app: Core, origin: str | None, path: str = "/signature", **headers: str) -> Any:
    with_origin = {"Origin": origin} if origin is not None else {}
    sent = {"Access-Control-Request-Method": "GET", **with_origin, **headers}
    return call(app, user=None, method="OPTIONS", path=path, headers=sent)


def test_s8_allowed_origin_preflight(sign_app: Core) -> None:
    response = preflight(
        sign_app, ORIGIN, **{"Access-Control-Request-Headers": "authorization, content-type"}
    )
    assert response.status == 204
    assert response.body == b""
    assert response.header("Access-Control-Allow-Origin") == ORIGIN
    assert response.header("Access-Control-Allow-Methods") == "GET, POST, DELETE, OPTIONS"
    assert response.header("Access-Control-Allow-Headers") == "Authorization, Content-Type"
    assert int(response.header("Access-Control-Max-Age")) > 0
    assert response.header("Vary") == "Origin"
    assert response.header("Access-Control-Allow-Credentials") is None


@pytest.mark.parametrize(
    ("origin", "headers"),
    [  # every other unlisted origin: test_attacks.py::test_cors_never_reflects_an_unlisted_origin
        ("https://evil.example.com", {}),
        (ORIGIN, {"Access-Control-Request-Method": "PUT"}),
        (ORIGIN, {"Access-Control-Request-Headers": "x-secret"}),
    ],
)
def test_s8_refused_preflights_are_403(
    sign_app: Core, origin: str, headers: dict[str, str]
) -> None:
    response = preflight(sign_app, origin, **headers)
    assert_error(response, 403, "Forbidden")
    if origin != ORIGIN:
        assert response.header("Access-Control-Allow-Origin") is None


def test_options_without_origin_is_not_cors(sign_app: Core) -> None:
    response = preflight(sign_app, None)
    assert response.status == 204
    assert response.header("Allow") == "GET, POST, DELETE, OPTIONS"
    assert response.header("Access-Control-Allow-Origin") is None


def test_preflight_answers_on_any_path(sign_app: Core) -> None:
    assert preflight(sign_app, ORIGIN, "/2016-08-15/proxy/svc/fn/uploads").status == 204


def test_allowed_origin_can_read_answers_and_errors(sign_app: Core) -> None:
    good = call(sign_app, {"path": "a"}, headers={"Origin": ORIGIN})
    bad = call(sign_app, {"path": "/a"}, headers={"Origin": ORIGIN})
    unauthorized = call(sign_app, {"path": "a"}, user=None, headers={"Origin": ORIGIN})
    for response in (good, bad, unauthorized):
        assert response.header("Access-Control-Allow-Origin") == ORIGIN
        assert response.header("Access-Control-Allow-Credentials") is None


def test_no_cors_origins_configured_refuses_every_preflight(
    make_sign_app: Callable[..., Core],
) -> None:
    app = make_sign_app(CORS_ALLOWED_ORIGINS=None)
    assert_error(preflight(app, ORIGIN), 403, "Forbidden")


# --- GET /uploads ------------------------------------------------------------------------------


def record(owner: str, n: int) -> Record:
    return Record(
        owner=owner,
        bucket="example-bucket",
        key=f"uploads/{owner}/{n:04d}.png",
        size=n + 1,
        etag=f"etag{n}",
        mime_type="image/png",
        created_at=1_700_000_000_000 + n,
    )


@pytest.fixture
def store() -> FakeStore:
    return FakeStore([record("alice", n) for n in range(5)] + [record("bob", 9)], [])


@pytest.fixture
def list_app(make_sign_app: Callable[..., Core], store: FakeStore) -> Core:
    return make_sign_app(store_factory=lambda credentials: store)


def test_uploads_lists_the_callers_records_newest_first(list_app: Core, store: FakeStore) -> None:
    data = ok(list_app, "limit=2", path="/uploads")
    assert [item["key"] for item in data["items"]] == [
        "uploads/alice/0004.png",
        "uploads/alice/0003.png",
    ]
    urls = {"url", "thumbnailUrl"}
    assert {k: v for k, v in data["items"][0].items() if k not in urls} == record(
        "alice", 4
    ).to_json()
    assert urls <= set(data["items"][0])  # minted and checked in tests/test_downloads.py
    assert data["next"] == "2"
    assert store.calls == [("alice", 2, None)]
    last = ok(list_app, {"limit": "2", "cursor": "4"}, path="/uploads")
    assert [item["key"] for item in last["items"]] == ["uploads/alice/0000.png"]
    assert last["next"] is None


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=000", "limit=abc", "limit=-1", "limit=1.5", "limit=+5", "user=bob"]
)
def test_uploads_bad_query_is_400(list_app: Core, store: FakeStore, query: str) -> None:
    assert_error(call(list_app, query, path="/uploads"), 400, "BadRequest")
    assert store.calls == []


def test_uploads_limit_bounds(list_app: Core, store: FakeStore) -> None:
    """DESIGN: limit default 50 (an empty value too), at most 200: larger asks get 200."""
    for query in ("limit=1", "limit=200", "limit=201", "limit=99999999999999999999", "limit="):
        ok(list_app, query, path="/uploads")
    ok(list_app, "", path="/2016-08-15/proxy/svc/fn/uploads")
    assert [limit for _, limit, _ in store.calls] == [1, 200, 200, 200, 50, 50]


def test_uploads_needs_a_token(list_app: Core, store: FakeStore) -> None:
    assert_error(call(list_app, "", path="/uploads", user=None), 401, "Unauthorized")
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


def test_uploads_from_the_real_sqlite_store(
    make_sign_app: Callable[..., Core], tmp_path: Path
) -> None:
    """No store_factory: the app opens settings.records itself (SQLite in a temp dir)."""
    db = str(tmp_path / "records.sqlite3")
    seeded = SqliteStore(db)
    for item in [record("alice", n) for n in range(3)] + [record("bob", 7)]:
        seeded.put(item, replace=False)
    seeded.close()
    clear_cache()
    try:
        app = make_sign_app(RECORDS_BACKEND="sqlite", SQLITE_PATH=db)
        first = ok(app, "limit=2", path="/uploads")
        assert [item["key"] for item in first["items"]] == [
            "uploads/alice/0002.png",
            "uploads/alice/0001.png",
        ]
        assert first["items"][0]["createdAt"] == record("alice", 2).created_at
        assert first["next"]  # paging through SQLite: test_uploads_pages_past_the_longest_key…
        bob = ok(app, "", path="/uploads", user="bob")
        assert [item["owner"] for item in bob["items"]] == ["bob"]
        assert_error(call(app, "cursor=not-a-cursor", path="/uploads"), 400, "BadRequest")
    finally:
        clear_cache()


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
