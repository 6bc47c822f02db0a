"""Issue one upload grant: the PostObject policy, its signature, the pinned callback and the token.

DESIGN.md "Sign function": the server decides where a file may go. Exact-key mode (a
`filename`) allows one server-generated key with `x-oss-forbid-overwrite`; prefix mode allows
keys under the caller's folder. Every policy pins the bucket, the callback (and so the grant
token), `success_action_status`, a `content-length-range` starting at 1 and a UTC expiration;
exact-key grants also pin the stored type (`x-oss-content-type`). Prefix grants cannot pin a type
(the legacy client sends no type field, and a condition on an absent field fails): the callback
judges what was stored.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared import keys
from shared.callback.body import BODY_TYPE, callback_body_template
from shared.credentials import Credentials
from shared.digits import is_digits, whole_number
from shared.errors import BadRequest, TooLarge
from shared.grant import Grant, issue_token
from shared.multipart import FORBID_OVERWRITE
from shared.records.grants import EXACT, PREFIX, LedgerGrant
from shared.sign import policy
from shared.sign.settings import SignSettings, UploadSettings

# The only query parameters /signature reads. Anything else (bucket, key, prefix, expire,
# callback, success_action_redirect, max…) is refused so that nobody believes it had an effect.
PARAMETERS = frozenset({"path", "filename", "size", "type"})
SUCCESS_STATUS = "200"  # what the legacy client sends; pinned so OSS answers the callback body
STORED_TYPE_FIELD = "x-oss-content-type"
# Object-level fields no RAM permission guards (issue 17.2): an exact grant pins them, so the
# form cannot store the object as Archive (unreadable until restored, billed a minimum term).
STORAGE_CLASS_FIELD, STORAGE_CLASS = "x-oss-storage-class", "Standard"
MAX_SIZE_DIGITS = 20  # longer digit strings are refused before int(): no size limit needs more


@dataclass(frozen=True)
class UploadRequest:
    path: str
    filename: str | None = None
    size: int | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class IssuedGrant:
    grant: Grant
    dir: str
    response: dict[str, Any]  # the /signature JSON body


def parse_upload_request(
    query: Mapping[str, str], max_bytes: int, *, beyond: str = ""
) -> UploadRequest:
    """Read /signature's query: unknown parameters, a bad size or a stray size/type are 400s."""
    unknown = sorted(set(query) - PARAMETERS)
    if unknown:
        raise BadRequest(
            f"unknown query parameter {unknown[0]!r}: only path, filename, size and type are read"
        )
    filename = query.get("filename")
    if filename is None:
        if "size" in query or "type" in query:
            raise BadRequest("size and type are only accepted together with filename")
        return UploadRequest(path=query.get("path", ""))
    return UploadRequest(
        path=query.get("path", ""),
        filename=filename,
        size=declared_size(query.get("size"), max_bytes, beyond=beyond),
        content_type=query.get("type"),
    )


def signature_request(query: Mapping[str, str], upload: UploadSettings) -> UploadRequest:
    """/signature's query: a PostObject holds at most 5 GiB even when UPLOAD_MAX_BYTES (the
    limit of POST /multipart too) allows more."""
    limit = upload.post_max_bytes
    beyond = " for one PostObject: use POST /multipart" if limit < upload.max_bytes else ""
    return parse_upload_request(query, limit, beyond=beyond)


def declared_size(text: str | None, max_bytes: int, *, beyond: str = "") -> int:
    """`size`: a whole number of bytes, at least 1 (400) and at most `max_bytes` (413; `beyond`
    says what to do instead)."""
    if text is None or text == "":
        raise BadRequest("size (in bytes) is required with filename")
    if not is_digits(text):
        raise BadRequest("size must be a whole number of bytes")
    size = whole_number(text, max_digits=MAX_SIZE_DIGITS)
    if size is None:  # digits, more of them than any size has
        raise TooLarge(f"size is over the limit of {max_bytes} bytes{beyond}")
    if size < 1:
        raise BadRequest("size must be at least 1 byte")
    if size > max_bytes:
        raise TooLarge(f"size is over the limit of {max_bytes} bytes{beyond}")
    return size


def allowed_type(
    ext: str, content_type: str | None, table: Mapping[str, tuple[str, ...]]
) -> str | None:
    """The extension must be allow-listed; a declared type must be one of its types."""
    mimes = table.get(ext)
    if mimes is None:
        raise BadRequest(f"files of type .{ext} may not be uploaded")
    if not content_type:
        return None  # browsers report "" for types they do not know: no type condition then
    mime = content_type.lower()
    if mime not in mimes:
        raise BadRequest(f"type must be one of {', '.join(mimes)} for .{ext}")
    return mime


@dataclass(frozen=True)
class ExactKey:
    """The server's choice for one file: its folder, key and types."""

    folder: str
    key: str
    mime: str | None  # the declared type, when one was given (pinned as Content-Type)
    stored_type: str  # the type the object is stored with: `mime`, else the extension's first


