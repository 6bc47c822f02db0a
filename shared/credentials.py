"""Credentials to sign with, resolved per invocation because role tokens rotate.

Order (DESIGN.md): non-empty FC context credentials → ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET/
SECURITY_TOKEN → OSS_ACCESS_KEY_ID/SECRET from the settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import Unavailable
from shared.settings import Secret


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: Secret
    security_token: str | None = None

    @property
    def identity(self) -> tuple[str, str | None]:
        """What tells one credential set from the next (for caches that must follow rotation)."""
        return (self.access_key_id, self.security_token)


def resolve_credentials(
    context: Any,
    environ: Mapping[str, str],
    configured_id: str | None = None,
    configured_secret: Secret | None = None,
) -> Credentials:
    """Pick the first complete credential set; raise Unavailable when there is none."""
    creds = getattr(context, "credentials", None)
    if creds is not None:
        key_id = _text(getattr(creds, "access_key_id", None) or getattr(creds, "accessKeyId", None))
        secret = _text(
            getattr(creds, "access_key_secret", None) or getattr(creds, "accessKeySecret", None)
        )
        token = _text(
            getattr(creds, "security_token", None) or getattr(creds, "securityToken", None)
        )
        if key_id and secret:
            return Credentials(key_id, Secret(secret), token or None)
    key_id = _text(environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID"))
    secret = _text(environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET"))
    if key_id and secret:
        token = _text(environ.get("ALIBABA_CLOUD_SECURITY_TOKEN"))
        return Credentials(key_id, Secret(secret), token or None)
    if configured_id and configured_secret:
        return Credentials(configured_id, configured_secret, None)
    raise Unavailable(
        "no credentials to sign with: give the function a RAM role or set OSS_ACCESS_KEY_*"
    )


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
