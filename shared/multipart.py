"""Multipart uploads on OSS: the part layout rules and the four calls the server makes (oss2).

next-capabilities.md §1.1/§1.2 (the limits: shared/multipart_limits.py): part numbers
1..10,000; every part but the last 100 KB..5 GB (OSS checks sizes only at Complete). DESIGN
"Multipart uploads": the sign function initiates, lists, completes (with `x-oss-callback` pinned)
and aborts; the browser only PUTs parts to presigned URLs. The sweeper aborts what was left open
(shared/reconcile/sweep.py).

The client is `shared.oss.bucket_client` (the function role's credentials); oss2 is imported on
first use, so /signature never loads it. Every call runs under a hard deadline
(`shared.deadline`): the SDK's timeouts bound each read, not the whole call. SDK failures become
domain errors: no such upload → `UploadGone`, 400 → BadRequest, 409 → Conflict, 401/403 →
Forbidden, anything else (or no answer) → Unavailable.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.deadline import DeadlinePool
from shared.errors import AppError, BadRequest, Conflict, Forbidden, Unavailable
from shared.multipart_limits import MAX_LIST_PARTS, MAX_PART_BYTES, MAX_PARTS

MAX_MULTIPART_BYTES = MAX_PARTS * MAX_PART_BYTES  # 48.8 TB
DEFAULT_PART_BYTES = 8 * 1024 * 1024  # MULTIPART_PART_BYTES' default
CALL_SECONDS = 10.0  # Initiate, one ListParts page, Abort
# Complete waits for OSS to assemble the parts and to call our callback (OSS allows it 5 s);
# within the sign function's 30 s (templates). Past it OSS still finishes, and a repeated
# complete answers the record.
COMPLETE_SECONDS = 25.0
FORBID_OVERWRITE = "true"

_POOL = DeadlinePool("oss-multipart", workers=8)

T = TypeVar("T")


class UploadGone(Exception):
    """OSS knows no such upload (NoSuchUpload): completed, aborted, or never made."""


@dataclass(frozen=True)
class Layout:
    """How a declared size is cut: `count` parts of `part_size` bytes, the last one shorter."""

    size: int
    part_size: int

    @property
    def count(self) -> int:
        return _ceil_div(self.size, self.part_size)

    def expected(self, number: int) -> int:
        """The size part `number` (1..count) must have."""
        if number < self.count:
            return self.part_size
        return self.size - (self.count - 1) * self.part_size


def layout(size: int, part_bytes: int) -> Layout:
    """MULTIPART_PART_BYTES, raised to ceil(size / 10,000) when the upload needs it."""
    if not 1 <= size <= MAX_MULTIPART_BYTES:
        raise ValueError(f"a multipart upload holds 1..{MAX_MULTIPART_BYTES} bytes")
    return Layout(size, max(part_bytes, _ceil_div(size, MAX_PARTS)))


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)  # integers all the way: sizes reach 48.8 TB


@dataclass(frozen=True)
class Part:
    """One uploaded part as ListParts reports it."""

    number: int
    etag: str  # unquoted, as oss2 gives it
    size: int


def mismatch(parts: list[Part], plan: Layout) -> str | None:
    """Why these parts can never make the declared object (abort), or None.

    A part number past the count, or a part whose size is not the one its number must have: the
    client sent something else than the slices of the declared file. Missing parts are not a
    mismatch (the client can still upload them): `missing` names them.
    """
    for part in parts:
        if not 1 <= part.number <= plan.count:
            return f"part {part.number} is not one of the {plan.count} parts of this upload"
        want = plan.expected(part.number)
        if part.size != want:
            return f"part {part.number} has {part.size} bytes; it must have {want}"
    return None


def missing(parts: list[Part], plan: Layout) -> list[int]:
    present = {part.number for part in parts}
    return [number for number in range(1, plan.count + 1) if number not in present]


# --- the OSS calls ------------------------------------------------------------------------------


def initiate(bucket: Any, key: str, headers: Mapping[str, str]) -> str:
    """InitiateMultipartUpload with the server's headers; the UploadId."""
    result = _call(lambda: bucket.init_multipart_upload(key, headers=dict(headers)), CALL_SECONDS)
    return str(result.upload_id)


def list_parts(bucket: Any, key: str, upload_id: str) -> list[Part]:
    """Every part, in number order, following ListParts' pages (1000 each)."""
    parts: list[Part] = []
    marker = ""
    while True:
        page = _call(
            functools.partial(
                bucket.list_parts, key, upload_id, marker=marker, max_parts=MAX_LIST_PARTS
            ),
            CALL_SECONDS,
        )
        parts += [Part(int(p.part_number), str(p.etag), int(p.size)) for p in page.parts]
        if not page.is_truncated or not page.next_marker or str(page.next_marker) == marker:
            return parts
        marker = str(page.next_marker)


@dataclass(frozen=True)
class Completed:
    status: int  # 200, or 203 when OSS stored the object but the callback failed
    body: bytes  # the callback's answer (200), OSS's CallbackFailed XML (203)


def complete(bucket: Any, key: str, upload_id: str, parts: list[Part], callback: str) -> Completed:
    """CompleteMultipartUpload with exactly these parts, forbid-overwrite and our callback."""
    import oss2  # noqa: PLC0415 - loaded with the client

    infos = [oss2.models.PartInfo(part.number, part.etag) for part in parts]
    headers = {"x-oss-forbid-overwrite": FORBID_OVERWRITE, "x-oss-callback": callback}

    def call() -> Completed:
        result = bucket.complete_multipart_upload(key, upload_id, infos, headers=headers)
        return Completed(int(result.status), bytes(result.resp.read()))

    return _call(call, COMPLETE_SECONDS)


def abort(bucket: Any, key: str, upload_id: str) -> bool:
    """AbortMultipartUpload; False when OSS had no such upload (already aborted or completed)."""
    try:
        _call(lambda: bucket.abort_multipart_upload(key, upload_id), CALL_SECONDS)
    except UploadGone:
        return False
    return True


def stored(bucket: Any, key: str) -> bool:
    """Whether an object is stored under `key` (HeadObject)."""
    return bool(_call(lambda: bucket.object_exists(key), CALL_SECONDS))


def _call(call: Callable[[], T], seconds: float) -> T:
    """One SDK call under a deadline; its exceptions become domain errors (module docstring)."""
    import oss2  # noqa: PLC0415 - loaded with the client; here for its exceptions

    def guarded() -> T:
        try:
            return call()
        except oss2.exceptions.NoSuchUpload as exc:
            raise UploadGone from exc
        except oss2.exceptions.RequestError as exc:  # no answer (a subclass of OssError)
            raise Unavailable("OSS could not be reached") from exc
        except oss2.exceptions.OssError as exc:
            raise _domain_error(exc) from exc
        except (ValueError, RuntimeError, OSError) as exc:  # the SDK's own parsing of a reply
            raise Unavailable(f"OSS answered something the SDK could not read: {exc}") from exc

    return _POOL.call(guarded, seconds, what="OSS")


def _domain_error(exc: Any) -> AppError:
    text = f"OSS answered {exc.status} {exc.code or ''}".strip()
    if exc.status == 400:
        return BadRequest(f"{text}: {exc.message or ''}".rstrip(": "))
    if exc.status == 409:
        return Conflict(text)
    if exc.status in (401, 403):
        return Forbidden(f"{text}: check the function role's multipart rights")
    return Unavailable(text)
