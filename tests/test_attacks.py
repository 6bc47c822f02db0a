"""Adversarial review: each test is an attack that must fail (security.md §2–§8, DESIGN.md).

An attacker here is a signed-in user trying to widen the grant they were given, any Alibaba
Cloud customer making OSS send a genuinely signed callback to our URL (the test key stands in for
OSS's key: it signs whatever body the attacker composes), or anyone who can reach either function.
Every test drives the real cores (`shared.sign.app`, `shared.callback.app`) or the FC adapters and
asserts the exact status and code, that nothing was written and that nothing was fetched.
Replays and invented callbacks for objects not stored: tests/test_callback_verify.py and
tests/e2e/test_e2e_verify.py (UPLOAD_VERIFY's HeadObject tells them apart).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import json
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.warnings import InsecureKeyLengthWarning
from werkzeug.serving import make_server

from local.dev import Stack
from shared import keys
from shared.callback import body as callback_body
from shared.callback.app import MAX_BODY
from shared.callback.body import MAX_BODY_FIELDS
from shared.callback.pubkeys import PublicKeys, fetch_url
from shared.callback.settings import CallbackSettings
from shared.credentials import resolve_credentials
from shared.errors import AppError
from shared.grant import AUDIENCE
from shared.http import Core, Request, serve
from shared.http.fc2 import wsgi_adapter
from shared.http.fc3 import event_adapter
from shared.objects import OssObjects
from shared.records.base import Record
from shared.records.cursor import encode_cursor, position
from shared.records.sqlite import SqliteStore
from shared.sign.app import create_app as create_sign_app
from shared.sign.settings import SignSettings
from tests.support import fc
from tests.support.callbacks import (
    BUCKET,
    EXACT_KEY,
    NOW,
    OTHER_SECRET,
    PREFIX,
    SECRET,
    TEST_KEY_URL,
    USER,
    CallbackBuilder,
    Clock,
    KeyServer,
    Removals,
    b64,
    fc3_event,
    public_pem,
    rsa_key,
    wsgi_environ,
)
from tests.support.data import HOSTILE
from tests.support.devstack import StackClient, stack_settings, unanswered_callback_url
from tests.support.emulator import seed
from tests.support.livestack import Stacks
from tests.support.sign import (
    ACCESS_KEY_SECRET,
    GRANT_SECRET,
    JWT_SECRET,
    ORIGIN,
    assert_error,
    bearer,
    body,
    conditions,
    grant_token,
    key_conditions,
    sign_env,
    sign_settings,
    simple,
    token,
)
from tests.support.sign import NOW as SIGN_NOW
from tests.support.sign import call as sign_call
from tests.test_reconcile import FakeObjects
from tests.test_reconcile import run as reconcile_run

# === Sign function: widening a grant ==============================================================


def space(answer: dict[str, Any]) -> str:
    """The folder the grant allows, from the policy itself (not from the answer's `dir`)."""
    ((op, _, value),) = key_conditions(answer)
    return str(value) if op == "starts-with" else str(value).rsplit("/", 1)[0] + "/"


def test_a_file_name_never_reaches_the_key(sign_app: Core) -> None:
    """S3: odd but harmless names are accepted as an extension only; the key is ours."""
    query = "path=a&filename=" + quote("..名字 \u202egpj.exe <script>.png") + "&size=10"
    answer = body(sign_call(sign_app, query))
    assert answer["key"].startswith("uploads/alice/a/")
    assert keys.is_valid_key(answer["key"])
    assert "script" not in answer["key"]
    assert "exe" not in answer["key"]


COLLIDING_USERS = [  # any two ids: test_keys.py::test_distinct_users_never_share_a_segment
    ("12", "123"),
    ("alice", "Alice"),
    ("alice", "alice/"),
    ("alice", "ａｌｉｃｅ"),  # NFKC look-alike
    (".", ".."),
]


@pytest.mark.parametrize(("first", "second"), COLLIDING_USERS)
def test_user_ids_never_share_or_nest_folders(sign_app: Core, first: str, second: str) -> None:
    """P3: distinct ids → folders neither of which is a prefix of the other."""
    one = space(body(sign_call(sign_app, "path=", user=first)))
    two = space(body(sign_call(sign_app, "path=", user=second)))
    assert not one.startswith(two)
    assert not two.startswith(one)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.text(max_size=40),
    filename=st.one_of(st.none(), st.text(max_size=40)),
    size=st.one_of(st.none(), st.text(max_size=8)),
    content_type=st.one_of(st.none(), st.text(max_size=30), st.just("image/png")),
)
def test_no_query_escapes_the_callers_space_or_injects_a_condition(
    path: str, filename: str | None, size: str | None, content_type: str | None
) -> None:
    """P2/P7: whatever the query, an issued policy has one key condition inside the caller's
    space, one bucket, one size range, and exactly the conditions a plain grant has."""
    app = create_sign_app(sign_settings(), environ={}, now=lambda: SIGN_NOW)
    values = {"path": path, "filename": filename, "size": size, "type": content_type}
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in values.items() if v is not None)
    response = sign_call(app, query)
    if response.status != 200:
        assert body(response)["Status"] == "Error"
        assert response.status in (400, 413)
        return
    answer = body(response)
    found = conditions(answer)
    ((op, name, value),) = key_conditions(answer)
    assert name == "$key"
    assert value.startswith("uploads/alice/")
    assert op == ("eq" if filename is not None else "starts-with")
    assert keys.is_valid_key(value if op == "eq" else value + "x")
    assert simple(answer)["bucket"] == "example-bucket"
    assert sum(1 for c in found if isinstance(c, list) and c[0] == "content-length-range") == 1
    typed = any(isinstance(c, list) and c[0] == "in" for c in found)
    expected = 8 + (1 if typed else 0) + (1 if op == "eq" else 0)  # V4 plain grant: 8
    assert len(found) == expected


