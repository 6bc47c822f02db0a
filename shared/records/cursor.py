"""Listing cursors: opaque, URL-safe tokens holding the sort key of the last item of a page.

A cursor is base64url (no padding) of the compact JSON `[created_at, key, bucket]`. Both backends
list in the same order (createdAt desc, then key asc, then bucket asc: DESIGN.md's "createdAt
descending, then key") and derive everything else from these three values (Tablestore its
inverted timestamp and pk), so one format serves both. Decoding is strict: anything that is not exactly
what `encode_cursor` produces is a `BadRequest`, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from shared.errors import BadRequest
from shared.records.base import MAX_PAGE, Record

MAX_CURSOR_CHARS = 4096  # a 1023-byte key and a bucket name fit with room to spare
MAX_TIMESTAMP_MS = 2**53  # beyond any real date; keeps the value exact in JSON everywhere
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class SortKey:
    """Where a page ended: the listing resumes strictly after this item, in listing order."""

    created_at: int
    key: str
    bucket: str


def position(record: Record) -> SortKey:
    """A record's place in an owner's listing."""
    return SortKey(record.created_at, record.key, record.bucket)


def encode_cursor(position: SortKey) -> str:
    """base64url(JSON) of the last item's sort key: opaque to clients, safe in a query string."""
    text = json.dumps(
        [position.created_at, position.key, position.bucket],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return base64.urlsafe_b64encode(text.encode()).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> SortKey:
    """Accept only a cursor `encode_cursor` could have produced; BadRequest otherwise."""
    if len(cursor) > MAX_CURSOR_CHARS or not _BASE64URL.fullmatch(cursor):
        raise BadRequest("cursor is malformed")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("cursor is malformed") from exc
    position = _sort_key(value)
    try:
        canonical = encode_cursor(position)
    except UnicodeEncodeError as exc:  # a lone surrogate smuggled in as a JSON escape
        raise BadRequest("cursor is malformed") from exc
    if canonical != cursor:  # one spelling per position: no padding, no spaces, no escapes
        raise BadRequest("cursor is malformed")
    return position


def check_limit(limit: object) -> int:
    """Page sizes are 1..MAX_PAGE; clamping is the caller's job, nonsense is a BadRequest."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number between 1 and {MAX_PAGE}")
    return limit


def _sort_key(value: object) -> SortKey:
    if not isinstance(value, list) or len(value) != 3:
        raise BadRequest("cursor is malformed")
    created_at, key, bucket = value
    if (
        isinstance(created_at, bool)
        or not isinstance(created_at, int)
        or not 0 <= created_at <= MAX_TIMESTAMP_MS
        or not isinstance(key, str)
        or not key
        or not isinstance(bucket, str)
        or not bucket
    ):
        raise BadRequest("cursor is malformed")
    return SortKey(created_at, key, bucket)
