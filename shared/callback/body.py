"""The callback body: the template OSS renders for us (the sign function) and its parser (the callback).

One list of OSS variables serves both sides (`VARIABLES`).

Form mode (`application/x-www-form-urlencoded`): OSS replaces each `${var}` with its
percent-encoded value and copies constants verbatim (protocol §5.5). The grant token is such a
constant: JWT characters (`A-Za-z0-9-_.`) need no encoding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from shared.digits import whole_number
from shared.errors import BadRequest

BODY_TYPE = "application/x-www-form-urlencoded"
GRANT_FIELD = "grant"
_URL_SAFE = re.compile(r"[A-Za-z0-9._-]+")

# (form field name, OSS system variable) in the order they appear in the body.
VARIABLES: tuple[tuple[str, str], ...] = (
    ("bucket", "bucket"),
    ("object", "object"),
    ("etag", "etag"),
    ("size", "size"),
    ("mimeType", "mimeType"),
    ("imageInfo.height", "imageInfo.height"),
    ("imageInfo.width", "imageInfo.width"),
    ("imageInfo.format", "imageInfo.format"),
    ("crc64", "crc64"),
    ("contentMd5", "contentMd5"),
    ("clientIp", "clientIp"),
    ("reqId", "reqId"),
    ("operation", "operation"),
)


def callback_body_template(grant_token: str) -> str:
    """`bucket=${bucket}&object=${object}&…&grant=<token>`: what OSS fills in and signs."""
    if not _URL_SAFE.fullmatch(grant_token):
        raise ValueError("a grant token must be URL-safe")
    variables = "&".join(f"{name}=${{{var}}}" for name, var in VARIABLES)
    return f"{variables}&{GRANT_FIELD}={grant_token}"


MAX_BODY_FIELDS = 64


MAX_SHOWN_NAME = 64  # field names are attacker-chosen: answers and log lines stay small


REQUIRED_FIELDS = ("bucket", "object", "etag", "size", "mimeType")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class CallbackFields:
    """What the callback body template above carries, typed."""

    bucket: str
    object: str
    etag: str
    size: int
    mime_type: str
    image_height: int | None
    image_width: int | None
    image_format: str
    crc64: str
    content_md5: str
    client_ip: str
    req_id: str
    grant: str  # "" when absent: the grant check answers 403, not the parser


def parse_callback_body(body: bytes) -> CallbackFields:
    """Form body (§5.5): UTF-8, each field once, required fields present, numbers decimal."""
    values = _form_fields(body)
    missing = [name for name in REQUIRED_FIELDS if name not in values]
    if missing:
        raise BadRequest(f"the callback body lacks {', '.join(missing)}")
    for name in ("bucket", "object", "etag"):
        if not values[name]:
            raise BadRequest(f"the callback field {name} is empty")
    return CallbackFields(
        bucket=values["bucket"],
        object=values["object"],
        etag=values["etag"],
        size=_decimal(values, "size"),
        mime_type=values["mimeType"],
        image_height=_optional_decimal(values, "imageInfo.height"),
        image_width=_optional_decimal(values, "imageInfo.width"),
        image_format=values.get("imageInfo.format", ""),
        crc64=values.get("crc64", ""),
        content_md5=values.get("contentMd5", ""),
        client_ip=values.get("clientIp", ""),
        req_id=values.get("reqId", ""),
        grant=values.get(GRANT_FIELD, ""),
    )


def _form_fields(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        if _BAD_ESCAPE.search(text):
            raise ValueError("a '%' that starts no escape")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=MAX_BODY_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("the callback body is not a UTF-8 form") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise BadRequest(f"the callback field {name[:MAX_SHOWN_NAME]!r} is repeated")
        if _CONTROL.search(value):
            raise BadRequest(
                f"the callback field {name[:MAX_SHOWN_NAME]!r} contains control characters"
            )
        fields[name] = value
    return fields


def _decimal(values: dict[str, str], name: str) -> int:
    number = whole_number(values[name])
    if number is None:
        raise BadRequest(f"the callback field {name} is not a decimal integer")
    return number


def _optional_decimal(values: dict[str, str], name: str) -> int | None:
    if not values.get(name):
        return None
    return _decimal(values, name)
