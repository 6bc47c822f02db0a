"""Settings, read once from an injectable mapping into typed, frozen objects.

Every variable is named in DESIGN.md and documented in the README. A missing or malformed value
raises `ConfigError` naming the variable, at start-up, never at the first request. Each function
loads only what it uses: the callback needs no `AUTH_*`, the sign function no trusted key URLs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

from shared import logs
from shared.errors import ConfigError

MIN_SECRET_BYTES = 32  # HS256 keys shorter than the hash output weaken it (RFC 7518 §3.2).
MAX_OBJECT_BYTES = 5 * 1024**3  # PostObject's own ceiling.

# Extensions and types that browsers may execute when the object is served; refused whatever
# UPLOAD_ALLOWED_TYPES says (stored XSS, security.md §2.8).
ACTIVE_EXTENSIONS = frozenset(
    [
        "html",
        "htm",
        "xhtml",
        "shtml",
        "xht",
        "svg",
        "svgz",
        "xml",
        "xsl",
        "xslt",
        "js",
        "mjs",
        "cjs",
        "jsx",
        "ts",
        "php",
        "php3",
        "php4",
        "php5",
        "php7",
        "phtml",
        "phar",
        "jsp",
        "jspx",
        "asp",
        "aspx",
        "cer",
        "cgi",
        "pl",
        "py",
        "rb",
        "sh",
        "bash",
        "bat",
        "cmd",
        "exe",
        "dll",
        "com",
        "msi",
        "hta",
        "swf",
        "wasm",
        "vbs",
        "ps1",
        "jar",
    ]
)
ACTIVE_TYPE_MARKERS = ("html", "svg", "javascript", "ecmascript", "php", "x-sh", "wasm")

DEFAULT_ALLOWED_TYPES = (
    "png=image/png,jpg=image/jpeg,jpeg=image/jpeg,gif=image/gif,webp=image/webp,"
    "avif=image/avif,heic=image/heic,heic=image/heif,"
    "mp3=audio/mpeg,m4a=audio/mp4,m4a=audio/x-m4a,wav=audio/wav,wav=audio/x-wav,wav=audio/wave,"
    "mp4=video/mp4,mov=video/quicktime,webm=video/webm,webm=audio/webm,"
    "pdf=application/pdf,txt=text/plain,csv=text/csv,json=application/json,"
    "zip=application/zip,zip=application/x-zip-compressed,bin=application/octet-stream"
)

_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)+")
_EXT = re.compile(r"[a-z0-9]{1,16}")
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
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
        if not re.fullmatch(r"[0-9]{1,12}", text):
            raise ConfigError(name, f"must be a whole number, got {text!r}")
        value = int(text)
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
        bucket = env.required("OSS_BUCKET")
        if not _BUCKET.fullmatch(bucket) or "--" in bucket:
            raise ConfigError("OSS_BUCKET", f"{bucket!r} is not a valid OSS bucket name")
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

    @classmethod
    def load(cls, env: Env, auth_mode: str) -> UploadSettings:
        return cls(
            key_prefix=key_prefix_template(env, auth_mode),
            max_bytes=env.integer("UPLOAD_MAX_BYTES", 20 * 1024 * 1024, 1, MAX_OBJECT_BYTES),
            allowed_types=_allowed_types(env),
            policy_ttl_seconds=env.integer("POLICY_TTL_SECONDS", 300, 1, 86400),
            callback_url=_callback_url(env),
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


def is_active_type(mime: str) -> bool:
    """security.md §2.8: a media type browsers may run or render as a document (HTML, SVG, XML, JS)."""
    essence = mime.split(";", 1)[0].strip().lower()
    subtype = essence.partition("/")[2]
    if subtype == "xml" or subtype.endswith("+xml"):
        return True  # not `…openxmlformats…` (docx, xlsx): those are downloads, not documents
    return any(marker in essence for marker in ACTIVE_TYPE_MARKERS)


def is_active_content(ext: str, mime: str | None = None) -> bool:
    """True for types a browser may execute when served (HTML, SVG, XML, scripts…)."""
    if ext.lower() in ACTIVE_EXTENSIONS:
        return True
    return mime is not None and is_active_type(mime)


def _allowed_types(env: Env) -> Mapping[str, tuple[str, ...]]:
    name = "UPLOAD_ALLOWED_TYPES"
    entries = env.items(name) or tuple(DEFAULT_ALLOWED_TYPES.split(","))
    table: dict[str, list[str]] = {}
    for entry in entries:
        ext, sep, mime = (part.strip().lower() for part in entry.partition("="))
        ext = ext.lstrip(".")
        if not sep or not _EXT.fullmatch(ext) or not _MIME.fullmatch(mime):
            raise ConfigError(name, f"entry {entry!r} must look like 'png=image/png'")
        if is_active_content(ext, mime):
            continue  # never served as an upload type, whatever the setting says
        table.setdefault(ext, [])
        if mime not in table[ext]:
            table[ext].append(mime)
    # A list of only active content leaves exact-key mode nothing to grant: each such request
    # is a 400 (DESIGN: refused "whatever the setting says"), not a start-up failure.
    return MappingProxyType({ext: tuple(mimes) for ext, mimes in table.items()})


def _callback_url(env: Env) -> str:
    url = http_url("CALLBACK_URL", env.required("CALLBACK_URL"))
    if ";" in url:
        raise ConfigError("CALLBACK_URL", "must be one URL (OSS splits on ';')")
    if "+" in urlsplit(url).path:
        # OSS's samples disagree on whether '+' in the path decodes to a space (protocol §6.2).
        raise ConfigError("CALLBACK_URL", "must not contain '+' in its path")
    return url


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


# --- per function ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SignSettings:
    oss: OssSettings
    auth: AuthSettings
    upload: UploadSettings
    grant_secrets: tuple[Secret, ...]
    cors_origins: frozenset[str]
    records: RecordsSettings

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
        return cls(
            oss=OssSettings.load(env),
            auth=auth,
            upload=UploadSettings.load(env, auth.mode),
            grant_secrets=grant_secrets,
            cors_origins=_cors_origins(env),
            records=RecordsSettings.load(env),
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


@dataclass(frozen=True)
class CallbackSettings:
    bucket: str
    grant_secrets: tuple[Secret, ...]
    trusted_key_urls: tuple[str, ...]
    download_base_url: str | None
    records: RecordsSettings

    @classmethod
    def from_env(cls, values: Mapping[str, str]) -> CallbackSettings:
        env = Env(values)
        bucket = env.required("OSS_BUCKET")
        if not _BUCKET.fullmatch(bucket):
            raise ConfigError("OSS_BUCKET", f"{bucket!r} is not a valid OSS bucket name")
        urls = env.items("CALLBACK_TRUSTED_KEY_URLS")
        for url in urls:
            http_url("CALLBACK_TRUSTED_KEY_URLS", url)
        download = env.get("DOWNLOAD_BASE_URL")
        if download:
            download = http_url("DOWNLOAD_BASE_URL", download).rstrip("/")
        return cls(
            bucket=bucket,
            grant_secrets=env.secrets("GRANT_SECRET", required=True),
            trusted_key_urls=urls,
            download_base_url=download,
            records=RecordsSettings.load(env),
        )
