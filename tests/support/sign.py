"""Test helpers: valid-by-default builders (settings, tokens, requests) and policy decoding."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt

from shared.grant import Grant, verify_token
from shared.http import Core, Request, Response
from shared.records.base import DEFAULT_PAGE, Page, PutOutcome, PutResult, Record
from shared.records.grants import MULTIPART, GrantStore, LedgerGrant
from shared.settings import Limits, Secret
from shared.sign.settings import SignSettings

# 2023-12-16T16:20:57Z (the V4-a vector's x-oss-date): a frozen "now" for every sign test.
NOW = 1702743657.0
JWT_SECRET = "jwt-secret-for-tests-0123456789abcdef-0123456789abcdef-0123456789"
GRANT_SECRET = "grant-secret-for-tests-0123456789abcdef"
ACCESS_KEY_ID = "test-access-key-id"
ACCESS_KEY_SECRET = "test-access-key-secret"
ORIGIN = "https://app.example.com"

SIGN_ENV: dict[str, str] = {
    "OSS_BUCKET": "example-bucket",
    "OSS_REGION": "cn-hangzhou",
    "OSS_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "OSS_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
    "CALLBACK_URL": "https://api.example.com/oss-callback",
    "GRANT_SECRET": GRANT_SECRET,
    "AUTH_JWT_SECRET": JWT_SECRET,
    "CORS_ALLOWED_ORIGINS": ORIGIN,
    "UPLOAD_MAX_BYTES": "10485760",
    # The sign function writes every grant to the ledger: a scratch file per test process (the
    # make_sign_app fixture gives each test its own), and no rate limit unless a test sets one.
    "SQLITE_PATH": os.path.join(tempfile.mkdtemp(prefix="oss-upload-tests-"), "records.sqlite3"),
    "RATE_LIMIT_GRANTS_PER_MINUTE": "0",
}


def overridden(values: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with each override applied; an override of None removes the entry."""
    for name, value in overrides.items():
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    return values


def sign_env(**overrides: str | None) -> dict[str, str]:
    """SIGN_ENV with overrides; a None value removes the variable."""
    return overridden(dict(SIGN_ENV), overrides)


def sign_settings(**overrides: str | None) -> SignSettings:
    return SignSettings.from_env(sign_env(**overrides))


def token(
    sub: Any = "alice",
    *,
    secret: str = JWT_SECRET,
    now: float = NOW,
    ttl: int = 3600,
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """A valid sign-in JWT for `sub` at `now`; override or drop one claim at a time."""
    payload: dict[str, Any] = {"sub": sub, "iat": int(now), "exp": int(now) + ttl}
    payload.update(claims)
    for name in drop:
        payload.pop(name, None)
    return jwt.encode(payload, secret, algorithm=algorithm, headers=headers)


def request(
    method: str = "GET",
    path: str = "/signature",
    query: Mapping[str, str] | str = "",
    headers: Mapping[str, str] | None = None,
    context: Any = None,
    *,
    body: bytes = b"",
) -> Request:
    query_string = query if isinstance(query, str) else urlencode(query)
    return Request(
        method=method,
        path=path,
        signed_path=path.encode(),
        query_string=query_string,
        headers={k.lower(): v for k, v in (headers or {}).items()},
        body=body,
        request_id="req-test",
        context=context,
    )


def bearer(sub: Any = "alice", **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, **kwargs)}"}


def call(
    app: Core,
    query: Mapping[str, str] | str = "",
    *,
    user: str | None = "alice",
    method: str = "GET",
    path: str = "/signature",
    headers: Mapping[str, str] | None = None,
    context: Any = None,
    now: float = NOW,
    body: bytes = b"",
) -> Response:
    """Call a core as `user` (a JWT issued at `now`); user=None sends no Authorization."""
    all_headers = dict(bearer(user, now=now)) if user is not None else {}
    all_headers.update(headers or {})
    return app(request(method, path, query, all_headers, context, body=body))


def body(response: Response) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.body)
    return data


