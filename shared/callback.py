"""OSS upload callbacks: the string OSS signed, its RSA signature, and the form body it carries.

Rules from oss-protocol.md §6.2: OSS signs `url_decode(path) + ("?" + raw query, only when there
is one) + "\\n" + raw body` with RSASSA-PKCS1-v1_5 over MD5, and sends the bare base64 signature in
`Authorization`. Every parse failure here is a domain error: 401 for anything that is not a valid
signature, 400 for an authentic body we cannot use (security.md §5: forged ≠ unusable).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from shared.callback_body import GRANT_FIELD
from shared.errors import BadRequest, SignatureInvalid
from shared.http import Request, canonical_base64_header

MAX_AUTHORIZATION_CHARS = 1400  # base64 of an 8192-bit RSA signature is 1368 characters
MAX_BODY_FIELDS = 64
MAX_SHOWN_NAME = 64  # field names are attacker-chosen: answers and log lines stay small
REQUIRED_FIELDS = ("bucket", "object", "etag", "size", "mimeType")
_DECIMAL = re.compile(r"[0-9]{1,19}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def string_to_verify(request: Request) -> bytes:
    """§6.2: decoded path, `?` + raw query only when non-empty, LF, raw body bytes."""
    message = request.signed_path
    if request.query_string:
        try:
            query = request.query_string.encode("latin-1")  # WSGI: raw bytes as latin-1 text
        except UnicodeEncodeError:
            query = request.query_string.encode("utf-8")  # FC 3.0 JSON text
        message += b"?" + query
    return message + b"\n" + request.body


def decode_authorization(header: str | None) -> bytes:
    """`Authorization` is the bare, canonical base64 of the signature; nothing else is accepted."""
    return canonical_base64_header(
        header, name="Authorization", max_chars=MAX_AUTHORIZATION_CHARS, error=SignatureInvalid
    )


def verify_signature(message: bytes, authorization: str | None, public_key: RSAPublicKey) -> bytes:
    """RSA PKCS#1 v1.5 over MD5 of the string to verify; return the message or raise."""
    signature = decode_authorization(authorization)
    if len(signature) != (public_key.key_size + 7) // 8:
        raise SignatureInvalid("the signature does not match the key's length")
    try:
        # MD5 is OSS's choice, not ours: the callback signature scheme is fixed by OSS (§6.2).
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.MD5())  # noqa: S303
    except InvalidSignature as exc:
        raise SignatureInvalid("the OSS signature does not match the request") from exc
    return message


@dataclass(frozen=True)
class CallbackFields:
    """What the callback body template of shared.callback_body carries, typed."""

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
    operation: str
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
        operation=values.get("operation", ""),
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
    text = values[name]
    if not _DECIMAL.fullmatch(text):
        raise BadRequest(f"the callback field {name} is not a decimal integer")
    return int(text)


def _optional_decimal(values: dict[str, str], name: str) -> int | None:
    if not values.get(name):
        return None
    return _decimal(values, name)
