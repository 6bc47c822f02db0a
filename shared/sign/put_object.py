"""A small file's single PUT (S3-style clients such as Uppy): a presigned PutObject URL that
carries the grant.

The grant is the one `/signature` issues in exact-key mode (`issue.exact_key`: server-chosen key,
allow-listed type, declared size, expiry; written to the ledger by the caller, with the rate
limit and quota reservation). What a PostObject policy pins, the signature pins here:
- the callback (and so the grant token) as the `callback` query parameter, part of the V4
  canonical query (a V1 sub-resource): OSS calls the same callback function with the same
  body template (next-capabilities §1.3, transport 2);
- `Content-Type` (the allow-listed type), `x-oss-forbid-overwrite: true` and
  `x-oss-storage-class: Standard` as signed headers, returned in `headers`: the client must send
  exactly these (V4 signs content-type and every x-oss-* header present, so a request with a
  different or an extra one fails with SignatureDoesNotMatch);
- the key, the method and the expiry (POLICY_TTL_SECONDS, as for a policy).

What it cannot pin is the size: a presigned PUT has no `content-length-range`, so OSS stores
a body of any size up to its 5 GB PutObject limit. The declared size is enforced after the fact
by the callback, as for every grant: the grant token carries it as `max`, and an object whose
`${size}` lies outside [1, declared] gets no record: the callback deletes it, releases its
reservation and answers 403 GrantInvalid (which OSS hands the browser as 203 CallbackFailed); the
sweeper deletes it when that delete failed. Use the PostObject form (`sign_form`, as
`/signature`) where the body must never be stored at all. Single PUTs are therefore
only for small files: a declared size above MULTIPART_PART_BYTES is refused (413 TooLarge), so
a client takes larger files through multipart, whose parts ListParts checks before Complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared import keys
from shared.credentials import Credentials
from shared.errors import BadRequest
from shared.grant import Grant, issue_token
from shared.multipart import FORBID_OVERWRITE
from shared.sign import issue, jsonbody
from shared.sign.presign import Presigned, presigner
from shared.sign.settings import SignSettings

CALLBACK_PARAMETER = "callback"


@dataclass(frozen=True)
class SignedPut:
    grant: Grant
    presigned: Presigned

    def answer(self) -> dict[str, Any]:
        """`{url, key, headers, expire}`: where the client PUTs, and the headers it must send."""
        return {
            "url": self.presigned.url,
            "key": self.grant.key,
            "headers": dict(self.presigned.headers),
            "expire": self.presigned.expires_at,
        }


def signed_headers(stored_type: str) -> dict[str, str]:
    """What a PostObject grant pins as fields, as signed headers: the client can change none."""
    return {
        "Content-Type": stored_type,
        "x-oss-forbid-overwrite": FORBID_OVERWRITE,
        issue.STORAGE_CLASS_FIELD: issue.STORAGE_CLASS,
    }


def upload_request(upload: Mapping[str, Any], max_bytes: int) -> issue.UploadRequest:
    """The JSON facts (path, filename, size, type) judged by /signature's own parser."""
    if "filename" not in upload or "size" not in upload:
        raise BadRequest("filename and size are required to start an upload")
    query = {
        "path": jsonbody.string(upload.get("path", ""), "path"),
        "filename": jsonbody.string(upload["filename"], "filename"),
        "size": str(jsonbody.integer(upload["size"], "size")),
    }
    if "type" in upload:
        query["type"] = jsonbody.string(upload["type"], "type")
    return issue.parse_upload_request(query, max_bytes)


@dataclass(frozen=True)
class SignedForm:
    """The same file as a PostObject: `/signature`'s exact-key grant, policy and fields."""

    issued: issue.IssuedGrant

    @property
    def grant(self) -> Grant:
        return self.issued.grant

    def answer(self) -> dict[str, Any]:
        """`{url, key, fields, expire}`: the form to POST, `key` first and the file last."""
        grant = self.issued.response
        return {
            "url": grant["host"],
            "key": grant["key"],
            "fields": {"key": grant["key"], **grant["fields"]},
            "expire": grant["expire"],
        }


def sign_form(
    settings: SignSettings,
    user: str,
    upload: Mapping[str, Any],
    credentials: Credentials,
    now: float,
) -> SignedForm:
    """The PostObject way for a client that can post a form (Uppy 6.3: `fields`): OSS enforces
    the policy's `content-length-range` before storing, which a presigned PUT cannot."""
    request = upload_request(upload, settings.upload.post_max_bytes)
    return SignedForm(issue.issue(settings, user, request, credentials, now))


def sign_put(
    settings: SignSettings,
    user: str,
    upload: Mapping[str, Any],
    credentials: Credentials,
    now: float,
) -> SignedPut:
    """An exact-key grant for `upload` and its presigned PutObject, for files up to one part."""
    upload_settings, oss = settings.upload, settings.oss
    request = upload_request(upload, min(upload_settings.part_bytes, upload_settings.max_bytes))
    now_ms = int(now * 1000)
    chosen = issue.exact_key(upload_settings, user, request, now_ms)
    grant = Grant(
        grant_id=keys.new_object_id(now_ms),
        user=user,
        bucket=oss.bucket,
        key=chosen.key,
        prefix=None,
        max_bytes=request.size or 1,
        expires_at=int(now) + upload_settings.policy_ttl_seconds,
        file_name=request.filename or "",
    )
    token = issue_token(grant, settings.grant_secrets[0])
    query = {CALLBACK_PARAMETER: issue.callback_param(upload_settings.callback_url, token)}
    headers = signed_headers(chosen.stored_type)
    expires = upload_settings.policy_ttl_seconds
    presigned = presigner(oss, credentials, now, expires)("PUT", chosen.key, query, headers)
    return SignedPut(grant, presigned)
