"""The record model and the store interface both backends implement.

A record's identity is (bucket, key). Writes are idempotent (DESIGN.md, Records):
- absent → stored (`CREATED`);
- present with the same etag → the stored record, unchanged (`DUPLICATE`, answered 200 again);
- present with another etag → `REPLACED` when the caller allows it (a prefix grant, still valid:
  an owner overwriting its own key), else `Conflict` (409).
Store faults and timeouts raise `Unavailable` (503); nothing is half-written.

Deleting an upload leaves a tombstone (`deleted_at`): the row stays with the deleted object's etag,
is never listed or answered, and refuses a late write of that same object (a callback or a
reconciliation that raced the delete); a newer object under the key replaces it (write.py).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any, Protocol

DEFAULT_PAGE = 50
MAX_PAGE = 200


@dataclass(frozen=True)
class Record:
    owner: str
    bucket: str
    key: str
    size: int
    etag: str
    mime_type: str
    created_at: int  # milliseconds since the epoch
    image_width: int | None = None
    image_height: int | None = None
    image_format: str = ""
    crc64: str = ""
    content_md5: str = ""
    client_ip: str = ""
    request_id: str = ""  # OSS's x-oss-request-id of the upload
    grant_id: str = ""
    reconciled: bool = False  # written by reconciliation rather than by a callback
    file_name: str = ""  # the name the client gave (exact-key grants), for download names
    deleted_at: int = 0  # ms; a tombstone when set: its owner deleted this object (write.py)

    @property
    def deleted(self) -> bool:
        return self.deleted_at > 0

    def to_json(self) -> dict[str, Any]:
        """The public shape (camelCase), as answered to OSS/the browser and by GET /uploads."""
        image = None
        if self.image_width is not None or self.image_height is not None or self.image_format:
            image = {
                "width": self.image_width,
                "height": self.image_height,
                "format": self.image_format,
            }
        return {
            "key": self.key,
            "size": self.size,
            "etag": self.etag,
            "mimeType": self.mime_type,
            "owner": self.owner,
            "createdAt": self.created_at,
            "bucket": self.bucket,
            "imageInfo": image,
            "crc64": self.crc64,
            "contentMd5": self.content_md5,
            "clientIp": self.client_ip,
            "reqId": self.request_id,
            "grantId": self.grant_id,
            "reconciled": self.reconciled,
            "fileName": self.file_name,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PutResult(enum.Enum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    REPLACED = "replaced"


@dataclass(frozen=True)
class PutOutcome:
    record: Record  # what the store now holds
    result: PutResult


@dataclass(frozen=True)
class Page:
    items: list[Record]
    next: str | None  # opaque, URL-safe; None on the last page


class RecordStore(Protocol):
    def put(self, record: Record, *, replace: bool) -> PutOutcome:
        """Write idempotently (see module doc); raise Conflict or Unavailable."""

    def get(self, bucket: str, key: str) -> Record | None:
        """The record for an object (a tombstone too: check `deleted`), or None."""

    def tombstone(self, bucket: str, key: str, etag: str, deleted_at: int) -> bool:
        """Mark the record deleted while it still holds `etag`; False when it does not."""

    def list_by_owner(
        self, owner: str, *, limit: int = DEFAULT_PAGE, cursor: str | None = None
    ) -> Page:
        """One owner's live records (no tombstones), newest first (createdAt desc, then key asc);
        BadRequest on a bad cursor."""
