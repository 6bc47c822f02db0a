"""CompleteMultipartUpload: judge the part list, assemble the object, answer (or call back).

OSS's CompleteMultipartUpload page and error pages (next-capabilities.md §1.1): the body is
`<CompleteMultipartUpload><Part><PartNumber/><ETag/></Part>…` (else 400 MalformedXML); part
numbers ascending, not necessarily consecutive (else 400 InvalidPartOrder, EC 0042-00000209);
each named part uploaded with that ETag (else 400 InvalidPart); every part but the last at least
100 KB (else 400 EntityTooSmall, EC 0042-00000213). `x-oss-complete-all: yes` completes every
uploaded part and forbids a body (EC 0042-00000216). `x-oss-forbid-overwrite: true` is 409
FileAlreadyExists when the key exists, unless the bucket is versioned. The upload id is spent
once the object is stored (the part files become its bytes, nothing is copied); a refused
Complete leaves the upload as it was.

The object's ETag is not its MD5: OSS answers `"<32 upper-case hex>-<part count>"` (seen on OSS,
aliyun-oss-php-sdk#32: `"DBBCA06B72052598E18B038678236B8B-5"`); OSS calls the hex part a UUID
of the content, the emulator computes it as S3 does, MD5 of the parts' binary MD5s. Its CRC-64
is the parts' CRCs combined (what oss2 checks). A callback (`x-oss-callback` or the `callback`
URL parameter) runs with `${operation}` CompleteMultipartUpload and an empty `${contentMd5}`.
"""

from __future__ import annotations

import hashlib
import itertools
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING
from urllib.parse import quote

from werkzeug.wrappers import Response

from local.oss_emulator.crc64 import combine
from local.oss_emulator.errors import Element, OssError, invalid_argument
from local.oss_emulator.fields import check_object_fields
from local.oss_emulator.form import HEAD_BYTES
from local.oss_emulator.multipart import (
    RestCall,
    authorize_write,
    encoded,
    forbid_overwrite,
    header_names,
    lower_headers,
    xml_response,
)
from local.oss_emulator.store import StoredObject
from local.oss_emulator.upload_callback import object_headers, rest_callback
from local.oss_emulator.uploads import Part, Upload, claimed_parts
from shared.digits import in_range
from shared.multipart_limits import MAX_PARTS, MIN_PART_BYTES

if TYPE_CHECKING:
    from local.oss_emulator.app import OssEmulator

MAX_BODY_BYTES = 2 * 1024 * 1024  # 10,000 parts of ~120 bytes each fit


def malformed_xml() -> OssError:
    return OssError(
        400,
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published "
        "schema.",
    )


def invalid_part() -> OssError:
    return OssError(
        400,
        "InvalidPart",
        "One or more of the specified parts could not be found or the specified entity tag "
        "might not have matched the part's entity tag.",
    )


