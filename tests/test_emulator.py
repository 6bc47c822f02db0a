"""The OSS emulator through its WSGI app (werkzeug test client): PostObject judged in OSS's order,
V1/V4/STS signatures, OSS's XML errors, objects on disk, callbacks signed like OSS's.

Forms are built valid by default (tests/support/emulator.py); each refusal changes one thing and
asserts the exact Code. Vectors come from tests/data/oss.json (copied from the team's shared
vectors).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import oss2
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from oss2.models import PartInfo

from local.oss_emulator import KEY_PATH, AccessKey
from local.oss_emulator.callback import (
    CallbackReply,
    CallbackRequest,
    CallbackUnreachable,
    send_with_requests,
)
from local.oss_emulator.crc64 import Crc64, crc64
from local.oss_emulator.image import ImageInfo, image_info
from local.oss_emulator.keys import load_or_create_key
from local.oss_emulator.signature import v4_signing_key
from local.oss_emulator.store import ObjectStore
from tests.oss_sdk import serve
from tests.samples import jpeg, png
from tests.support.data import VECTORS
from tests.support.emulator import (
    AK,
    CALLBACK_URL,
    NOW,
    ORIGIN,
    SK,
    STS,
    Emu,
    Field,
    Upload,
    assert_error,
    b64json,
    json_reply,
    message_of,
    multipart,
    replaced,
    v1_form,
    v4_form,
    without,
)

# --- CRC-64 and image headers ---------------------------------------------------------------


def test_crc64_check_value() -> None:
    assert crc64(b"123456789") == 11051210869376104954
    assert crc64(b"") == 0


@given(st.binary(max_size=2048), st.lists(st.integers(0, 2048), max_size=6))
def test_crc64_streams_like_one_shot(data: bytes, cuts: list[int]) -> None:
    state = Crc64()
    start = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        state.update(data[start:cut])
        start = max(start, cut)
    assert state.value == crc64(data)


def webp(chunk: str, payload: str) -> bytes:
    """A WebP head: RIFF, the chunk's tag, then its first bytes (hex)."""
    return b"RIFF\x00\x00\x00\x00WEBP" + chunk.encode() + bytes.fromhex(payload)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (png(640, 480), ImageInfo(640, 480, "png")),
        (jpeg(200, 278), ImageInfo(200, 278, "jpg")),
        (b"GIF89a" + struct.pack("<HH", 31, 7) + b"\x00" * 8, ImageInfo(31, 7, "gif")),
        (webp("VP8X", "0a000000 00000000 630000 310000"), ImageInfo(100, 50, "webp")),  # w-1, h-1
        (webp("VP8L", "00000000 2f 3fc00f00"), ImageInfo(64, 64, "webp")),  # 14-bit w-1, h-1
        (webp("VP8 ", "00000000 000000 9d012a 4001 f000"), ImageInfo(320, 240, "webp")),
        (b"plain text, not an image", None),
        (b"\xff\xd8\xff\xd9", None),
    ],
)
def test_image_info(head: bytes, expected: ImageInfo | None) -> None:
    assert image_info(head) == expected