def exact_key(
    upload_settings: UploadSettings, user: str, upload: UploadRequest, now_ms: int
) -> ExactKey:
    """Exact-key mode (a PostObject grant or a multipart upload): the extension must be
    allow-listed and the type one of its types; the key is `dir` + a time-ordered id + `.ext`."""
    folder = keys.upload_dir(upload_settings.key_prefix, user, upload.path)
    ext = keys.filename_extension(upload.filename or "")
    mime = allowed_type(ext, upload.content_type, upload_settings.allowed_types)
    stored_type = mime or upload_settings.allowed_types[ext][0]
    return ExactKey(folder, f"{folder}{keys.new_object_id(now_ms)}.{ext}", mime, stored_type)


def callback_param(callback_url: str, grant_token: str) -> str:
    """Protocol §5.2: base64 of the callback JSON; SNI for https (else OSS may fail to connect)."""
    config: dict[str, Any] = {
        "callbackUrl": callback_url,
        "callbackBody": callback_body_template(grant_token),
        "callbackBodyType": BODY_TYPE,
    }
    if callback_url.lower().startswith("https://"):
        config["callbackSNI"] = True
    text = json.dumps(config, separators=(",", ":"), ensure_ascii=True)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def issue(
    settings: SignSettings,
    user: str,
    upload: UploadRequest,
    credentials: Credentials,
    now: float,
) -> IssuedGrant:
    """Decide the key or prefix, build and sign the policy, and shape the /signature answer."""
    upload_settings, oss = settings.upload, settings.oss
    now_ms = int(now * 1000)
    key: str | None = None
    mime: str | None = None
    stored_type: str | None = None
    if upload.filename is not None:
        chosen = exact_key(upload_settings, user, upload, now_ms)
        folder, key, mime, stored_type = chosen.folder, chosen.key, chosen.mime, chosen.stored_type
        max_bytes = upload.size or upload_settings.post_max_bytes
    else:
        folder = keys.upload_dir(upload_settings.key_prefix, user, upload.path)
        max_bytes = upload_settings.post_max_bytes
    expires_at = int(now) + upload_settings.policy_ttl_seconds
    grant = Grant(
        grant_id=keys.new_object_id(now_ms),
        user=user,
        bucket=oss.bucket,
        key=key,
        prefix=None if key is not None else folder,
        max_bytes=max_bytes,
        expires_at=expires_at,
        file_name=upload.filename or "",
    )
    callback = callback_param(
        upload_settings.callback_url, issue_token(grant, settings.grant_secrets[0])
    )
    pinned = _pinned_fields(callback, mime, stored_type)
    signer = policy.policy_signer(oss.signature_version, credentials, oss.region, now)
    conditions: list[policy.Condition] = [{"bucket": oss.bucket}]
    conditions += [{name: value} for name, value in signer.pinned_fields().items()]
    conditions.append(["content-length-range", 1, max_bytes])
    conditions.append(["eq", "$key", key] if key is not None else ["starts-with", "$key", folder])
    conditions += [_condition(name, value) for name, value in pinned.items()]
    policy_b64 = policy.encode_policy(
        policy.policy_document(policy.expiration(expires_at), conditions)
    )
    fields = {"policy": policy_b64, **signer.form_fields(policy_b64), **pinned}
    response: dict[str, Any] = {"host": oss.endpoint, "dir": folder}
    if key is not None:
        response["key"] = key
    response.update(
        {"policy": policy_b64, "expire": expires_at, "callback": callback, "fields": fields}
    )
    response["version"] = signer.version
    response.update(signer.answer_fields(fields))
    return IssuedGrant(grant=grant, dir=folder, response=response)


def ledger_entry(grant: Grant, now: float) -> LedgerGrant:
    """The ledger row of a PostObject grant (DESIGN.md, The grant ledger)."""
    return LedgerGrant(
        owner=grant.user,
        grant_id=grant.grant_id,
        mode=EXACT if grant.key is not None else PREFIX,
        target=grant.key if grant.key is not None else grant.prefix or "",
        bucket=grant.bucket,
        max_bytes=grant.max_bytes,
        expires_at=grant.expires_at,
        created_at=int(now * 1000),
    )


def _pinned_fields(callback: str, mime: str | None, stored_type: str | None) -> dict[str, str]:
    """Form fields after the signature, each pinned by a condition, in posting order.

    An exact-key grant (`stored_type` set) also pins `x-oss-content-type`, the field OSS ranks
    above the file part's own type (protocol §2.3): the object is stored with exactly that
    allow-listed type whatever the browser labels the file (`unknown/unknown`, a comma list…).
    Without a declared type it is the extension's first allow-listed type. It pins the storage
    class too (no permission covers it). Prefix grants pin neither: the legacy client posts a
    fixed list of fields, and the callback judges what was stored (types; verification).
    """
    fields = {"success_action_status": SUCCESS_STATUS, "callback": callback}
    if mime is not None:
        fields["Content-Type"] = mime
    if stored_type is not None:
        fields[STORED_TYPE_FIELD] = stored_type
        fields[STORAGE_CLASS_FIELD] = STORAGE_CLASS
        fields["x-oss-forbid-overwrite"] = FORBID_OVERWRITE
    return fields


def _condition(name: str, value: str) -> policy.Condition:
    if name == "Content-Type":
        return ["in", "$content-type", [value]]
    return {name: value}
