"""PostObject signatures: which scheme a form uses, and whether it was signed by a key we know.

V1 (protocol §3.1): base64(HMAC-SHA1(secret, policy field as received)).
V4 (protocol §3.2): hex(HMAC-SHA256(signing key, policy field as received)), the signing key being
the chain "aliyun_v4"+secret → date → region → "oss" → "aliyun_v4_request". STS keys (§10) also
need their `x-oss-security-token`, which is not part of the signed string.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from local.oss_emulator.errors import OssError, access_denied, invalid_argument

V4_ALGORITHM = "OSS4-HMAC-SHA256"
V4_TERMINATOR = "aliyun_v4_request"
V4_FUTURE_SKEW = timedelta(minutes=15)  # "a 15-minute backward offset is allowed"
V4_MAX_AGE = timedelta(days=7)  # "validity at most 7 days counted from x-oss-date"
_V4_DATE = re.compile(r"(\d{8})T(\d{6})Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class AccessKey:
    """A key pair the emulated OSS accepts; STS keys carry the token the form must present."""

    key_id: str
    secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SignedBy:
    """The outcome of the signature step: who signed, and with which scheme."""

    version: str  # "v1" or "v4"
    access_key_id: str


def signature_does_not_match(key_id: str) -> OssError:
    return OssError(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        ec="0002-00000040",
        extra=(("OSSAccessKeyId", key_id),),
    )


def v1_signature(secret: str, policy_b64: str) -> str:
    """V1: base64(HMAC-SHA1(key=secret, msg=the policy field exactly as sent))."""
    digest = hmac.new(secret.encode(), policy_b64.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def v4_signing_key(secret: str, date: str, region: str) -> bytes:
    """V4 key chain: "aliyun_v4"+secret → YYYYMMDD → region → "oss" → "aliyun_v4_request"."""
    key = ("aliyun_v4" + secret).encode()
    for part in (date, region, "oss", V4_TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def v4_signature(secret: str, date: str, region: str, policy_b64: str) -> str:
    """V4 POST: the string to sign is only the base64 policy; the signature is lowercase hex."""
    key = v4_signing_key(secret, date, region)
    return hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()


def verify_post_signature(
    fields: Mapping[str, str],
    keys: Mapping[str, AccessKey],
    *,
    region: str,
    now: datetime,
) -> SignedBy:
    """Pick the scheme the form uses (protocol §2.4) and verify it; raise OssError otherwise."""
    if "x-oss-signature-version" in fields:
        return _verify_v4(fields, keys, region=region, now=now)
    if any(name in fields for name in ("ossaccesskeyid", "policy", "signature")):
        return _verify_v1(fields, keys)
    raise access_denied("You have no right to access this object because of bucket acl.")


def _verify_v1(fields: Mapping[str, str], keys: Mapping[str, AccessKey]) -> SignedBy:
    for name, spelled in (
        ("ossaccesskeyid", "OSSAccessKeyId"),
        ("policy", "policy"),
        ("signature", "Signature"),
    ):
        if not fields.get(name):
            raise invalid_argument(
                f"Bucket POST must contain a field named '{spelled}'. If it is specified, "
                "please check the order of the fields.",
                ec="0002-00000703" if name == "signature" else None,
            )
    key = lookup_key(keys, fields["ossaccesskeyid"], fields.get("x-oss-security-token", ""))
    expected = v1_signature(key.secret, fields["policy"])
    if not hmac.compare_digest(expected.encode(), fields["signature"].encode()):
        raise signature_does_not_match(key.key_id)
    return SignedBy("v1", key.key_id)


def _verify_v4(
    fields: Mapping[str, str],
    keys: Mapping[str, AccessKey],
    *,
    region: str,
    now: datetime,
) -> SignedBy:
    if fields["x-oss-signature-version"] != V4_ALGORITHM:
        raise invalid_argument(
            f"Unsupported x-oss-signature-version; use {V4_ALGORITHM}.", ec="0002-00000701"
        )
    if not fields.get("policy"):
        raise invalid_argument(
            "Bucket POST must contain a field named 'policy'.", ec="0002-00000702"
        )
    for name in ("x-oss-credential", "x-oss-date", "x-oss-signature"):
        if not fields.get(name):
            raise invalid_argument(
                f"Bucket POST must contain a field named '{name}'.",
                ec="0002-00000703" if name == "x-oss-signature" else None,
            )
    key_id, scope_date, scope_region = _credential(fields["x-oss-credential"])
    _check_v4_date(fields["x-oss-date"], scope_date, now)
    if scope_region != region:
        raise invalid_argument(
            f"The region '{scope_region}' in x-oss-credential does not match the bucket's "
            f"region '{region}'.",
            ec="0002-00000710",
        )
    key = lookup_key(keys, key_id, fields.get("x-oss-security-token", ""))
    expected = v4_signature(key.secret, scope_date, scope_region, fields["policy"])
    provided = fields["x-oss-signature"]
    if not _HEX64.fullmatch(provided) or not hmac.compare_digest(expected, provided):
        raise signature_does_not_match(key.key_id)
    return SignedBy("v4", key.key_id)


def _credential(credential: str) -> tuple[str, str, str]:
    """`<AccessKeyId>/<YYYYMMDD>/<region>/oss/aliyun_v4_request` → (key id, date, region)."""
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts) or parts[3] != "oss" or parts[4] != V4_TERMINATOR:
        raise invalid_argument(
            "x-oss-credential must look like <AccessKeyId>/<YYYYMMDD>/<region>/oss/"
            f"{V4_TERMINATOR}.",
            ec="0002-00000710",
        )
    if not _valid_day(parts[1]):
        raise invalid_argument("The date in x-oss-credential must be YYYYMMDD.", ec="0002-00000709")
    return parts[0], parts[1], parts[2]


def _check_v4_date(value: str, scope_date: str, now: datetime) -> None:
    """x-oss-date: YYYYMMDDTHHMMSSZ, same day as the credential scope, not far from our clock."""
    match = _V4_DATE.fullmatch(value)
    try:
        signed_at = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        match = None
    if match is None:
        raise invalid_argument("x-oss-date must look like 20231203T121212Z.", ec="0002-00000709")
    if match.group(1) != scope_date:
        raise invalid_argument(
            "The date of x-oss-date does not match the date in x-oss-credential.",
            ec="0002-00000709",
        )
    if signed_at > now + V4_FUTURE_SKEW or signed_at < now - V4_MAX_AGE:
        raise invalid_argument(
            "The difference between x-oss-date and the server time is too large.",
            ec="0002-00000709",
        )


def _valid_day(text: str) -> bool:
    if not re.fullmatch(r"\d{8}", text):
        return False
    try:
        datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return True


def unknown_access_key(key_id: str) -> OssError:
    """403 InvalidAccessKeyId: the key id is not one the emulated account has."""
    return OssError(
        403,
        "InvalidAccessKeyId",
        "The OSS Access Key Id you provided does not exist in our records.",
        ec="0002-00000902",
        extra=(("OSSAccessKeyId", key_id),),
    )


def lookup_key(keys: Mapping[str, AccessKey], key_id: str, token: str) -> AccessKey:
    """Look the key up; STS keys need their exact token, permanent keys must not send one."""
    key = keys.get(key_id)
    if key is None:
        raise unknown_access_key(key_id)
    if key.security_token is None:
        if token:
            raise _invalid_token()
        return key
    if not token:
        raise OssError(
            403,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records "
            "(a temporary key needs its x-oss-security-token).",
            ec="0002-00000003",
            extra=(("OSSAccessKeyId", key_id),),
        )
    if not hmac.compare_digest(token.encode(), key.security_token.encode()):
        raise _invalid_token()
    return key


def _invalid_token() -> OssError:
    return OssError(
        403,
        "InvalidSecurityToken",
        "The security token you provided is invalid.",
        ec="0002-00000006",
    )