# --- sign-in tokens ---------------------------------------------------------------------------


def test_a_grant_token_or_two_joined_tokens_never_sign_in(
    make_sign_app: Callable[..., Core],
) -> None:
    """A grant token reaches the browser; it must never authenticate a caller. FC 3.0 joins
    repeated headers with ', ': neither token is picked silently."""
    app = make_sign_app()
    stolen = grant_token(body(sign_call(app, "path=a")))
    for value in (f"Bearer {stolen}", f"Bearer {token('alice')}, Bearer {token('bob')}"):
        response = sign_call(app, "path=a", user=None, headers={"Authorization": value})
        assert_error(response, 401, "Unauthorized")


@pytest.mark.parametrize("reused", ["alone", "rotated"])
def test_grant_secret_reusing_the_sign_in_secret_is_flagged(
    reused: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Key separation: an operator who reuses the sign-in secret is told, without the secret."""
    value = JWT_SECRET if reused == "alone" else f"{GRANT_SECRET},{JWT_SECRET}"
    SignSettings.from_env(sign_env(GRANT_SECRET=value))
    err = capsys.readouterr().err
    assert "GRANT_SECRET" in err
    assert "reuses AUTH_JWT_SECRET" in err
    assert JWT_SECRET not in err


# --- CORS and caching -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "null",
        "https://evil.example.com",
        ORIGIN + ".evil.com",
        ORIGIN + ":443",
        ORIGIN.upper(),
        ORIGIN + "/",
        f"{ORIGIN}, https://evil.example.com",
        "https://evil.example.com, " + ORIGIN,
        "http://app.example.com",
    ],
)
def test_cors_never_reflects_an_unlisted_origin(
    make_sign_app: Callable[..., Core], origin: str
) -> None:
    """S8: exact origins only; never credentials; every answer varies by Origin."""
    app = make_sign_app()
    answer = sign_call(app, "path=a", headers={"Origin": origin})
    assert answer.status == 200
    assert answer.header("Access-Control-Allow-Origin") is None
    assert answer.header("Access-Control-Allow-Credentials") is None
    assert answer.header("Vary") == "Origin"
    asks = {"Origin": origin, "Access-Control-Request-Method": "GET"}
    preflight = sign_call(app, "", user=None, method="OPTIONS", headers=asks)
    assert preflight.status == 403
    assert preflight.header("Access-Control-Allow-Origin") is None


# === Callback function: forging and replaying =====================================================


@pytest.fixture
def app(make_callback_app: Callable[..., Core]) -> Core:
    return make_callback_app()


def answer(app: Core, req: Request) -> tuple[int, dict[str, Any]]:
    response = serve(app, req, function="callback")
    return response.status, json.loads(response.body)


def refused(app: Core, req: Request, status: int, code: str, store: SqliteStore) -> None:
    """Refused with this status and code, and nothing recorded for the object it names."""
    got, payload = answer(app, req)
    assert (got, payload.get("code")) == (status, code), payload
    assert payload["Status"] == "Error"
    assert store.list_by_owner(USER).items == []


# --- bucket, key and size outside the grant --------------------------------------------------


PREFIX_GRANT = {"key": None, "prefix": PREFIX}
OUTSIDE_A_PREFIX = [  # every key shape we never issue (//, ./, %, spaces, 1024 bytes…): test_keys.py
    "uploads/alice/photos",  # the prefix without its slash
    "uploads/alice/photos/",  # the prefix itself: no object name
    "uploads/alice/photos2/x.png",  # prefix sibling (`uploads/12` vs `uploads/123/`)
    "uploads/alice/x.png",  # the parent folder
    "uploads/bob/photos/x.png",
    "uploads/alice/photos/../../bob/x.png",
    "uploads/alice/photos/a\\..\\x.png",
    "uploads/alice/photos/ｘ.png",  # fullwidth
    # OSS percent-encodes values: `&`/`=`/`+` inside a key never start a new field
    "uploads/alice/photos/x.png&grant=forged",
    "uploads/alice/photos/x+y.png",
    "UPLOADS/alice/photos/x.png",
]
OTHER_THAN_THE_EXACT_KEY = [
    EXACT_KEY + "x",
    EXACT_KEY.upper(),
    EXACT_KEY[:-1],
    PREFIX + "other.png",
    EXACT_KEY.replace("/alice/", "/bob/"),
]


@pytest.mark.parametrize(
    "case",
    [  # (grant fields changed, callback values)
        ({}, {"bucket": "attacker-bucket"}),  # C10: OSS signs for any customer's bucket
        ({"bucket": "attacker-bucket"}, {"bucket": BUCKET}),
        *(({}, {"object": obj}) for obj in OTHER_THAN_THE_EXACT_KEY),
        *((PREFIX_GRANT, {"object": obj}) for obj in OUTSIDE_A_PREFIX),
        # even a token signed with our secret cannot grant the whole bucket or a sibling folder
        *(
            ({"key": None, "prefix": prefix}, {"object": "uploads/alice2/x.png"})
            for prefix in ("", "uploads/alice", "uploads")
        ),
    ],
)
def test_a_callback_outside_its_grant_is_refused_and_deletes_nothing(
    app: Core,
    build: CallbackBuilder,
    store: SqliteStore,
    removals: Removals,
    case: tuple[dict[str, Any], dict[str, str]],
) -> None:
    """C10/C12: bucket and object must be the grant's, the object strictly inside a granted
    prefix as a key we could issue. Checked before the type: a refusal never deletes anything."""
    grant, values = case
    req = build.request(
        grant=replace(build.grant, **grant), values={"mimeType": "unknown/unknown", **values}
    )
    refused(app, req, 403, "GrantInvalid", store)
    assert removals.calls == []


# --- the form body: duplicated, smuggled and odd encodings --------------------------------------


def _smuggled(build: CallbackBuilder) -> bytes:
    return build.token(build.prefix_grant(prefix="uploads/alice/")).encode()


def _in_the_object(raw: bytes) -> Callable[[CallbackBuilder], bytes]:
    """The genuine body of a prefix grant, `raw` inside the object's encoded value."""

    def body(build: CallbackBuilder) -> bytes:
        genuine = build.body(build.prefix_grant())
        assert b"cat.png" in genuine
        return genuine.replace(b"cat.png", b"cat" + raw + b".png", 1)

    return body


@pytest.mark.parametrize(
    "unusable",
    [
        # two grant fields: never a pick of the friendlier one
        pytest.param(lambda b: b.body() + b"&grant=" + _smuggled(b), id="grant-twice"),
        pytest.param(lambda b: b"grant=" + _smuggled(b) + b"&" + b.body(), id="grant-first"),
        *(
            pytest.param(lambda b, extra=extra: b.body() + extra, id="duplicate" + extra.decode())
            for extra in (
                b"&object=uploads%2Falice%2Fphotos%2Fother.png",
                b"&%6Fbject=uploads%2Falice%2Fphotos%2Fother.png",  # `object` with an escape
                b"&bucket=test-bucket",
                b"&size=1",
                b"&size=1;size=2",
            )
        ),
        # UTF-8 edge cases and control characters are unusable bodies, not new keys
        pytest.param(_in_the_object(b"%00"), id="NUL"),
        pytest.param(_in_the_object(b"%0d%0a"), id="CRLF"),
        pytest.param(_in_the_object(b"%ff"), id="not-utf-8"),
        pytest.param(_in_the_object(b"%c0%ae"), id="overlong-dot"),
        pytest.param(_in_the_object(b"%ed%a0%80"), id="surrogate"),
        pytest.param(_in_the_object(b"%"), id="lone-percent"),
        pytest.param(_in_the_object(b"%zz"), id="bad-escape"),
        *(
            pytest.param(lambda b, size=size: b.body(size=size), id=f"size={size}")
            for size in ("-1", "+5", "5.0", "0x10", "5 ", "٥", "１", "", "1e3", "9" * 20)
        ),
        pytest.param(lambda b: b"\xef\xbb\xbf" + b.body(), id="bom"),
        pytest.param(lambda b: json.dumps(b.values() | {"grant": b.token()}).encode(), id="json"),
    ],
)
def test_authentic_bodies_that_cannot_be_one_upload_are_400(
    app: Core,
    build: CallbackBuilder,
    store: SqliteStore,
    unusable: Callable[[CallbackBuilder], bytes],
) -> None:
    refused(app, build.request(body=unusable(build)), 400, "BadRequest", store)


def test_too_many_fields_is_refused_at_the_field_cap(
    app: Core, build: CallbackBuilder, store: SqliteStore, mocker: Any
) -> None:
    parse = mocker.spy(callback_body, "parse_qsl")
    text = build.body() + b"&x=1" * 5000
    refused(app, build.request(body=text), 400, "BadRequest", store)
    assert parse.call_args.kwargs["max_num_fields"] == MAX_BODY_FIELDS  # stops at 64, not 5000


# --- grant token tricks ---------------------------------------------------------------------


def _weak(claims: dict[str, Any], key: str, algorithm: str) -> str:
    """Sign with our secret under a longer hash: PyJWT warns the key is short for it, which is
    the point of the attack, not a test problem."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, key, algorithm=algorithm)


def _hand_signed(header: dict[str, Any], claims: dict[str, Any], secret: str) -> str:
    """A JWT whose header lies about the algorithm: HMAC-SHA256 under a header saying RS256."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    head = part(json.dumps(header).encode()) + "." + part(json.dumps(claims).encode())
    mac = hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + part(mac)


def _claims(build: CallbackBuilder, **overrides: Any) -> dict[str, Any]:
    claims = build.grant.claims() | overrides
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    "forge",
    [  # every claim's rule, alg none, other audiences: tests/test_grant.py
        pytest.param(lambda b: _weak(_claims(b), SECRET, "HS512"), id="hs512"),
        pytest.param(lambda b: _weak(_claims(b), SECRET, "HS384"), id="hs384"),
        pytest.param(
            lambda b: jwt.encode(_claims(b), rsa_key(2048), algorithm="RS256"), id="rs256"
        ),
        pytest.param(
            lambda b: _hand_signed({"alg": "RS256", "typ": "JWT"}, _claims(b), SECRET),
            id="header-says-rs256",
        ),
        pytest.param(
            lambda b: jwt.encode(_claims(b, aud=[AUDIENCE, "other"]), OTHER_SECRET),
            id="other-secret",
        ),
        pytest.param(
            lambda b: jwt.encode({"sub": USER, "exp": NOW + 300}, SECRET), id="sign-in-shaped"
        ),
        pytest.param(lambda b: jwt.encode(_claims(b, exp=str(NOW + 300)), SECRET), id="exp-text"),
        pytest.param(lambda b: b.token() + "x", id="trailing-garbage"),
        pytest.param(lambda b: b.token().rsplit(".", 1)[0] + ".", id="signature-stripped"),
    ],
)
def test_forged_grant_tokens(
    app: Core, build: CallbackBuilder, store: SqliteStore, forge: Callable[[CallbackBuilder], str]
) -> None:
    """C11: algorithm confusion, another secret, the sign-in shape, a cut token → 403."""
    refused(app, build.request(token=forge(build)), 403, "GrantInvalid", store)


