"""Download URLs for the records the sign function returns (DESIGN "Private files").

`DOWNLOAD_MODE=signed` (default): the bucket stays private and every record carries `url`, a
presigned GET (V4; V1 when OSS_SIGNATURE_VERSION=v1) valid for DOWNLOAD_URL_TTL_SECONDS, and for
images `thumbnailUrl`, the same with IMAGE_THUMBNAIL_PROCESS as `x-oss-process` inside the
signature. `public`: URLs under DOWNLOAD_BASE_URL (the OSS endpoint when unset), unsigned.

Both carry `response-content-disposition`: `inline` only for media a browser shows as media
(`shared.content.is_inline_media`), else `attachment`, with the file name the client gave
(RFC 6266 `filename`, plus RFC 5987 `filename*` when it is not plain ASCII).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from shared.content import is_inline_media
from shared.credentials import Credentials
from shared.errors import ConfigError
from shared.records.base import Record
from shared.settings import Env, OssSettings, http_url
from shared.sign.presign import MAX_V4_EXPIRES, Presign, presigner, uri_encode

DEFAULT_THUMBNAIL_PROCESS = "image/resize,m_lfit,w_256,h_256"
MAX_PROCESS_LENGTH = 256
# Image Processing actions that turn an image into an image (no `info`, `average-hue`: JSON;
# no `watermark`: it names other objects). Parameters are `name_value` or a bare value.
THUMBNAIL_ACTIONS = frozenset(
    {
        "resize",
        "crop",
        "indexcrop",
        "rotate",
        "auto-orient",
        "circle",
        "rounded-corners",
        "format",
        "quality",
        "interlace",
        "blur",
        "bright",
        "contrast",
        "sharpen",
    }
)
_ACTION = re.compile(r"([a-z-]+)((?:,[a-z0-9]+(?:_[A-Za-z0-9-]+)?)*)")
# Types Image Processing reads (its input formats); SVG is a document, not among them.
THUMBNAIL_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "image/tiff",
        "image/heic",
        "image/avif",
    }
)
# Characters kept as they are in the quoted `filename` fallback (others become `_`).
_FILENAME_SAFE = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+.^_`|~ -"
)


@dataclass(frozen=True)
class DownloadSettings:
    mode: Literal["signed", "public"]
    ttl_seconds: int
    thumbnail_process: str  # "" when thumbnails are off
    base_url: str  # public mode: where objects are served

    @classmethod
    def load(cls, env: Env, oss: OssSettings) -> DownloadSettings:
        mode = env.choice("DOWNLOAD_MODE", ("signed", "public"), "signed")
        ttl = env.integer("DOWNLOAD_URL_TTL_SECONDS", 300, 1, MAX_V4_EXPIRES)
        raw = env.raw("IMAGE_THUMBNAIL_PROCESS")
        process = DEFAULT_THUMBNAIL_PROCESS if raw is None else raw.strip()
        thumbnail_process(process)
        base = env.get("DOWNLOAD_BASE_URL")  # validated in either mode; used in public mode
        base_url = http_url("DOWNLOAD_BASE_URL", base) if base else oss.endpoint
        return cls(
            mode="public" if mode == "public" else "signed",
            ttl_seconds=ttl,
            thumbnail_process=process,
            base_url=base_url.rstrip("/"),
        )


def thumbnail_process(value: str) -> str:
    """IMAGE_THUMBNAIL_PROCESS: empty, or `image/` and known actions with plain parameters."""
    name = "IMAGE_THUMBNAIL_PROCESS"
    if value == "":
        return value
    if len(value) > MAX_PROCESS_LENGTH:
        raise ConfigError(name, f"must be at most {MAX_PROCESS_LENGTH} characters")
    kind, _, actions = value.partition("/")
    if kind != "image" or not actions:
        raise ConfigError(name, "must start with image/ and name at least one action")
    for action in actions.split("/"):
        match = _ACTION.fullmatch(action)
        if match is None:
            raise ConfigError(name, f"{action!r} is not an action like resize,w_256")
        if match.group(1) not in THUMBNAIL_ACTIONS:
            raise ConfigError(
                name,
                f"{match.group(1)!r} is not an image action (use {', '.join(sorted(THUMBNAIL_ACTIONS))})",
            )
    return value


def content_disposition(mime: str, file_name: str) -> str:
    """`inline` for media, else `attachment`; the client's name per RFC 6266 and RFC 5987."""
    kind = "inline" if is_inline_media(mime) else "attachment"
    if not file_name:
        return kind
    fallback = "".join(ch if ch in _FILENAME_SAFE else "_" for ch in file_name)
    value = f'{kind}; filename="{fallback}"'
    if fallback != file_name:
        value += f"; filename*=UTF-8''{quote(file_name.encode('utf-8'), safe='')}"
    return value


def has_thumbnail(mime: str) -> bool:
    return mime.lower() in THUMBNAIL_TYPES


class UrlMinter:
    """Adds `url` (and `thumbnailUrl`) to a record's JSON; one per request (one clock, one key)."""

    def __init__(
        self,
        settings: DownloadSettings,
        oss: OssSettings,
        credentials: Credentials | None,
        now: float,
    ) -> None:
        if settings.mode == "signed" and credentials is None:
            raise ValueError("signed download URLs need credentials")
        self.settings = settings
        self._sign: Presign | None = None
        if settings.mode == "signed":
            assert credentials is not None
            self._sign = presigner(oss, credentials, now, settings.ttl_seconds)

    def record_json(self, record: Record) -> dict[str, Any]:
        payload = record.to_json()
        disposition = content_disposition(record.mime_type, record.file_name)
        payload["url"] = self.url(record.key, {"response-content-disposition": disposition})
        process = self.settings.thumbnail_process
        if process and has_thumbnail(record.mime_type):
            payload["thumbnailUrl"] = self.url(record.key, {"x-oss-process": process})
        return payload

    def url(self, key: str, query: Mapping[str, str]) -> str:
        settings = self.settings
        if settings.mode == "public":
            params = "&".join(
                f"{uri_encode(k, keep_slash=False)}={uri_encode(v, keep_slash=False)}"
                for k, v in sorted(query.items())
            )
            return f"{settings.base_url}/{uri_encode(key, keep_slash=True)}?{params}"
        assert self._sign is not None  # made in __init__ in signed mode
        return self._sign("GET", key, query, None).url
