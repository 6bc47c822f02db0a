"""The one record-write algorithm both backends run (base.py): insert → read → decide → guarded replace.

A backend gives three primitives: an insert that succeeds only when the identity (bucket, key)
is free, a read, and a replace guarded by the stored etag. `write_record` runs them: when the
identity is taken, `decide` says whether this is the same object again or a permitted newer one,
and the guarded replace means a concurrent writer can never be silently overwritten.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from shared.errors import BadRequest, Conflict, Unavailable
from shared.keys import MAX_KEY_BYTES
from shared.records.base import PutOutcome, PutResult, Record
from shared.records.cursor import MAX_TIMESTAMP_MS


class Action(enum.Enum):
    DUPLICATE = "duplicate"  # the same object again: answer with the stored record
    REPLACE = "replace"  # a newer object under the same key, and the caller allows it


def same_object(stored_etag: str, incoming_etag: str) -> bool:
    """OSS etags are hex digests, quoted in HTTP headers and bare in callbacks: compare the digest."""
    return _bare(stored_etag) == _bare(incoming_etag)


def decide(stored: Record, incoming: Record, *, replace: bool) -> Action:
    """Same etag → duplicate; else replace only when allowed and not older; else Conflict (409).

    A tombstone refuses the object it stands for (its owner deleted it: a late callback or a
    reconciliation must not bring it back) and yields to any other object under the key.
    """
    if stored.deleted:
        if same_object(stored.etag, incoming.etag):
            raise Conflict(f"the object under {incoming.key!r} was deleted by its owner")
        return Action.REPLACE
    if same_object(stored.etag, incoming.etag):
        return Action.DUPLICATE
    if not replace:
        raise Conflict(f"a different object is already recorded under {incoming.key!r}")
    if incoming.created_at < stored.created_at:
        # A replayed callback of an older upload must never overwrite a newer record.
        raise Conflict(f"a newer object is already recorded under {incoming.key!r}")
    return Action.REPLACE


def write_record(
    record: Record,
    *,
    replace: bool,
    insert: Callable[[Record], bool],
    read: Callable[[str, str], Record | None],
    replace_if: Callable[[Record, str], bool],
) -> PutOutcome:
    """Write idempotently over a backend's primitives: `insert` (False when the identity is taken),
    `read`, and `replace_if` (False when the stored etag is no longer the one given)."""
    check_record(record)
    if insert(record):
        return PutOutcome(record, PutResult.CREATED)
    stored = read(record.bucket, record.key)
    if stored is None:  # deleted between the two requests: nothing to protect
        raise Unavailable("the record changed while it was written; try again")
    if decide(stored, record, replace=replace) is Action.DUPLICATE:
        return PutOutcome(stored, PutResult.DUPLICATE)
    if replace_if(record, stored.etag):
        return PutOutcome(record, PutResult.REPLACED)
    # Another writer changed the row after we read it: judge again against what it wrote.
    latest = read(record.bucket, record.key)
    if latest is not None and not latest.deleted and same_object(latest.etag, record.etag):
        return PutOutcome(latest, PutResult.DUPLICATE)
    raise Conflict(f"{record.key!r} was changed by another writer; not overwritten")


def check_record(record: Record) -> Record:
    """Refuse records no backend can key or list (empty identity, owner or etag; numbers out of range)."""
    problems = []
    if (
        not record.bucket
        or not record.key
        or len(record.key.encode("utf-8", "replace")) > MAX_KEY_BYTES
    ):
        problems.append(f"bucket and key must be non-empty (key at most {MAX_KEY_BYTES} bytes)")
    if not record.owner:
        problems.append("owner must be non-empty")
    if not record.etag:
        problems.append("etag must be non-empty")
    for name in ("size", "created_at", "deleted_at"):
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
    if record.deleted_at:
        problems.append("a new record cannot be a tombstone")
    if problems:
        raise BadRequest("record is unusable: " + "; ".join(problems))
    return record


def _bare(etag: str) -> str:
    return etag.strip().strip('"').upper()
