"""PostObject policies and their signatures, named after the steps of OSS's spec.

`oss-protocol.md` §3.1 (V1: base64 HMAC-SHA1 over the base64 policy), §3.2 (V4: hex
HMAC-SHA256 with a key derived from "aliyun_v4" + secret, date, region, "oss",
"aliyun_v4_request"; the string to sign is only the base64 policy) and §4 (the document).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

from shared.credentials import Credentials

V4_ALGORITHM = "OSS4-HMAC-SHA256"
V4_SERVICE = "oss"
V4_TERMINATOR = "aliyun_v4_request"
V4_KEY_PREFIX = "aliyun_v4"

Condition = dict[str, Any] | list[Any]


class SigningKeyChain(NamedTuple):
    """The V4 key derivation, stage by stage (so vector tests can say which stage diverged)."""

    k_date: bytes
    k_region: bytes
    k_service: bytes
    k_signing: bytes


def expiration(expires_at: int) -> str:
    """Policy `expiration`: ISO 8601 in real UTC with `Z` (§4.1), never local time."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(expires_at))


def policy_document(expiration: str, conditions: Sequence[Condition]) -> bytes:
    """§4.1: `{"expiration", "conditions"}` built as data and serialised compactly, never formatted."""
    document = {"expiration": expiration, "conditions": list(conditions)}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode("utf-8")


def encode_policy(document: bytes) -> str:
    """§3.1 step 2: standard base64 of the policy bytes; the form value and the string to sign."""
    return base64.b64encode(document).decode("ascii")


def sign_policy_v1(policy_b64: str, secret: str) -> str:
    """§3.1 step 3: base64(HMAC-SHA1(key=secret, msg=policy_b64)); SHA-1 is OSS's choice."""
    digest = hmac.new(secret.encode("utf-8"), policy_b64.encode("ascii"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def x_oss_date(now: float) -> str:
    """§3.2: `x-oss-date` as `YYYYMMDD'T'HHMMSS'Z'` in UTC."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(int(now)))


def credential_scope(date: str, region: str) -> str:
    """§3.2: `<YYYYMMDD>/<region>/oss/aliyun_v4_request` (region without an `oss-` prefix)."""
    return f"{date}/{region}/{V4_SERVICE}/{V4_TERMINATOR}"


def x_oss_credential(access_key_id: str, date: str, region: str) -> str:
    """§3.2: `x-oss-credential` = `<AccessKeyId>/<scope>`."""
    return f"{access_key_id}/{credential_scope(date, region)}"


def signing_key_chain(secret: str, date: str, region: str) -> SigningKeyChain:
    """§3.2 key chain kDate → kRegion → kService → kSigning, cached per (secret, date, region)."""
    return _signing_key_chain(secret.encode("utf-8"), date, region)


@lru_cache(maxsize=32)
def _signing_key_chain(secret: bytes, date: str, region: str) -> SigningKeyChain:
    k_date = _hmac_sha256(V4_KEY_PREFIX.encode("ascii") + secret, date)
    k_region = _hmac_sha256(k_date, region)
    k_service = _hmac_sha256(k_region, V4_SERVICE)
    k_signing = _hmac_sha256(k_service, V4_TERMINATOR)
    return SigningKeyChain(k_date, k_region, k_service, k_signing)


def signing_key(secret: str, date: str, region: str) -> bytes:
    """§3.2: the derived V4 signing key for one day and region."""
    return signing_key_chain(secret, date, region).k_signing


def sign_policy_v4(policy_b64: str, secret: str, date: str, region: str) -> str:
    """§3.2: hex(HMAC-SHA256(kSigning, policy_b64)); the string to sign is only the policy."""
    return hmac.new(
        signing_key(secret, date, region), policy_b64.encode("ascii"), hashlib.sha256
    ).hexdigest()


def _hmac_sha256(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


# --- the two signers: what each version pins in the policy and adds to the form -------------


class PolicySigner(Protocol):
    @property
    def version(self) -> str:
        """`v4` or `v1`, as /signature answers it."""

    def pinned_fields(self) -> dict[str, str]:
        """Form fields the policy must pin exactly (its conditions), in posting order."""

    def form_fields(self, policy_b64: str) -> dict[str, str]:
        """The fields that carry the credential and signature, in posting order."""

    def answer_fields(self, form: dict[str, str]) -> dict[str, str]:
        """Extra top-level /signature fields legacy clients read."""


@dataclass(frozen=True)
class V4Signer:
    """§3.2/§10: V4 pins `x-oss-signature-version`, `x-oss-credential`, `x-oss-date` (and the STS
    token) in the policy and signs with the derived key of that date and region."""

    credentials: Credentials
    region: str
    now: float
    version: str = "v4"

    def pinned_fields(self) -> dict[str, str]:
        date = x_oss_date(self.now)
        fields = {
            "x-oss-signature-version": V4_ALGORITHM,
            "x-oss-credential": x_oss_credential(
                self.credentials.access_key_id, date[:8], self.region
            ),
            "x-oss-date": date,
        }
        if self.credentials.security_token:
            fields["x-oss-security-token"] = self.credentials.security_token
        return fields

    def form_fields(self, policy_b64: str) -> dict[str, str]:
        fields = self.pinned_fields()
        token = fields.pop("x-oss-security-token", None)
        secret = self.credentials.access_key_secret.value
        fields["x-oss-signature"] = sign_policy_v4(
            policy_b64, secret, fields["x-oss-date"][:8], self.region
        )
        if token:
            fields["x-oss-security-token"] = token
        return fields

    def answer_fields(self, form: dict[str, str]) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class V1Signer:
    """§3.1: V1 pins nothing of its own; `OSSAccessKeyId` and `Signature` go in the form (and, for
    legacy clients, as `accessid`/`signature`); an STS token is a form field only."""

    credentials: Credentials
    version: str = "v1"

    def pinned_fields(self) -> dict[str, str]:
        return {}

    def form_fields(self, policy_b64: str) -> dict[str, str]:
        fields = {
            "OSSAccessKeyId": self.credentials.access_key_id,
            "Signature": sign_policy_v1(policy_b64, self.credentials.access_key_secret.value),
        }
        if self.credentials.security_token:
            fields["x-oss-security-token"] = self.credentials.security_token
        return fields

    def answer_fields(self, form: dict[str, str]) -> dict[str, str]:
        return {"accessid": form["OSSAccessKeyId"], "signature": form["Signature"]}


def policy_signer(version: str, credentials: Credentials, region: str, now: float) -> PolicySigner:
    """OSS_SIGNATURE_VERSION's signer."""
    if version == "v1":
        return V1Signer(credentials)
    return V4Signer(credentials, region, now)