@given(st.binary(max_size=300))
def test_image_info_never_raises(head: bytes) -> None:
    for prefix in (b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP"):
        info = image_info(prefix + head)
        assert info is None or (info.width > 0 and info.height > 0)


# --- outside authority: the published vectors -----------------------------------------------


V1A = VECTORS["policy_v1"][0]


@pytest.fixture
def v1a(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> Emu:
    keys = (AccessKey("vector-ak", V1A["secret"]),)
    emu = Emu(tmp_path, oss_key, bucket="gen-post-policy", access_keys=keys)
    emu.clock = datetime(2020, 3, 19, 3, 0, tzinfo=timezone.utc).timestamp()
    return emu


def v1a_fields(policy: str = V1A["policy"], signature: str = V1A["signature"]) -> list[Field]:
    return [
        ("key", "user/eric/${filename}"),
        ("x-oss-meta-tag", "dummy_etag_1"),
        ("OSSAccessKeyId", "vector-ak"),
        ("policy", policy),
        ("Signature", signature),
    ]


def flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def test_v1a_vector_passes_the_signature_step(v1a: Emu) -> None:
    response = v1a.post(v1a_fields(), file=("report.txt", b"x" * 10, "text/plain"))
    # With the clock before its expiration, the whole Java SDK policy holds (`\\$` read as `$`).
    assert response.status_code == 204, response.get_data(as_text=True)
    assert v1a.read("/user/eric/report.txt") == b"x" * 10
    for which in ("policy", "signature"):
        changed = {which: flip(V1A[which], 10)}
        assert_error(v1a.post(v1a_fields(**changed)), 403, "SignatureDoesNotMatch")
    # Whatever the later checks say: once expired, the refusal comes from the policy step.
    v1a.clock = datetime(2021, 1, 1, tzinfo=timezone.utc).timestamp()
    late = v1a.post(v1a_fields())
    assert_error(late, 403, "AccessDenied")
    assert message_of(late) == "Invalid according to Policy: Policy expired."


def test_v4a_vector_uploads(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> None:
    vector = VECTORS["policy_v4"][0]
    date = vector["x_oss_date"][:8]  # the key chain first: the stage that diverged, if any
    assert v4_signing_key(vector["secret"], date, vector["region"]).hex() == vector["k_signing"]
    emu = Emu(tmp_path, oss_key, bucket="examplebucket", access_keys=(AccessKey("ak", "sk"),))
    emu.clock = datetime(2023, 12, 16, 16, 25, tzinfo=timezone.utc).timestamp()
    fields = [
        ("key", "user/eric/a.txt"),
        ("policy", vector["policy"]),
        ("x-oss-signature-version", "OSS4-HMAC-SHA256"),
        ("x-oss-credential", "ak/20231216/cn-hangzhou/oss/aliyun_v4_request"),
        ("x-oss-date", vector["x_oss_date"]),
        ("x-oss-signature", vector["signature"]),
    ]
    assert emu.post(fields).status_code == 204
    fields[-1] = ("x-oss-signature", vector["signature"][:-1] + "0")
    assert_error(emu.post(fields), 403, "SignatureDoesNotMatch")


# --- success --------------------------------------------------------------------------------


def test_v4_upload_stores_the_object(emu: Emu) -> None:
    data = png(3, 2) + b"rest"
    response = emu.post(v4_form(), file=("photo.png", data, "image/png"))
    assert response.status_code == 204
    etag = hashlib.md5(data).hexdigest().upper()  # noqa: S324 - OSS's ETag
    assert response.headers["ETag"] == f'"{etag}"'
    assert response.headers["x-oss-hash-crc64ecma"] == str(crc64(data))
    assert response.headers["Content-MD5"] == base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324
    assert re.fullmatch(r"[0-9A-F]{24}", response.headers["x-oss-request-id"])
    with emu.client.get("/uploads/alice/photo.png") as got:
        got_data = got.data
    assert (got.status_code, got_data, got.headers["Content-Type"]) == (200, data, "image/png")
    assert got.headers["ETag"] == f'"{etag}"'
    head = emu.client.head("/uploads/alice/photo.png")
    assert (head.status_code, head.data, head.headers["Content-Length"]) == (200, b"", "77")


def test_success_action_status_201_answers_the_object_in_xml(emu: Emu) -> None:
    response = emu.post(v4_form(fields=[("success_action_status", "201")]))
    assert response.status_code == 201
    text = response.get_data(as_text=True)
    assert "<Key>uploads/alice/photo.png</Key>" in text
    assert "<Bucket>dev-bucket</Bucket>" in text
    assert "<Location>http://127.0.0.1:9000/uploads/alice/photo.png</Location>" in text


def test_filename_expands_after_the_policy(emu: Emu) -> None:
    form = v4_form(
        key="uploads/alice/${filename}", conditions=[["eq", "$key", "uploads/alice/${filename}"]]
    )
    assert emu.post(form, file=("some/dir/cat.txt", b"meow", None)).status_code == 204
    assert emu.read("/uploads/alice/cat.txt") == b"meow"


@pytest.mark.parametrize(
    ("name", "fields", "file_type", "stored_as"),
    [
        ("a.bin", [("Content-Type", "text/plain")], None, "text/plain"),
        ("b.bin", [("Content-Type", "text/plain")], "image/png", "image/png"),
        ("c.bin", [("x-oss-content-type", "text/csv")], "image/png", "text/csv"),
        ("d.pdf", [], None, "application/pdf"),
    ],
)
def test_content_type_precedence(
    emu: Emu, name: str, fields: list[Field], file_type: str | None, stored_as: str
) -> None:
    emu.post(v4_form(key=f"uploads/alice/{name}", fields=fields), file=("f", b"1", file_type))
    assert emu.client.head(f"/uploads/alice/{name}").headers["Content-Type"] == stored_as


# --- refusals, in OSS's order: form shape → signature → policy → size ------------------------


def test_not_multipart_is_malformed(emu: Emu) -> None:
    response = emu.client.post("/", data=b"key=a", content_type="application/x-www-form-urlencoded")
    assert_error(response, 400, "MalformedPOSTRequest")
    body, ctype = multipart(v4_form(), ("a", b"data", None))
    truncated = emu.client.post("/", data=body[:-30], content_type=ctype)
    assert_error(truncated, 400, "MalformedPOSTRequest")


def other_day(form: list[Field], days: int = -1, seconds: int = 0) -> list[Field]:
    moved = NOW + timedelta(days=days, seconds=seconds)
    return replaced(form, "x-oss-date", moved.strftime("%Y%m%dT%H%M%SZ"))


def tampered(form: list[Field]) -> list[Field]:
    policy = json.loads(base64.b64decode(dict(form)["policy"]))
    policy["conditions"][-1] = ["content-length-range", 1, 10**9]
    return replaced(form, "policy", b64json(policy))


EXPIRED, LATER = NOW - timedelta(seconds=1), NOW + timedelta(days=1)
BIG: Upload = ("a", b"x" * 2000, None)
FILE: Upload = ("photo.png", b"hello", None)
FORM = v4_form()
AWS_CREDENTIAL = dict(FORM)["x-oss-credential"].replace("aliyun_v4", "aws4")
TOKEN = "x-oss-security-token"
STS_V1, STS_V4 = v1_form(access_key=STS), v4_form(access_key=STS)
PHOTO = "uploads/alice/photo.png"
STATUS = "success_action_status"


def case(
    name: str, form: list[Field], status: int, code: str, file: Upload | None = FILE, **after: str
) -> Any:
    request = {"fields": form, "file": file, "after": list(after.items())}
    return pytest.param(request, status, code, id=name)


# A PostObject (fields, file, fields after the file) → OSS's status and Code; else valid.
REFUSALS: list[Any] = [
    case("no file", FORM, 400, "IncorrectNumberOfFilesInPOSTRequest", None),
    case("an empty file", FORM, 400, "EntityTooSmall", ("a", b"", None)),
    case("a repeated field", [*FORM, ("KEY", "x")], 400, "InvalidArgument"),
    case("anonymous", [("key", "uploads/alice/a")], 403, "AccessDenied"),
    case("the key after the file", without(FORM, "key"), 400, "InvalidArgument", key=PHOTO),
    case("the key URL's path", v4_form(key=KEY_PATH[1:], conditions=[]), 400, "InvalidObjectName"),
    *[
        case(f"V1 without {name}", without(v1_form(), name), 400, "InvalidArgument")
        for name in ("OSSAccessKeyId", "policy", "signature")
    ],
    *[
        case(f"{build.__name__} {name}", build(access_key=key), 403, code)
        for build in (v1_form, v4_form)
        for name, key, code in (
            ("of an unknown key", AccessKey("someone-else", SK), "InvalidAccessKeyId"),
            ("with a wrong secret", AccessKey(AK, "not-the-secret"), "SignatureDoesNotMatch"),
        )
    ],
    case("a tampered policy", tampered(FORM), 403, "SignatureDoesNotMatch"),
    # One key lookup for V1 and V4 (and for headers and URLs: test_emulator_reads.py).
    case("STS without its token", without(STS_V4, TOKEN), 403, "InvalidAccessKeyId"),
    case("STS with a forged token", replaced(STS_V1, TOKEN, "forged"), 403, "InvalidSecurityToken"),
    case(
        "a permanent key with a token", v1_form(fields=[(TOKEN, "x")]), 403, "InvalidSecurityToken"
    ),
    *[
        case(name, form, 400, "InvalidArgument")
        for name, form in (
            ("a date off the credential's day", other_day(FORM)),
            ("another region", v4_form(region="cn-shanghai")),
            ("an AWS credential", replaced(FORM, "x-oss-credential", AWS_CREDENTIAL)),
            ("another signature version", replaced(FORM, "x-oss-signature-version", "OSS2")),
            ("signed 16 minutes ahead", v4_form(signed_at=NOW + timedelta(minutes=16))),
            ("signed 8 days ago", v4_form(signed_at=NOW - timedelta(days=8), expiration=LATER)),
        )
    ],
    case(
        "signature before policy",
        replaced(v4_form(expiration=EXPIRED), "x-oss-signature", "0" * 64),
        403,
        "SignatureDoesNotMatch",
        BIG,
    ),
    case("policy (expiry) before size", v4_form(expiration=EXPIRED), 403, "AccessDenied", BIG),
    case("policy (key) before size", v4_form(key="uploads/bob/x"), 403, "AccessDenied", BIG),
]


@pytest.mark.parametrize(("request_", "status", "code"), REFUSALS)
def test_refusals(emu: Emu, request_: dict[str, Any], status: int, code: str) -> None:
    assert_error(emu.post(**request_), status, code)
    assert emu.client.head("/uploads/alice/photo.png").status_code == 404


def accepted(name: str, form: list[Field], status: int, **after: str) -> Any:
    return pytest.param({"fields": form, "after": list(after.items())}, status, id=name)


# The valid neighbours of REFUSALS, each passing (so each refusal is of the one change), and the
# success_action_status answers: 200 and 204 as asked, anything else 204, all without a body.
ACCEPTED: list[Any] = [
    accepted("V1 of STS", STS_V1, 200),
    accepted("V4 of STS", STS_V4, 204),
    accepted("a permanent key with an empty token", v1_form(fields=[(TOKEN, "")]), 200),
    accepted("signed 14 minutes ahead", v4_form(signed_at=NOW + timedelta(minutes=14)), 204),
    accepted("names in any case", [(n.upper() if n == "key" else n, v) for n, v in v1_form()], 200),
    accepted("fields after the file", FORM, 204, submit="Upload", success_action_status="201"),
    *[
        accepted(f"success_action_status {asked}", v4_form(fields=[(STATUS, asked)]), answered)
        for asked, answered in (("200", 200), ("204", 204), ("302", 204), ("", 204))
    ],
]


@pytest.mark.parametrize(("request_", "status"), ACCEPTED)
def test_accepted(emu: Emu, request_: dict[str, Any], status: int) -> None:
    response = emu.post(**request_)
    assert (response.status_code, response.data) == (status, b"")
    assert emu.client.head(f"/{PHOTO}").status_code == 200


def test_too_large_names_the_sizes(emu: Emu) -> None:
    response = emu.post(v4_form(), file=BIG)
    assert_error(response, 400, "EntityTooLarge")
    assert "<ProposedSize>2000</ProposedSize>" in response.get_data(as_text=True)
    assert "<MaxSizeAllowed>1024</MaxSizeAllowed>" in response.get_data(as_text=True)
    assert emu.client.get("/uploads/alice/photo.png").status_code == 404


def test_v4_form_date_must_equal_the_policy_date(emu: Emu) -> None:
    # Signature still valid (only the policy is signed), but the policy pins another x-oss-date.
    response = emu.post(other_day(FORM, days=0, seconds=5))
    assert_error(response, 403, "AccessDenied")
    assert '"$x-oss-date"' in message_of(response)


# --- callbacks ------------------------------------------------------------------------------


def callback_field(**overrides: Any) -> str:
    config = {
        "callbackUrl": CALLBACK_URL,
        "callbackBody": "bucket=${bucket}&object=${object}&etag=${etag}&size=${size}&mimeType=${mimeType}&h=${imageInfo.height}&w=${imageInfo.width}&f=${imageInfo.format}&crc64=${crc64}&md5=${contentMd5}&ip=${clientIp}&req=${reqId}&op=${operation}&v=${x:var1}&grant=abc.def-ghi_jkl",
        "callbackBodyType": "application/x-www-form-urlencoded",
    }
    config.update(overrides)
    return b64json(config)


def verify_oss_signature(emu: Emu, request: CallbackRequest) -> None:
    """OSS's callback signature, checked with the key the emulator serves at the key URL (the
    public half of the key it was given)."""
    headers = dict(request.headers)
    key_url = base64.b64decode(headers["x-oss-pub-key-url"]).decode()
    assert key_url == "http://127.0.0.1:9000" + KEY_PATH
    public_key = serialization.load_pem_public_key(emu.read(KEY_PATH))
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.public_numbers() == emu.key.public_key().public_numbers()
    path, _, query = request.url.split("//", 1)[1].partition("/")[2].partition("?")
    signed = unquote("/" + path).encode() + (b"?" + query.encode() if query else b"") + b"\n"
    md5 = hashes.MD5()  # noqa: S303 - OSS's digest for callback signatures
    signature = base64.b64decode(headers["Authorization"])
    public_key.verify(signature, signed + request.body, padding.PKCS1v15(), md5)


def test_callback_success_passes_the_body_through(emu: Emu) -> None:
    data = png(200, 278)
    emu.recorder.reply = lambda _: json_reply(
        {"Status": "OK", "key": "k"}, content_type="application/json; charset=utf-8"
    )
    form = v4_form(fields=[("callback", callback_field()), ("x:var1", "a b/ü~")])
    response = emu.post(form, file=("p.png", data, "image/png"))
    assert response.status_code == 200
    assert response.json == {"Status": "OK", "key": "k"}
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    etag = hashlib.md5(data).hexdigest().upper()  # noqa: S324
    assert response.headers["ETag"] == f'"{etag}"'
    ((request, timeout),) = emu.recorder.sent
    assert timeout <= 5.0
    headers = dict(request.headers)
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324
    expected = (
        f"bucket=dev-bucket&object=uploads%2Falice%2Fphoto.png&etag={etag}&size={len(data)}"
        f"&mimeType=image%2Fpng&h=278&w=200&f=png&crc64={crc64(data)}&md5={md5.replace('+', '%2B').replace('/', '%2F').replace('=', '%3D')}"
        f"&ip=127.0.0.1&req={response.headers['x-oss-request-id']}&op=PostObject&v=a%20b%2F%C3%BC~&grant=abc.def-ghi_jkl"
    )
    assert request.body.decode() == expected
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["Content-MD5"] == base64.b64encode(hashlib.md5(request.body).digest()).decode()  # noqa: S324
    assert headers["User-Agent"] == "aliyun-oss-callback"
    assert headers["x-oss-bucket"] == "dev-bucket"
    assert headers["x-oss-tag"] == "CALLBACK"
    assert headers["x-oss-request-id"] == response.headers["x-oss-request-id"]
    assert headers["Host"] == "127.0.0.1:9"
    assert headers["Date"].endswith("GMT")
    verify_oss_signature(emu, request)


def test_callback_json_mode_host_and_signed_path(emu: Emu) -> None:
    body = '{"object":${object},"size":${size},"h":${imageInfo.height},"fmt":${imageInfo.format},"pic":"${imageInfo.width}","v":${x:var1}}'
    config = {"callbackBody": body, "callbackBodyType": "application/json"}
    field = callback_field(
        callbackUrl="127.0.0.1:9/a%20b/cb", callbackHost="api.example.com", **config
    )
    form = v4_form(fields=[("callback", field), ("x:var1", 'say "hi"')])
    assert emu.post(form, file=("t.txt", b"text", None)).status_code == 200
    ((request, _),) = emu.recorder.sent
    assert json.loads(request.body) == {
        "object": "uploads/alice/photo.png",
        "size": 4,
        "h": None,
        "fmt": "",
        "pic": "",
        "v": 'say "hi"',
    }
    assert request.url == "http://127.0.0.1:9/a%20b/cb"
    headers = dict(request.headers)
    assert (headers["Content-Type"], headers["Host"]) == ("application/json", "api.example.com")
    verify_oss_signature(emu, request)


NOT_JSON = "Response body is not valid json format."
TOO_LONG = "Error Status : 200.User server return too long content-length value"


@pytest.mark.parametrize(
    ("status", "body", "length", "message"),
    [
        (500, b"{}", "2", "Error status : 500."),
        (201, b"{}", "2", "Error status : 201."),
        (200, b"{}", None, TOO_LONG),
        (200, b"{}", "²", TOO_LONG),
        (200, b"<html>", "6", NOT_JSON),
        (200, b'\xef\xbb\xbf{"a":1}', "10", NOT_JSON),
    ],
)
def test_callback_failures_answer_203_and_keep_the_object(
    emu: Emu, status: int, body: bytes, length: str | None, message: str
) -> None:
    headers = {"content-length": length} if length else {}
    emu.recorder.reply = lambda _: CallbackReply(status, headers, body)
    response = emu.post(v4_form(fields=[("callback", callback_field())]))
    assert_error(response, 203, "CallbackFailed")
    assert message_of(response) == message
    assert emu.client.head("/uploads/alice/photo.png").status_code == 200


def test_callback_unreachable_then_next_url_whose_xml_reply_is_passed_on(emu: Emu) -> None:
    def reply(request: CallbackRequest) -> CallbackReply:
        if "first" in request.url:
            raise CallbackUnreachable(
                "Error status : -1. OSS can not connect to your callbackUrl, please check it."
            )
        return CallbackReply(
            200, {"content-length": "5", "content-type": "application/xml"}, b"<ok/>"
        )

    emu.recorder.reply = reply
    urls = ["http://127.0.0.1:9/first", "http://127.0.0.1:9/second"]
    field = callback_field(callbackUrl=";".join(urls))
    answer = emu.post(v4_form(fields=[("callback", field)]))
    assert (answer.status_code, answer.data) == (200, b"<ok/>")
    assert [r.url for r, _ in emu.recorder.sent] == urls
    emu.recorder.reply = lambda _: reply(CallbackRequest("first", (), b""))
    response = emu.post(v4_form(fields=[("callback", field)]))
    assert_error(response, 203, "CallbackFailed")
    assert "can not connect" in message_of(response)


@pytest.mark.parametrize(
    "field",
    [
        "not base64!",
        base64.b64encode(b"not json").decode(),
        callback_field(callbackUrl=""),
        callback_field(callbackUrl=";".join(["http://h/x"] * 6)),
        callback_field(callbackUrl="http://h:99999/x"),
        callback_field(callbackBody=""),
        callback_field(callbackBodyType="text/plain"),
        callback_field(callbackSNI="yes"),
        callback_field(callbackBody="a=${x:Upper}"),
        callback_field(callbackBody="a=${nosuch}"),
    ],
)
def test_invalid_callback_configuration(emu: Emu, field: str) -> None:
    response = emu.post(v4_form(fields=[("callback", field)]))
    assert_error(response, 400, "InvalidArgument")
    assert "<ArgumentName>callback</ArgumentName>" in response.get_data(as_text=True)
    assert emu.client.get("/uploads/alice/photo.png").status_code == 404
    assert emu.recorder.sent == []


# --- key, CORS, storage ---------------------------------------------------------------------


def test_key_is_kept_across_restarts(tmp_path: Path) -> None:
    first = load_or_create_key(tmp_path)
    second = load_or_create_key(tmp_path)
    assert first.private_numbers() == second.private_numbers()
    assert (tmp_path / "callback_private_key.pem").stat().st_mode & 0o777 == 0o600


PREFLIGHTS = [  # deploy/oss/cors.xml: POST and PUT from our origin, any requested header
    (ORIGIN, "POST", "content-type", 200),
    (ORIGIN, "PUT", "content-md5", 200),  # a part signed with its MD5
    ("http://evil.example", "POST", None, 403),
    (ORIGIN, "DELETE", None, 403),
    (ORIGIN, "GET", None, 403),
]


@pytest.mark.parametrize(("origin", "method", "headers", "status"), PREFLIGHTS)
def test_cors_preflight(
    emu: Emu, origin: str, method: str, headers: str | None, status: int
) -> None:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    response = emu.client.options("/", headers=asked)
    if status == 403:
        assert_error(response, 403, "AccessForbidden")
        return
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Methods"] == "POST, PUT"
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert response.headers.get("Access-Control-Allow-Headers") == headers


def test_cors_on_answers(emu: Emu) -> None:
    posted = emu.post(v4_form(), ("a", b"1", None), headers={"Origin": ORIGIN})
    assert posted.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = posted.headers["Access-Control-Expose-Headers"]
    assert exposed == "ETag, x-oss-hash-crc64ecma, x-oss-request-id"
    assert posted.headers["Vary"] == "Origin"  # ResponseVary
    for origin in ("http://evil.example", ORIGIN):  # GET is not in the rules, whoever asks
        other = emu.client.get(KEY_PATH, headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in other.headers
        assert other.headers["Vary"] == "Origin"


def test_unknown_object_and_methods(emu: Emu) -> None:
    assert_error(emu.client.get("/nothing/here"), 404, "NoSuchKey")
    assert_error(emu.client.get("/../../etc/passwd"), 404, "NoSuchKey")
    assert_error(emu.client.post("/a", data=b"x"), 405, "MethodNotAllowed")


def test_content_md5_of_the_request(emu: Emu) -> None:
    body, ctype = multipart(v4_form(), ("a", b"1", None))
    headers = {"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="}
    bad = emu.client.post("/", data=body, content_type=ctype, headers=headers)
    assert_error(bad, 400, "InvalidDigest")
    headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324
    assert emu.client.post("/", data=body, content_type=ctype, headers=headers).status_code == 204


def test_base64_transfer_encoded_file(emu: Emu) -> None:
    boundary = "b0undary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'
        for n, v in v4_form()
    ]
    encoded = base64.b64encode(b"binary\x00data").decode()
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded[:5]}\r\n {encoded[5:]}\r\n--{boundary}--\r\n"
    )
    response = emu.client.post(
        "/", data="".join(parts).encode(), content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 204
    assert emu.read("/uploads/alice/photo.png") == b"binary\x00data"


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=80))
def test_store_paths_never_leave_the_directory(key: str) -> None:
    store = ObjectStore.__new__(ObjectStore)
    store.objects = Path("/nonexistent-root-for-paths/objects")
    data, meta = store._paths(key)
    assert (data.parent, meta.parent) == (store.objects, store.objects)
    assert re.fullmatch(r"[0-9a-f]{64}", data.name)


