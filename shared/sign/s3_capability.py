"""The capability of an `/s3/op` URL: one operation on one upload, as one user, for minutes.

A capability is a JWT (HS256) with audience `oss-direct-upload:s3-op` binding the user, the
operation, the upload id, the key and a short expiry (CAPABILITY_TTL_SECONDS). Its key is derived
from GRANT_SECRET — the one secret every deployment of the sign function has (AUTH_JWT_SECRET
is absent with AUTH_JWKS_URL or AUTH_MODE=none) — as HMAC-SHA256(secret, a fixed label), so it
never verifies as a grant token or a sign-in token even where audiences were not checked; the
first secret signs, all verify (rotation, as for grants). Only `/s3/sign`, behind sign-in, mints
one (s3_compat.py), so it is what the signed-in user could get, usable for that one operation on
that one upload for a few minutes: a forged, expired or altered token, or one used with another
method, is 403. A capability acts as the user who asked for it, so one naming another user's
upload id finds no session of theirs: 404, and the other user's upload is untouched.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from shared import jwt_codec
from shared.errors import BadRequest, Forbidden
from shared.http import Request
from shared.settings import Secret

# In the query, not the path: access logs name the route, and a capability must not be logged.
CAPABILITY_PARAMETER = "capability"
CAPABILITY_TTL_SECONDS = 300
AUDIENCE = "oss-direct-upload:s3-op"
ALGORITHM = "HS256"
_KEY_LABEL = b"oss-direct-upload s3-compat capability v1"

CREATE, LIST, COMPLETE, ABORT = "create", "list", "complete", "abort"
# The HTTP method each operation arrives with (S3: POST ?uploads, GET, POST, DELETE ?uploadId).
OP_METHODS = {CREATE: "POST", LIST: "GET", COMPLETE: "POST", ABORT: "DELETE"}


@dataclass(frozen=True)
class Capability:
    """What a `/s3/op` URL lets its holder do: one operation on one upload, as one user."""

    user: str
    op: str
    upload_id: str
    key: str
    expires_at: int  # Unix seconds


def capability_key(secret: Secret) -> bytes:
    """The HMAC key of capabilities: derived from a GRANT_SECRET, used for nothing else."""
    return hmac.digest(secret.value.encode("utf-8"), _KEY_LABEL, "sha256")


def mint_capability(capability: Capability, secret: Secret) -> str:
    claims = {
        "aud": AUDIENCE,
        "sub": capability.user,
        "op": capability.op,
        "uid": capability.upload_id,
        "key": capability.key,
        "exp": capability.expires_at,
    }
    return jwt_codec.encode(claims, capability_key(secret), algorithm=ALGORITHM)


def verify_capability(
    token: str, secrets: Sequence[Secret], *, method: str, now: float
) -> Capability:
    """The capability a token carries, for a request with `method`; Forbidden otherwise."""
    if not token or len(token) > 4096:
        raise Forbidden("the capability is missing")
    for secret in secrets:
        try:
            claims = jwt_codec.decode(
                token,
                capability_key(secret),
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={"require": ["aud", "sub", "op", "uid", "key", "exp"], "verify_exp": False},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise Forbidden("the capability is malformed") from exc
        capability = _capability_from_claims(claims)
        if now > capability.expires_at:
            raise Forbidden("the capability has expired: ask /s3/sign again")
        if OP_METHODS[capability.op] != method:
            raise Forbidden(f"this capability is for {capability.op}, not a {method} request")
        return capability
    raise Forbidden("the capability is not ours")


def _capability_from_claims(claims: Mapping[str, Any]) -> Capability:
    user, op, upload_id, key, exp = (claims[n] for n in ("sub", "op", "uid", "key", "exp"))
    if not all(isinstance(v, str) and v for v in (user, op, upload_id, key)):
        raise Forbidden("the capability is malformed")
    if op not in OP_METHODS or type(exp) is not int:
        raise Forbidden("the capability is malformed")
    return Capability(user=user, op=op, upload_id=upload_id, key=key, expires_at=exp)


def capability_of(request: Request) -> str:
    """The one query parameter of an `/s3/op` URL (a JWT: URL-safe as it is)."""
    query = request.query()
    unknown = sorted(set(query) - {CAPABILITY_PARAMETER})
    if unknown:
        raise BadRequest(f"unknown query parameter {unknown[0][:64]!r}")
    return query.get(CAPABILITY_PARAMETER, "")
