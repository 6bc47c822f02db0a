"""Property tests for the attacker-facing parsers of the callback path (security.md §7, F12):
header, key URL and body parsing raise only our domain errors; a disallowed key URL never reaches
the fetch; flipping any byte of a signed message or signature fails verification; the whole core
never answers 500, even for OSS-signed junk.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.callback.body import VARIABLES, parse_callback_body
from shared.callback.pubkeys import PublicKeys
from shared.callback.signature import decode_authorization, verify_signature
from shared.errors import AppError, BadRequest, KeyUrlUntrusted, SignatureInvalid
from shared.http import Core, Request, serve
from tests.support.callbacks import (
    TEST_KEY_URL,
    CallbackBuilder,
    KeyServer,
    b64,
    rsa_key,
    sign,
)
from tests.support.data import seeded

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TRUSTED = ("http://127.0.0.1:9000/.well-known/oss-emulator/callback_pub_key.pem",)
# Written independently of shared.callback.pubkeys: the only URLs a fetch may ever see.
ORACLE = re.compile(r"https://gosspublic\.alicdn\.com/callback_pub_key_v[1-9]\.pem")


# --- the base64 headers: x-oss-pub-key-url and Authorization -------------------------------

urls = st.builds(
    lambda scheme, userinfo, host, port, path, query, fragment: (
        f"{scheme}{userinfo}{host}{port}{path}{query}{fragment}"
    ),
    st.sampled_from(
        ["https://", "http://", "HTTPS://", "ftp://", "file://", "//", "", " https://"]
    ),
    st.sampled_from(["", "user@", "user:pw@", "gosspublic.alicdn.com@"]),
    st.sampled_from(
        [
            "gosspublic.alicdn.com",
            "GOSSPUBLIC.alicdn.com",
            "gosspublic.alicdn.com.evil.com",
            "gosspublicxalicdn.com",
            "evil.com",
            "127.0.0.1",
            "100.100.100.200",
            "[::1]",
            "%67osspublic.alicdn.com",
            "gosspublic.alicdn.com.",
        ]
    ),
    st.sampled_from(["", ":443", ":80", ":8080", ":"]),
    st.one_of(
        st.sampled_from(
            [
                "/callback_pub_key_v1.pem",
                "/callback_pub_key_v2.pem",
                "/callback_pub_key_v0.pem",
                "/callback_pub_key_v1000.pem",
                "//callback_pub_key_v1.pem",
                "/a/../callback_pub_key_v1.pem",
                "/callback_pub_key_v1.pem/",
                "/",
                "",
            ]
        ),
        st.text(max_size=40).map(lambda text: "/" + text),
    ),
    st.sampled_from(["", "?", "?a=1"]),
    st.sampled_from(["", "#", "#x"]),
)


@FUZZ
@seeded("key_url", "url", raw=None)
@given(
    url=st.one_of(urls, st.text(max_size=120), st.sampled_from(TRUSTED)),
    raw=st.one_of(
        st.none(),  # send b64(url)
        st.text(max_size=300),
        st.binary(max_size=200).map(lambda raw: base64.b64encode(raw).decode()),
    ),
)
def test_key_url_headers_raise_only_domain_errors_and_fetch_only_allowed_urls(
    url: str, raw: str | None
) -> None:
    keyserver = KeyServer()  # knows no URL: every fetch it sees fails
    try:
        PublicKeys(TRUSTED, fetch=keyserver).for_header(b64(url) if raw is None else raw)
    except KeyUrlUntrusted:
        assert keyserver.calls == []
    except AppError:
        pass
    for called in keyserver.calls:  # a listed URL, or OSS's own key host but never the pinned key
        assert called in TRUSTED or ORACLE.fullmatch(called), called
        assert not called.endswith("/callback_pub_key_v1.pem")


@FUZZ
@given(header=st.one_of(st.none(), st.text(max_size=2000)))
def test_authorization_parsing_raises_only_signature_invalid(header: str | None) -> None:
    try:
        signature = decode_authorization(header)
    except SignatureInvalid:
        return
    assert base64.b64encode(signature).decode() == (header or "").strip(" \t")


# --- bodies ---------------------------------------------------------------------------------

FIELD_NAMES = [*(name for name, _ in VARIABLES), "grant", "x:extra"]
form_bodies = st.lists(
    st.tuples(st.sampled_from(FIELD_NAMES), st.text(max_size=30)), max_size=14
).map(lambda pairs: urlencode(pairs).encode())
junk_bodies = st.one_of(
    st.binary(max_size=600),
    st.text(alphabet="=&%+;a-zA-Z0-9.\x00\xff ", max_size=200).map(str.encode),
)


@FUZZ
@seeded("callback_body", "body", text=False)
@given(body=st.one_of(form_bodies, junk_bodies))
def test_body_parsing_raises_only_bad_request(body: bytes) -> None:
    try:
        fields = parse_callback_body(body)
    except BadRequest:
        return
    assert fields.size >= 0
    assert fields.bucket
    assert fields.object
    assert fields.etag


@FUZZ
@given(
    bucket=st.text(min_size=1, max_size=20),
    obj=st.text(min_size=1, max_size=40),
    size=st.integers(min_value=0, max_value=10**18),
    width=st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),
)
def test_well_formed_bodies_round_trip(bucket: str, obj: str, size: int, width: int | None) -> None:
    """What OSS renders (every value percent-encoded) parses back to the same values."""
    values = {
        "bucket": bucket,
        "object": obj,
        "etag": "ABCDEF",
        "size": str(size),
        "mimeType": "image/png",
        "imageInfo.width": "" if width is None else str(width),
    }
    body = "&".join(f"{k}={quote(v, safe='-._~')}" for k, v in values.items()).encode()
    try:
        fields = parse_callback_body(body)
    except BadRequest:
        assert any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in bucket + obj)
        return
    got = (fields.bucket, fields.object, fields.size, fields.image_width)
    assert got == (bucket, obj, size, width)


# --- signatures -----------------------------------------------------------------------------


@FUZZ
@given(data=st.data(), message=st.binary(max_size=300), in_signature=st.booleans())
def test_flipping_any_byte_fails_verification(
    data: st.DataObject, message: bytes, in_signature: bool
) -> None:
    """Any byte of the signed message or of the signature."""
    key = rsa_key(2048)
    signature = base64.b64decode(sign(key, message))
    assert verify_signature(message, sign(key, message), key.public_key()) == message
    in_signature = in_signature or not message
    target = bytearray(signature if in_signature else message)
    index = data.draw(st.integers(min_value=0, max_value=len(target) - 1))
    target[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    if in_signature:
        signature = bytes(target)
    else:
        message = bytes(target)
    with pytest.raises(SignatureInvalid):
        verify_signature(message, base64.b64encode(signature).decode(), key.public_key())


# --- the whole core -------------------------------------------------------------------------


@FUZZ
@given(
    extra=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=30)), max_size=6),
    junk=st.one_of(st.just(b""), st.binary(max_size=60)),
    replace_token=st.booleans(),
)
def test_signed_junk_never_answers_500(
    make_callback_app: Callable[..., Core],
    build: CallbackBuilder,
    extra: list[tuple[str, str]],
    junk: bytes,
    replace_token: bool,
) -> None:
    """OSS-signed bodies with extra fields or junk: 200/400/403 only, never 500."""
    body = build.body()
    if replace_token:
        body = body.rsplit(b"&grant=", 1)[0] + b"&grant=" + junk
    body += (b"&" + urlencode(extra).encode()) if extra else b""
    if not replace_token:
        body += junk
    response = serve(make_callback_app(), build.request(body=body), function="callback")
    payload = json.loads(response.body)
    assert response.status in (200, 400, 403), payload
    assert payload["Status"] == ("OK" if response.status == 200 else "Error")


@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(["authorization", "x-oss-pub-key-url", "content-type", "x-oss-bucket"]),
        st.text(max_size=200),
    ),
    body=st.binary(max_size=300),
    method=st.sampled_from(["POST", "GET", "PUT"]),
)
def test_unsigned_requests_never_answer_500_or_fetch_untrusted_urls(
    make_callback_app: Callable[..., Core],
    keyserver: KeyServer,
    headers: dict[str, str],
    body: bytes,
    method: str,
) -> None:
    request = Request(method, "/cb", b"/cb", "", headers, body)
    response = serve(make_callback_app(), request, function="callback")
    assert response.status in (401, 405), response.body
    assert all(url == TEST_KEY_URL for url in keyserver.calls)