# --- the callback sender over loopback ------------------------------------------------------


def sent_to(
    status: str,
    body: bytes = b"{}",
    headers: Sequence[tuple[str, str]] = (),
    *,
    hang: threading.Event | None = None,
    timeout: float = 5.0,
) -> CallbackReply:
    """send_with_requests to a loopback server that reads the whole request (answering early
    resets the sender's upload), waits for `hang` if given, then answers as told."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if hang is not None:
            hang.wait(30)  # until the test has its answer; a sender that waits gets it
        start_response(status, [("Content-Length", str(len(body))), *headers])
        return [body]

    with serve(app) as url:  # any WSGI app serves
        request = CallbackRequest(url + "/cb", (("Content-Type", "text/plain"),), b"a=1")
        return send_with_requests(request, timeout)


def test_sender_reads_the_reply_up_to_a_megabyte_and_follows_no_redirect() -> None:
    reply = sent_to("200 OK", headers=[("Content-Type", "application/json")])
    assert (reply.status, reply.body, reply.complete) == (200, b"{}", True)
    assert reply.headers["content-length"] == "2"
    assert sent_to("302 Found", b"", [("Location", "http://127.0.0.1:9/x")]).status == 302
    reply = sent_to("200 OK", b"[" + b"0," * (600 * 1024) + b"0]")
    assert not reply.complete
    assert len(reply.body) <= 1024 * 1024 + 64 * 1024


def test_sender_cannot_connect_or_gives_up_after_the_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CallbackUnreachable, match="can not connect"):
        send_with_requests(CallbackRequest(f"http://127.0.0.1:{port}/cb", (), b"a=1"), 5.0)
    release = threading.Event()
    with pytest.raises(CallbackUnreachable, match=r"reply timeout, cost: 500 MS, timeout: 500 MS"):
        sent_to("200 OK", hang=release, timeout=0.5)
    release.set()


def test_cors_rules_come_from_the_file(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> None:
    rules = tmp_path / "cors.xml"
    rules.write_text(
        "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
        "<AllowedMethod>GET</AllowedMethod><AllowedHeader>x-oss-*</AllowedHeader>"
        "</CORSRule></CORSConfiguration>"
    )
    emu = Emu(tmp_path / "data", oss_key, cors_file=rules)
    origin = "http://127.0.0.1:8000"
    read = emu.client.get(KEY_PATH, headers={"Origin": origin})
    assert read.headers["Access-Control-Allow-Origin"] == origin
    assert "Vary" not in read.headers  # no ResponseVary in this file
    preflight = {"Origin": origin, "Access-Control-Request-Method": "GET"}
    headers = {**preflight, "Access-Control-Request-Headers": "x-oss-date, range"}
    assert_error(emu.client.options("/", headers=headers), 403, "AccessForbidden")
    headers["Access-Control-Request-Headers"] = "X-OSS-Date"
    assert emu.client.options("/", headers=headers).status_code == 200
    posted = emu.client.options("/", headers={**preflight, "Access-Control-Request-Method": "POST"})
    assert_error(posted, 403, "AccessForbidden")


# --- request counters and DeleteObject --------------------------------------------------------


def test_the_stats_count_each_oss_operation_and_not_themselves(served: Emu) -> None:
    """oss2 (signed) and a browser (unsigned) against the served emulator; stats count both."""
    key = "uploads/alice/photo.png"

    def stats() -> dict[str, int]:
        response = served.client.get("/.well-known/oss-emulator/stats")
        assert response.headers["Content-Type"] == "application/json"
        return dict(json.loads(response.get_data()))

    assert stats() == {}
    assert served.upload().status_code == 204
    assert served.post(v4_form(), file=None).status_code == 400  # refused: still a PostObject
    sdk = served.sdk()
    assert sdk.head_object(key).content_length == 5
    assert [o.key for o in sdk.list_objects_v2(prefix="uploads/").object_list] == [key]
    assert sdk.get_object(key).read() == b"hello"
    sdk.delete_object(key)
    sdk.delete_object(key)  # 204 again: OSS's DeleteObject does not care
    with pytest.raises(oss2.exceptions.NotFound):
        sdk.head_object(key)
    upload_id = sdk.init_multipart_upload(key).upload_id
    part = sdk.upload_part(key, upload_id, 1, b"a")
    sdk.list_parts(key, upload_id)
    sdk.complete_multipart_upload(key, upload_id, [PartInfo(1, part.etag)])
    sdk.abort_multipart_upload(key, sdk.init_multipart_upload(key).upload_id)
    sdk.list_multipart_uploads()
    sdk.put_object(key, b"x")
    sdk.get_bucket_versioning()
    twice = ["PostObject", "HeadObject", "DeleteObject", "InitiateMultipartUpload"]
    once = ["ListObjects", "GetObject", "UploadPart", "ListParts", "CompleteMultipartUpload"]
    once += ["AbortMultipartUpload", "ListMultipartUploads", "PutObject", "GetBucketVersioning"]
    assert stats() == {**dict.fromkeys(once, 1), **dict.fromkeys(twice, 2)}
