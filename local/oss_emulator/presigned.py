"""Presigned (query-string) requests: V4 `x-oss-signature` and V1 `OSSAccessKeyId`/`Signature`.

next-capabilities.md §1.4 (V4): `x-oss-signature-version=OSS4-HMAC-SHA256`, `x-oss-credential`
(`<id>/<YYYYMMDD>/<region>/oss/aliyun_v4_request`), `x-oss-date`, relative `x-oss-expires`
(1…604800 s), optional `x-oss-security-token` and `x-oss-additional-headers`; the signature is
over the canonical request of every other query parameter, `UNSIGNED-PAYLOAD`.
§1.5 (V1): absolute `Expires` stands in the Date line, `security-token` is a sub-resource.

Built from request_auth.py's pieces (canonical request, string to sign, sub-resources), which
follow oss2's signers; nothing here imports the project's own signer (shared/sign/presign.py),
so the two cannot share one misunderstanding. Refusals as OSS answers them: a changed key,
query or header → 403 SignatureDoesNotMatch; past its end → 403 AccessDenied "Request has
expired." with `Expires` and `ServerTime` (as seen on OSS); malformed → 400 InvalidArgument.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from local.oss_emulator.errors import OssError, access_denied, invalid_argument
from local.oss_emulator.request_auth import (
    MAX_SKEW,
    RestRequest,
    v1_request_signature,
    v1_string_to_sign,
    v4_canonical_request,
    v4_request_signature,
)
from local.oss_emulator.signature import (
    V4_ALGORITHM,
    V4_TERMINATOR,
    AccessKey,
    SignedBy,
    lookup_key,
    signature_does_not_match,
)
from shared.digits import in_range, whole_number

MAX_V4_EXPIRES = 604_800
V4_SIGNATURE = "x-oss-signature"
V1_PARAMETERS = ("OSSAccessKeyId", "Expires", "Signature")
_V4_DATE = re.compile(r"\d{8}T\d{6}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def is_presigned(query: Mapping[str, str]) -> bool:
    """Whether the request carries a query-string signature (of either version)."""
    return V4_SIGNATURE in query or "x-oss-credential" in query or "Signature" in query


def authenticate_query(
    request: RestRequest,
    keys: Mapping[str, AccessKey],
    *,
    region: str,
    now: datetime,
) -> SignedBy:
    """Verify a presigned request; OSS's 400/403 error otherwise."""
    query = dict(request.query)
    if len(query) != len(request.query):
        raise invalid_argument("A query parameter is repeated.")
    if "x-oss-credential" in query or V4_SIGNATURE in query:
        return _verify_v4(request, query, keys, region=region, now=now)
    return _verify_v1(request, query, keys, now=now)


def _expired(expires_at: datetime, now: datetime) -> OssError:
    iso = "%Y-%m-%dT%H:%M:%S.000Z"
    return OssError(
        403,
        "AccessDenied",
        "Request has expired.",
        extra=(("Expires", expires_at.strftime(iso)), ("ServerTime", now.strftime(iso))),
    )


def _verify_v4(
    request: RestRequest,
    query: Mapping[str, str],
    keys: Mapping[str, AccessKey],
    *,
    region: str,
    now: datetime,
) -> SignedBy:
    if query.get("x-oss-signature-version") != V4_ALGORITHM:
        raise invalid_argument(
            f"x-oss-signature-version must be {V4_ALGORITHM}.", ec="0002-00000210"
        )
    scope = query.get("x-oss-credential", "").split("/")
    if len(scope) != 5 or not all(scope) or scope[3:] != ["oss", V4_TERMINATOR]:
        raise invalid_argument(
            f"x-oss-credential must be <AccessKeyId>/<SignDate>/<Region>/oss/{V4_TERMINATOR}.",
            ec="0002-00000213",
        )
    if scope[2] != region:
        raise invalid_argument("Invalid signing region in x-oss-credential.", ec="0002-00000226")
    signed_at = query.get("x-oss-date", "")
    if not _V4_DATE.fullmatch(signed_at) or signed_at[:8] != scope[1]:
        raise invalid_argument(
            "x-oss-date must look like 20231203T121212Z, on the credential's date.",
            ec="0002-00000209",
        )
    expires = query.get("x-oss-expires", "")
    if in_range(expires, 1, MAX_V4_EXPIRES, max_digits=12) is None:
        raise invalid_argument(
            f"x-oss-expires must be 1 to {MAX_V4_EXPIRES} seconds.", ec="0002-00000211"
        )
    try:
        when = datetime.strptime(signed_at, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise invalid_argument("x-oss-date is not a date.", ec="0002-00000209") from None
    key = lookup_key(keys, scope[0], query.get("x-oss-security-token", ""))
    if when - now > MAX_SKEW:
        raise access_denied("Request is not yet valid (x-oss-date is in the future).")
    if now > when + timedelta(seconds=int(expires)):
        raise _expired(when + timedelta(seconds=int(expires)), now)
    additional = tuple(
        name.strip().lower()
        for name in query.get("x-oss-additional-headers", "").split(";")
        if name.strip()
    )
    unsigned = RestRequest(
        method=request.method,
        bucket=request.bucket,
        key=request.key,
        query=tuple((k, v) for k, v in request.query if k != V4_SIGNATURE),
        headers=request.headers,
    )
    canonical = v4_canonical_request(unsigned, additional)
    expected = v4_request_signature(key.secret, signed_at, region, canonical)
    provided = query.get(V4_SIGNATURE, "")
    if not _HEX64.fullmatch(provided) or not hmac.compare_digest(expected, provided):
        raise signature_does_not_match(key.key_id)
    return SignedBy("v4", key.key_id)


def _verify_v1(
    request: RestRequest,
    query: Mapping[str, str],
    keys: Mapping[str, AccessKey],
    *,
    now: datetime,
) -> SignedBy:
    missing = [name for name in V1_PARAMETERS if not query.get(name)]
    if missing:
        raise access_denied(
            f"A signed URL needs OSSAccessKeyId, Expires and Signature ({missing[0]} is missing)."
        )
    expires = query["Expires"]
    seconds = whole_number(expires, max_digits=12)
    if seconds is None:
        raise invalid_argument("Expires must be a Unix time in seconds.")
    key = lookup_key(keys, query["OSSAccessKeyId"], query.get("security-token", ""))
    expires_at = datetime.fromtimestamp(seconds, timezone.utc)
    if now > expires_at:
        raise _expired(expires_at, now)
    expected = v1_request_signature(key.secret, v1_string_to_sign(request, expires))
    if not hmac.compare_digest(expected.encode(), query["Signature"].encode()):
        raise signature_does_not_match(key.key_id)
    return SignedBy("v1", key.key_id)