# --- stored types: active content, sniffable or listed types -----------------------------------

NOT_ONE_ALLOWED_TYPE = [
    ("cat.html", "image/png"),
    ("cat.HTML", "image/png"),
    ("cat.svg", "image/png"),
    ("cat.php.png", "image/png"),  # a double extension some servers honour
    ("cat.png", "text/html"),  # x-oss-content-type / the file part chose the type
    ("cat.png", "text/html; charset=utf-8"),
    ("cat.png", "TEXT/HTML"),
    ("cat.png", "application/xhtml+xml"),
    ("cat.png", "text/xml"),
    ("cat.png", "application/javascript"),
    ("cat.bin", "text/javascript"),
    ("notes", "unknown/unknown"),  # no extension: judged as `.bin` (octet-stream only)
    ("", "text/html"),  # the exact key: whatever the policy pinned, the reported type decides
    *(
        ("q.png", mime)
        for mime in (
            "unknown/unknown",  # Chromium sniffs these three and finds HTML
            "application/unknown",
            "*/*",
            "image/png,text/xml",  # a list: browsers take one of them, here XML with a script
            "image/png, text/html",
            "text/xml,image/png",
            "image/png;text/html",
            "image/png; charset=utf-8",  # parameters are refused too: only type/subtype
            "image/png ",
            " image/png",
            "image/*",
            "image/jpeg",  # a real type, but not one the allow-list gives .png
            "text/plain",
            "application/octet-stream",
            "text/html",
            "image/svg+xml",
            "",
        )
    ),
]


