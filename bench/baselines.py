"""The bare crypto each hot path cannot avoid: the floor our per-request figures are set against."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# --- sign: the V4 signing-key chain, the policy HMAC and base64 -------------------------------


def v4_signature(secret: str, day: str, region: str, policy_json: bytes) -> tuple[str, str]:
    """OSS4-HMAC-SHA256 for a PostObject policy: base64 the policy, derive the key, HMAC it."""
    policy_b64 = base64.b64encode(policy_json).decode("ascii")
    k_date = hmac.digest(("aliyun_v4" + secret).encode(), day.encode(), "sha256")
    k_region = hmac.digest(k_date, region.encode(), "sha256")
    k_service = hmac.digest(k_region, b"oss", "sha256")
    k_signing = hmac.digest(k_service, b"aliyun_v4_request", "sha256")
    signature = hmac.new(k_signing, policy_b64.encode("ascii"), hashlib.sha256).hexdigest()
    return policy_b64, signature


def typical_policy(bucket: str = "bench-bucket", key_dir: str = "uploads/alice/avatars/") -> bytes:
    """A policy the size of the ones we issue (exact key, type, callback pinned)."""
    callback = base64.b64encode(b"x" * 620).decode()  # our callback JSON is ~600 bytes
    document = {
        "expiration": "2030-01-01T00:05:00.000Z",
        "conditions": [
            {"bucket": bucket},
            {"x-oss-signature-version": "OSS4-HMAC-SHA256"},
            {"x-oss-credential": "LTAI5tBenchKeyId0000/20300101/cn-hangzhou/oss/aliyun_v4_request"},
            {"x-oss-date": "20300101T000000Z"},
            ["content-length-range", 1, 1048576],
            ["eq", "$key", key_dir + "01hzzzzzzzzzzzzzzzzzzzzzzz.png"],
            ["in", "$content-type", ["image/png"]],
            {"x-oss-forbid-overwrite": "true"},
            {"success_action_status": "200"},
            {"callback": callback},
        ],
    }
    return json.dumps(document, separators=(",", ":")).encode()


# --- callback: one RSA PKCS#1 v1.5 / MD5 verify ------------------------------------------------


@dataclass(frozen=True)
class RsaCase:
    """A public key, a message and its signature: what one bare verify needs."""

    label: str
    public_key: rsa.RSAPublicKey
    message: bytes
    signature: bytes

    def verify(self) -> None:
        # MD5 with PKCS#1 v1.5 is OSS's choice for callback signatures, not ours.
        self.public_key.verify(self.signature, self.message, padding.PKCS1v15(), hashes.MD5())


def oss_c1_case(vectors: dict[str, Any]) -> RsaCase:
    """Vector C1 against the real (pinned, 512-bit) OSS callback key."""
    c1 = next(c for c in vectors["callbacks"] if c["id"] == "C1")
    key = serialization.load_pem_public_key(vectors["oss_callback_public_key"]["pem"].encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError("the OSS callback key is not RSA")
    message = f"{c1['path']}?{c1['query']}\n{c1['body']}".encode()
    return RsaCase(
        "OSS key (512-bit), vector C1", key, message, base64.b64decode(c1["authorization"])
    )


def test_key_case(private_key: rsa.RSAPrivateKey, message: bytes) -> RsaCase:
    """A message signed with our test key, the way OSS signs a callback."""
    signature = private_key.sign(message, padding.PKCS1v15(), hashes.MD5())
    bits = private_key.key_size
    return RsaCase(f"test key ({bits}-bit)", private_key.public_key(), message, signature)
