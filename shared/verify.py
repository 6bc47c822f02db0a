"""Verified uploads: a record only for what is really in the bucket (DESIGN "Verification").

`UPLOAD_VERIFY` = `content` (default) | `object` | `off`. The callback and reconciliation call
`upload_problem` (the stored type, then `verify_upload`) before they write a record:

- `object`: HeadObject with `If-Match` on the claimed etag (next-capabilities §4.3): 200 → the
  object is the one stored now (its size and CRC-64 must match the claim too); 412 → another
  object is stored under the key (a replay after an overwrite, or an invented etag): `Conflict`;
  404 → `ObjectMissing` (not yet visible, deleted, or never uploaded: the caller decides).
- `content`: the same question asked by one ranged GetObject (`Range: bytes=0-4095`, `If-Match`):
  OSS answers with the ETag, the whole object's size (`Content-Range`) and CRC-64
  (`x-oss-hash-crc64ecma` describes the object, not the range) and the first bytes, which must be
  what the extension and declared type say (`shared.sniff`), and agree with OSS's `imageInfo`.

A content problem is returned as text (the callback deletes the object and answers Rejected;
reconciliation leaves it unrecorded); everything else raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from shared.content import NO_EXTENSION, key_extension, stored_type_problem
from shared.digits import whole_number
from shared.errors import Conflict, Unavailable
from shared.settings import Env
from shared.sniff import SNIFF_BYTES, content_problem, image_problem

VerifyMode = Literal["off", "object", "content"]
VERIFY_MODES: tuple[VerifyMode, ...] = ("content", "object", "off")


def verify_mode(env: Env) -> VerifyMode:
    """UPLOAD_VERIFY: content (default) | object | off."""
    chosen = env.choice("UPLOAD_VERIFY", VERIFY_MODES, "content")
    return next(mode for mode in VERIFY_MODES if mode == chosen)


@dataclass(frozen=True)
class Claim:
    """What the callback (or a listing) says about an object."""

    key: str
    etag: str
    size: int
    crc64: str  # "" when unknown
    mime_type: str
    image_format: str | None = None  # None: no imageInfo to compare (reconciliation)
    image_width: int | None = None
    image_height: int | None = None


@dataclass(frozen=True)
class Stored:
    """What OSS says about the stored object that has the claimed etag."""

    size: int
    crc64: str
    head: bytes  # the first bytes (content mode), else b""


class ObjectMissing(Exception):
    """OSS answered 404: no object under the key (yet)."""


class ObjectReader(Protocol):
    def stored(self, key: str, etag: str, first_bytes: int) -> Stored:
        """The object if it still has `etag`; `first_bytes` > 0 also reads that many bytes.

        Raises ObjectMissing (404), Conflict (412: another etag) or Unavailable.
        """


def upload_problem(
    reader: ObjectReader,
    claim: Claim,
    mode: VerifyMode,
    allowed_types: Mapping[str, tuple[str, ...]],
) -> str | None:
    """Every check before a record is written, for the callback and reconciliation alike: the
    stored type (shared.content), then what OSS holds (`verify_upload`)."""
    problem = stored_type_problem(claim.key, claim.mime_type, allowed_types)
    return problem if problem is not None else verify_upload(reader, claim, mode)


def verify_upload(reader: ObjectReader, claim: Claim, mode: VerifyMode) -> str | None:
    """None when the claimed object is stored and (content mode) is what it claims to be.

    Returns the reason a content check failed; raises ObjectMissing, Conflict or Unavailable.
    """
    if mode == "off":
        return None
    stored = reader.stored(claim.key, claim.etag, SNIFF_BYTES if mode == "content" else 0)
    if stored.size != claim.size:
        raise Conflict(f"the stored object has {stored.size} bytes, the callback says {claim.size}")
    if claim.crc64 and stored.crc64 and stored.crc64 != claim.crc64:
        raise Conflict("the stored object's CRC-64 differs from the callback's")
    if mode == "object":
        return None
    ext = key_extension(claim.key) or NO_EXTENSION
    complete = len(stored.head) >= stored.size
    problem = content_problem(ext, claim.mime_type, stored.head, complete=complete)
    if problem is None and claim.image_format is not None:
        problem = image_problem(
            stored.head, claim.image_format, claim.image_width, claim.image_height
        )
    return problem


class OssReader:
    """`ObjectReader` over an `oss2.Bucket` (shared.oss.bucket_client): one request per call."""

    def __init__(self, bucket: Any) -> None:
        self.bucket = bucket

    def stored(self, key: str, etag: str, first_bytes: int) -> Stored:
        import oss2  # noqa: PLC0415 - the runtime's copy, loaded with the client

        condition = {"If-Match": f'"{etag.strip(chr(34))}"'}
        try:
            if first_bytes <= 0:
                head = self.bucket.head_object(key, headers=condition)
                return Stored(int(head.content_length or 0), _crc(head.headers), b"")
            result = self.bucket.get_object(key, byte_range=(0, first_bytes - 1), headers=condition)
            try:
                data = result.read(first_bytes)
            finally:
                result.close()
            return Stored(_total_size(result.headers, len(data)), _crc(result.headers), data)
        except oss2.exceptions.NotFound as exc:
            raise ObjectMissing(key) from exc
        except oss2.exceptions.PreconditionFailed as exc:
            raise Conflict(
                "the bucket holds a different object under this key (etag mismatch)"
            ) from exc
        except (oss2.exceptions.RequestError, ValueError, RuntimeError, OSError) as exc:
            # Before OssError: the SDK's RequestError (no answer at all) is one of its subclasses.
            raise Unavailable(f"OSS could not be reached: {type(exc).__name__}") from exc
        except oss2.exceptions.OssError as exc:
            raise Unavailable(f"OSS answered {exc.status} {exc.code or ''}".strip()) from exc


def _crc(headers: Any) -> str:
    return str(headers.get("x-oss-hash-crc64ecma", "") or "")


def _total_size(headers: Any, received: int) -> int:
    """The whole object's size: `Content-Range: bytes 0-N/TOTAL` on a 206, else the body's."""
    content_range = str(headers.get("Content-Range", "") or "")
    _, slash, total = content_range.rpartition("/")
    size = whole_number(total) if slash else None
    if size is None:
        size = whole_number(str(headers.get("Content-Length", "") or ""))
    return received if size is None else size
