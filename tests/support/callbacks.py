"""Valid by default, override one thing: signed OSS callbacks for a valid grant (Stripe-style).

`CallbackBuilder.request()` renders the body exactly as OSS does in form mode (the real template of
`shared.callback.body`, each `${var}` replaced by its percent-encoded value), signs the string of
oss-protocol.md §6.2 with a test RSA key (PKCS#1 v1.5 + MD5, as OSS does) and points
`x-oss-pub-key-url` at a test key URL listed in CALLBACK_TRUSTED_KEY_URLS, answered by an
injected fetch. Each negative test changes exactly one thing. Also: WSGI environs and FC 3.0
events for the same request, and stores that fail or hang.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import threading
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from shared.callback.body import VARIABLES, callback_body_template
from shared.callback.settings import CallbackSettings
from shared.errors import Conflict, Unavailable
from shared.grant import Grant, issue_token
from shared.http import Request
from shared.objects import Head, Listed
from shared.records.base import PutOutcome, Record
from shared.settings import Secret
from shared.verify import ObjectMissing, Stored
from tests.support import fc

NOW = 1_800_000_000  # frozen wall clock (2027-01-15)
BUCKET = "test-bucket"
SECRET = "test-grant-secret-0123456789-abcdef"  # 32+ bytes, as GRANT_SECRET requires
OTHER_SECRET = "another-grant-secret-0123456789-xyz"
TEST_KEY_URL = "https://keys.test.invalid/callback_pub_key.pem"
CALLBACK_PATH = "/oss-callback"
USER = "alice"
PREFIX = "uploads/alice/photos/"
EXACT_KEY = PREFIX + "01jd6x4q5r8p2m3n4k5j6h7g8f.png"
UNREACHABLE_OSS = "http://127.0.0.1:9"  # the discard port: nothing listens, nothing leaves


@functools.cache
def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """One test key per size per test session (generating RSA keys is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def public_pem(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    """What OSS puts in Authorization: base64 of RSA PKCS#1 v1.5 over MD5 (OSS's choice)."""
    signature = key.sign(message, padding.PKCS1v15(), hashes.MD5())  # noqa: S303
    return base64.b64encode(signature).decode("ascii")


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def settings_env(tmp_path: Any = None, **overrides: str) -> dict[str, str]:
    env = {
        "OSS_BUCKET": BUCKET,
        "OSS_REGION": "cn-hangzhou",
        "OSS_ENDPOINT": UNREACHABLE_OSS,  # a test that forgets to inject a remover stays local
        "OSS_ACCESS_KEY_ID": "callback-test-key-id",
        "OSS_ACCESS_KEY_SECRET": "callback-test-key-secret",
        "GRANT_SECRET": SECRET,
        "CALLBACK_TRUSTED_KEY_URLS": TEST_KEY_URL,
        "RECORDS_BACKEND": "sqlite",
        "SQLITE_PATH": str(tmp_path / "records.sqlite3") if tmp_path else "records.sqlite3",
        # The grant, body and record layers are tested without OSS reads; the verification
        # tests (test_callback_verify.py, test_attacks.py) turn them on against a FakeBucket.
        "UPLOAD_VERIFY": "off",
    }
    env.update(overrides)
    return env


def callback_settings(tmp_path: Any = None, **overrides: str) -> CallbackSettings:
    return CallbackSettings.from_env(settings_env(tmp_path, **overrides))


def render_form_body(template: str, values: Mapping[str, str]) -> bytes:
    """OSS form mode (§5.5): each `${var}` becomes its percent-encoded value; constants stay."""
    body = template
    for _, var in VARIABLES:
        body = body.replace("${" + var + "}", quote(values.get(var, ""), safe="-._~"))
    return body.encode("utf-8")


class Clock:
    """A clock a test moves by hand (`clock.now = …`); callable like `time.time`."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class KeyServer:
    """An injected fetch: serves PEMs by URL, records every call, raises for unknown URLs."""

    def __init__(self, pems: Mapping[str, bytes] | None = None) -> None:
        self.pems = dict(pems or {})
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, url: str) -> bytes:
        with self._lock:
            self.calls.append(url)
        if url not in self.pems:
            raise AssertionError(f"unexpected key fetch: {url}")
        return self.pems[url]


class Removals:
    """An injected remover factory: records (key, etag) of every deletion the callback asks for."""

    def __init__(self, outcome: str = "deleted", error: Exception | None = None) -> None:
        self.outcome = outcome
        self.error = error
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, credentials: Any) -> Removals:
        return self

    def remove(self, key: str, etag: str) -> Any:
        with self._lock:
            self.calls.append((key, etag))
        if self.error is not None:
            raise self.error
        return self.outcome


class FakeBucket:
    """An injected reader and remover factory over in-memory objects (what OSS would answer).

    `stored` behaves as HeadObject / ranged GetObject with If-Match: 404 → ObjectMissing, another
    etag → Conflict. `hidden_reads` makes the next reads 404 (a new object not yet visible);
    `error` makes every read raise it (an OSS outage). `list`, `head` and `abort_upload` answer
    as ListObjectsV2, HeadObject and AbortMultipartUpload do (shared.objects.Objects, for
    reconciliation and the sweep); `gone` keys are listed but deleted before any read.
    """

    def __init__(self) -> None:
        self.objects: dict[str, tuple[str, bytes, str]] = {}
        self.meta: dict[str, tuple[int, str]] = {}  # key → (last modified, Content-Type)
        self.reads: list[tuple[str, str, int]] = []
        self.heads: list[str] = []
        self.removed: list[tuple[str, str]] = []
        self.deleted: list[str] = []
        self.gone: set[str] = set()
        self.uploads: dict[str, str] = {}  # multipart uploads in progress: UploadId → key
        self.aborted: list[str] = []
        self.hidden_reads = 0
        self.error: Exception | None = None
        self._lock = threading.Lock()

    def __call__(self, credentials: Any) -> FakeBucket:
        return self

    def put(
        self,
        key: str,
        data: bytes,
        *,
        crc64: str = "",
        at: int = NOW,
        mime: str = "application/octet-stream",
    ) -> dict[str, str]:
        """Store `data`; return the callback values OSS would send for it (etag, size, crc64)."""
        etag = hashlib.md5(data).hexdigest().upper()  # noqa: S324 - OSS's ETag
        crc = crc64 or str(zlib.crc32(data))
        self.objects[key] = (etag, data, crc)
        self.meta[key] = (at, mime)
        return {"object": key, "etag": etag, "size": str(len(data)), "crc64": crc}

    def stored(self, key: str, etag: str, first_bytes: int) -> Stored:
        with self._lock:
            self.reads.append((key, etag, first_bytes))
            if self.error is not None:
                raise self.error
            if self.hidden_reads > 0:
                self.hidden_reads -= 1
                raise ObjectMissing(key)
        if key in self.gone or key not in self.objects:
            raise ObjectMissing(key)
        current, data, crc = self.objects[key]
        if current != etag.strip('"').upper():
            raise Conflict("the bucket holds a different object under this key (etag mismatch)")
        return Stored(len(data), crc, data[: max(first_bytes, 0)])

    def remove(self, key: str, etag: str) -> str:
        with self._lock:
            self.removed.append((key, etag))
        stored = self.objects.get(key)
        if stored is None:
            return "gone"
        if stored[0] != etag.strip('"').upper():
            return "replaced"
        del self.objects[key]
        self.deleted.append(key)
        return "deleted"

    def list(self, prefix: str) -> Iterator[Listed]:
        for key in sorted(self.objects):
            if key.startswith(prefix):
                etag, data, _ = self.objects[key]
                yield Listed(key, etag, len(data), self.meta[key][0])

    def head(self, key: str) -> Head | None:
        self.heads.append(key)
        if key in self.gone or key not in self.objects:
            return None
        etag, data, crc = self.objects[key]
        at, mime = self.meta[key]
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324
        return Head(key, len(data), etag, mime, crc, md5, at)

    def abort_upload(self, key: str, upload_id: str) -> bool:
        """False for an upload OSS no longer has."""
        if self.uploads.get(upload_id) != key:
            return False
        del self.uploads[upload_id]
        self.aborted.append(upload_id)
        return True


def no_network(url: str) -> bytes:
    """A fetch that must never be called (pinned key, untrusted URL)."""
    raise AssertionError(f"network call to {url}")


@dataclass
class CallbackBuilder:
    """Builds a valid signed callback request; keyword overrides change exactly one thing."""

    key: rsa.RSAPrivateKey
    now: int = NOW
    grant: Grant = field(
        default_factory=lambda: Grant(
            grant_id="g-0001",
            user=USER,
            bucket=BUCKET,
            key=EXACT_KEY,
            prefix=None,
            max_bytes=1024 * 1024,
            expires_at=NOW + 300,
        )
    )
    secret: str = SECRET

    def prefix_grant(self, **overrides: Any) -> Grant:
        values: dict[str, Any] = {"key": None, "prefix": PREFIX, "grant_id": "g-prefix"}
        values.update(overrides)
        return replace(self.grant, **values)

    def token(self, grant: Grant | None = None, secret: str | None = None) -> str:
        return issue_token(grant or self.grant, Secret(secret or self.secret))

    def values(self, grant: Grant | None = None, **overrides: str) -> dict[str, str]:
        """The OSS variable values of a genuine upload matching `grant`."""
        grant = grant or self.grant
        values = {
            "bucket": grant.bucket,
            "object": grant.key or (grant.prefix or "") + "cat.png",
            "etag": "D8E8FCA2DC0F896FD7CB4CB0031BA249",
            "size": "5120",
            "mimeType": "image/png",
            "imageInfo.height": "480",
            "imageInfo.width": "640",
            "imageInfo.format": "png",
            "crc64": "8707216298389596612",
            "contentMd5": "2OjooNwPiW/Xy0ywAxuiSQ==",
            "clientIp": "203.0.113.7",
            "reqId": "5C2F0E1A7B3D4E5F60718293",
            "operation": "PostObject",
        }
        values.update(overrides)
        return values

    def body(self, grant: Grant | None = None, token: str | None = None, **values: str) -> bytes:
        template = callback_body_template(token or self.token(grant))
        return render_form_body(template, self.values(grant, **values))

    def request(
        self,
        *,
        grant: Grant | None = None,
        token: str | None = None,
        values: Mapping[str, str] | None = None,
        body: bytes | None = None,
        method: str = "POST",
        path: bytes = CALLBACK_PATH.encode(),
        query: str = "",
        signing_key: rsa.RSAPrivateKey | None = None,
        signed: bytes | None = None,
        signed_prefix: bytes | None = None,
        authorization: str | None = None,
        key_url: str | None = TEST_KEY_URL,
        key_url_header: str | None = None,
        headers: Mapping[str, str] | None = None,
        omit: tuple[str, ...] = (),
    ) -> Request:
        """A valid signed callback; `signed` overrides the signed bytes, `signed_prefix` the path
        and query signed before the body, `authorization` the header."""
        if body is None:
            body = self.body(grant, token, **dict(values or {}))
        message = signed
        if message is None:
            if signed_prefix is None:
                signed_prefix = path + (b"?" + query.encode() if query else b"")
            message = signed_prefix + b"\n" + body
        all_headers = {
            "content-type": "application/x-www-form-urlencoded",
            "content-length": str(len(body)),
            "authorization": authorization or sign(signing_key or self.key, message),
            "x-oss-pub-key-url": key_url_header or b64(key_url or ""),
            "x-oss-bucket": BUCKET,
            "x-oss-request-id": "5C2F0E1A7B3D4E5F60718293",
            "user-agent": "aliyun-oss-callback",
        }
        all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
        for name in omit:
            all_headers.pop(name.lower(), None)
        return Request(
            method=method,
            path=path.decode("utf-8", "replace"),
            signed_path=path,
            query_string=query,
            headers=all_headers,
            body=body,
            request_id="fc-req-1",
            client_ip="198.51.100.1",
        )


def wsgi_environ(request: Request, *, path_info: str | None = None, **extra: Any) -> dict[str, Any]:
    """The FC 2.0 WSGI environ for a request (`path_info` overrides the path FC hands over)."""
    env = fc.environ(
        request.method, request.signed_path, request.query_string, request.body, request.headers
    )
    if path_info is not None:
        env["PATH_INFO"] = path_info
    env.update(extra)
    return env


def fc3_event(request: Request, *, base64_body: bool = False) -> bytes:
    """The FC 3.0 HTTP trigger event for a request: rawPath URL-encoded, body maybe base64."""
    built = fc.event(
        request.method,
        quote(request.signed_path, safe="/"),
        headers=request.headers,
        raw_query=request.query_string,
        body=request.body,
        base64_body=base64_body,
    )
    built["requestContext"]["http"]["path"] = request.path
    return json.dumps(built).encode()


class DownStore:
    """A store whose every write fails as the backends report an outage."""

    def __init__(self) -> None:
        self.puts = 0

    def put(self, record: Record, *, replace: bool) -> PutOutcome:
        self.puts += 1
        raise Unavailable("the record store is unavailable; try again")

    def get(self, bucket: str, key: str) -> Record | None:
        return None

    def list_by_owner(self, owner: str, *, limit: int = 50, cursor: str | None = None) -> Any:
        raise Unavailable("the record store is unavailable; try again")

    # The ledger's reads find nothing and its counters take what they are given, so that the
    # callback reaches the record write, which is where these stores fail.
    def get_grant(self, owner: str, grant_id: str) -> None:
        return None

    def charge(self, owner: str, size: int, files: int, limits: Any) -> None:
        return None

    def refund(self, owner: str, size: int, files: int) -> None:
        return None


class HangingStore(DownStore):
    """A store whose writes block until released (a store that stopped answering); `finished`
    is set once a write returns, released or after 30 s."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()
        self.finished = threading.Event()

    def put(self, record: Record, *, replace: bool) -> PutOutcome:
        self.entered.set()
        self.release.wait(30)
        self.finished.set()
        return super().put(record, replace=replace)
