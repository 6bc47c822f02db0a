"""Settings, tokens and signed callbacks the benchmarks feed through the real handlers.

Settings are plain dicts (the functions read their environment into typed settings once); the
callbacks are signed the way OSS signs them (oss-protocol.md §6.2) with our own RSA key, since
nobody but OSS holds OSS's private key. Keys, signing, body rendering, tokens and WSGI environs
are the test suite's own (tests/support/), so bench feeds exactly what the tests prove.
"""

from __future__ import annotations

import base64
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from shared.callback.body import BODY_TYPE
from shared.grant import Grant, issue_token
from shared.settings import Secret
from tests.support import fc
from tests.support.callbacks import render_form_body, settings_env, sign
from tests.support.sign import sign_env as support_sign_env
from tests.support.sign import token

BUCKET = "bench-bucket"
REGION = "cn-hangzhou"
USER = "alice"
GRANT_SECRET = "bench-grant-secret-0123456789abcdef-0001"
JWT_SECRET = "bench-jwt-secret-0123456789abcdef-000001"
CALLBACK_PATH = "/oss-callback"
SIGN_QUERY = "path=avatars/&filename=photo.png&size=204800&type=image/png"


def sign_env(**overrides: str) -> dict[str, str]:
    """The tests' sign settings (V4, JWT auth) for the bench bucket and secrets, SQLite records
    (listing only); no CORS and no size cap beyond the default, so nothing extra is measured."""
    bench: dict[str, str | None] = dict(
        OSS_BUCKET=BUCKET,
        OSS_REGION=REGION,
        OSS_ACCESS_KEY_ID="LTAI5tBenchKeyId0000",  # a real ID's length: policy sizes are measured
        CALLBACK_URL="https://callback.example.com" + CALLBACK_PATH,
        AUTH_MODE="jwt",
        AUTH_JWT_SECRET=JWT_SECRET,
        GRANT_SECRET=GRANT_SECRET,
        RECORDS_BACKEND="sqlite",
        SQLITE_PATH=os.path.join(tempfile.gettempdir(), "bench-sign-ledger.sqlite3"),
        CORS_ALLOWED_ORIGINS=None,
        UPLOAD_MAX_BYTES=None,
    )
    return support_sign_env(**{**bench, **overrides})


def callback_env(trusted_key_url: str, sqlite_path: str, **overrides: str) -> dict[str, str]:
    """The tests' callback settings (refused uploads deleted on an unreachable loopback port,
    UPLOAD_VERIFY off: the callback core's own cost; what verification adds is measured apart,
    against an emulator, in bench/verify.py) for the bench bucket, secret and key URL."""
    bench = dict(
        OSS_BUCKET=BUCKET,
        GRANT_SECRET=GRANT_SECRET,
        CALLBACK_TRUSTED_KEY_URLS=trusted_key_url,
        SQLITE_PATH=sqlite_path,
    )
    return settings_env(None, **{**bench, **overrides})


def tablestore_overrides() -> dict[str, str]:
    return {
        "RECORDS_BACKEND": "tablestore",
        "TABLESTORE_ENDPOINT": "https://bench.cn-hangzhou.ots.aliyuncs.com",
        "TABLESTORE_INSTANCE": "bench",
        "TABLESTORE_TABLE": "oss_uploads",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "bench-key-id",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "bench-key-secret",
    }


def user_token(now: float | None = None, user: str = USER) -> str:
    """A sign-in JWT (HS256) valid for an hour."""
    return token(user, secret=JWT_SECRET, now=time.time() if now is None else now)


def prefix_grant_token(now: float | None = None, prefix: str = f"uploads/{USER}/") -> str:
    """A prefix grant valid for an hour: many distinct objects can be recorded under it."""
    current = int(time.time() if now is None else now)
    grant = Grant(
        grant_id="bench-grant-0001",
        user=USER,
        bucket=BUCKET,
        key=None,
        prefix=prefix,
        max_bytes=20 * 1024 * 1024,
        expires_at=current + 3600,
    )
    return issue_token(grant, Secret(GRANT_SECRET))


def callback_values(index: int, key_prefix: str = f"uploads/{USER}/") -> dict[str, str]:
    """What OSS fills into the template for one uploaded PNG."""
    return {
        "bucket": BUCKET,
        "object": f"{key_prefix}bench/{index:08d}.png",
        "etag": f"{index:032X}",
        "size": "204800",
        "mimeType": "image/png",
        "imageInfo.height": "480",
        "imageInfo.width": "640",
        "imageInfo.format": "png",
        "crc64": "1234567890123456789",
        "contentMd5": "1B2M2Y8AsgTpgAmY7PhCfg==",
        "clientIp": "203.0.113.7",
        "reqId": f"5F{index:022X}",
        "operation": "PutObject",
    }


callback_body = render_form_body  # form mode (§5.5): each `${var}` percent-encoded


@dataclass(frozen=True)
class SignedCallback:
    """One callback request as OSS sends it: path, raw query, body and the two OSS headers."""

    path: str
    query: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, Any]:
        return environ_from_spec(self.spec())

    def spec(self) -> dict[str, Any]:
        """The JSON-able form the cold-start child turns back into a WSGI environ."""
        return {
            "method": "POST",
            "path": self.path,
            "query": self.query,
            "content_type": BODY_TYPE,
            "headers": self.headers,
            "body_b64": base64.b64encode(self.body).decode("ascii"),
        }


def signed_callback(
    private_key: rsa.RSAPrivateKey, key_url: str, body: bytes, path: str = CALLBACK_PATH
) -> SignedCallback:
    """§6.2: RSA PKCS#1 v1.5 over MD5 of `path [?query] \\n body` (MD5 is OSS's choice)."""
    headers = {
        "HTTP_AUTHORIZATION": sign(private_key, path.encode() + b"\n" + body),
        "HTTP_X_OSS_PUB_KEY_URL": base64.b64encode(key_url.encode()).decode("ascii"),
        "HTTP_X_OSS_BUCKET": BUCKET,
        "HTTP_X_OSS_TAG": "CALLBACK",
        "HTTP_USER_AGENT": "aliyun-oss-callback",
    }
    return SignedCallback(path, "", body, headers)


def c1_callback(vector: Mapping[str, Any]) -> SignedCallback:
    """OSS's own documented callback (vector C1), signed with the real, pinned OSS key."""
    headers = {
        "HTTP_AUTHORIZATION": vector["authorization"],
        "HTTP_X_OSS_PUB_KEY_URL": vector["pub_key_url_b64"],
    }
    return SignedCallback(vector["path"], vector["query"], vector["body"].encode(), headers)


def sign_request_spec(token: str, query: str = SIGN_QUERY) -> dict[str, Any]:
    return {
        "method": "GET",
        "path": "/signature",
        "query": query,
        "headers": {
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "HTTP_ORIGIN": "https://app.example.com",
        },
    }


def environ_from_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A WSGI environ like FC 2.0's (PATH_INFO decoded, QUERY_STRING raw, HTTP_* headers)."""
    headers = dict(spec.get("headers", {}))
    if spec.get("content_type"):
        headers["Content-Type"] = spec["content_type"]
    return fc.environ(
        spec.get("method", "GET"),
        spec.get("path", "/"),
        spec.get("query", ""),
        base64.b64decode(spec.get("body_b64", "")),
        headers,
        remote_addr="127.0.0.1",
    )
