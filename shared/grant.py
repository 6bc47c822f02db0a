"""Grant tokens: what binds an OSS callback to a grant we issued.

The sign function puts a token in the callback body template as a constant; OSS echoes it back
in the signed callback. A valid OSS signature only proves OSS sent the request, and any OSS
customer can make OSS call our URL, so the callback trusts nothing until this token verifies.
The token is a PyJWT HS256 JWT keyed by GRANT_SECRET (first secret signs, all verify).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from shared import jwt_codec
from shared.errors import GrantInvalid
from shared.settings import Secret

ALGORITHM = "HS256"
AUDIENCE = "oss-direct-upload:grant"  # keeps sign-in tokens and grant tokens apart
EXPIRY_GRACE_SECONDS = 120  # clock skew between OSS, the signer and the callback


@dataclass(frozen=True)
class Grant:
    grant_id: str
    user: str
    bucket: str
    key: str | None  # exact-key grant
    prefix: str | None  # prefix grant (ends in '/')
    max_bytes: int
    expires_at: int  # the policy's expiration, Unix seconds
    file_name: str = ""  # exact-key grants: the client's file name, for the record (downloads)

    @property
    def mode(self) -> str:
        return "key" if self.key is not None else "prefix"

    def admits_key(self, key: str) -> bool:
        if self.key is not None:
            return key == self.key
        return (
            self.prefix is not None and key.startswith(self.prefix) and len(key) > len(self.prefix)
        )

    def claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "aud": AUDIENCE,
            "jti": self.grant_id,
            "sub": self.user,
            "bkt": self.bucket,
            "max": self.max_bytes,
            "exp": self.expires_at,
        }
        if self.key is not None:
            claims["key"] = self.key
            if self.file_name:
                claims["fn"] = self.file_name
        else:
            claims["pfx"] = self.prefix
        return claims


def issue_token(grant: Grant, secret: Secret) -> str:
    return jwt_codec.encode(grant.claims(), secret.value, algorithm=ALGORITHM)


def verify_token(token: str, secrets: Sequence[Secret], *, now: float | None = None) -> Grant:
    """Return the grant a token carries, or raise GrantInvalid (forged, malformed or expired)."""
    claims = _decode(token, secrets)
    grant = _grant_from_claims(claims)
    current = time.time() if now is None else now
    if current > grant.expires_at + EXPIRY_GRACE_SECONDS:
        raise GrantInvalid("the grant has expired")
    return grant


def _decode(token: str, secrets: Sequence[Secret]) -> dict[str, Any]:
    if not token or len(token) > 4096:
        raise GrantInvalid("the grant token is missing")
    for secret in secrets:
        try:
            return jwt_codec.decode(
                token,
                secret.value,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={
                    "require": ["aud", "jti", "sub", "bkt", "max", "exp"],
                    "verify_exp": False,
                },
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise GrantInvalid("the grant token is malformed") from exc
    raise GrantInvalid("the grant token is not ours")


def _grant_from_claims(claims: dict[str, Any]) -> Grant:
    key, prefix = claims.get("key"), claims.get("pfx")
    values = (claims["jti"], claims["sub"], claims["bkt"])
    if (key is None) == (prefix is None) or not all(isinstance(v, str) for v in values):
        raise GrantInvalid("the grant token is malformed")
    if not isinstance(key or prefix, str):
        raise GrantInvalid("the grant token is malformed")
    if prefix is not None and not (isinstance(prefix, str) and prefix.endswith("/")):
        # DESIGN: a prefix ends in '/' (no sibling folders) and no grant covers the whole bucket.
        raise GrantInvalid("the grant token is malformed")
    file_name = claims.get("fn", "")
    if not isinstance(file_name, str) or (file_name and key is None):
        raise GrantInvalid("the grant token is malformed")
    max_bytes, expires_at = claims["max"], claims["exp"]
    if type(max_bytes) is not int or type(expires_at) is not int or max_bytes < 1:
        raise GrantInvalid("the grant token is malformed")
    return Grant(
        grant_id=claims["jti"],
        user=claims["sub"],
        bucket=claims["bkt"],
        key=key,
        prefix=prefix,
        max_bytes=max_bytes,
        expires_at=expires_at,
        file_name=file_name,
    )
