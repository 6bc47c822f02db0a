"""Request bodies of REST writes (PutObject, UploadPart), streamed to disk with OSS's digests.

A body is read in chunks and written to a spool file while its MD5 (the ETag), CRC-64
(`x-oss-hash-crc64ecma`) and first bytes (image info for a callback) are computed, so a 1 GiB
part costs a chunk of memory, not a GiB. `Content-MD5` (base64 of the 16-byte MD5, RFC 1864) is
checked against the bytes received: malformed → 400 InvalidDigest EC 0017-00000502, not
matching → 400 InvalidDigest EC 0017-00000503 (OSS's error pages of those numbers).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from werkzeug.exceptions import ClientDisconnected

from local.oss_emulator.crc64 import Crc64
from local.oss_emulator.errors import OssError
from local.oss_emulator.form import HEAD_BYTES

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class SpooledBody:
    path: Path
    size: int
    md5: bytes
    crc64: int
    head: bytes

    @property
    def etag(self) -> str:
        """OSS's ETag of a PutObject or a part: upper-case hex MD5 (headers add the quotes)."""
        return self.md5.hex().upper()

    @property
    def content_md5(self) -> str:
        return base64.b64encode(self.md5).decode("ascii")


def invalid_digest(ec: str) -> OssError:
    return OssError(400, "InvalidDigest", "The Content-MD5 you specified was invalid.", ec=ec)


def expected_md5(header: str | None) -> bytes | None:
    """The digest a `Content-MD5` header names; InvalidDigest when it is not one."""
    if header is None:
        return None
    try:
        digest = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_digest("0017-00000502") from None
    if len(digest) != 16:
        raise invalid_digest("0017-00000502")
    return digest


def entity_too_large(limit: int) -> OssError:
    return OssError(
        400,
        "EntityTooLarge",
        f"Your proposed upload exceeds the maximum allowed size ({limit} bytes).",
    )


def spool_body(
    stream: IO[bytes],
    directory: Path,
    *,
    length: int | None,
    limit: int,
    content_md5: str | None,
) -> SpooledBody:
    """Read the body into a new file under `directory`; the caller moves or removes it."""
    digest = expected_md5(content_md5)
    if length is not None and length > limit:
        raise entity_too_large(limit)
    directory.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="body-", suffix=".tmp", dir=directory)
    path = Path(name)
    md5 = hashlib.md5()  # noqa: S324 - ETag and Content-MD5 are MD5 by OSS's definition
    crc = Crc64()
    head = bytearray()
    size = 0
    try:
        with os.fdopen(handle, "wb") as out:
            while True:
                chunk = _read(stream)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise entity_too_large(limit)
                md5.update(chunk)
                crc.update(chunk)
                if len(head) < HEAD_BYTES:
                    head.extend(chunk[: HEAD_BYTES - len(head)])
                out.write(chunk)
        if length is not None and size != length:
            raise incomplete_body()
        if digest is not None and not hmac.compare_digest(digest, md5.digest()):
            raise invalid_digest("0017-00000503")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return SpooledBody(path, size, md5.digest(), crc.value, bytes(head))


def incomplete_body() -> OssError:
    return OssError(400, "IncompleteBody", "The request body is shorter than its Content-Length.")


def _read(stream: IO[bytes]) -> bytes:
    try:
        return stream.read(CHUNK)
    except ClientDisconnected:
        raise incomplete_body() from None
