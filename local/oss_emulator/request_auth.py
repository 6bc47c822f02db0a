"""Signatures of REST requests (every operation but PostObject): V1 and V4, STS tokens.

V1 (`Authorization: OSS <AccessKeyId>:<Signature>`): base64(HMAC-SHA1(secret, VERB \\n
Content-MD5 \\n Content-Type \\n Date \\n CanonicalizedOSSHeaders CanonicalizedResource)), the
resource being `/<bucket>/<key>` plus the sub-resources OSS signs, sorted.

V4 (`Authorization: OSS4-HMAC-SHA256 Credential=<id>/<YYYYMMDD>/<region>/oss/aliyun_v4_request,
Signature=<hex>[, AdditionalHeaders=<h1;h2>]`): hex(HMAC-SHA256(signing key, "OSS4-HMAC-SHA256" \\n
x-oss-date \\n scope \\n hex(SHA-256(canonical request)))), the canonical request being VERB \\n
URI-encoded `/<bucket>/<key>` \\n sorted encoded query \\n `x-oss-*`, content-type, content-md5 and
the additional headers \\n additional header names \\n x-oss-content-sha256.

Both as oss2 2.16 signs them (`oss2/auth.py`: `ProviderAuth`, `ProviderAuthV4`). The pieces take a
`RestRequest` (method, bucket, key, query, headers) rather than a WSGI request, so presigned-URL
(query-string) checks can build the same strings. STS keys need their `x-oss-security-token`,
which both versions sign as an `x-oss-` header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from local.oss_emulator.errors import OssError, access_denied, invalid_argument
from local.oss_emulator.signature import (
    V4_ALGORITHM,
    V4_TERMINATOR,
    AccessKey,
    SignedBy,
    lookup_key,
    signature_does_not_match,
    v4_signing_key,
)

MAX_SKEW = timedelta(minutes=15)  # OSS refuses requests whose time is 15 minutes off its own
# The query parameters V1 signs (OSS's list of sub-resources, as oss2 2.16 signs them).
V1_SUBRESOURCES = frozenset(
    [
        "acl",
        "uploadId",
        "uploads",
        "partNumber",
        "group",
        "link",
        "delete",
        "website",
        "location",
        "objectInfo",
        "objectMeta",
        "response-content-type",
        "response-content-language",
        "response-cache-control",
        "response-content-encoding",
        "response-expires",
        "response-content-disposition",
        "logging",
        "cors",
        "lifecycle",
        "restore",
        "qos",
        "referer",
        "stat",
        "bucketInfo",
        "append",
        "position",
        "security-token",
        "live",
        "comp",
        "status",
        "vod",
        "startTime",
        "endTime",
        "x-oss-process",
        "symlink",
        "callback",
        "callback-var",
        "tagging",
        "encryption",
        "versions",
        "versioning",
        "versionId",
        "policy",
        "requestPayment",
        "x-oss-traffic-limit",
        "qosInfo",
        "asyncFetch",
        "x-oss-request-payer",
        "sequential",
        "inventory",
        "inventoryId",
        "continuation-token",
        "worm",
        "wormId",
        "wormExtend",
        "replication",
        "replicationLocation",
        "replicationProgress",
        "transferAcceleration",
        "cname",
        "metaQuery",
    ]
)
V4_DEFAULT_SIGNED = ("content-type", "content-md5")
_V1_AUTH = re.compile(r"OSS ([^:\s]+):(\S+)")
_V4_DATE = re.compile(r"\d{8}T\d{6}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-~.")


@dataclass(frozen=True)
class RestRequest:
    """What a signature covers: `headers` by lower-case name, `query` decoded, in request order."""

    method: str
    bucket: str
    key: str  # "" for the bucket itself
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]


def authenticate(
    request: RestRequest,
    keys: Mapping[str, AccessKey],
    *,
    region: str,
    now: datetime,
) -> SignedBy:
    """Verify the `Authorization` header; OSS's 400/403 error otherwise."""
    value = request.headers.get("authorization", "").strip()
    if value.startswith(V4_ALGORITHM + " "):
        return _verify_v4(request, value, keys, region=region, now=now)
    match = _V1_AUTH.fullmatch(value)
    if match is None:
        raise invalid_argument("Authorization header is invalid.", ec="0002-00000004")
    return _verify_v1(request, match.group(1), match.group(2), keys, now=now)


# --- V1 -------------------------------------------------------------------------------------


def _verify_v1(
    request: RestRequest,
    key_id: str,
    provided: str,
    keys: Mapping[str, AccessKey],
    *,
    now: datetime,
) -> SignedBy:
    key = lookup_key(keys, key_id, request.headers.get("x-oss-security-token", ""))
    date = request.headers.get("x-oss-date") or request.headers.get("date") or ""
    _check_http_date(date, now)
    expected = v1_request_signature(key.secret, v1_string_to_sign(request, date))
    if not hmac.compare_digest(expected.encode(), provided.encode()):
        raise signature_does_not_match(key.key_id)
    return SignedBy("v1", key.key_id)


def v1_string_to_sign(request: RestRequest, date: str) -> str:
    """VERB, Content-MD5, Content-Type, Date (or the Expires of a signed URL), headers + resource."""
    oss_headers = sorted(
        (name, value) for name, value in request.headers.items() if name.startswith("x-oss-")
    )
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in oss_headers)
    return "\n".join(
        (
            request.method,
            request.headers.get("content-md5", ""),
            request.headers.get("content-type", ""),
            date,
            canonical_headers + v1_resource(request),
        )
    )


