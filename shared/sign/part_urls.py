"""Part URLs for POST /multipart/{uploadId}/parts: which parts a request may ask for, the MD5s a
client may have signed in, and the presigned UploadPart URLs (`shared.sign.presign`).

A URL binds the method, the key, `partNumber`, `uploadId`, its expiry and, when given, the
part's `Content-MD5` (which the client must then send: OSS refuses other bytes). It cannot bind
the part's size: Complete checks that (shared/multipart.py `mismatch`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from shared.credentials import Credentials
from shared.errors import BadRequest
from shared.settings import OssSettings
from shared.sign import jsonbody, presign

PART_URL_SECONDS = 900  # a part URL lives 15 minutes (never past the session)
MAX_PART_NUMBERS = 100
_MD5_BYTES = 16

Signer = Callable[[str, dict[str, str], dict[str, str]], str]  # (key, query, headers) → URL


def part_numbers(value: Any, count: int) -> list[int]:
    """1..100 distinct part numbers, each 1..count."""
    if not isinstance(value, list) or not value:
        raise BadRequest("partNumbers must be a non-empty list of part numbers")
    if len(value) > MAX_PART_NUMBERS:
        raise BadRequest(f"at most {MAX_PART_NUMBERS} part numbers per request")
    numbers = [jsonbody.integer(item, "each part number") for item in value]
    for number in numbers:
        if not 1 <= number <= count:
            raise BadRequest(f"part number {number} is not between 1 and {count}")
    if len(set(numbers)) != len(numbers):
        raise BadRequest("partNumbers lists a part twice")
    return numbers


def content_md5s(value: Any, numbers: list[int]) -> dict[int, str]:
    """`{"n": base64 MD5}` for requested parts only; each the base64 of 16 bytes."""
    if not isinstance(value, dict):
        raise BadRequest("contentMd5 must be an object of part number → base64 MD5")
    wanted = {str(number): number for number in numbers}
    digests: dict[int, str] = {}
    for name, digest in value.items():
        if name not in wanted:
            raise BadRequest(f"contentMd5 names {name[:16]!r}, which is not a requested part")
        text = jsonbody.string(digest, f"contentMd5 of part {name}")
        try:
            raw = base64.b64decode(text.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            raw = b""
        if len(raw) != _MD5_BYTES or base64.b64encode(raw).decode("ascii") != text:
            raise BadRequest(f"contentMd5 of part {name} is not the base64 of a 16-byte MD5")
        digests[wanted[name]] = text
    return digests


def signer(oss: OssSettings, credentials: Credentials, now: float, expires: int) -> Signer:
    """UploadPart URLs of one moment: V4 (the shared parts made once), or V1 when configured."""
    sign = presign.presigner(oss, credentials, now, expires)
    return lambda key, query, headers: sign("PUT", key, query, headers).url
