"""The OSS emulator (local/oss_emulator/) under test: one configured instance, the forms a browser
posts to it, objects seeded straight into its store, and OSS's errors read back.

`Emu` is the WSGI app with a werkzeug client, a settable clock and a recorded callback sender;
`emu.serving()` puts it on loopback for the SDKs (`emu.sdk()` is an oss2 bucket on it). `v4_form`
and `v1_form` are valid PostObject forms; each negative test changes one thing.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import oss2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.test import Client

from local.oss_emulator import AccessKey, EmulatorConfig, OssEmulator
from local.oss_emulator.callback import CallbackReply, CallbackRequest
from local.oss_emulator.signature import v1_signature, v4_signature
from local.oss_emulator.store import StoredObject
from shared.credentials import Credentials
from shared.settings import Secret
from shared.sign import presign
from shared.sign.presign import Presigned
from tests.oss_sdk import BUCKET, KEY_ID, REGION, SECRET, auth, bucket, serve

NOW = datetime(2030, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
AK, SK = KEY_ID, SECRET
PERMANENT = AccessKey(AK, SK)
STS = AccessKey("STS.dev-temporary-id", "dev-temporary-secret", "dev-security-token")
LIMITED = AccessKey("limited", "limited-secret")  # no rights unless a test's RAM policy grants some
CALLBACK_URL = "http://127.0.0.1:9/oss-callback?from=oss"
ORIGIN = "http://127.0.0.1:8000"

Field = tuple[str, str]
Upload = tuple[str, bytes, str | None]

# --- forms ------------------------------------------------------------------------------------


def _part(boundary: str, name: str, value: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    )


def multipart(
    fields: Sequence[Field],
    file: Upload | None,
    after: Sequence[Field] = (),
    boundary: str = "9431149156168",
) -> tuple[bytes, str]:
    """Encode parts in exactly the given order (file last unless `after` says otherwise)."""
    out = bytearray(b"".join(_part(boundary, n, v) for n, v in fields))
    if file is not None:
        filename, data, ctype = file
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\n'
        ).encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += b"".join(_part(boundary, n, v) for n, v in after)
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def b64json(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def v4_form(
    *,
    key: str = "uploads/alice/photo.png",
    conditions: list[Any] | None = None,
    expiration: datetime | None = None,
    signed_at: datetime = NOW,
    access_key: AccessKey = PERMANENT,
    region: str = REGION,
    fields: Sequence[Field] = (),
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
    if conditions is None:
        conditions = [["starts-with", "$key", "uploads/alice/"], ["content-length-range", 1, 1024]]
    deadline = expiration or signed_at + timedelta(minutes=5)
    policy = b64json(
        {
            "expiration": deadline.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conditions": pinned + conditions,
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
    return form + list(fields)


def v1_form(
    *,
    key: str = "uploads/alice/photo.png",
    expiration: datetime = NOW + timedelta(minutes=5),
    access_key: AccessKey = PERMANENT,
    fields: Sequence[Field] = (),
) -> list[Field]:
    conditions = [
        {"bucket": BUCKET},
        ["starts-with", "$key", "uploads/alice/"],
        ["content-length-range", 1, 1024],
    ]
    policy = b64json(
        {"expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"), "conditions": conditions}
    )
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


def replaced(form: Sequence[Field], name: str, value: str) -> list[Field]:
    return [(n, value if n == name else v) for n, v in form]


def without(form: Sequence[Field], name: str) -> list[Field]:
    return [(n, v) for n, v in form if n != name]


# --- the emulator -------------------------------------------------------------------------------


def json_reply(
    payload: Any, status: int = 200, content_type: str = "application/json"
) -> CallbackReply:
    body = json.dumps(payload).encode()
    return CallbackReply(
        status, {"content-type": content_type, "content-length": str(len(body))}, body
    )


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


def seed(
    app: OssEmulator, key: str, data: bytes = b"x", etag: str = "E", **attributes: Any
) -> None:
    """An object put straight into the store (no request, no stats)."""
    source = app.store.spool / "seed"
    source.write_bytes(data)
    fields: dict[str, Any] = {"content_type": "text/plain", "crc64": "1", "content_md5": "m"}
    fields.update(last_modified=1e9, **attributes)
    app.store.put(StoredObject(key, len(data), etag, **fields), source, forbid_overwrite=False)


class Emu:
    """The emulator on a clock the test sets: NOW, or the real time when `live` (the SDKs sign
    with the real time)."""

    def __init__(
        self, tmp: Path, key: rsa.RSAPrivateKey, *, live: bool = False, **config: Any
    ) -> None:
        self.clock = time.time() if live else NOW.timestamp()
        self.key = key  # the private key the emulator is given (it signs callbacks with it)
        self.recorder = Recorder()
        self.url = ""
        settings: dict[str, Any] = {
            "bucket": BUCKET,
            "region": REGION,
            "access_keys": (PERMANENT, STS, LIMITED),
            "data_dir": tmp,
            "public_url": "http://127.0.0.1:9000",
            "cors_origins": frozenset([ORIGIN]),
        }
        settings.update(config)
        self.app = OssEmulator(
            EmulatorConfig(**settings),
            private_key=key,
            now=lambda: self.clock,
            send_callback=self.recorder,
        )
        self.client = Client(self.app)

    def post(
        self,
        fields: Sequence[Field],
        file: Upload | None = ("photo.png", b"hello", None),
        after: Sequence[Field] = (),
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

    def upload(self, *fields: Field, key: str = "uploads/alice/photo.png") -> Any:
        """A PostObject of b"hello" as image/png, signed at the emulator's clock."""
        now = datetime.fromtimestamp(self.clock, timezone.utc)
        return self.post(
            v4_form(key=key, signed_at=now, fields=fields), ("p", b"hello", "image/png")
        )

    def read(self, path: str) -> bytes:
        with self.client.get(path) as response:
            return bytes(response.data)

    def seed(self, key: str, data: bytes = b"x", etag: str = "E", **attributes: Any) -> None:
        seed(self.app, key, data, etag, **attributes)

    @contextmanager
    def serving(self) -> Iterator[str]:
        with serve(self.app) as url:
            self.url = url
            yield url

    def sdk(self, version: str = "v4", **credentials: Any) -> oss2.Bucket:
        return bucket(self.url, auth(version, **credentials))