def rejected(app: Core, req: Request, store: SqliteStore) -> dict[str, Any]:
    """Answered 200 Rejected/ContentRejected (OSS relays it to the browser) and nothing recorded."""
    status, payload = answer(app, req)
    assert status == 200, payload
    assert (payload["Status"], payload["code"]) == ("Rejected", "ContentRejected"), payload
    assert payload["message"]
    assert store.list_by_owner(USER).items == []
    return payload


@pytest.mark.parametrize("case", NOT_ONE_ALLOWED_TYPE)
def test_a_stored_type_other_than_one_allowed_type_is_rejected_and_deleted(
    app: Core, build: CallbackBuilder, store: SqliteStore, removals: Removals, case: tuple[str, str]
) -> None:
    """S2/§2.8, issue 17.1: a prefix grant cannot stop a browser storing HTML/SVG or a sniffable
    type, but we never record it (no listing or download URL points at it). The check is the
    allow-list for the extension, strictly parsed (not a block-list split on ';'); the refused
    object, the one with this etag, is deleted."""
    name, mime = case
    grant = build.prefix_grant() if name else build.grant
    key = PREFIX + name if name else EXACT_KEY
    values = build.values(grant, object=key, mimeType=mime)
    rejected(app, build.request(grant=grant, values=values), store)
    assert removals.calls == [(key, values["etag"])]


# --- the key URL: SSRF and key substitution --------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        *(b64(url) for url in HOSTILE["key_urls"]),
        # padding, non-ASCII, over-long and other spellings: test_pubkeys.py (malformed headers)
        b64(b64("https://gosspublic.alicdn.com/callback_pub_key_v1.pem")),  # double base64
        base64.urlsafe_b64encode(b"https://evil.example.com/k.pem?>>>").decode(),
        "https://gosspublic.alicdn.com/callback_pub_key_v1.pem",  # not encoded at all
    ],
)
def test_hostile_key_urls_are_refused_before_any_network_io(
    app: Core, build: CallbackBuilder, keyserver: KeyServer, store: SqliteStore, header: str
) -> None:
    """C6/C7: attacker key at an attacker URL (or an odd spelling of OSS's) → KeyUrlUntrusted,
    and nothing is fetched."""
    req = build.request(signing_key=rsa_key(1024), key_url_header=header)
    refused(app, req, 401, "KeyUrlUntrusted", store)
    assert keyserver.calls == []


def test_the_documented_http_key_url_is_fetched_over_https(
    make_callback_app: Callable[..., Core], oss_key: RSAPrivateKey, build: CallbackBuilder
) -> None:
    """§3.3.2: `http://gosspublic…` passes the allow-list, but a key never travels in clear
    (an on-path attacker could swap it). The fetch goes to the https twin."""
    http_url = "http://gosspublic.alicdn.com/callback_pub_key_v2.pem"
    https_url = "https://gosspublic.alicdn.com/callback_pub_key_v2.pem"
    server = KeyServer({https_url: public_pem(oss_key)})
    assert answer(make_callback_app(fetch=server), build.request(key_url=http_url))[0] == 200
    assert server.calls == [https_url]
    assert fetch_url(http_url) == https_url
    assert fetch_url(https_url) == https_url
    operator_listed = "http://127.0.0.1:9000/.well-known/oss-emulator/callback_pub_key.pem"
    assert fetch_url(operator_listed) == operator_listed  # CALLBACK_TRUSTED_KEY_URLS verbatim


# --- header smuggling -----------------------------------------------------------------------


def test_key_url_headers_differing_in_case_never_let_an_attacker_key_in(
    app: Core, build: CallbackBuilder, keyserver: KeyServer, store: SqliteStore
) -> None:
    """C16: an FC 3.0 event with `X-Oss-Pub-Key-Url` and `x-oss-pub-key-url`: whichever wins,
    a body signed by the attacker's key is refused, and the attacker URL is never fetched."""
    attacker = rsa_key(1024)
    forged = build.request(signing_key=attacker)
    handler = event_adapter(app, function="callback", max_body=MAX_BODY)
    evil = b64("https://evil.example.com/k.pem")
    for first, last in ((evil, b64(TEST_KEY_URL)), (b64(TEST_KEY_URL), evil)):
        event = json.loads(fc3_event(forged))
        others = {k: v for k, v in event["headers"].items() if k != "x-oss-pub-key-url"}
        event["headers"] = {"X-Oss-Pub-Key-Url": first, **others, "x-oss-pub-key-url": last}
        assert handler(json.dumps(event).encode(), None)["statusCode"] == 401
    assert "https://evil.example.com/k.pem" not in keyserver.calls
    assert store.list_by_owner(USER).items == []


