"""The /multipart routes' requests (shared/sign/multipart.py, jsonbody.py): what is refused
before OSS is asked anything (the bucket factory fails the test if used), and the part URLs.
Everything that talks to OSS is proven against the emulator in tests/e2e/test_e2e_multipart.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from shared import multipart as oss_multipart
from shared.credentials import Credentials
from shared.http import Core
from shared.records.grants import EXACT
from shared.records.sqlite import SqliteStore
from shared.sign import multipart, part_urls
from tests.support.sign import NOW, assert_error, body, call, open_multipart, query_of

UPLOAD_ID = "0004B999EF5A239BB9138C6227D69F95"
KEY = "uploads/alice/01HZX.bin"
PART = 5 * 1024 * 1024
SIZE = 3 * PART + 7  # four parts, the last one 7 bytes
MD5 = "1B2M2Y8AsgTpgAmY7PhCfg=="


def no_oss(credentials: Credentials) -> Any:
    raise AssertionError("OSS was asked although the request should have been refused first")


@pytest.fixture
def app(make_sign_app: Core) -> Core:
    return make_sign_app(bucket_factory=no_oss)


def session(ledger: SqliteStore, **overrides: Any) -> None:
    """An open session for SIZE bytes in parts of PART, for a day."""
    expires_at = int(NOW) + multipart.SESSION_SECONDS
    values = {"max_bytes": SIZE, "part_size": PART, "expires_at": expires_at, **overrides}
    open_multipart(ledger, UPLOAD_ID, KEY, **values)


def post(app: Core, path: str, payload: Any, **options: Any) -> Any:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return call(app, method="POST", path=path, body=data, **options)


# --- create: refused before InitiateMultipartUpload ---------------------------------------------

GOOD = {"path": "videos", "filename": "a.mp4", "size": 6 * 1024 * 1024, "type": "video/mp4"}


NOT_OBJECTS = [b"", b"{", b"[]", b"\xff\xfe{}", b"[" * 4000 + b"]" * 4000]  # the last: too deep
REPEATED_NAME = b'{"filename": "a.mp4", "filename": "b.mp4", "size": 5}'
BAD_SIZES = [5.0, "5", True, 0, -1]
OUT_OF_BOUNDS = [{"key": "uploads/bob/x.mp4"}, {"partSize": 1}, {"path": "../bob"}, {"path": 7}]
WRONG_TYPES = [{"filename": "page.html", "type": "text/html"}, {"type": "image/png"}]


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        *((sent, 400, "BadRequest") for sent in [*NOT_OBJECTS, REPEATED_NAME]),
        (b'{"filename": "a.mp4", "size": NaN}', 400, "BadRequest"),
        *(({**GOOD, "size": size}, 400, "BadRequest") for size in BAD_SIZES),
        *(({**GOOD, **fields}, 400, "BadRequest") for fields in OUT_OF_BOUNDS + WRONG_TYPES),
        ({**GOOD, "filename": ["a.mp4"]}, 400, "BadRequest"),
        ({"path": "", "size": 5}, 400, "BadRequest"),
        ({"filename": "a.mp4"}, 400, "BadRequest"),
        (b"[" * 100_000, 413, "TooLarge"),
        ({**GOOD, "size": 10485761}, 413, "TooLarge"),
    ],
)
def test_create_refusals_ask_oss_nothing_and_reserve_nothing(
    app: Core, ledger: SqliteStore, payload: Any, status: int, code: str
) -> None:
    response = post(app, "/multipart", payload)
    assert_error(response, status, code)
    assert ledger.usage("alice").reserved_bytes == 0


SESSION = f"/multipart/{UPLOAD_ID}"
ROUTES = [("POST", "/multipart"), ("POST", f"{SESSION}/parts"), ("GET", SESSION)]
ROUTES += [("POST", f"{SESSION}/complete"), ("DELETE", SESSION)]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_sign_in_and_refuses_a_query(
    app: Core, ledger: SqliteStore, method: str, path: str
) -> None:
    session(ledger)
    assert_error(call(app, method=method, path=path, user=None), 401, "Unauthorized")
    response = call(app, {"key": "uploads/bob/x.bin"}, method=method, path=path)
    assert_error(response, 400, "BadRequest")


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/multipart", 405, "POST, OPTIONS"),
        ("PUT", f"/multipart/{UPLOAD_ID}", 405, "GET, DELETE, OPTIONS"),
        ("GET", f"/multipart/{UPLOAD_ID}/parts", 405, "POST, OPTIONS"),
        ("POST", f"/multipart/{UPLOAD_ID}/abort", 404, None),
        ("GET", f"/multipart/{UPLOAD_ID}/parts/1", 404, None),
        ("GET", "/multipartx", 404, None),
    ],
)
def test_routes_and_methods(
    app: Core, method: str, path: str, status: int, allow: str | None
) -> None:
    response = call(app, method=method, path=path)
    assert_error(response, status, {405: "MethodNotAllowed", 404: "NotFound"}[status])
    assert response.header("Allow") == allow


# --- sessions: only the creator's open multipart grant ------------------------------------------


@pytest.mark.parametrize(
    ("route", "method"),
    [("/parts", "POST"), ("", "GET"), ("/complete", "POST"), ("", "DELETE")],
)
def test_another_users_or_a_postobject_grant_or_an_odd_id_is_404(
    app: Core, ledger: SqliteStore, route: str, method: str
) -> None:
    session(ledger, owner="bob")
    session(ledger, grant_id="G-exact", mode=EXACT, part_size=0, target="uploads/alice/x.png")
    payload = b'{"partNumbers": [1]}' if route == "/parts" else b""
    for upload_id in (UPLOAD_ID, "G-exact", "a~usage", "x" * 129):
        response = call(app, method=method, path=f"/multipart/{upload_id}{route}", body=payload)
        assert_error(response, 404, "NotFound")
    assert ledger.get_grant("bob", UPLOAD_ID).state == "open"


def test_an_expired_session_signs_no_parts(app: Core, ledger: SqliteStore) -> None:
    session(ledger, expires_at=int(NOW))
    response = post(app, f"/multipart/{UPLOAD_ID}/parts", {"partNumbers": [1]})
    assert_error(response, 404, "NotFound")


BAD_NUMBERS = [[], 1, [0], [5], [1, 1], [True], ["1"], [1.0], list(range(1, 102))]  # 4 parts
BAD_MD5S = [{"2": MD5}, {"01": MD5}, {"1": "not base64!"}, {"1": "AAAA"}, {"1": 5}, [MD5]]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        *({"partNumbers": numbers} for numbers in BAD_NUMBERS),
        *({"partNumbers": [1], "contentMd5": md5} for md5 in BAD_MD5S),  # "AAAA": 3 bytes
        {"partNumbers": [1], "contentMd5": {"1": MD5.rstrip("=")}},
        {"partNumbers": [1], "expires": 3600},
    ],
)
def test_bad_part_requests_are_400(app: Core, ledger: SqliteStore, payload: dict[str, Any]) -> None:
    session(ledger)
    response = post(app, f"/multipart/{UPLOAD_ID}/parts", payload)
    assert_error(response, 400, "BadRequest")


def test_complete_reads_no_fields(app: Core, ledger: SqliteStore) -> None:
    session(ledger)
    payload = {"parts": [{"PartNumber": 1, "ETag": "x"}]}
    response = post(app, f"/multipart/{UPLOAD_ID}/complete", payload)
    assert_error(response, 400, "BadRequest")


def test_part_urls_are_v4_presigned_puts_of_that_part_with_md5_signed_in(
    app: Core, ledger: SqliteStore
) -> None:
    session(ledger)
    payload = {"partNumbers": [4, 1], "contentMd5": {"4": MD5}}
    answer = body(post(app, f"/multipart/{UPLOAD_ID}/parts", payload))
    assert answer["expire"] == int(NOW) + part_urls.PART_URL_SECONDS
    fourth, first = answer["parts"]
    assert (fourth["partNumber"], fourth["headers"]) == (4, {"Content-MD5": MD5})
    assert (first["partNumber"], first["headers"]) == (1, {})
    for part in (fourth, first):
        assert part["url"].startswith(f"https://example-bucket.oss-cn-hangzhou.aliyuncs.com/{KEY}?")
        query = query_of(part["url"])
        assert (query["partNumber"], query["uploadId"]) == (str(part["partNumber"]), UPLOAD_ID)
        assert query["x-oss-expires"] == str(part_urls.PART_URL_SECONDS)
        assert query["x-oss-signature-version"] == "OSS4-HMAC-SHA256"
    # The same part without its MD5 is signed differently: the digest is bound.
    plain = body(post(app, f"/multipart/{UPLOAD_ID}/parts", {"partNumbers": [4]}))["parts"][0]
    assert query_of(plain["url"])["x-oss-signature"] != query_of(fourth["url"])["x-oss-signature"]


def test_part_urls_never_outlive_the_session(app: Core, ledger: SqliteStore) -> None:
    session(ledger, expires_at=int(NOW) + 100)
    answer = body(post(app, f"/multipart/{UPLOAD_ID}/parts", {"partNumbers": [2]}))
    assert answer["expire"] == int(NOW) + 100
    assert query_of(answer["parts"][0]["url"])["x-oss-expires"] == "100"


def test_part_urls_are_v1_when_configured(
    make_sign_app: Callable[..., Core], ledger: SqliteStore
) -> None:
    session(ledger)
    core = make_sign_app(bucket_factory=no_oss, OSS_SIGNATURE_VERSION="v1")
    answer = body(post(core, f"/multipart/{UPLOAD_ID}/parts", {"partNumbers": [3]}))
    query = query_of(answer["parts"][0]["url"])
    assert set(query) == {"partNumber", "uploadId", "OSSAccessKeyId", "Expires", "Signature"}
    assert query["Expires"] == str(int(NOW) + part_urls.PART_URL_SECONDS)


# --- the part layout (shared/multipart.py) -------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "setting", "part_size", "count", "last"),
    [
        (1, PART, PART, 1, 1),
        (PART, PART, PART, 1, PART),
        (PART + 1, PART, PART, 2, 1),
        (3 * PART + 7, PART, PART, 4, 7),
        # 10,000 parts at most: the setting is raised to ceil(size / 10,000)
        (10_000 * PART, PART, PART, 10_000, PART),
        (10_000 * PART + 1, PART, PART + 1, 10_000, 10_000 * PART + 1 - 9_999 * (PART + 1)),
        (6 * 1024**3, 100 * 1024, 644_246, 10_000, 6 * 1024**3 - 9_999 * 644_246),
    ],
)
def test_the_layout_raises_the_part_size_only_when_10000_parts_would_not_do(
    size: int, setting: int, part_size: int, count: int, last: int
) -> None:
    plan = oss_multipart.layout(size, setting)
    assert (plan.part_size, plan.count, plan.expected(plan.count)) == (part_size, count, last)
    assert sum(plan.expected(n) for n in range(1, plan.count + 1)) == size
    assert count <= oss_multipart.MAX_PARTS


def test_a_mismatch_is_a_part_that_can_never_fit_and_missing_parts_are_not() -> None:
    plan = oss_multipart.Layout(3 * PART + 7, PART)
    right = [oss_multipart.Part(n, "E", plan.expected(n)) for n in (1, 2, 3, 4)]
    assert oss_multipart.mismatch(right, plan) is None
    assert oss_multipart.missing(right, plan) == []
    assert oss_multipart.mismatch(right[1:3], plan) is None
    assert oss_multipart.missing(right[1:3], plan) == [1, 4]
    short = [*right[:3], oss_multipart.Part(4, "E", 6)]
    assert oss_multipart.mismatch(short, plan) == "part 4 has 6 bytes; it must have 7"
    over = [oss_multipart.Part(2, "E", PART + 1)]
    assert oss_multipart.mismatch(over, plan) == f"part 2 has {PART + 1} bytes; it must have {PART}"
    extra = [*right, oss_multipart.Part(5, "E", 1)]
    assert oss_multipart.mismatch(extra, plan) == "part 5 is not one of the 4 parts of this upload"