# --- presigned URLs: the project's signer ------------------------------------------------------


def presigned(
    method: str,
    endpoint: str,
    key: str,
    *,
    version: str = "v4",
    now: float,
    token: str | None = None,
    expires: int = 300,
    **options: Any,
) -> Presigned:
    """shared/sign/presign.py's URL for the permanent key, or for STS with `token`."""
    credentials = (
        Credentials(STS.key_id, Secret(STS.secret), token) if token else Credentials(AK, Secret(SK))
    )
    common = {"endpoint": endpoint, "bucket": BUCKET, "key": key, "credentials": credentials}
    if version == "v1":
        return presign.presign_v1(method, now=now, expires=expires, **common, **options)
    return presign.presign_v4(method, region=REGION, now=now, expires=expires, **common, **options)


# --- OSS's answers ----------------------------------------------------------------------------


def _text(response: Any) -> str:
    """The body of a werkzeug test response or of a `requests` response over loopback."""
    get_data = getattr(response, "get_data", None)
    return get_data(as_text=True) if get_data is not None else str(response.text)


def code_of(response: Any) -> str:
    match = re.search(r"<Code>([^<]*)</Code>", _text(response))
    return match.group(1) if match else ""


def message_of(response: Any) -> str:
    match = re.search(r"<Message>([^<]*)</Message>", _text(response))
    return match.group(1) if match else ""


def assert_error(response: Any, status: int, code: str) -> None:
    """OSS's error document: the status, the Code, the request id echoed, a HostId."""
    text = response.get_data(as_text=True)
    assert (response.status_code, code_of(response)) == (status, code), text
    assert response.headers["Content-Type"].startswith("application/xml")
    assert f"<RequestId>{response.headers['x-oss-request-id']}</RequestId>" in text
    assert re.search(r"<HostId>[a-z0-9-]+\.[^<]+</HostId>", text)


def refusal(call: Callable[[], Any]) -> tuple[int, str]:
    """The (status, code) of the OssError an SDK call raises."""
    with pytest.raises(oss2.exceptions.OssError) as caught:
        call()
    return caught.value.status, caught.value.code


# --- fixtures (tests/conftest.py registers this module as a plugin) ---------------------------


@pytest.fixture
def emu(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> Emu:
    """An emulator at NOW, driven through its WSGI app."""
    return Emu(tmp_path, oss_key)


@pytest.fixture
def make(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> Iterator[Callable[..., Emu]]:
    """An emulator on the real clock, configured as the test asks, served on loopback."""
    with ExitStack() as stack:

        def served(**config: Any) -> Emu:
            emu = Emu(tmp_path, oss_key, live=True, **config)
            stack.enter_context(emu.serving())
            return emu

        yield served


@pytest.fixture
def served(make: Callable[..., Emu]) -> Emu:
    return make()
