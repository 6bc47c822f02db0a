"""Headers OSS sends the callback whose value is bare base64: `Authorization`, `x-oss-pub-key-url`."""

from __future__ import annotations

import base64
import binascii

from shared.errors import AppError


def canonical_base64_header(
    header: str | None, *, name: str, max_chars: int, error: type[AppError]
) -> bytes:
    """A header whose value is bare, canonical base64 (OSS's Authorization, x-oss-pub-key-url).

    Surrounding spaces and tabs are dropped (RFC 9110); anything else non-canonical — another
    alphabet, line breaks, padding games — raises `error`, so every parse failure is ours.
    """
    value = (header or "").strip(" \t")
    if not value:
        raise error(f"the {name} header is missing")
    if len(value) > max_chars:
        raise error(f"the {name} header is too long")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise error(f"the {name} header is not base64") from exc
    if base64.b64encode(raw).decode("ascii") != value:
        raise error(f"the {name} header is not canonical base64")
    return raw