def ok(app: Core, query: Mapping[str, str] | str = "", **kwargs: Any) -> dict[str, Any]:
    """`call`, asserting a 200; the JSON answer."""
    response = call(app, query, **kwargs)
    assert response.status == 200, response.body
    return body(response)


def assert_error(response: Response, status: int, code: str) -> dict[str, Any]:
    """The exact error shape, and nothing issued alongside it."""
    data = body(response)
    assert (response.status, data.get("code")) == (status, code), data
    assert set(data) == {"Status", "code", "message"}
    assert data["Status"] == "Error"
    return data


def query_of(url: str) -> dict[str, str]:
    """A signed URL's query parameters (each appears once), blank values kept."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def decode_policy(policy_b64: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.b64decode(policy_b64, validate=True))
    return data


def decode_callback(callback_b64: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.b64decode(callback_b64, validate=True))
    return data


def grant_token(answer: Mapping[str, Any]) -> str:
    """The grant token a /signature answer's callback body carries (the browser sees it)."""
    template = decode_callback(answer["callback"])["callbackBody"]
    return str(template.rsplit("&grant=", 1)[1])


def grant_of(answer: Mapping[str, Any], now: float = NOW) -> Grant:
    """The grant a /signature answer carries, verified with the grant secret."""
    return verify_token(grant_token(answer), [Secret(GRANT_SECRET)], now=now)


def conditions(answer: Mapping[str, Any]) -> list[Any]:
    found: list[Any] = decode_policy(answer["policy"])["conditions"]
    return found


def key_conditions(answer: Mapping[str, Any]) -> list[list[Any]]:
    return [c for c in conditions(answer) if isinstance(c, list) and c[1:2] == ["$key"]]


def simple(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The `{"field": "value"}` exact-match conditions, merged (each must be unique)."""
    merged: dict[str, Any] = {}
    for condition in conditions(answer):
        if isinstance(condition, dict):
            assert len(condition) == 1
            (name, value), *_ = condition.items()
            assert name not in merged, f"{name} pinned twice"
            merged[name] = value
    return merged


@dataclass
class FakeStore:
    """A RecordStore holding a fixed list, paging with an integer cursor."""

    records: list[Record]
    calls: list[tuple[str, int, str | None]]

    def put(self, record: Record, *, replace: bool) -> PutOutcome:
        self.records.append(record)
        return PutOutcome(record, PutResult.CREATED)

    def get(self, bucket: str, key: str) -> Record | None:
        return next((r for r in self.records if (r.bucket, r.key) == (bucket, key)), None)

    def tombstone(self, bucket: str, key: str, etag: str, deleted_at: int) -> bool:
        for index, stored in enumerate(self.records):
            if (stored.bucket, stored.key, stored.etag) == (bucket, key, etag):
                self.records[index] = dataclasses.replace(stored, deleted_at=deleted_at)
                return True
        return False

    def list_by_owner(
        self, owner: str, *, limit: int = DEFAULT_PAGE, cursor: str | None = None
    ) -> Page:
        self.calls.append((owner, limit, cursor))
        mine = sorted(  # DESIGN.md: createdAt descending, then key
            (r for r in self.records if r.owner == owner),
            key=lambda r: (-r.created_at, r.key),
        )
        start = int(cursor) if cursor else 0
        items = mine[start : start + limit]
        more = start + limit < len(mine)
        return Page(items, str(start + limit) if more else None)


def open_multipart(ledger: GrantStore, upload_id: str, key: str, **overrides: Any) -> LedgerGrant:
    """An open multipart session of alice's in the ledger, as POST /multipart leaves it."""
    values: dict[str, Any] = {
        "owner": "alice",
        "grant_id": upload_id,
        "mode": MULTIPART,
        "target": key,
        "bucket": "example-bucket",
        "max_bytes": 20 * 1024 * 1024,
        "expires_at": int(NOW) + 3600,
        "created_at": int(NOW * 1000),
        "part_size": 5 * 1024 * 1024,
        **overrides,
    }
    grant = LedgerGrant(**values)
    ledger.open_grant(grant, Limits(), NOW)
    return grant
