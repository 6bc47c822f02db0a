"""InitiateMultipartUpload, UploadPart, ListParts, AbortMultipartUpload, ListMultipartUploads.

next-capabilities.md §1.1–§1.2 and OSS's API pages (InitiateMultipartUpload, UploadPart,
ListParts): Initiate stores the object's fields (Content-Type, x-oss-meta-*, ACL, storage class,
encryption) with the upload and answers `InitiateMultipartUploadResult`; `x-oss-forbid-overwrite:
true` there is 409 FileAlreadyExists when the key exists (not on a versioned bucket). UploadPart
takes part numbers 1–10,000, overwrites a part sent again and answers its ETag (quoted upper-case
hex MD5), `x-oss-hash-crc64ecma` and `Content-MD5`; sizes are judged only at Complete
(complete.py). ListParts pages by `max-parts` (≤ 1000) after `part-number-marker`. An unknown,
aborted or completed upload id, or one used with another key, is 404 NoSuchUpload. Each handler
runs after the app authenticated the caller, and asks RAM for its own action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from local.oss_emulator.body import spool_body
from local.oss_emulator.errors import XML_TYPE, Element, invalid_argument, xml_document
from local.oss_emulator.fields import (
    STORAGE_CLASSES,
    check_key,
    check_object_fields,
    is_true,
    object_type,
    stored_values,
)
from local.oss_emulator.listing import iso8601
from local.oss_emulator.ram import write_actions
from local.oss_emulator.store import file_already_exists
from local.oss_emulator.uploads import Upload, new_upload_id
from shared.digits import in_range
from shared.multipart_limits import MAX_LIST_PARTS, MAX_LIST_UPLOADS, MAX_PART_BYTES, MAX_PARTS

if TYPE_CHECKING:
    from local.oss_emulator.app import OssEmulator


@dataclass(frozen=True)
class RestCall:
    """An authenticated REST request, as each operation's handler gets it."""

    request: Request
    request_id: str
    key: str  # "" for the bucket itself
    who: str  # the access key id that signed it


