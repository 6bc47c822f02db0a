"""The audit's watermark: the LastModified up to which every object has been handled.

A record in the record store that no object and no user can own (docs/reliability.md); it makes
the whole-bucket audit (scan.py) incremental.
"""

from __future__ import annotations

import contextlib

from shared.errors import Conflict
from shared.records.base import Record, RecordStore

# The watermark is a record no object and no user can own: no OSS key starts with '/', and the
# owner is longer than any user id the sign function accepts (shared.sign.auth, 256 characters).
WATERMARK_KEY = "/reconcile/watermark"
WATERMARK_OWNER = "reconcile-watermark:" + "~" * 256
WATERMARK_TYPE = "application/x-reconcile-watermark"


class Watermark:
    """The LastModified (Unix seconds) up to which every object has been handled; in the store.

    Written with `replace=True`: a newer time replaces the record, an older one is a Conflict,
    so two runs racing can never move it backwards.
    """

    def __init__(self, store: RecordStore, bucket: str) -> None:
        self.store = store
        self.bucket = bucket

    def read(self) -> int | None:
        record = self.store.get(self.bucket, WATERMARK_KEY)
        return None if record is None else record.created_at // 1000

    def advance(self, seconds: int) -> None:
        millis = seconds * 1000
        record = Record(
            owner=WATERMARK_OWNER,
            bucket=self.bucket,
            key=WATERMARK_KEY,
            size=0,
            etag=f"{millis:x}",
            mime_type=WATERMARK_TYPE,
            created_at=millis,
            reconciled=True,
        )
        with contextlib.suppress(Conflict):  # another run got further: its watermark stands
            self.store.put(record, replace=True)