def test_an_attacker_key_or_a_second_signature_is_refused(
    app: Core, build: CallbackBuilder, store: SqliteStore
) -> None:
    """C6: the key comes from the trusted URL, never from the message; C3: one signature."""
    attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # OSS's size
    refused(app, build.request(signing_key=attacker_key), 401, "SignatureInvalid", store)
    genuine = build.request().headers["authorization"]
    for value in (f"{genuine},{genuine}", f"{genuine} {genuine}", f"OSS {genuine}", genuine + "\n"):
        refused(app, build.request(authorization=value), 401, "SignatureInvalid", store)


# --- path confusion -------------------------------------------------------------------------


def test_request_uri_cannot_lend_a_path_it_does_not_end_with(
    app: Core, build: CallbackBuilder
) -> None:
    """FC 2.0: fc.request_uri only restores a stripped prefix; it never replaces the path.
    PATH_INFO that is not latin-1 text (PEP 3333) is a clean 400, never a 500."""
    handler = wsgi_adapter(app, function="callback", max_body=MAX_BODY)
    proxied = "/2016-08-15/proxy/svc/fn/oss-callback"
    for_proxied = build.request(path=proxied.encode())
    for_stripped = build.request(values={"etag": "C" * 32})
    for req, uri, status in [
        (for_proxied, proxied + "?", 200),  # arrives stripped with the full URI: restored
        (for_stripped, proxied, 401),  # the platform says the full path was called
        (for_stripped, "/elsewhere/other", 409),  # ignored: the path as received verifies
    ]:
        env = wsgi_environ(req, path_info="/oss-callback", **{"fc.request_uri": uri})
        assert fc.call(handler, env).status == status
    fc.call(handler, wsgi_environ(build.request(), path_info="/€")).error(400, "BadRequest")


@pytest.mark.parametrize(
    "event",
    [
        {"requestContext": "x", "body": ""},
        {"requestContext": {"http": ["POST"]}, "body": ""},
        {"headers": [["authorization", "x"]], "body": ""},
        {"headers": "authorization: x", "body": ""},
        {"queryParameters": [["a", "b"]], "body": ""},
        {"queryParameters": "a=b", "body": ""},
    ],
)
def test_events_of_the_wrong_shape_are_400_not_a_crash(app: Core, event: dict[str, Any]) -> None:
    handler = event_adapter(app, function="callback", max_body=MAX_BODY)
    result = handler(json.dumps(event).encode(), None)
    assert result["statusCode"] == 400
    assert json.loads(result["body"])["code"] == "BadRequest"


# --- denial of service ----------------------------------------------------------------------


