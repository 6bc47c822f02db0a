"""The sign function's settings: OSS, sign-in, upload limits, grant secrets, CORS, records and
download URLs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from shared import logs
from shared.content import allowed_types
from shared.errors import ConfigError
from shared.multipart import DEFAULT_PART_BYTES, MAX_MULTIPART_BYTES
from shared.multipart_limits import MAX_PART_BYTES, MIN_PART_BYTES
from shared.settings import (
    MAX_OBJECT_BYTES,
    MIN_SECRET_BYTES,
    Env,
    Limits,
    OssSettings,
    RecordsSettings,
    Secret,
    http_url,
    key_prefix_template,
)
from shared.sign.downloads import DownloadSettings


@dataclass(frozen=True)
class AuthSettings:
    mode: Literal["jwt", "none"]
    jwt_secret: Secret | None
    jwks_url: str | None
    audience: str | None
    issuer: str | None

    @classmethod
    def load(cls, env: Env) -> AuthSettings:
        mode = env.choice("AUTH_MODE", ("jwt", "none"), "jwt")
        secret = env.get("AUTH_JWT_SECRET")
        jwks = env.get("AUTH_JWKS_URL")
        if mode == "jwt":
            if secret and jwks:
                raise ConfigError("AUTH_JWKS_URL", "set AUTH_JWT_SECRET or AUTH_JWKS_URL, not both")
            if not secret and not jwks:
                raise ConfigError(
                    "AUTH_JWT_SECRET", "is required with AUTH_MODE=jwt (or AUTH_JWKS_URL)"
                )
        if secret and len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError("AUTH_JWT_SECRET", f"must be at least {MIN_SECRET_BYTES} bytes")
        if jwks:
            http_url("AUTH_JWKS_URL", jwks, allow_query=True)
        return cls(
            mode="none" if mode == "none" else "jwt",
            jwt_secret=Secret(secret) if secret else None,
            jwks_url=jwks,
            audience=env.get("AUTH_JWT_AUDIENCE"),
            issuer=env.get("AUTH_JWT_ISSUER"),
        )


@dataclass(frozen=True)
class UploadSettings:
    key_prefix: str
    max_bytes: int
    allowed_types: Mapping[str, tuple[str, ...]]
    policy_ttl_seconds: int
    callback_url: str
    part_bytes: int = DEFAULT_PART_BYTES  # MULTIPART_PART_BYTES (raised per upload when needed)

    @property
    def post_max_bytes(self) -> int:
        """The largest PostObject grant: UPLOAD_MAX_BYTES within PostObject's own 5 GiB."""
        return min(self.max_bytes, MAX_OBJECT_BYTES)

    @classmethod
    def load(cls, env: Env, auth_mode: str) -> UploadSettings:
        return cls(
            key_prefix=key_prefix_template(env, auth_mode),
            # Up to what multipart can hold; a PostObject grant stays within PostObject's 5 GiB.
            max_bytes=env.integer("UPLOAD_MAX_BYTES", 20 * 1024 * 1024, 1, MAX_MULTIPART_BYTES),
            allowed_types=allowed_types(env),
            policy_ttl_seconds=env.integer("POLICY_TTL_SECONDS", 300, 1, 86400),
            callback_url=_callback_url(env),
            part_bytes=env.integer(
                "MULTIPART_PART_BYTES", DEFAULT_PART_BYTES, MIN_PART_BYTES, MAX_PART_BYTES
            ),
        )


def _callback_url(env: Env) -> str:
    url = http_url("CALLBACK_URL", env.required("CALLBACK_URL"))
    if ";" in url:
        raise ConfigError("CALLBACK_URL", "must be one URL (OSS splits on ';')")
    if "+" in urlsplit(url).path:
        # OSS's samples disagree on whether '+' in the path decodes to a space (protocol §6.2).
        raise ConfigError("CALLBACK_URL", "must not contain '+' in its path")
    return url


@dataclass(frozen=True)
class SignSettings:
    oss: OssSettings
    auth: AuthSettings
    upload: UploadSettings
    grant_secrets: tuple[Secret, ...]
    cors_origins: frozenset[str]
    records: RecordsSettings
    limits: Limits
    downloads: DownloadSettings

    @classmethod
    def from_env(cls, values: Mapping[str, str]) -> SignSettings:
        env = Env(values)
        auth = AuthSettings.load(env)
        grant_secrets = env.secrets("GRANT_SECRET", required=True)
        if auth.jwt_secret is not None and auth.jwt_secret in grant_secrets:
            # Key separation: whoever mints sign-in tokens could then mint grant tokens too. The
            # audiences still keep the two kinds apart, and that party can already sign in as
            # anyone, so this is a warning rather than a refusal to start.
            logs.warning("settings", variable="GRANT_SECRET", problem="reuses AUTH_JWT_SECRET")
        oss = OssSettings.load(env)
        return cls(
            oss=oss,
            auth=auth,
            upload=UploadSettings.load(env, auth.mode),
            grant_secrets=grant_secrets,
            cors_origins=_cors_origins(env),
            records=RecordsSettings.load(env),
            limits=Limits.load(env),
            downloads=DownloadSettings.load(env, oss),
        )


def _cors_origins(env: Env) -> frozenset[str]:
    origins = env.items("CORS_ALLOWED_ORIGINS")
    for origin in origins:
        if origin == "*":
            raise ConfigError("CORS_ALLOWED_ORIGINS", "list exact origins; '*' is not allowed")
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or origin != (f"{parts.scheme}://{parts.netloc}")
        ):
            raise ConfigError(
                "CORS_ALLOWED_ORIGINS", f"{origin!r} is not an origin like https://app.example.com"
            )
    return frozenset(origins)
