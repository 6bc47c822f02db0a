"""One upload of the caller's: GET and DELETE /uploads/{key} (DESIGN "Private files").

`{key}` is the rest of the path, each segment percent-encoded (the adapter has decoded it). The
record is read first and must be the caller's: absent, deleted and someone else's are one 404,
and no URL is minted before that check (URLs are made only from a record the caller owns).

DELETE: the object (only while it still has the record's etag: `shared.objects`), then the
record becomes a tombstone (records/base.py) that refuses a late callback or reconciliation of
the deleted object, then the quota is released (`release`), once: by the request that made the
tombstone. A failure at any step is an error answer, and a retry finishes the job: the record
stays until its object is gone, and a tombstone of the caller's answers a repeated DELETE with
204. Should the release itself fail after the tombstone, the owner's usage stays counted (a
quota can be undercounted as free never, overcounted only by that upload).
"""

from __future__ import annotations

from collections.abc import Callable

from shared.errors import Conflict, NotFound
from shared.http import Response, json_response
from shared.keys import is_valid_key
from shared.objects import Remover
from shared.records.base import Record, RecordStore
from shared.sign.downloads import UrlMinter

UPLOAD_ROUTE = "/uploads/"  # followed by the key

QuotaRelease = Callable[[Record], None]


def upload_key(route: str) -> str:
    """The key of /uploads/{key}; 404 for anything we could not have issued (dot-segments, `%`,
    control characters, over-long): there is no such upload."""
    key = route[len(UPLOAD_ROUTE) :]
    if not is_valid_key(key):
        raise NotFound("no such upload")
    return key


def owned(records: RecordStore, bucket: str, key: str, user: str) -> Record:
    """The caller's record (maybe a tombstone); 404 alike for absent and not theirs."""
    record = records.get(bucket, key)
    if record is None or record.owner != user:
        raise NotFound("no such upload")
    return record


def get_upload(
    records: RecordStore, bucket: str, key: str, user: str, minter: Callable[[], UrlMinter]
) -> Response:
    record = owned(records, bucket, key, user)
    if record.deleted:
        raise NotFound("no such upload")
    response = json_response(200, minter().record_json(record))
    response.log_fields.update(user=user, key=key)
    return response


def delete_upload(
    records: RecordStore,
    bucket: str,
    key: str,
    user: str,
    *,
    remover: Callable[[], Remover],
    now_ms: Callable[[], int],
    release: QuotaRelease,
) -> Response:
    record = owned(records, bucket, key, user)
    removal = "gone"  # a retry after the tombstone: the object and the record went before
    if not record.deleted:
        # The object first: while it is not gone, the record still names it for a retry.
        removal = remover().remove(record.key, record.etag)
        if not records.tombstone(record.bucket, record.key, record.etag, now_ms()):
            # A newer upload replaced the record meanwhile; the etag guard kept its object.
            raise Conflict("a newer upload under this key arrived meanwhile; it was kept")
        release(record)  # the one place a deleted upload gives back its quota (grant ledger)
    response = Response(204)
    response.log_fields.update(user=user, key=key, removal=removal)
    return response