def lower_headers(request: Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


def header_names(request: Request) -> dict[str, str]:
    """Lower-case name → the name as the request spelled it (stored headers keep the spelling)."""
    return {name.lower(): name for name, _ in request.headers.items()}


def xml_response(root: str, elements: list[Element]) -> Response:
    return Response(xml_document(root, elements), 200, content_type=XML_TYPE)


def encoded(request: Request, key: str) -> str:
    """A key as an answer spells it: URL-encoded when the request asked `encoding-type=url`."""
    return quote(key, safe="/") if request.args.get("encoding-type") == "url" else key


def forbid_overwrite(emu: OssEmulator, requested: str | None, key: str) -> bool:
    """Whether this write (PutObject, PostObject, Complete) must not replace `key`: the
    `x-oss-forbid-overwrite` header or form field is `requested`. Refused now (409) when it
    would. OSS ignores it on a bucket whose versioning is Enabled or Suspended (oss-protocol.md
    §2.3); the emulator keeps no old versions, it only stops refusing."""
    forbid = is_true(requested) and not emu.config.versioning
    if forbid and emu.store.get(key) is not None:
        raise file_already_exists()
    return forbid


def authorize_write(emu: OssEmulator, who: str, headers: Mapping[str, str], key: str) -> None:
    """A write's RAM actions (PutObject, and PutObjectAcl, tagging, KMS as its headers ask)."""
    acl = headers.get("x-oss-object-acl")
    context = {"oss:x-oss-object-acl": acl} if acl is not None else {}
    emu.authorize(who, write_actions(headers), key, context)


# --- InitiateMultipartUpload --------------------------------------------------------------


def initiate(emu: OssEmulator, call: RestCall) -> Response:
    request, key, who = call.request, call.key, call.who
    headers = lower_headers(request)
    check_key(key)
    authorize_write(emu, who, headers, key)
    check_object_fields(headers, header_names(request))
    forbid_overwrite(emu, headers.get("x-oss-forbid-overwrite"), key)
    upload = Upload(
        upload_id=new_upload_id(),
        key=key,
        initiated=emu.now(),
        content_type=object_type(headers.get("content-type"), key),
        headers=stored_values(headers, header_names(request)),
        acl=headers.get("x-oss-object-acl") or "default",
        storage_class=STORAGE_CLASSES[(headers.get("x-oss-storage-class") or "standard").lower()],
        encryption=headers.get("x-oss-server-side-encryption") or "",
    )
    emu.uploads.create(upload)
    elements: list[Element] = [("Bucket", emu.config.bucket), ("Key", encoded(request, key))]
    elements.append(("UploadId", upload.upload_id))
    if request.args.get("encoding-type") == "url":
        elements.append(("EncodingType", "url"))
    return xml_response("InitiateMultipartUploadResult", elements)


# --- UploadPart ---------------------------------------------------------------------------


def part_number(text: str | None) -> int:
    """1–10,000, else 400 InvalidArgument (UploadPart reference)."""
    number = in_range(text, 1, MAX_PARTS, max_digits=6)
    if number is None:
        raise invalid_argument(
            f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive.",
            ArgumentName="partNumber",
            ArgumentValue=text or "",
        )
    return number


def upload_part(emu: OssEmulator, call: RestCall) -> Response:
    request, key, who = call.request, call.key, call.who
    number = part_number(request.args.get("partNumber"))
    upload = emu.uploads.get(request.args["uploadId"], key)
    emu.authorize(who, ("oss:PutObject",), key)
    body = spool_body(
        request.stream,
        emu.uploads.spool,
        length=request.content_length,
        limit=MAX_PART_BYTES,
        content_md5=request.headers.get("Content-MD5"),
    )
    part = emu.uploads.put_part(upload, number, body, emu.now())
    response = Response(b"", 200)
    response.headers["ETag"] = f'"{part.etag}"'
    response.headers["x-oss-hash-crc64ecma"] = str(part.crc64)
    response.headers["Content-MD5"] = body.content_md5
    return response


# --- ListParts ----------------------------------------------------------------------------


def bounded(args: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    """An integer query parameter in [low, high] (empty: the default); InvalidArgument else."""
    text = args.get(name) or ""
    if not text:
        return default
    value = in_range(text, low, high, max_digits=6)
    if value is None:
        raise invalid_argument(
            f"{name} must be an integer from {low} to {high}.",
            ArgumentName=name,
            ArgumentValue=text,
        )
    return value


def list_parts(emu: OssEmulator, call: RestCall) -> Response:
    request, key, who = call.request, call.key, call.who
    upload_id = request.args["uploadId"]
    emu.uploads.get(upload_id, key)
    emu.authorize(who, ("oss:ListParts",), key)
    limit = bounded(request.args, "max-parts", default=MAX_LIST_PARTS, low=1, high=MAX_LIST_PARTS)
    marker = bounded(request.args, "part-number-marker", default=0, low=0, high=MAX_PARTS)
    after = [part for part in emu.uploads.parts(upload_id) if part.number > marker]
    page, truncated = after[:limit], len(after) > limit
    elements: list[Element] = [
        ("Bucket", emu.config.bucket),
        ("Key", encoded(request, key)),
        ("UploadId", upload_id),
        ("PartNumberMarker", str(marker)),
        ("NextPartNumberMarker", str(page[-1].number if page else marker)),
        ("MaxParts", str(limit)),
        ("IsTruncated", "true" if truncated else "false"),
    ]
    if request.args.get("encoding-type") == "url":
        elements.append(("EncodingType", "url"))
    for part in page:
        elements.append(
            (
                "Part",
                [
                    ("PartNumber", str(part.number)),
                    ("LastModified", iso8601(part.last_modified)),
                    ("ETag", f'"{part.etag}"'),
                    ("HashCrc64ecma", str(part.crc64)),
                    ("Size", str(part.size)),
                ],
            )
        )
    return xml_response("ListPartsResult", elements)


# --- AbortMultipartUpload -----------------------------------------------------------------


def abort(emu: OssEmulator, call: RestCall) -> Response:
    request, key, who = call.request, call.key, call.who
    upload = emu.uploads.get(request.args["uploadId"], key)
    emu.authorize(who, ("oss:AbortMultipartUpload",), key)
    emu.uploads.abort(upload)
    return Response(b"", 204)


# --- ListMultipartUploads -----------------------------------------------------------------


def list_uploads(emu: OssEmulator, call: RestCall) -> Response:
    """`GET /?uploads`: uploads in progress by key, then upload id (a sweeper's view)."""
    request, who = call.request, call.who
    emu.authorize(who, ("oss:ListMultipartUploads",), None)
    args = request.args
    limit = bounded(args, "max-uploads", default=MAX_LIST_UPLOADS, low=1, high=MAX_LIST_UPLOADS)
    prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
    key_marker, id_marker = args.get("key-marker", ""), args.get("upload-id-marker", "")
    ordered = sorted(emu.uploads.uploads(), key=lambda u: (u.key, u.upload_id))
    entries: list[Upload | str] = []  # uploads, and common prefixes when a delimiter folds keys
    for upload in ordered:
        if not upload.key.startswith(prefix) or (upload.key, upload.upload_id) <= (
            key_marker,
            id_marker if id_marker else "\U0010ffff",
        ):
            continue
        rest = upload.key[len(prefix) :]
        cut = rest.find(delimiter) if delimiter else -1
        group = prefix + rest[: cut + len(delimiter)] if cut >= 0 else None
        if group is not None:
            if group != key_marker and group not in entries:
                entries.append(group)
            continue
        entries.append(upload)
    page, truncated = entries[:limit], len(entries) > limit
    last = page[-1] if page else None
    next_key = last.key if isinstance(last, Upload) else (last or "")
    next_id = last.upload_id if isinstance(last, Upload) else ""
    elements: list[Element] = [
        ("Bucket", emu.config.bucket),
        ("KeyMarker", encoded(request, key_marker)),
        ("UploadIdMarker", id_marker),
        ("NextKeyMarker", encoded(request, next_key)),
        ("NextUploadIdMarker", next_id),
        ("Delimiter", delimiter),
        ("Prefix", encoded(request, prefix)),
        ("MaxUploads", str(limit)),
        ("IsTruncated", "true" if truncated else "false"),
    ]
    if args.get("encoding-type") == "url":
        elements.append(("EncodingType", "url"))
    for entry in page:
        if isinstance(entry, str):
            elements.append(("CommonPrefixes", [("Prefix", encoded(request, entry))]))
        else:
            upload_elements: list[Element] = [
                ("Key", encoded(request, entry.key)),
                ("UploadId", entry.upload_id),
                ("Initiated", iso8601(entry.initiated)),
            ]
            elements.append(("Upload", upload_elements))
    return xml_response("ListMultipartUploadsResult", elements)
