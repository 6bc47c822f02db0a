"""What one callback says about the upload: bound to the grant that allowed it, the claim OSS
is asked to confirm, and the record it becomes (DESIGN.md, Callback function and Records)."""

from __future__ import annotations

from urllib.parse import quote

from shared.callback.body import CallbackFields
from shared.errors import GrantInvalid
from shared.grant import Grant
from shared.http import Request
from shared.records.base import Record
from shared.records.uploads import KEY_OUTSIDE, refusal
from shared.verify import Claim


def claim_of(fields: CallbackFields) -> Claim:
    """What the callback says the stored object is: the claim OSS is asked to confirm."""
    return Claim(
        key=fields.object,
        etag=fields.etag,
        size=fields.size,
        crc64=fields.crc64,
        mime_type=fields.mime_type,
        image_format=fields.image_format,
        image_width=fields.image_width,
        image_height=fields.image_height,
    )


def check_grant(fields: CallbackFields, grant: Grant, bucket: str) -> str | None:
    """The grant binds the callback: our bucket, a key it admits, a size within [1, max]
    (records/uploads.py `refusal`, which reconciliation applies too).

    Raises GrantInvalid for a bucket or key outside the grant: nothing is touched then. Returns
    the size problem of an object inside it, which the caller deletes (a presigned PUT stores a
    body of any size; a PostObject policy's content-length-range never lets one through)."""
    if fields.bucket != bucket or grant.bucket != bucket:
        raise GrantInvalid("the callback names a bucket outside the grant")
    problem = refusal(
        covered=grant.admits_key(fields.object),
        key=fields.object,
        size=fields.size,
        max_bytes=grant.max_bytes,
    )
    if problem == KEY_OUTSIDE:
        raise GrantInvalid(problem)
    return problem


def build_record(
    fields: CallbackFields, grant: Grant, request: Request, *, created_at: int
) -> Record:
    """One record per stored object, owned by the grant's user (DESIGN.md, Records)."""
    return Record(
        owner=grant.user,
        bucket=fields.bucket,
        key=fields.object,
        size=fields.size,
        etag=fields.etag,
        mime_type=fields.mime_type,
        created_at=created_at,
        image_width=fields.image_width,
        image_height=fields.image_height,
        image_format=fields.image_format,
        crc64=fields.crc64,
        content_md5=fields.content_md5,
        client_ip=fields.client_ip,
        request_id=fields.req_id or request.header("x-oss-request-id") or "",
        grant_id=grant.grant_id,
        file_name=grant.file_name,
    )


def download_url(base: str, key: str) -> str:
    return f"{base}/{quote(key, safe='/')}"