def part_list(body: bytes) -> list[tuple[int, str]]:
    """(PartNumber, ETag without quotes) in the order given; MalformedXML, InvalidPartOrder."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise malformed_xml()  # no entity expansion from a request body
    try:
        root = ET.fromstring(body)  # noqa: S314 - DTDs refused above
    except ET.ParseError:
        raise malformed_xml() from None
    if root.tag != "CompleteMultipartUpload" or not root.findall("Part"):
        raise malformed_xml()
    parts = []
    for node in root.findall("Part"):
        number = in_range((node.findtext("PartNumber") or "").strip(), 1, MAX_PARTS)
        etag = node.findtext("ETag")
        if number is None or etag is None:
            raise malformed_xml()
        parts.append((number, etag.strip().strip('"').upper()))
    if any(later <= earlier for (earlier, _), (later, _) in itertools.pairwise(parts)):
        raise OssError(
            400,
            "InvalidPartOrder",
            "The list of parts was not in ascending order. Parts list must be specified in "
            "order by part number.",
            ec="0042-00000209",
        )
    return parts


def chosen_parts(uploaded: list[Part], requested: list[tuple[int, str]] | None) -> list[Part]:
    """The parts the object is made of: InvalidPart, EntityTooSmall as OSS judges them."""
    by_number = {part.number: part for part in uploaded}
    if requested is None:  # x-oss-complete-all
        chosen = uploaded
    else:
        chosen = []
        for number, etag in requested:
            part = by_number.get(number)
            if part is None or part.etag != etag:
                raise invalid_part()
            chosen.append(part)
    if not chosen:
        raise invalid_part()
    if any(part.size < MIN_PART_BYTES for part in chosen[:-1]):
        raise OssError(
            400,
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size.",
            ec="0042-00000213",
        )
    return chosen


def multipart_etag(parts: list[Part]) -> str:
    """`<MD5 of the concatenated binary part MD5s, upper-case hex>-<part count>` (unquoted)."""
    joined = b"".join(bytes.fromhex(part.etag) for part in parts)
    return f"{hashlib.md5(joined).hexdigest().upper()}-{len(parts)}"  # noqa: S324 - OSS's form


def complete(emu: OssEmulator, call: RestCall) -> Response:
    request, key, who = call.request, call.key, call.who
    upload_id = request.args["uploadId"]
    upload = emu.uploads.get(upload_id, key)
    headers = lower_headers(request)
    authorize_write(emu, who, headers, key)
    callback, custom = rest_callback(headers, request.args)
    check_object_fields(headers, header_names(request))
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise malformed_xml()
    requested: list[tuple[int, str]] | None = None
    if (headers.get("x-oss-complete-all") or "").strip().lower() == "yes":
        if body.strip():
            raise invalid_argument(
                "With x-oss-complete-all: yes the request must have no body.",
                ec="0042-00000216",
            )
    else:
        requested = part_list(body)
    forbid = forbid_overwrite(emu, headers.get("x-oss-forbid-overwrite"), key)
    claimed = emu.uploads.claim(upload_id)
    try:
        parts = chosen_parts(claimed_parts(claimed), requested)
        stored = _stored(upload, headers=headers, parts=parts, now=emu.now())
        files = [emu.uploads.part_file(claimed, part) for part in parts]
        emu.store.put(stored, files, forbid_overwrite=forbid)
    except BaseException:
        emu.uploads.restore(claimed, upload_id)
        raise
    emu.uploads.discard(claimed)
    if callback is not None:
        return emu.call_back(
            request,
            call.request_id,
            config=callback,
            stored=stored,
            custom=custom,
            head=b"".join(emu.store.chunks(stored, 0, HEAD_BYTES)),
            operation="CompleteMultipartUpload",
        )
    elements: list[Element] = []
    if request.args.get("encoding-type") == "url":
        elements.append(("EncodingType", "url"))
    elements += [
        ("Location", f"{emu.config.public_url.rstrip('/')}/{quote(key)}"),
        ("Bucket", emu.config.bucket),
        ("Key", encoded(request, key)),
        ("ETag", f'"{stored.etag}"'),
    ]
    response = xml_response("CompleteMultipartUploadResult", elements)
    object_headers(response, stored)
    return response


def _stored(
    upload: Upload, *, headers: dict[str, str], parts: list[Part], now: float
) -> StoredObject:
    """The object the parts make: its size and CRC-64 from theirs, its fields from Initiate."""
    crc = 0
    for part in parts:
        crc = combine(crc, part.crc64, part.size)
    return StoredObject(
        key=upload.key,
        size=sum(part.size for part in parts),
        etag=multipart_etag(parts),
        content_type=upload.content_type,
        crc64=str(crc),
        content_md5="",  # OSS keeps no whole-object MD5 for a multipart object
        last_modified=now,
        headers=upload.headers,
        acl=headers.get("x-oss-object-acl") or upload.acl,
        storage_class=upload.storage_class,
        encryption=upload.encryption,
        object_type="Multipart",
        parts=tuple(part.size for part in parts),
    )
