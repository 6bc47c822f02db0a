"""The idempotency rules both backends apply when an object is already recorded (base.py).

Each backend first tries an insert that succeeds only when the identity (bucket, key) is free;
when it is taken, it reads the stored record and asks `decide` what to do. A replacement is then
written guarded by the stored etag, so a concurrent writer can never be silently overwritten.
"""

from __future__ import annotations

import enum

from shared.errors import BadRequest, Conflict
from shared.records.base import Record
from shared.records.cursor import MAX_TIMESTAMP_MS

MAX_KEY_BYTES = 1023  # OSS object keys are at most 1023 bytes


class Action(enum.Enum):
    DUPLICATE = "duplicate"  # the same object again: answer with the stored record
    REPLACE = "replace"  # a newer object under the same key, and the caller allows it


def same_object(stored_etag: str, incoming_etag: str) -> bool:
    """OSS etags are hex digests, quoted in HTTP headers and bare in callbacks: compare the digest."""
    return _bare(stored_etag) == _bare(incoming_etag)


def decide(stored: Record, incoming: Record, *, replace: bool) -> Action:
    """Same etag → duplicate; else replace only when allowed and not older; else Conflict (409)."""
    if same_object(stored.etag, incoming.etag):
        return Action.DUPLICATE
    if not replace:
        raise Conflict(f"a different object is already recorded under {incoming.key!r}")
    if incoming.created_at < stored.created_at:
        # A replayed callback of an older upload must never overwrite a newer record.
        raise Conflict(f"a newer object is already recorded under {incoming.key!r}")
    return Action.REPLACE


def check_record(record: Record) -> Record:
    """Refuse records no backend can key or list (empty identity, owner or etag; numbers out of range)."""
    problems = []
    if (
        not record.bucket
        or not record.key
        or len(record.key.encode("utf-8", "replace")) > MAX_KEY_BYTES
    ):
        problems.append("bucket and key must be non-empty (key at most 1023 bytes)")
    if not record.owner:
        problems.append("owner must be non-empty")
    if not record.etag:
        problems.append("etag must be non-empty")
    for name in ("size", "created_at"):
        value = getattr(record, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f"{name} must be a whole number ≥ 0")
    if isinstance(record.created_at, int) and record.created_at > MAX_TIMESTAMP_MS:
        # A listing cursor could not name it (cursor.py), nor Tablestore invert it in int64.
        problems.append(f"created_at must be at most {MAX_TIMESTAMP_MS} (ms)")
    for name in ("image_width", "image_height"):
        value = getattr(record, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"{name} must be a whole number or absent")
    if problems:
        raise BadRequest("record is unusable: " + "; ".join(problems))
    return record


def _bare(etag: str) -> str:
    return etag.strip().strip('"').upper()
