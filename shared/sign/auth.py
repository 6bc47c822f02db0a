"""Who is calling the sign function: a Bearer JWT (PyJWT) or, with AUTH_MODE=none, `anonymous`.

HS256 with AUTH_JWT_SECRET, or RS256/ES256 with keys from AUTH_JWKS_URL (PyJWKClient, cached).
`exp` and `sub` are required; the user id is `sub`. Time checks use the injected clock so
tests can freeze it. The token itself is never logged or echoed.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import jwt

from shared import grant, jwt_codec
from shared.errors import ConfigError, Unauthorized, Unavailable
from shared.keys import ANONYMOUS_USER, is_digest_segment
from shared.sign.settings import AuthSettings

HMAC_ALGORITHMS = ("HS256",)
JWKS_ALGORITHMS = ("RS256", "ES256")
LEEWAY_SECONDS = 30
MAX_TOKEN_BYTES = 8192
MAX_SUBJECT_CHARS = 256  # the user id travels in every grant token and record
JWKS_TIMEOUT_SECONDS = 2.0
JWKS_LIFESPAN_SECONDS = 600
VERIFIED_TOKENS_CACHED = 1024
_TOKEN = re.compile(rf"[!-~]{{1,{MAX_TOKEN_BYTES}}}")  # visible ASCII, no spaces


class SigningKeySource(Protocol):
    """What we need of `jwt.PyJWKClient` (tests inject a fake or a loopback-served one)."""

    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK: ...


def jwks_client(url: str) -> jwt.PyJWKClient:
    """A JWKS client with a short timeout and a cached key set (one fetch per lifespan)."""
    return jwt.PyJWKClient(
        url,
        cache_keys=True,
        cache_jwk_set=True,
        lifespan=JWKS_LIFESPAN_SECONDS,
        timeout=JWKS_TIMEOUT_SECONDS,
    )


T = TypeVar("T")


class BoundedCache(Generic[T]):
    """A small thread-safe LRU map (FC 2.0 instances may serve requests concurrently)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: T) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class Authenticator:
    """Turn a request's Authorization header into a user id, or raise Unauthorized (401)."""

    def __init__(
        self,
        settings: AuthSettings,
        *,
        keys: SigningKeySource | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._now = now
        self._keys = keys
        # A browser reuses one sign-in token for many grants: verify its signature once.
        self._verified: BoundedCache[dict[str, Any]] = BoundedCache(VERIFIED_TOKENS_CACHED)
        if keys is None and settings.mode == "jwt" and settings.jwks_url:
            if importlib.util.find_spec("cryptography") is None:
                # RS256/ES256 need it; `make build` ships it only when AUTH_JWKS_URL is set.
                raise ConfigError(
                    "AUTH_JWKS_URL",
                    "needs the cryptography package: rebuild the sign package with "
                    "AUTH_JWKS_URL set (make build)",
                )
            self._keys = jwks_client(settings.jwks_url)

    def user(self, authorization: str | None) -> str:
        """DESIGN "Sign function" Auth: the `sub` of a valid Bearer JWT; `anonymous` with AUTH_MODE=none."""
        if self._settings.mode == "none":
            return ANONYMOUS_USER
        claims = self.verify(bearer_token(authorization))
        return _subject(claims)

    def verify(self, token: str) -> dict[str, Any]:
        """Check signature, algorithm, audience, issuer and times; return the claims."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify_signed_claims(token)
            self._verified.put(token, claims)
        _check_times(claims, self._now())  # against the clock on every request, cached or not
        return claims

    def _verify_signed_claims(self, token: str) -> dict[str, Any]:
        key, algorithms = self._key_for(token)
        try:
            claims: dict[str, Any] = jwt_codec.decode(
                token,
                key,
                algorithms=list(algorithms),
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                options={
                    "require": ["exp", "sub"],
                    # Times are checked against the injected clock, on every request.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the token is not valid: {_reason(exc)}") from exc
        _number(claims, "exp")
        if _audiences(claims) & {grant.AUDIENCE}:
            # A grant token (it reaches the browser inside the callback) is no sign-in token.
            raise Unauthorized("the token is not valid: a grant token is not a sign-in token")
        return claims

    def _key_for(self, token: str) -> tuple[Any, tuple[str, ...]]:
        if self._keys is None:
            secret = self._settings.jwt_secret
            if secret is None:  # settings forbid this; fail closed all the same
                raise Unauthorized("no key to verify sign-in tokens with")
            return secret.value, HMAC_ALGORITHMS
        try:
            return self._keys.get_signing_key_from_jwt(token), JWKS_ALGORITHMS
        except jwt.PyJWKClientConnectionError as exc:
            raise Unavailable("the sign-in key set cannot be fetched") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the token is not valid: {_reason(exc)}") from exc


def bearer_token(authorization: str | None) -> str:
    """RFC 6750 §2.1: `Authorization: Bearer <token>`; anything else is a 401."""
    if not authorization:
        raise Unauthorized("an Authorization: Bearer token is required")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    if not _TOKEN.fullmatch(token):
        raise Unauthorized("the token is not valid: malformed")
    return token


def _check_times(claims: dict[str, Any], now: float) -> None:
    exp, nbf, iat = (_number(claims, name) for name in ("exp", "nbf", "iat"))
    if exp is None:
        raise Unauthorized("the token is not valid: exp must be a number")
    if now > exp + LEEWAY_SECONDS:
        raise Unauthorized("the token has expired")
    if nbf is not None and now < nbf - LEEWAY_SECONDS:
        raise Unauthorized("the token is not valid yet")
    if iat is not None and now < iat - LEEWAY_SECONDS:
        raise Unauthorized("the token is issued in the future")


def _number(claims: dict[str, Any], name: str) -> float | None:
    """A NumericDate claim (RFC 7519 §2), None when absent; anything else is a 401."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unauthorized(f"the token is not valid: {name} must be a number")
    return float(value)


def _subject(claims: dict[str, Any]) -> str:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_SUBJECT_CHARS:
        raise Unauthorized("the token's sub must be a user id of 1 to 256 characters")
    if is_digest_segment(sub):
        # `_` + 40 hex digits is how the folder of a user id that is not key-safe is spelled: a
        # user called that would look like the owner of someone else's folder.
        raise Unauthorized(
            "the token's sub must not be '_' followed by 40 hex digits: that spelling is reserved"
            " for folder names"
        )
    return sub


def _audiences(claims: dict[str, Any]) -> set[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return {aud}
    if isinstance(aud, list):
        return {a for a in aud if isinstance(a, str)}
    return set()


def _reason(exc: Exception) -> str:
    """A short reason; PyJWT's messages name the failed check, never the token."""
    return (str(exc) or type(exc).__name__)[:120]
