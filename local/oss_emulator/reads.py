"""GetObject/HeadObject answers: preconditions, byte ranges and headers, as OSS gives them.

Preconditions (GetObject/HeadObject references; RFC 9110 §13.2.2 order): `If-Match` that does
not match → 412 PreconditionFailed; else `If-Unmodified-Since` earlier than the object → 412;
`If-None-Match` that matches → 304; else `If-Modified-Since` not earlier than the object → 304.
ETags compare without quotes (OSS's are strong).

Range (GetObject reference): one `bytes=first-last`, `bytes=first-` or `bytes=-suffix` range that
fits answers 206 with `Content-Range`. OSS ignores a malformed, multiple or unsatisfiable range
and answers the whole object with 200 — unless the request says `x-oss-range-behavior:
standard`, when an unsatisfiable range is 416 InvalidRange.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from email.utils import formatdate, parsedate_to_datetime

from werkzeug.wrappers import Request, Response

from local.oss_emulator.errors import OssError
from local.oss_emulator.store import StoredObject

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def not_modified(headers: Mapping[str, str], *, etag: str, last_modified: float) -> bool:
    """`headers` by lower-case name. True when the answer is 304; raise 412 PreconditionFailed when a precondition fails."""
    if_match = headers.get("if-match")
    if if_match is not None and not _etag_in(if_match, etag):
        raise _precondition_failed("If-Match")
    since = _http_date(headers.get("if-unmodified-since"))
    if if_match is None and since is not None and int(last_modified) > since:
        raise _precondition_failed("If-Unmodified-Since")
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return _etag_in(if_none_match, etag)
    modified_since = _http_date(headers.get("if-modified-since"))
    return modified_since is not None and int(last_modified) <= modified_since


def byte_range(headers: Mapping[str, str], size: int) -> tuple[int, int] | None:
    """(first, last) inclusive for a 206, or None for the whole object (200)."""
    text = (headers.get("range") or "").strip()
    match = _RANGE.fullmatch(text)
    if match is None or (not match.group(1) and not match.group(2)):
        return None  # absent, malformed or several ranges: OSS answers the whole object
    first_text, last_text = match.groups()
    if first_text:
        first = int(first_text)
        last = min(int(last_text), size - 1) if last_text else size - 1
        valid = first < size and (not last_text or int(last_text) >= first)
    else:
        suffix = int(last_text)
        first, last = max(size - suffix, 0), size - 1
        valid = suffix > 0 and size > 0
    if valid:
        return first, last
    if (headers.get("x-oss-range-behavior") or "").strip().lower() == "standard":
        raise OssError(
            416,
            "InvalidRange",
            "The requested range cannot be satisfied.",
            extra=(("RangeRequested", text), ("ActualObjectSize", str(size))),
        )
    return None


def _etag_in(header: str, etag: str) -> bool:
    candidates = [part.strip().removeprefix("W/").strip('"') for part in header.split(",")]
    return "*" in candidates or etag.upper() in (c.upper() for c in candidates)


def _http_date(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError):
        return None  # an invalid date is ignored (RFC 9110 §13.1.3)


def _precondition_failed(condition: str) -> OssError:
    return OssError(
        412,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold.",
        extra=(("Condition", condition),),
    )


def object_response(
    request: Request, obj: StoredObject, body: Callable[[int, int], Iterator[bytes]]
) -> Response:
    """GetObject/HeadObject of a stored object: preconditions, range, OSS's headers; `body`
    gives `length` bytes from `offset` (ObjectStore.chunks)."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    if not_modified(headers, etag=obj.etag, last_modified=obj.last_modified):
        response = Response(b"", 304)
        del response.headers["Content-Type"]
        response.headers["ETag"] = f'"{obj.etag}"'
        response.headers["Last-Modified"] = formatdate(obj.last_modified, usegmt=True)
        return response
    span = byte_range(headers, obj.size)
    first, last = span if span is not None else (0, obj.size - 1)
    status = 200 if span is None else 206
    if request.method == "HEAD":
        response = Response(b"", status, content_type=obj.content_type)
    else:
        chunks = body(first, last - first + 1)
        response = Response(chunks, status, content_type=obj.content_type, direct_passthrough=True)
    response.headers["Content-Length"] = str(max(last - first + 1, 0))
    if span is not None:
        response.headers["Content-Range"] = f"bytes {first}-{last}/{obj.size}"
    response.headers["ETag"] = f'"{obj.etag}"'
    response.headers["Last-Modified"] = formatdate(obj.last_modified, usegmt=True)
    response.headers["x-oss-object-type"] = obj.object_type
    response.headers["x-oss-hash-crc64ecma"] = obj.crc64
    if obj.content_md5:  # none for a multipart object
        response.headers["Content-MD5"] = obj.content_md5
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["x-oss-storage-class"] = obj.storage_class
    if obj.encryption:
        response.headers["x-oss-server-side-encryption"] = obj.encryption
    for name, value in obj.headers.items():
        response.headers[name] = value
    return response