def test_oversized_pieces_are_refused_fast(
    app: Core, build: CallbackBuilder, keyserver: KeyServer
) -> None:
    """C3/C18: a 1 MB Authorization, a 64 KB key URL header, a 64 KB + 1 body: cheap refusals;
    a body of unknown length is never read past the limit."""
    handler = wsgi_adapter(app, function="callback", max_body=MAX_BODY)
    cases = [
        (build.request(authorization="A" * 1_000_000), 401, "the Authorization header is too long"),
        (
            build.request(key_url_header="A" * 65536),
            401,
            "the x-oss-pub-key-url header is too long",
        ),
        (
            build.request(body=b"x" * (MAX_BODY + 1)),
            413,
            f"the request body is over {MAX_BODY} bytes",
        ),
    ]
    for req, status, message in cases:  # refused on their length, before decoding or reading them
        environ = wsgi_environ(req)
        reply = fc.call(handler, environ)
        assert (reply.status, json.loads(reply.body)["message"]) == (status, message)
    assert environ["wsgi.input"].tell() == 0  # the 413: not one body byte read
    assert keyserver.calls == []
    # no declared length: the stream is asked for at most 64 KB + 1 bytes, whatever it holds
    reads: list[int] = []

    class Stream(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            reads.append(-1 if size is None else size)
            return super().read(size)

    environ = fc.environ("POST", **{"wsgi.input_terminated": True})
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input"] = Stream(b"x" * (MAX_BODY * 4))
    fc.call(handler, environ).error(413, "TooLarge")
    assert reads
    assert max(reads) == MAX_BODY + 1


def _raw_exchange(port: int, data: bytes) -> bytes:
    """One HTTP/1.1 exchange over a fresh connection, read to the server's close (30 s at most)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30.0) as conn:
        conn.sendall(data)
        return conn.makefile("rb").read()


def _http_bytes(req: Request, *, length: int | None = None, body: bytes | None = None) -> bytes:
    payload = req.body if body is None else body
    head = [f"POST {req.signed_path.decode()} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    head += [f"{k}: {v}" for k, v in req.headers.items() if k != "content-length"]
    head.append(f"Content-Length: {len(payload) if length is None else length}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


def test_slow_loris_and_lying_lengths_over_loopback(
    app: Core, build: CallbackBuilder, store: SqliteStore
) -> None:
    """A drip-fed body holds only its own connection; a genuine callback is answered while it
    is still open, and a declared length over 64 KB is a 413 before any body byte (either one
    waiting on the slow connection or for the missing body would time the exchange out)."""
    handler = wsgi_adapter(app, function="callback", max_body=MAX_BODY)
    server = make_server("127.0.0.1", 0, handler, threaded=True)  # as `make dev` runs it
    threading.Thread(target=server.serve_forever, daemon=True).start()
    slow = socket.create_connection(("127.0.0.1", server.server_port), timeout=5)
    try:
        slow.sendall(_http_bytes(build.request(), length=60000)[:-200])  # headers + part of body
        reply = _raw_exchange(server.server_port, _http_bytes(build.request()))
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        lying = _http_bytes(build.request(), length=10**9, body=b"")
        reply = _raw_exchange(server.server_port, lying)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    finally:
        slow.close()
        server.shutdown()
        server.server_close()
    assert len(store.list_by_owner(USER).items) == 1


# === Information leaks ============================================================================


def test_no_secret_or_token_in_any_answer_or_log_line(
    app: Core,
    build: CallbackBuilder,
    make_sign_app: Callable[..., Core],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """P9/F11: run a batch of attacks on both functions; grep every answer and log line."""
    sign_app = make_sign_app()
    sign_in = token()
    queries = ("path=a", "path=..", "path=a&filename=x.svg&size=1", "bucket=x")
    texts = [sign_call(sign_app, query).body.decode() for query in queries]
    bad = {"Authorization": "Bearer " + sign_in + "x"}
    texts.append(sign_call(sign_app, "path=a", user=None, headers=bad).body.decode())
    grant_token = build.token()
    forged = jwt.encode(_claims(build), OTHER_SECRET)
    requests = [
        build.request(),
        build.request(token=forged),
        build.request(signing_key=rsa_key(1024)),
        build.request(values={"bucket": "other-bucket"}),
        build.request(values={"size": "x"}),
        build.request(key_url_header=b64("https://evil.example.com/k.pem")),
    ]
    texts += [serve(app, req, function="callback").body.decode() for req in requests]
    logged = capsys.readouterr().err
    everything = "\n".join([*texts, logged])
    for secret in (
        SECRET,
        OTHER_SECRET,
        GRANT_SECRET,
        JWT_SECRET,
        ACCESS_KEY_SECRET,
        sign_in,
        grant_token,
        forged,
        *(req.headers["authorization"] for req in requests),
    ):
        assert secret not in everything
    assert grant_token.split(".")[2] not in everything  # not even the token's signature part


@pytest.mark.parametrize("value", [b"1", b"%00"])
def test_attacker_chosen_field_names_stay_out_of_answers_and_logs(
    app: Core, build: CallbackBuilder, capsys: pytest.CaptureFixture[str], value: bytes
) -> None:
    """Any OSS customer can have OSS sign a body with 30 KB field names; an error names at
    most 64 characters of one, so answers and log lines stay small (F11, log cost)."""
    name = b"n" * 30_000
    text = build.body() + b"&" + name + b"=" + value
    if value == b"1":
        text += b"&" + name + b"=2"  # repeated
    assert len(text) <= MAX_BODY
    response = serve(app, build.request(body=text), function="callback")
    assert response.status == 400
    assert len(response.body) < 300
    logged = capsys.readouterr().err
    assert "n" * 65 not in logged
    assert "n" * 65 not in response.body.decode()


# --- listing: a cursor is a position, never an owner -----------------------------------------


def test_a_cursor_crafted_from_another_users_record_lists_only_the_callers_own(
    make_sign_app: Callable[..., Core], store: SqliteStore
) -> None:
    """GET /uploads: the owner comes from the token; a cursor pointing into alice's records
    (or anywhere) only positions bob's listing."""

    def record(owner: str, key: str, at: int) -> Record:
        return Record(owner, BUCKET, key, 1, "E" * 32, "image/png", at)

    alice = [record("alice", f"uploads/alice/{n}.png", 1000 + n) for n in range(3)]
    bob = [record("bob", f"uploads/bob/{n}.png", 500 + n) for n in range(2)]
    for item in alice + bob:
        store.put(item, replace=False)
    app = make_sign_app(store_factory=lambda credentials: store)
    for cursor in (encode_cursor(position(alice[2])), encode_cursor(position(alice[0]))):
        listed = body(sign_call(app, {"cursor": cursor}, user="bob", path="/uploads"))
        assert {item["owner"] for item in listed["items"]} == {"bob"}
        assert len(listed["items"]) == 2
    first = body(sign_call(app, {"limit": "1"}, user="alice", path="/uploads"))
    stolen = body(sign_call(app, {"cursor": first["next"]}, user="bob", path="/uploads"))
    assert all(item["owner"] == "bob" for item in stolen["items"])


# === Issue 17 hardening ===========================================================================
# 1. one allow-listed stored type (above: rejected and deleted), 2. no sign-in `sub` spelled
# like a digest folder, 3. a bounded number of OSS key versions fetched


@pytest.mark.parametrize(
    ("obj", "mime"),
    [
        ("q.png", "image/png"),
        ("q.PNG", "IMAGE/PNG"),
        ("clip.webm", "audio/webm"),
        ("a.txt", "text/plain"),
        ("notes", "application/octet-stream"),  # the legacy client keeps extensionless names
    ],
)
def test_each_allowed_type_of_the_extension_is_recorded(
    app: Core, build: CallbackBuilder, removals: Removals, obj: str, mime: str
) -> None:
    values = {"object": PREFIX + obj, "mimeType": mime}
    status, payload = answer(app, build.request(grant=build.prefix_grant(), values=values))
    assert (status, payload["Status"], payload["mimeType"]) == (200, "OK", mime)
    assert removals.calls == []


def test_a_type_the_operator_allowed_is_judged_by_the_operators_list(
    make_callback_app: Callable[..., Core], build: CallbackBuilder, store: SqliteStore
) -> None:
    """The callback reads UPLOAD_ALLOWED_TYPES through the same code as the sign function; the
    active-content check is no substring match on `xml`: an allowed docx is recorded."""
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    app = make_callback_app(UPLOAD_ALLOWED_TYPES=f"docx={docx}")
    grant = build.prefix_grant()
    ok = build.request(grant=grant, values={"object": PREFIX + "r.docx", "mimeType": docx})
    assert answer(app, ok)[0] == 200
    png = build.request(grant=grant, values={"object": PREFIX + "q.png", "mimeType": "image/png"})
    assert answer(app, png)[1]["code"] == "ContentRejected"  # .png is not on this list


def test_exact_grants_pin_the_stored_type(sign_app: Core) -> None:
    """Every exact-key grant pins `x-oss-content-type` (OSS's highest-priority type field) to one
    allow-listed type: the declared one, else the extension's first."""
    typed = body(sign_call(sign_app, "path=a&filename=q.png&size=10&type=image/png"))
    untyped = body(sign_call(sign_app, "path=a&filename=q.m4a&size=10"))
    for answer_, expected in ((typed, "image/png"), (untyped, "audio/mp4")):
        assert answer_["fields"]["x-oss-content-type"] == expected
        assert {"x-oss-content-type": expected} in conditions(answer_)
    prefix = body(sign_call(sign_app, "path=a"))
    assert "x-oss-content-type" not in prefix["fields"]  # legacy clients send no type field


@pytest.fixture
def live_stack(tmp_path: Path) -> Any:
    """The `make dev` stack in-process on free loopback ports (tests/support/livestack.py)."""

    stacks = Stacks(tmp_path)
    yield stacks.start({})
    stacks.stop_all()


HTML_BODY = b"<html><script>document.title='pwned'</script></html>"
XML_BODY = (
    b'<?xml version="1.0"?><r><x:script xmlns:x="http://www.w3.org/1999/xhtml">'
    b"document.title='pwned'</x:script></r>"
)


@pytest.mark.parametrize(
    ("field", "value"),
    [("x-oss-content-type", "image/png,text/xml"), ("x-oss-storage-class", "Archive")],
)
def test_an_exact_grant_pins_the_stored_type_and_the_storage_class(
    live_stack: Any, field: str, value: str
) -> None:
    """Issue 17: exact grants pin x-oss-content-type and x-oss-storage-class (no permission
    guards it; Archive is unreadable until restored): a form that changes either is refused by
    OSS (AccessDenied) before anything is stored. Nor can a sniffable file part type change the
    stored type: the content check finds XML where the pinned PNG should be."""
    token_ = live_stack.token("mallory")
    exact = {"path": "x", "filename": "q.png", "size": str(len(XML_BODY)), "type": "image/png"}
    grant = live_stack.grant(token_, **exact)
    assert grant["fields"]["x-oss-storage-class"] == "Standard"

    def changed(fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(n, value if n == field else v) for n, v in fields]

    upload = {"filename": "q.png", "content_type": "image/png"}
    reply = live_stack.upload(grant, XML_BODY, change=changed, **upload)
    assert reply.status_code == 403, reply.text
    assert "<Code>AccessDenied</Code>" in reply.text
    assert live_stack.get_object(grant["key"]).status_code == 404
    reply = live_stack.upload(grant, XML_BODY, filename="q.png", content_type="unknown/unknown")
    assert reply.status_code == 200, reply.text
    assert reply.json()["code"] == "ContentRejected"
    assert "(image/png)" in reply.json()["message"]
    assert live_stack.get_object(grant["key"]).status_code == 404


def test_the_oss_remover_deletes_only_the_object_the_callback_describes(live_stack: Any) -> None:
    """`shared.objects.OssObjects.remove` (oss2 HeadObject + DeleteObject) against the
    emulator over loopback: another etag is left alone, the right one is deleted, then gone."""

    token_ = live_stack.token("rita")
    grant = live_stack.grant(token_, path="r", filename="k.txt", size="3", type="text/plain")
    assert live_stack.upload(grant, b"abc").status_code == 200
    settings = CallbackSettings.from_env(live_stack.stack.values)
    credentials = resolve_credentials(
        None, {}, settings.oss.access_key_id, settings.oss.access_key_secret
    )
    remover = OssObjects(settings.oss, credentials)
    assert remover.remove(grant["key"], "0" * 32) == "replaced"
    assert live_stack.get_object(grant["key"]).status_code == 200
    assert remover.remove(grant["key"], hashlib.md5(b"abc").hexdigest()) == "deleted"  # noqa: S324
    assert live_stack.get_object(grant["key"]).status_code == 404
    assert remover.remove(grant["key"], hashlib.md5(b"abc").hexdigest()) == "gone"  # noqa: S324


def test_reconciliation_adopts_only_objects_the_callback_would_have_recorded(
    store: SqliteStore,
) -> None:
    """A lost callback must not let a sniffable object in by the back door: reconciliation asks
    the same rule (shared.content.stored_type_problem) of what HeadObject reports."""
    objects = FakeObjects(store)  # each object under a ledger grant of ours: only the type differs
    sniffed = objects.add("uploads/alice/q.png", HTML_BODY, mime="unknown/unknown")
    listed = objects.add("uploads/alice/r.png", XML_BODY, mime="image/png,text/xml")
    good = objects.add("uploads/alice/s.png", b"\x89PNG", mime="image/png")
    report = reconcile_run(objects, store)
    assert report.recorded == [good]
    assert sorted(report.invalid) == sorted([sniffed, listed])


# --- 2. a sign-in `sub` that looks like a digest folder -----------------------------------------


@pytest.mark.parametrize(
    "sub",
    [
        "_" + hashlib.sha256(b"Bob Smith").hexdigest()[:40],  # exactly a real digest folder
        "_" + "0" * 40,
        "_" + "ABCDEF0123" * 4,  # upper case: no near miss either
    ],
)
def test_a_sub_spelled_like_a_digest_folder_cannot_sign_in(sign_app: Core, sub: str) -> None:
    """Issue 17.4: `_` + 40 hex digits is how a non-key-safe user id's folder is spelled, so a
    user with that id would look like the owner of another user's folder."""
    response = sign_call(sign_app, "path=a", user=sub)
    assert_error(response, 401, "Unauthorized")
    assert "reserved" in body(response)["message"]
    assert sign_call(sign_app, "path=a", user=sub[:-1]).status == 200  # 39 digits: an ordinary id


# --- 3. forged key URLs: a bounded number of fetches ---------------------------------------------


def test_a_flood_of_key_versions_makes_a_bounded_number_of_fetches() -> None:
    """Issue 17.5: 300 distinct OSS key URL headers, twice over, used to make 600 fetches. Only
    v1…v9 are allowed (v1 pinned, never fetched); http and https share one fetch and one cached
    failure, so the whole flood fetches 8 URLs once each."""

    fetched: list[str] = []

    def failing_fetch(url: str) -> bytes:
        fetched.append(url)
        raise OSError("no route to host")

    keys = PublicKeys((), fetch=failing_fetch, clock=Clock())
    headers = [
        b64(f"{scheme}://gosspublic.alicdn.com/callback_pub_key_v{n}.pem")
        for n in range(1, 151)
        for scheme in ("https", "http")
    ]
    assert len(set(headers)) == 300
    for _ in range(2):
        for header in headers:
            with contextlib.suppress(AppError):
                keys.for_header(header)
    assert sorted(fetched) == [
        f"https://gosspublic.alicdn.com/callback_pub_key_v{n}.pem" for n in range(2, 10)
    ]


# --- reconciliation: what it adopts and for whom (through the dev stack and `make reconcile`) ---


@pytest.fixture
def lossy_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Start the dev stack with a callback URL nobody answers: every upload is stored unrecorded."""
    started: list[Stack] = []

    def start(**settings_: str) -> Stack:
        lost = unanswered_callback_url()
        started.append(Stack(stack_settings(tmp_path / "stack", CALLBACK_URL=lost, **settings_)))
        started[-1].start()
        return started[-1]

    yield start
    for live in started:
        live.stop()


def _make_reconcile_full(stack: Any) -> str:
    from tools.reconcile import main as reconcile_main

    out = io.StringIO()
    code = reconcile_main(["--full", "--settle", "0"], stack.values, stdout=out, stderr=out)
    assert code == 0, out.getvalue()
    return out.getvalue()


@pytest.mark.parametrize(
    "settings_",
    [
        {"OSS_SIGNATURE_VERSION": "v1", "AUTH_MODE": "none", "UPLOAD_KEY_PREFIX": ""},
        {},  # uploads/{user}/: a folder name is not a grant
    ],
    ids=["legacy-empty-prefix", "user-folders"],
)
def test_reconciliation_never_adopts_objects_another_application_wrote(
    lossy_stack: Any, settings_: dict[str, str]
) -> None:
    stack = lossy_stack(**settings_)
    foreign = (
        ["backups/db.zip", "exports/customers.csv"]
        if settings_
        else ["uploads/mallory/backup.zip", "uploads/anonymous/customers.csv"]
    )
    for key in foreign:
        seed(stack.emulator, key, b"not uploaded through a grant")  # PutObject, the console…
    report = _make_reconcile_full(stack)
    assert "no grant of ours 2" in report
    with closing(SqliteStore(stack.values["SQLITE_PATH"])) as records:
        assert all(records.get(stack.values["OSS_BUCKET"], key) is None for key in foreign)
        for owner in ("anonymous", "mallory"):
            assert records.list_by_owner(owner).items == []


def test_reconciliation_gives_a_hashed_folder_to_its_real_owner_never_a_look_alike(
    lossy_stack: Callable[..., Stack],
) -> None:
    stack = lossy_stack()
    client = StackClient(stack.url("app"), stack.url("oss"))
    user = "Alice Example|42"  # not key-safe: stored under `_` + 40 hex digits
    folder = keys.user_segment(user)
    assert folder.startswith("_")
    token_ = client.token(user)
    grant = client.grant(token_, path="p", filename="a.txt", size="5")
    assert grant["key"].startswith(f"uploads/{folder}/")
    stored = client.upload(grant, b"hello", filename="a.txt", content_type="text/plain")
    assert stored.status_code == 203  # callback lost
    _make_reconcile_full(stack)
    assert [(i["key"], i["owner"]) for i in client.uploads(token_)] == [(grant["key"], user)]
    look_alike = {"Authorization": f"Bearer {client.token(folder)}"}
    listed = client.http.get(f"{client.app_url}/uploads", headers=look_alike, timeout=10)
    assert listed.status_code != 200 or listed.json()["items"] == []


# === Private files (issue 16): a key in the path ==================================================

ALICE_KEY = "uploads/alice/01HZA.png"
BOB_KEY = "uploads/bob/01HZB.png"


@pytest.mark.parametrize(
    "raw_path",
    [  # not yours or absent, exactly 404 NotFound: tests/test_private_files.py
        f"/uploads/{BOB_KEY}",
        "/uploads/uploads/alice/../bob/01HZB.png",
        "/uploads/uploads/alice/%2E%2E/bob/01HZB.png",
        "/uploads/uploads%2Fbob%2F01HZB.png",
        "/uploads/uploads%252Fbob%252F01HZB.png",
        "/uploads/uploads/bob//01HZB.png",
        "/uploads/%2Fuploads/bob/01HZB.png",
        "/uploads/uploads/alice/01HZA.png%00",
        "/uploads/uploads/alice/%0d%0aSet-Cookie:x",
        "/uploads/uploads/alice/%ff%fe.png",
        "/uploads/" + "a" * 2000,
        "/uploads/" + "%41" * 1100,
        "/uploads/uploads\\bob\\01HZB.png",
    ],
)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_path_tricks_in_the_key_are_400_or_404_never_500(
    make_sign_app: Callable[..., Core],
    store: SqliteStore,
    removals: Removals,
    raw_path: str,
    method: str,
) -> None:
    """GET/DELETE /uploads/{key} behind the FC 3.0 adapter (paths decoded as FC decodes them):
    no trick reaches another user's record, mints a URL for it or deletes anything."""
    for owner, key in (("alice", ALICE_KEY), ("bob", BOB_KEY)):
        record = Record(owner, "example-bucket", key, 68, f"ETAG-{owner}", "image/png", 1)
        store.put(record, replace=False)
    core = make_sign_app(store_factory=lambda credentials: store, remover_factory=removals)
    handler = event_adapter(core, function="sign", max_body=16 * 1024)
    answer = handler(fc.event(method, raw_path, headers=bearer()), None)
    assert answer["statusCode"] in (400, 404), answer
    assert "x-oss-signature" not in answer["body"]
    assert removals.calls == []
    assert not store.get("example-bucket", BOB_KEY).deleted  # type: ignore[union-attr]
