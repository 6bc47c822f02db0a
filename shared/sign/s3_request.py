"""The JSON body of `POST /s3/sign`: one `signRequest` call of Uppy's `@uppy/aws-s3`, checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import BadRequest
from shared.sign import jsonbody

MAX_KEY_CHARS = 1023
MAX_UPLOAD_ID_CHARS = 256
MAX_PART_NUMBER = 10_000
# The only fields /s3/sign reads; anything else is refused so nobody believes it had an effect.
UPLOAD_FIELDS = ("path", "filename", "size", "type", "partSize", "form")
SIGN_FIELDS = frozenset({"method", "key", "uploadId", "partNumber", *UPLOAD_FIELDS})


@dataclass(frozen=True)
class SignCall:
    """One `signRequest` call of the plugin, as `web/oss-uppy.js` forwards it."""

    method: str
    key: str
    upload_id: str | None
    part_number: int | None
    upload: dict[str, Any]  # path, filename, size, type: a new upload's facts


def parse_sign_call(body: bytes) -> SignCall:
    """The JSON body of `POST /s3/sign` (jsonbody's strict rules); anything else is a 400."""
    data = jsonbody.json_object(body, SIGN_FIELDS)
    method = data.get("method")
    if method not in ("PUT", "POST", "GET", "DELETE"):
        raise BadRequest("method must be PUT, POST, GET or DELETE")
    key = _text(data, "key", MAX_KEY_CHARS)
    upload_id = _text(data, "uploadId", MAX_UPLOAD_ID_CHARS) if "uploadId" in data else None
    part_number = None
    if "partNumber" in data:
        part_number = jsonbody.integer(data["partNumber"], "partNumber")
        if not 1 <= part_number <= MAX_PART_NUMBER:
            raise BadRequest(f"partNumber must be from 1 to {MAX_PART_NUMBER}")
    upload = {name: data[name] for name in UPLOAD_FIELDS if name in data}
    if upload_id is not None and upload:
        raise BadRequest("an upload's facts are only sent to start it (without uploadId)")
    return SignCall(str(method), key, upload_id, part_number, upload)


def _text(data: Mapping[str, Any], name: str, limit: int) -> str:
    value = jsonbody.string(data.get(name), name)
    if not value or len(value) > limit:
        raise BadRequest(f"{name} must be 1 to {limit} characters")
    return value