def v1_resource(request: RestRequest) -> str:
    """`/<bucket>/<key>` and the signed sub-resources, sorted, `k=v` (or `k` when empty)."""
    signed = sorted((k, v) for k, v in request.query if k in V1_SUBRESOURCES)
    sub = "&".join(f"{k}={v}" if v else k for k, v in signed)
    return f"/{request.bucket}/{request.key}" + (f"?{sub}" if sub else "")


def v1_request_signature(secret: str, string_to_sign: str) -> str:
    digest = hmac.new(secret.encode(), string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _check_http_date(value: str, now: datetime) -> None:
    if not value:
        raise access_denied("The request must carry a Date or x-oss-date header.")
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise access_denied(f"The Date header is not an HTTP date: {value!r}.") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    _check_skew(when, now)


def _check_skew(when: datetime, now: datetime) -> None:
    if abs(when - now) > MAX_SKEW:
        raise OssError(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )


# --- V4 -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class V4Authorization:
    key_id: str
    date: str  # YYYYMMDD of the scope
    region: str
    signature: str
    additional_headers: tuple[str, ...]


def parse_v4_authorization(value: str) -> V4Authorization:
    """`OSS4-HMAC-SHA256 Credential=…, Signature=…[, AdditionalHeaders=…]`; InvalidArgument else."""
    parts: dict[str, str] = {}
    for item in value[len(V4_ALGORITHM) :].split(","):
        name, sep, text = item.strip().partition("=")
        if not sep or name in parts:
            raise invalid_argument("Authorization header is invalid.", ec="0002-00000004")
        parts[name] = text.strip()
    if not parts.get("Credential") or "Signature" not in parts:
        raise invalid_argument("Authorization header is invalid.", ec="0002-00000004")
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or not all(scope) or scope[4] != V4_TERMINATOR:
        raise invalid_argument(
            f"Credential must be <AccessKeyId>/<SignDate>/<Region>/oss/{V4_TERMINATOR}.",
            ec="0002-00000213",
        )
    if scope[3] != "oss":
        # Seen on OSS: 400 InvalidArgument, EC 0002-00000227 (alibabacloud-oss-python-sdk-v2#74)
        raise invalid_argument(
            "Invalid signing product in Authorization header.", ec="0002-00000227"
        )
    additional = tuple(h.strip().lower() for h in parts.get("AdditionalHeaders", "").split(";"))
    return V4Authorization(
        key_id=scope[0],
        date=scope[1],
        region=scope[2],
        signature=parts["Signature"],
        additional_headers=tuple(h for h in additional if h),
    )


def _verify_v4(
    request: RestRequest,
    value: str,
    keys: Mapping[str, AccessKey],
    *,
    region: str,
    now: datetime,
) -> SignedBy:
    auth = parse_v4_authorization(value)
    if auth.region != region:
        # Seen on OSS: 400 InvalidArgument, EC 0002-00000226 (alibabacloud-oss-go-sdk-v2#29)
        raise invalid_argument(
            "Invalid signing region in Authorization header.", ec="0002-00000226"
        )
    key = lookup_key(keys, auth.key_id, request.headers.get("x-oss-security-token", ""))
    signed_at = request.headers.get("x-oss-date", "")
    if not _V4_DATE.fullmatch(signed_at):
        raise invalid_argument("x-oss-date must look like 20231203T121212Z.", ec="0002-00000209")
    if signed_at[:8] != auth.date:
        raise invalid_argument(
            "The date of x-oss-date does not match the date in the Credential.",
            ec="0002-00000209",
        )
    try:
        when = datetime.strptime(signed_at, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise invalid_argument("x-oss-date is not a date.", ec="0002-00000209") from None
    _check_skew(when, now)
    canonical = v4_canonical_request(request, auth.additional_headers)
    expected = v4_request_signature(key.secret, signed_at, region, canonical)
    if not _HEX64.fullmatch(auth.signature) or not hmac.compare_digest(expected, auth.signature):
        raise signature_does_not_match(key.key_id)
    return SignedBy("v4", key.key_id)


def v4_canonical_request(request: RestRequest, additional_headers: tuple[str, ...]) -> str:
    """VERB, URI, query, headers, additional header names, payload hash (oss2 `ProviderAuthV4`)."""
    uri = uri_encode(f"/{request.bucket}/{request.key}", keep_slash=True)
    encoded = sorted((uri_encode(k), uri_encode(v)) for k, v in request.query)
    query = "&".join(f"{k}={v}" if v else k for k, v in encoded)
    signed = sorted(
        (name, value.strip())
        for name, value in request.headers.items()
        if name.startswith("x-oss-") or name in V4_DEFAULT_SIGNED or name in additional_headers
    )
    headers = "".join(f"{name}:{value}\n" for name, value in signed)
    payload = request.headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD")
    return "\n".join(
        (request.method, uri, query, headers, ";".join(sorted(additional_headers)), payload)
    )


def v4_request_signature(secret: str, signed_at: str, region: str, canonical: str) -> str:
    scope = f"{signed_at[:8]}/{region}/oss/{V4_TERMINATOR}"
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    string_to_sign = f"{V4_ALGORITHM}\n{signed_at}\n{scope}\n{digest}"
    key = v4_signing_key(secret, signed_at[:8], region)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def uri_encode(text: str, *, keep_slash: bool = False) -> str:
    """Percent-encode every byte but A–Z a–z 0–9 `_-~.` (and `/` in the path)."""
    out = []
    for byte in text.encode("utf-8", "surrogatepass"):
        if byte in _UNRESERVED or (keep_slash and byte == 0x2F):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)
