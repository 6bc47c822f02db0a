"""The callback body OSS renders for us: which OSS variables we ask for, and the grant token.

Form mode (`application/x-www-form-urlencoded`): OSS replaces each `${var}` with its
percent-encoded value and copies constants verbatim (protocol §5.5). The grant token is such a
constant: JWT characters (`A-Za-z0-9-_.`) need no encoding.
"""

from __future__ import annotations

import re

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
