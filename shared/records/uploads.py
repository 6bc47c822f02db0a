"""Record one upload and count it against its owner's quota: the callback and the sweeper alike.

DESIGN.md "The grant ledger": a user's committed bytes and files never pass the quota. An exact
grant still open in the ledger reserved its room at sign time: the record is written, then the
grant settled (open → used), turning the reservation into usage exactly once. Every other upload
(a prefix grant's, or one whose grant is no longer open or not in the ledger) is charged first,
with the quota checked; one that would pass it is deleted and answered as Rejected, and a charge
whose record write fails or turns out a duplicate is taken back.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.errors import QuotaExceeded, Rejected
from shared.keys import is_valid_key
from shared.records import Store
from shared.records.base import PutOutcome, PutResult, Record
from shared.records.grants import OPEN, USED, Limits
from shared.records.write import same_object

Delete = Callable[[str], object]  # removes the object (its own etag only) from the bucket


KEY_OUTSIDE = "the object key is outside the grant"
SIZE_OUTSIDE = "the object size is outside the grant"


def refusal(*, covered: bool, key: str, size: int, max_bytes: int) -> str | None:
    """Why an object lies outside its grant (None: it does not): the callback's grant checks,
    which reconciliation applies too before it backfills anything. What the object may contain is
    `shared.content.stored_type_problem`'s to say (active content included).

    KEY_OUTSIDE: the object is not the grant's to touch. SIZE_OUTSIDE (a key inside the grant):
    it was written with the grant (a presigned PUT stores any size), so it is deleted."""
    if not is_valid_key(key) or not covered:
        return KEY_OUTSIDE
    if not 1 <= size <= max_bytes:
        return SIZE_OUTSIDE
    return None


def record_upload(
    store: Store,
    record: Record,
    *,
    grant_id: str,
    exact: bool,
    limits: Limits,
    delete: Delete,
) -> PutOutcome:
    """Write `record` (owned by the grant's user) and account for it; Rejected when over quota."""
    owner = record.owner
    ledger = store.get_grant(owner, grant_id)  # the owner's own rows only: a foreign id is None
    if exact and ledger is not None and ledger.covers(record.bucket, record.key):
        if ledger.state == OPEN:
            outcome = store.put(record, replace=False)
            store.settle(owner, grant_id, USED, record.size)
            return outcome
        if ledger.state == USED:  # a replay, or the sweeper got there first
            return store.put(record, replace=False)
    existing = store.get(record.bucket, record.key)
    if existing is not None and same_object(existing.etag, record.etag):
        return store.put(record, replace=not exact)  # the same object again: nothing to count
    size = record.size - (existing.size if existing is not None else 0)
    files = 0 if existing is not None else 1
    try:
        store.charge(owner, size, files, limits)
    except QuotaExceeded as exc:
        delete(record.key)
        raise Rejected(exc) from exc
    try:
        outcome = store.put(record, replace=not exact)
    except BaseException:
        store.refund(owner, size, files)
        raise
    if outcome.result is PutResult.DUPLICATE:  # another writer recorded it meanwhile
        store.refund(owner, size, files)
    return outcome
