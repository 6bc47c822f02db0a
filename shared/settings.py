"""Settings, read once from an injectable mapping into typed, frozen objects.

Every variable is named in DESIGN.md and documented in the README. A missing or malformed value
raises `ConfigError` naming the variable, at start-up, never at the first request. Each function
loads only what it uses: the callback needs no `AUTH_*`, the sign function no trusted key URLs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from shared.digits import in_range, whole_number
from shared.errors import ConfigError

MIN_SECRET_BYTES = 32  # HS256 keys shorter than the hash output weaken it (RFC 7518 §3.2).
MAX_OBJECT_BYTES = 5 * 1024**3  # PostObject's own ceiling.


_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)+")
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9._-]+|\{user\}")
USER_PLACEHOLDER = "{user}"


@dataclass(frozen=True)
class Secret:
    """A secret string that never shows itself in a repr, log line or traceback."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


class Env:
    """Typed access to a settings mapping; empty values count as unset unless stated."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def raw(self, name: str) -> str | None:
        return self._values.get(name)

    def get(self, name: str, default: str | None = None) -> str | None:
        value = (self._values.get(name) or "").strip()
        return value or default

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise ConfigError(name, "is required")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        text = self.get(name)
        if text is None:
            return default
        value = whole_number(text, max_digits=12)
        if value is None:
            raise ConfigError(name, f"must be a whole number, got {text!r}")
        if not low <= value <= high:
            raise ConfigError(name, f"must be between {low} and {high}, got {value}")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.get(name) or default).lower()
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def items(self, name: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in (self.get(name) or "").split(",") if part.strip())

    def secrets(self, name: str, *, required: bool) -> tuple[Secret, ...]:
        parts = self.items(name)
        if not parts and required:
            raise ConfigError(name, "is required")
        for part in parts:
            if len(part.encode()) < MIN_SECRET_BYTES:
                raise ConfigError(name, f"each secret must be at least {MIN_SECRET_BYTES} bytes")
        return tuple(Secret(part) for part in parts)


def http_url(name: str, value: str, *, allow_query: bool = False) -> str:
    """Accept an absolute http(s) URL with a host and no fragment (and no query unless allowed)."""
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ConfigError(name, "must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ConfigError(name, f"is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, "must be an absolute http:// or https:// URL")
    if "#" in value or (not allow_query and "?" in value):
        raise ConfigError(name, "must not carry a query string or fragment")
    if parts.username or parts.password:
        raise ConfigError(name, "must not carry user information")
    return value


# --- pieces ---------------------------------------------------------------------------------


def bucket_name(env: Env) -> str:
    """OSS_BUCKET, by OSS's naming rules: 3–63 lower-case letters, digits and `-`, starting and
    ending with a letter or digit (OSS allows `--` inside a name)."""
    bucket = env.required("OSS_BUCKET")
    if not _BUCKET.fullmatch(bucket):
        raise ConfigError("OSS_BUCKET", f"{bucket!r} is not a valid OSS bucket name")
    return bucket


@dataclass(frozen=True)
class OssSettings:
    bucket: str
    region: str
    endpoint: str
    signature_version: Literal["v4", "v1"]
    access_key_id: str | None
    access_key_secret: Secret | None

    @classmethod
    def load(cls, env: Env) -> OssSettings:
        bucket = bucket_name(env)
        region = env.required("OSS_REGION").lower()
        region = region.removeprefix("oss-")  # V4 scopes use the general region id.
        if not _REGION.fullmatch(region):
            raise ConfigError("OSS_REGION", f"{region!r} is not a region id like cn-hangzhou")
        endpoint = env.get("OSS_ENDPOINT") or f"https://{bucket}.oss-{region}.aliyuncs.com"
        endpoint = http_url("OSS_ENDPOINT", endpoint).rstrip("/")
        version = env.choice("OSS_SIGNATURE_VERSION", ("v4", "v1"), "v4")
        key_id, key_secret = env.get("OSS_ACCESS_KEY_ID"), env.get("OSS_ACCESS_KEY_SECRET")
        if bool(key_id) != bool(key_secret):
            missing = "OSS_ACCESS_KEY_SECRET" if key_id else "OSS_ACCESS_KEY_ID"
            raise ConfigError(missing, "must be set together with its pair, or neither")
        return cls(
            bucket=bucket,
            region=region,
            endpoint=endpoint,
            signature_version="v1" if version == "v1" else "v4",
            access_key_id=key_id,
            access_key_secret=Secret(key_secret) if key_secret else None,
        )


def key_prefix_template(env: Env, auth_mode: str) -> str:
    """UPLOAD_KEY_PREFIX: whole segments ending in `/`; `{user}` mandatory unless AUTH_MODE=none."""
    name = "UPLOAD_KEY_PREFIX"
    raw = env.raw(name)
    template = "uploads/{user}/" if raw is None else raw.strip()
    if template == "":
        if auth_mode != "none":
            raise ConfigError(name, "may be empty only with AUTH_MODE=none")
        return ""
    if not template.endswith("/") or template.startswith("/"):
        raise ConfigError(name, "must not start with '/' and must end with '/'")
    segments = template[:-1].split("/")
    for segment in segments:
        if not _PREFIX_SEGMENT.fullmatch(segment) or segment in (".", ".."):
            raise ConfigError(
                name, f"segment {segment!r} must be letters, digits, '-', '_', '.' or {{user}}"
            )
    if segments.count(USER_PLACEHOLDER) > 1:
        raise ConfigError(name, "may contain {user} once")
    if auth_mode != "none" and USER_PLACEHOLDER not in segments:
        raise ConfigError(name, "must contain a {user} segment so that users cannot share a folder")
    if len(template.encode()) > 256:
        raise ConfigError(name, "must be at most 256 bytes")
    return template


@dataclass(frozen=True)
class RecordsSettings:
    backend: Literal["tablestore", "sqlite"]
    tablestore_endpoint: str | None
    tablestore_instance: str | None
    tablestore_table: str
    sqlite_path: str

    @classmethod
    def load(cls, env: Env) -> RecordsSettings:
        backend = env.choice("RECORDS_BACKEND", ("tablestore", "sqlite"), "sqlite")
        endpoint = env.get("TABLESTORE_ENDPOINT")
        instance = env.get("TABLESTORE_INSTANCE")
        table = env.get("TABLESTORE_TABLE", "oss_uploads") or "oss_uploads"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", table):
            raise ConfigError("TABLESTORE_TABLE", f"{table!r} is not a valid table name")
        if backend == "tablestore":
            http_url("TABLESTORE_ENDPOINT", env.required("TABLESTORE_ENDPOINT"))
            instance = env.required("TABLESTORE_INSTANCE")
        return cls(
            backend="tablestore" if backend == "tablestore" else "sqlite",
            tablestore_endpoint=endpoint,
            tablestore_instance=instance,
            tablestore_table=table,
            sqlite_path=env.get("SQLITE_PATH", ".local/records.sqlite3") or "",
        )


MAX_QUOTA = 10**18  # fits Tablestore's int64 counters with room for one more object


@dataclass(frozen=True)
class Limits:
    """Per-user quota and grant rate (DESIGN.md, The grant ledger); None means unlimited."""

    bytes: int | None = None
    files: int | None = None
    grants_per_minute: int | None = None

    @classmethod
    def load(cls, env: Env, *, rate: bool = True) -> Limits:
        """The quotas, and the grant rate for the sign function (`rate`: the others issue none)."""
        return cls(
            bytes=_limit(env, "QUOTA_BYTES_PER_USER", 0),
            files=_limit(env, "QUOTA_FILES_PER_USER", 0),
            grants_per_minute=_limit(env, "RATE_LIMIT_GRANTS_PER_MINUTE", 120) if rate else None,
        )


def _limit(env: Env, name: str, default: int) -> int | None:
    """A whole number ≥ 0 (0: unlimited); a sign, a fraction or a word is a start-up error."""
    text = env.get(name)
    if text is None:
        value = default
    elif (number := in_range(text, 0, MAX_QUOTA)) is not None:
        value = number
    else:
        raise ConfigError(
            name, f"must be a whole number from 0 (unlimited) to {MAX_QUOTA}, got {text!r}"
        )
    return value or None


# --- per function ---------------------------------------------------------------------------
