"""The OSS emulator through its WSGI app (werkzeug test client): PostObject judged in OSS's order,
V1/V4/STS signatures, OSS's XML errors, objects on disk, callbacks signed like OSS's.

Forms are built valid by default; each negative test changes one thing and asserts the exact
Code. Vectors come from tests/data/oss.json (copied from the team's shared vectors).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import struct
import threading
import zlib
from collections.abc import Callable
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
from werkzeug.test import Client

from local.oss_emulator import KEY_PATH, AccessKey, EmulatorConfig, OssEmulator
from local.oss_emulator.callback import (
    CallbackReply,
    CallbackRequest,
    CallbackUnreachable,
    send_with_requests,
)
from local.oss_emulator.crc64 import Crc64, crc64
from local.oss_emulator.image import ImageInfo, image_info
from local.oss_emulator.keys import load_or_create_key
from local.oss_emulator.signature import v1_signature, v4_signature, v4_signing_key
from local.oss_emulator.store import ObjectStore
from tests.support.data import VECTORS

NOW = datetime(2030, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
BUCKET = "dev-bucket"
REGION = "cn-hangzhou"
AK, SK = "dev-access-key-id", "dev-access-key-secret"
PERMANENT = AccessKey(AK, SK)
STS = AccessKey("STS.dev-temporary-id", "dev-temporary-secret", "dev-sts-token")
CALLBACK_URL = "http://127.0.0.1:9/oss-callback?from=oss"

Field = tuple[str, str]
Upload = tuple[str, bytes, str | None]


# --- building forms -----------------------------------------------------------------------


def multipart(
    fields: list[Field],
    file: Upload | None,
    after: list[Field] = (),
    boundary: str = "9431149156168",
) -> tuple[bytes, str]:
    """Encode parts in exactly the given order (file last unless `after` says otherwise)."""
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    if file is not None:
        filename, data, ctype = file
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\n'
        ).encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    for name, value in after:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def b64json(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def v4_form(
    *,
    key: str = "uploads/alice/photo.png",
    conditions: list[Any] | None = None,
    extra_conditions: list[Any] = (),
    expiration: datetime = NOW + timedelta(minutes=5),
    signed_at: datetime = NOW,
    access_key: AccessKey = PERMANENT,
    region: str = REGION,
    fields: list[Field] = (),
    drop: tuple[str, ...] = (),
    override: dict[str, str] | None = None,
) -> list[Field]:
    """A valid V4 form (policy pins version, credential, date, bucket, key prefix, size)."""
    date = signed_at.strftime("%Y%m%dT%H%M%SZ")
    credential = f"{access_key.key_id}/{date[:8]}/{region}/oss/aliyun_v4_request"
    pinned: list[Any] = [
        {"bucket": BUCKET},
        {"x-oss-signature-version": "OSS4-HMAC-SHA256"},
        {"x-oss-credential": credential},
        {"x-oss-date": date},
    ]
    if access_key.security_token:
        pinned.append({"x-oss-security-token": access_key.security_token})
    body = (
        conditions
        if conditions is not None
        else [["starts-with", "$key", "uploads/alice/"], ["content-length-range", 1, 1024]]
    )
    policy = b64json(
        {
            "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conditions": pinned + body + list(extra_conditions),
        }
    )
    form = [
        ("key", key),
        ("policy", policy),
        ("x-oss-signature-version", "OSS4-HMAC-SHA256"),
        ("x-oss-credential", credential),
        ("x-oss-date", date),
        ("x-oss-signature", v4_signature(access_key.secret, date[:8], region, policy)),
    ]
    if access_key.security_token:
        form.append(("x-oss-security-token", access_key.security_token))
    form += list(fields)
    values = dict(form)
    values.update(override or {})
    return [(name, values[name]) for name, _ in form if name not in drop] + [
        (n, v) for n, v in (override or {}).items() if n not in dict(form)
    ]


def v1_form(
    *,
    key: str = "uploads/alice/photo.png",
    conditions: list[Any] | None = None,
    expiration: datetime = NOW + timedelta(minutes=5),
    access_key: AccessKey = PERMANENT,
    fields: list[Field] = (),
) -> list[Field]:
    body = (
        conditions
        if conditions is not None
        else [
            {"bucket": BUCKET},
            ["starts-with", "$key", "uploads/alice/"],
            ["content-length-range", 1, 1024],
        ]
    )
    policy = b64json({"expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"), "conditions": body})
    form = [
        ("key", key),
        ("policy", policy),
        ("OSSAccessKeyId", access_key.key_id),
        ("success_action_status", "200"),
        ("signature", v1_signature(access_key.secret, policy)),
    ]
    if access_key.security_token:
        form.append(("x-oss-security-token", access_key.security_token))
    return form + list(fields)


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def emulator_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Recorder:
    """A callback sender that records what the emulator sends and answers as told."""

    def __init__(self) -> None:
        self.sent: list[tuple[CallbackRequest, float]] = []
        self.reply: Callable[[CallbackRequest], CallbackReply] = lambda _: json_reply(
            {"Status": "OK"}
        )

    def __call__(self, request: CallbackRequest, timeout: float) -> CallbackReply:
        self.sent.append((request, timeout))
        return self.reply(request)


def json_reply(
    payload: Any, status: int = 200, content_type: str = "application/json"
) -> CallbackReply:
    body = json.dumps(payload).encode()
    return CallbackReply(
        status, {"content-type": content_type, "content-length": str(len(body))}, body
    )


class Emu:
    def __init__(self, tmp: Path, key: rsa.RSAPrivateKey, **config: Any) -> None:
        self.clock = NOW.timestamp()
        self.recorder = Recorder()
        settings_: dict[str, Any] = {
            "bucket": BUCKET,
            "region": REGION,
            "access_keys": (AccessKey(AK, SK), STS),
            "data_dir": tmp,
            "public_url": "http://127.0.0.1:9000",
            "cors_origins": frozenset(["http://127.0.0.1:8000"]),
        }
        settings_.update(config)
        self.app = OssEmulator(
            EmulatorConfig(**settings_),
            private_key=key,
            now=lambda: self.clock,
            send_callback=self.recorder,
        )
        self.client = Client(self.app)

    def post(
        self,
        fields: list[Field],
        file: Upload | None = ("photo.png", b"hello", None),
        after: list[Field] = (),
        headers: dict[str, str] | None = None,
    ) -> Any:
        body, ctype = multipart(fields, file, after)
        return self.client.post(
            "/",
            data=body,
            content_type=ctype,
            headers=headers or {},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )


@pytest.fixture
def emu(tmp_path: Path, emulator_key: rsa.RSAPrivateKey) -> Emu:
    return Emu(tmp_path, emulator_key)


def read(emu: Emu, path: str) -> bytes:
    with emu.client.get(path) as response:
        return bytes(response.data)


def code_of(response: Any) -> str:
    match = re.search(r"<Code>([^<]*)</Code>", response.get_data(as_text=True))
    return match.group(1) if match else ""


def message_of(response: Any) -> str:
    match = re.search(r"<Message>([^<]*)</Message>", response.get_data(as_text=True))
    return match.group(1) if match else ""


def assert_error(response: Any, status: int, code: str) -> None:
    assert (response.status_code, code_of(response)) == (status, code), response.get_data(
        as_text=True
    )
    assert response.headers["Content-Type"].startswith("application/xml")
    text = response.get_data(as_text=True)
    assert f"<RequestId>{response.headers['x-oss-request-id']}</RequestId>" in text
    assert re.search(r"<HostId>[a-z0-9-]+\.[^<]+</HostId>", text)


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


def png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (png(640, 480), ImageInfo(640, 480, "png")),
        (jpeg(200, 278), ImageInfo(200, 278, "jpg")),
        (b"GIF89a" + struct.pack("<HH", 31, 7) + b"\x00" * 8, ImageInfo(31, 7, "gif")),
        (
            b"RIFF\x00\x00\x00\x00WEBPVP8X"
            + b"\x0a\x00\x00\x00"
            + b"\x00" * 4
            + (99).to_bytes(3, "little")
            + (49).to_bytes(3, "little"),
            ImageInfo(100, 50, "webp"),
        ),
        (
            b"RIFF\x00\x00\x00\x00WEBPVP8L"
            + b"\x00" * 4
            + b"\x2f"
            + bytes([0x3F, 0xC0, 0x0F, 0x00]),
            ImageInfo(64, 64, "webp"),
        ),
        (
            b"RIFF\x00\x00\x00\x00WEBPVP8 "
            + b"\x00" * 4
            + b"\x00" * 3
            + b"\x9d\x01\x2a"
            + struct.pack("<HH", 320, 240),
            ImageInfo(320, 240, "webp"),
        ),
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


def test_v4_key_chain_matches_vector() -> None:
    vector = VECTORS["policy_v4"][0]
    date = vector["x_oss_date"][:8]
    assert v4_signing_key(vector["secret"], date, vector["region"]).hex() == vector["k_signing"]
    assert (
        v4_signature(vector["secret"], date, vector["region"], vector["policy"])
        == vector["signature"]
    )


def v1a_emulator(tmp: Path, key: rsa.RSAPrivateKey) -> Emu:
    vector = VECTORS["policy_v1"][0]
    emu = Emu(
        tmp, key, bucket="gen-post-policy", access_keys=(AccessKey("vector-ak", vector["secret"]),)
    )
    emu.clock = datetime(2020, 3, 19, 3, 0, tzinfo=timezone.utc).timestamp()
    return emu


def v1a_fields(policy: str, signature: str) -> list[Field]:
    return [
        ("key", "user/eric/${filename}"),
        ("x-oss-meta-tag", "dummy_etag_1"),
        ("OSSAccessKeyId", "vector-ak"),
        ("policy", policy),
        ("Signature", signature),
    ]


def test_v1a_vector_passes_the_signature_step(
    tmp_path: Path, emulator_key: rsa.RSAPrivateKey
) -> None:
    vector = VECTORS["policy_v1"][0]
    emu = v1a_emulator(tmp_path, emulator_key)
    response = emu.post(
        v1a_fields(vector["policy"], vector["signature"]),
        file=("report.txt", b"x" * 10, "text/plain"),
    )
    assert code_of(response) != "SignatureDoesNotMatch"
    # With the clock before its expiration, the whole Java SDK policy holds (`\\$` read as `$`).
    assert response.status_code == 204, response.get_data(as_text=True)
    assert read(emu, "/user/eric/report.txt") == b"x" * 10
    # Whatever the later checks say: once expired, the refusal comes from the policy step.
    emu.clock = datetime(2021, 1, 1, tzinfo=timezone.utc).timestamp()
    late = emu.post(v1a_fields(vector["policy"], vector["signature"]))
    assert_error(late, 403, "AccessDenied")
    assert message_of(late) == "Invalid according to Policy: Policy expired."


@pytest.mark.parametrize("which", ["policy", "signature"])
def test_v1a_vector_one_character_changed_fails(
    tmp_path: Path, emulator_key: rsa.RSAPrivateKey, which: str
) -> None:
    vector = VECTORS["policy_v1"][0]
    emu = v1a_emulator(tmp_path, emulator_key)
    policy, signature = vector["policy"], vector["signature"]
    if which == "policy":
        policy = policy[:10] + ("A" if policy[10] != "A" else "B") + policy[11:]
    else:
        signature = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert_error(emu.post(v1a_fields(policy, signature)), 403, "SignatureDoesNotMatch")


def test_v4a_vector_uploads(tmp_path: Path, emulator_key: rsa.RSAPrivateKey) -> None:
    vector = VECTORS["policy_v4"][0]
    emu = Emu(tmp_path, emulator_key, bucket="examplebucket", access_keys=(AccessKey("ak", "sk"),))
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
    assert (head.status_code, head.data, head.headers["Content-Length"]) == (
        200,
        b"",
        str(len(data)),
    )


@pytest.mark.parametrize(
    ("status", "expected"), [("200", 200), ("201", 201), ("204", 204), ("302", 204), (None, 204)]
)
def test_success_action_status(emu: Emu, status: str | None, expected: int) -> None:
    fields = [("success_action_status", status)] if status else []
    response = emu.post(v4_form(fields=fields))
    assert response.status_code == expected
    if expected == 201:
        text = response.get_data(as_text=True)
        assert "<Key>uploads/alice/photo.png</Key>" in text
        assert "<Bucket>dev-bucket</Bucket>" in text
        assert "<Location>http://127.0.0.1:9000/uploads/alice/photo.png</Location>" in text
    else:
        assert response.data == b""


def test_v1_upload_with_case_insensitive_names(emu: Emu) -> None:
    fields = [(name.upper() if name == "key" else name, value) for name, value in v1_form()]
    assert ("KEY", "uploads/alice/photo.png") in fields
    assert emu.post(fields).status_code == 200


def test_fields_after_file_are_ignored(emu: Emu) -> None:
    response = emu.post(
        v4_form(), after=[("submit", "Upload to OSS"), ("success_action_status", "201")]
    )
    assert response.status_code == 204


def test_key_after_file_is_not_seen(emu: Emu) -> None:
    fields = [f for f in v4_form() if f[0] != "key"]
    assert_error(
        emu.post(fields, after=[("key", "uploads/alice/photo.png")]), 400, "InvalidArgument"
    )


def test_filename_expands_after_the_policy(emu: Emu) -> None:
    form = v4_form(
        key="uploads/alice/${filename}", conditions=[["eq", "$key", "uploads/alice/${filename}"]]
    )
    assert emu.post(form, file=("some/dir/cat.txt", b"meow", None)).status_code == 204
    assert read(emu, "/uploads/alice/cat.txt") == b"meow"


def test_content_type_precedence(emu: Emu) -> None:
    emu.post(
        v4_form(key="uploads/alice/a.bin", fields=[("Content-Type", "text/plain")]),
        file=("a", b"1", None),
    )
    assert emu.client.head("/uploads/alice/a.bin").headers["Content-Type"] == "text/plain"
    emu.post(
        v4_form(key="uploads/alice/b.bin", fields=[("Content-Type", "text/plain")]),
        file=("b", b"1", "image/png"),
    )
    assert emu.client.head("/uploads/alice/b.bin").headers["Content-Type"] == "image/png"
    emu.post(
        v4_form(key="uploads/alice/c.bin", fields=[("x-oss-content-type", "text/csv")]),
        file=("c", b"1", "image/png"),
    )
    assert emu.client.head("/uploads/alice/c.bin").headers["Content-Type"] == "text/csv"
    emu.post(v4_form(key="uploads/alice/d.pdf"), file=("d", b"1", None))
    assert emu.client.head("/uploads/alice/d.pdf").headers["Content-Type"] == "application/pdf"


def test_forbid_overwrite(emu: Emu) -> None:
    form = v4_form(fields=[("x-oss-forbid-overwrite", "true")])
    assert emu.post(form, file=("a", b"first", None)).status_code == 204
    assert_error(emu.post(form, file=("a", b"second", None)), 409, "FileAlreadyExists")
    assert read(emu, "/uploads/alice/photo.png") == b"first"
    assert emu.post(v4_form(), file=("a", b"third", None)).status_code == 204
    assert read(emu, "/uploads/alice/photo.png") == b"third"


# --- the order: form shape → signature → policy → size --------------------------------------


def test_not_multipart_is_malformed(emu: Emu) -> None:
    response = emu.client.post("/", data=b"key=a", content_type="application/x-www-form-urlencoded")
    assert_error(response, 400, "MalformedPOSTRequest")


def test_truncated_body_is_malformed(emu: Emu) -> None:
    body, ctype = multipart(v4_form(), ("a", b"data", None))
    assert_error(
        emu.client.post("/", data=body[:-30], content_type=ctype), 400, "MalformedPOSTRequest"
    )


def test_missing_file(emu: Emu) -> None:
    assert_error(emu.post(v4_form(), file=None), 400, "IncorrectNumberOfFilesInPOSTRequest")


def test_repeated_field(emu: Emu) -> None:
    assert_error(emu.post([*v4_form(), ("KEY", "uploads/alice/other")]), 400, "InvalidArgument")


def test_anonymous_post_is_refused(emu: Emu) -> None:
    assert_error(emu.post([("key", "uploads/alice/a")]), 403, "AccessDenied")


@pytest.mark.parametrize("missing", ["OSSAccessKeyId", "policy", "signature"])
def test_v1_needs_all_three_fields(emu: Emu, missing: str) -> None:
    fields = [f for f in v1_form() if f[0] != missing]
    assert_error(emu.post(fields), 400, "InvalidArgument")


def test_signature_is_checked_before_the_policy(emu: Emu) -> None:
    form = v4_form(expiration=NOW - timedelta(seconds=1))
    form = [(n, ("0" * 64 if n == "x-oss-signature" else v)) for n, v in form]
    assert_error(emu.post(form), 403, "SignatureDoesNotMatch")


def test_policy_is_checked_before_the_size(emu: Emu) -> None:
    big = ("a", b"x" * 2000, None)
    assert_error(
        emu.post(v4_form(expiration=NOW - timedelta(seconds=1)), file=big), 403, "AccessDenied"
    )
    assert_error(emu.post(v4_form(key="uploads/bob/x"), file=big), 403, "AccessDenied")
    response = emu.post(v4_form(), file=big)
    assert_error(response, 400, "EntityTooLarge")
    assert "<ProposedSize>2000</ProposedSize>" in response.get_data(as_text=True)
    assert "<MaxSizeAllowed>1024</MaxSizeAllowed>" in response.get_data(as_text=True)
    assert emu.client.get("/uploads/alice/photo.png").status_code == 404


def test_an_empty_file_is_too_small(emu: Emu) -> None:
    assert_error(emu.post(v4_form(), file=("a", b"", None)), 400, "EntityTooSmall")


def test_expired_policy(emu: Emu) -> None:
    form = v4_form(expiration=NOW + timedelta(seconds=30))
    emu.clock += 31
    response = emu.post(form)
    assert_error(response, 403, "AccessDenied")
    assert message_of(response) == "Invalid according to Policy: Policy expired."


# --- signatures and keys --------------------------------------------------------------------


def test_unknown_access_key(emu: Emu) -> None:
    assert_error(
        emu.post(v4_form(access_key=AccessKey("someone-else", SK))), 403, "InvalidAccessKeyId"
    )
    assert_error(
        emu.post(v1_form(access_key=AccessKey("someone-else", SK))), 403, "InvalidAccessKeyId"
    )


def test_wrong_secret(emu: Emu) -> None:
    assert_error(
        emu.post(v4_form(access_key=AccessKey(AK, "not-the-secret"))), 403, "SignatureDoesNotMatch"
    )
    assert_error(
        emu.post(v1_form(access_key=AccessKey(AK, "not-the-secret"))), 403, "SignatureDoesNotMatch"
    )


def test_tampered_policy(emu: Emu) -> None:
    form = v4_form()
    values = dict(form)
    policy = json.loads(base64.b64decode(values["policy"]))
    policy["conditions"][-1] = ["content-length-range", 1, 10**9]
    form = [(n, b64json(policy) if n == "policy" else v) for n, v in form]
    assert_error(emu.post(form), 403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("build", [v1_form, v4_form])
def test_sts_token(emu: Emu, build: Callable[..., list[Field]]) -> None:
    good = build(access_key=STS)
    assert emu.post(good).status_code in (200, 204)
    missing = [f for f in good if f[0] != "x-oss-security-token"]
    if build is v1_form:
        assert_error(emu.post(missing), 403, "InvalidAccessKeyId")
    wrong = [(n, "forged" if n == "x-oss-security-token" else v) for n, v in good]
    assert_error(emu.post(wrong), 403, "InvalidSecurityToken")


def test_v4_sts_token_missing_from_form(emu: Emu) -> None:
    form = [f for f in v4_form(access_key=STS) if f[0] != "x-oss-security-token"]
    assert_error(emu.post(form), 403, "InvalidAccessKeyId")


def test_permanent_key_with_a_token(emu: Emu) -> None:
    assert_error(
        emu.post(v1_form(fields=[("x-oss-security-token", "x")])), 403, "InvalidSecurityToken"
    )
    assert emu.post(v1_form(fields=[("x-oss-security-token", "")])).status_code == 200


# --- V4 date and credential -----------------------------------------------------------------


def test_v4_date_must_match_credential_day(emu: Emu) -> None:
    form = v4_form()
    values = dict(form)
    other_day = (NOW - timedelta(days=1)).strftime("%Y%m%dT%H%M%SZ")
    form = [(n, other_day if n == "x-oss-date" else v) for n, v in form]
    assert values["x-oss-date"] != other_day
    assert_error(emu.post(form), 400, "InvalidArgument")


def test_v4_form_date_must_equal_the_policy_date(emu: Emu) -> None:
    # Signature still valid (only the policy is signed), but the policy pins another x-oss-date.
    form = v4_form()
    later = (NOW + timedelta(seconds=5)).strftime("%Y%m%dT%H%M%SZ")
    form = [(n, later if n == "x-oss-date" else v) for n, v in form]
    response = emu.post(form)
    assert_error(response, 403, "AccessDenied")
    assert '"$x-oss-date"' in message_of(response)


def test_v4_credential_shape_and_region(emu: Emu) -> None:
    assert_error(emu.post(v4_form(region="cn-shanghai")), 400, "InvalidArgument")
    form = v4_form()
    bad = [
        (n, v.replace("aliyun_v4_request", "aws4_request") if n == "x-oss-credential" else v)
        for n, v in form
    ]
    assert_error(emu.post(bad), 400, "InvalidArgument")
    unsupported = [(n, "OSS2" if n == "x-oss-signature-version" else v) for n, v in form]
    assert_error(emu.post(unsupported), 400, "InvalidArgument")


def test_v4_date_far_from_the_clock(emu: Emu) -> None:
    assert_error(emu.post(v4_form(signed_at=NOW + timedelta(minutes=16))), 400, "InvalidArgument")
    assert_error(
        emu.post(v4_form(signed_at=NOW - timedelta(days=8), expiration=NOW + timedelta(days=1))),
        400,
        "InvalidArgument",
    )
    assert emu.post(v4_form(signed_at=NOW + timedelta(minutes=14))).status_code == 204


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
    headers = dict(request.headers)
    key_url = base64.b64decode(headers["x-oss-pub-key-url"]).decode()
    assert key_url == "http://127.0.0.1:9000" + KEY_PATH
    pem = read(emu, KEY_PATH)
    public_key = serialization.load_pem_public_key(pem)
    assert isinstance(public_key, rsa.RSAPublicKey)
    path, _, query = request.url.split("//", 1)[1].partition("/")[2].partition("?")
    signed = (
        unquote("/" + path).encode()
        + (b"?" + query.encode() if query else b"")
        + b"\n"
        + request.body
    )
    md5 = hashes.MD5()  # noqa: S303 - OSS's digest for callback signatures
    public_key.verify(base64.b64decode(headers["Authorization"]), signed, padding.PKCS1v15(), md5)


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


def test_callback_json_mode(emu: Emu) -> None:
    body = '{"object":${object},"size":${size},"h":${imageInfo.height},"fmt":${imageInfo.format},"pic":"${imageInfo.width}","v":${x:var1}}'
    form = v4_form(
        fields=[
            ("callback", callback_field(callbackBody=body, callbackBodyType="application/json")),
            ("x:var1", 'say "hi"'),
        ]
    )
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
    assert dict(request.headers)["Content-Type"] == "application/json"


def test_callback_host_and_signed_path(emu: Emu) -> None:
    form = v4_form(
        fields=[
            (
                "callback",
                callback_field(callbackUrl="127.0.0.1:9/a%20b/cb", callbackHost="api.example.com"),
            )
        ]
    )
    assert emu.post(form).status_code == 200
    ((request, _),) = emu.recorder.sent
    assert request.url == "http://127.0.0.1:9/a%20b/cb"
    assert dict(request.headers)["Host"] == "api.example.com"
    verify_oss_signature(emu, request)


def body_reply(
    status: int, body: bytes, headers: dict[str, str]
) -> Callable[[CallbackRequest], CallbackReply]:
    return lambda _: CallbackReply(status, headers, body)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (body_reply(500, b"{}", {"content-length": "2"}), "Error status : 500."),
        (body_reply(201, b"{}", {"content-length": "2"}), "Error status : 201."),
        (
            body_reply(200, b"{}", {}),
            "Error Status : 200.User server return too long content-length value",
        ),
        (
            body_reply(200, b"<html>", {"content-length": "6"}),
            "Response body is not valid json format.",
        ),
        (
            body_reply(200, b'\xef\xbb\xbf{"a":1}', {"content-length": "10"}),
            "Response body is not valid json format.",
        ),
    ],
)
def test_callback_failures_answer_203_and_keep_the_object(
    emu: Emu, reply: Callable[[CallbackRequest], CallbackReply], message: str
) -> None:
    emu.recorder.reply = reply
    response = emu.post(v4_form(fields=[("callback", callback_field())]))
    assert_error(response, 203, "CallbackFailed")
    assert message_of(response) == message
    assert emu.client.head("/uploads/alice/photo.png").status_code == 200


def test_callback_xml_reply_is_accepted(emu: Emu) -> None:
    emu.recorder.reply = body_reply(
        200, b"<ok/>", {"content-length": "5", "content-type": "application/xml"}
    )
    response = emu.post(v4_form(fields=[("callback", callback_field())]))
    assert (response.status_code, response.data) == (200, b"<ok/>")


def test_callback_unreachable_then_next_url(emu: Emu) -> None:
    def reply(request: CallbackRequest) -> CallbackReply:
        if "first" in request.url:
            raise CallbackUnreachable(
                "Error status : -1. OSS can not connect to your callbackUrl, please check it."
            )
        return json_reply({"Status": "OK"})

    emu.recorder.reply = reply
    field = callback_field(callbackUrl="http://127.0.0.1:9/first;http://127.0.0.1:9/second")
    assert emu.post(v4_form(fields=[("callback", field)])).status_code == 200
    assert [r.url for r, _ in emu.recorder.sent] == [
        "http://127.0.0.1:9/first",
        "http://127.0.0.1:9/second",
    ]
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


def test_key_url_serves_the_public_key(emu: Emu, emulator_key: rsa.RSAPrivateKey) -> None:
    response = emu.client.get(KEY_PATH)
    assert response.status_code == 200
    public = serialization.load_pem_public_key(response.data)
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == emulator_key.public_key().public_numbers()
    assert public.key_size == 2048


def test_no_object_can_shadow_the_key_url(emu: Emu) -> None:
    form = v4_form(key=KEY_PATH[1:], conditions=[["content-length-range", 1, 1024]])
    assert_error(emu.post(form), 400, "InvalidObjectName")


def test_key_is_kept_across_restarts(tmp_path: Path) -> None:
    first = load_or_create_key(tmp_path)
    second = load_or_create_key(tmp_path)
    assert first.private_numbers() == second.private_numbers()
    assert (tmp_path / "callback_private_key.pem").stat().st_mode & 0o777 == 0o600


def test_cors(emu: Emu) -> None:
    ok = emu.client.options(
        "/",
        headers={
            "Origin": "http://127.0.0.1:8000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    assert ok.headers["Access-Control-Allow-Headers"] == "content-type"
    denied = emu.client.options(
        "/", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert_error(denied, 403, "AccessForbidden")
    body, ctype = multipart(v4_form(), ("a", b"1", None))
    posted = emu.client.post(
        "/", data=body, content_type=ctype, headers={"Origin": "http://127.0.0.1:8000"}
    )
    assert posted.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"
    assert "ETag" in posted.headers["Access-Control-Expose-Headers"]
    exposed = posted.headers["Access-Control-Expose-Headers"]
    assert exposed == "ETag, x-oss-hash-crc64ecma, x-oss-request-id"
    assert posted.headers["Vary"] == "Origin"  # ResponseVary
    other = emu.client.get(KEY_PATH, headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert other.headers["Vary"] == "Origin"


def test_cors_is_what_we_deploy(emu: Emu) -> None:
    """deploy/oss/cors.xml allows POST and PUT only: the emulator used to allow any method and
    header."""
    origin = "http://127.0.0.1:8000"
    for method in ("DELETE", "GET"):
        refused = emu.client.options(
            "/", headers={"Origin": origin, "Access-Control-Request-Method": method}
        )
        assert_error(refused, 403, "AccessForbidden")
    read = emu.client.get(KEY_PATH, headers={"Origin": origin})
    assert "Access-Control-Allow-Origin" not in read.headers
    allowed = emu.client.options(
        "/", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert allowed.headers["Access-Control-Allow-Methods"] == "POST, PUT"
    assert allowed.headers["Access-Control-Max-Age"] == "600"


def test_unknown_object_and_methods(emu: Emu) -> None:
    assert_error(emu.client.get("/nothing/here"), 404, "NoSuchKey")
    assert_error(emu.client.get("/../../etc/passwd"), 404, "NoSuchKey")
    # PutObject exists (test_emulator_multipart.py); an unsigned one is refused like OSS refuses it.
    assert_error(emu.client.put("/a", data=b"x"), 403, "AccessDenied")
    assert_error(emu.client.post("/a", data=b"x"), 405, "MethodNotAllowed")


def test_content_md5_of_the_request(emu: Emu) -> None:
    body, ctype = multipart(v4_form(), ("a", b"1", None))
    good = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324
    assert (
        emu.client.post(
            "/", data=body, content_type=ctype, headers={"Content-MD5": good}
        ).status_code
        == 204
    )
    bad = emu.client.post(
        "/", data=body, content_type=ctype, headers={"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="}
    )
    assert_error(bad, 400, "InvalidDigest")


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
    assert read(emu, "/uploads/alice/photo.png") == b"binary\x00data"


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=80))
def test_store_paths_never_leave_the_directory(key: str) -> None:
    root = Path("/nonexistent-root-for-paths")
    store = ObjectStore.__new__(ObjectStore)
    store.objects = root / "objects"
    data, meta = store._paths(key)
    assert data.parent == root / "objects"
    assert meta.parent == root / "objects"
    assert re.fullmatch(r"[0-9a-f]{64}", data.name)


# --- the callback sender over loopback ------------------------------------------------------


def read_request(connection: socket.socket) -> bytes:
    """Read one HTTP request: the head, then Content-Length bytes of body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture
def loopback() -> Any:
    """A one-shot HTTP server on 127.0.0.1 that answers with raw bytes (or hangs)."""
    servers: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def serve(answer: bytes | None, *, hang: threading.Event | None = None) -> str:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        servers.append(listener)

        def run() -> None:
            connection, _ = listener.accept()
            with connection:
                read_request(connection)  # all of it: answering early resets the sender's upload
                if hang is not None:
                    hang.wait(30)  # until the test has its answer; a sender that waits gets a 200
                if answer is not None:
                    connection.sendall(answer)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return f"http://127.0.0.1:{listener.getsockname()[1]}/cb"

    yield serve
    for thread in threads:
        thread.join(timeout=5)
    for listener in servers:
        listener.close()


def post_to(url: str, timeout: float = 5.0) -> CallbackReply:
    return send_with_requests(
        CallbackRequest(url, (("Content-Type", "text/plain"),), b"a=1"), timeout
    )


def test_sender_reads_the_reply(loopback: Any) -> None:
    url = loopback(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    reply = post_to(url)
    assert (reply.status, reply.body, reply.headers["content-length"], reply.complete) == (
        200,
        b"{}",
        "2",
        True,
    )


def test_sender_gives_up_after_the_timeout(loopback: Any) -> None:
    release = threading.Event()
    url = loopback(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", hang=release)
    with pytest.raises(CallbackUnreachable, match=r"reply timeout, cost: 500 MS, timeout: 500 MS"):
        post_to(url, timeout=0.5)
    release.set()


def test_sender_does_not_follow_redirects(loopback: Any) -> None:
    url = loopback(
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/x\r\nContent-Length: 0\r\n\r\n"
    )
    assert post_to(url).status == 302


def test_sender_stops_reading_past_one_megabyte(loopback: Any) -> None:
    body = b"[" + b"0," * (600 * 1024) + b"0]"
    url = loopback(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    reply = post_to(url)
    assert not reply.complete
    assert len(reply.body) <= 1024 * 1024 + 64 * 1024


def test_sender_cannot_connect() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CallbackUnreachable, match="can not connect"):
        post_to(f"http://127.0.0.1:{port}/cb")


def test_cors_rules_come_from_the_file(tmp_path: Path, emulator_key: rsa.RSAPrivateKey) -> None:
    rules = tmp_path / "cors.xml"
    rules.write_text(
        "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
        "<AllowedMethod>GET</AllowedMethod><AllowedHeader>x-oss-*</AllowedHeader>"
        "</CORSRule></CORSConfiguration>"
    )
    emu = Emu(tmp_path / "data", emulator_key, cors_file=rules)
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


def test_the_stats_count_each_oss_operation_and_not_themselves(
    tmp_path: Path, emulator_key: rsa.RSAPrivateKey
) -> None:
    """oss2 (signed) and a browser (unsigned) against the served emulator; stats count both."""
    from tests.oss_sdk import auth, bucket, serve
    from tests.test_emulator_objects import KEY, live, upload

    emu = live(tmp_path, emulator_key)

    def stats() -> dict[str, int]:
        response = emu.client.get("/.well-known/oss-emulator/stats")
        assert response.headers["Content-Type"] == "application/json"
        return dict(json.loads(response.get_data()))

    assert stats() == {}
    assert upload(emu).status_code == 204
    assert emu.post(v4_form(), file=None).status_code == 400  # refused: still a PostObject
    with serve(emu.app) as url:
        sdk = bucket(url, auth())
        assert sdk.head_object(KEY).content_length == 5
        assert [o.key for o in sdk.list_objects_v2(prefix="uploads/").object_list] == [KEY]
        assert sdk.get_object(KEY).read() == b"hello"
        sdk.delete_object(KEY)
        sdk.delete_object(KEY)  # 204 again: OSS's DeleteObject does not care
        with pytest.raises(oss2.exceptions.NotFound):
            sdk.head_object(KEY)
    assert stats() == {
        "PostObject": 2,
        "HeadObject": 2,
        "ListObjects": 1,
        "GetObject": 1,
        "DeleteObject": 2,
    }
