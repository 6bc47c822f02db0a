"""OSS PostObject signature vectors (tests/data/oss.json), stage by stage like botocore's SigV4
suite: the first stage that diverges is reported. V1-d: oss-protocol.md §3.1 ("computed
independently": the V4-a policy signed with V1 and secret `sk`)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.sign import policy
from tests.support.data import VECTORS

V4 = VECTORS["policy_v4"]
V1 = [
    *VECTORS["policy_v1"],
    {
        "id": "V1-d",
        "source": "oss-protocol.md §3.1 (V4-a policy, V1 signature, computed independently)",
        "secret": "sk",
        "policy": V4[0]["policy"],
        "signature": "kLoHjmh1ZEhlXmOrPrXut/2cVks=",
    },
]


def _stage(name: str, got: str, want: str) -> None:
    assert got == want, f"stage {name!r} diverges: got {got}, want {want}"


@pytest.mark.parametrize("vector", V1, ids=[v["id"] for v in V1])
def test_v1_signature(vector: dict[str, Any]) -> None:
    _stage(
        "signature", policy.sign_policy_v1(vector["policy"], vector["secret"]), vector["signature"]
    )
    decoded = bytearray(base64.b64decode(vector["policy"]))
    decoded[10] ^= 1  # one policy byte changed: another signature
    other = policy.encode_policy(bytes(decoded))
    assert policy.sign_policy_v1(other, vector["secret"]) != vector["signature"]


@pytest.mark.parametrize("vector", V4, ids=[v["id"] for v in V4])
def test_v4_stages(vector: dict[str, Any]) -> None:
    date = vector["x_oss_date"][:8]
    region = vector["region"]
    parsed = json.loads(vector["policy_json"])
    document = policy.policy_document(parsed["expiration"], parsed["conditions"])
    _stage("policy_json (policy_document, byte for byte)", document.decode(), vector["policy_json"])
    _stage(
        "x-oss-credential",
        policy.x_oss_credential(vector["access_key_id"], date, region),
        parsed["conditions"][2]["x-oss-credential"],
    )
    _stage("policy_b64", policy.encode_policy(vector["policy_json"].encode()), vector["policy"])
    chain = policy.signing_key_chain(vector["secret"], date, region)
    for stage in ("k_date", "k_region", "k_service", "k_signing"):
        _stage(stage, getattr(chain, stage).hex(), vector[stage])
    _stage(
        "k_signing (signing_key)",
        policy.signing_key(vector["secret"], date, region).hex(),
        vector["k_signing"],
    )
    _stage(
        "signature",
        policy.sign_policy_v4(vector["policy"], vector["secret"], date, region),
        vector["signature"],
    )


def test_v4_date_and_expiration_are_utc() -> None:
    assert policy.x_oss_date(1702743657) == "20231216T162057Z"  # the V4-a date
    assert policy.expiration(1702771200) == "2023-12-17T00:00:00.000Z"
    scope = policy.credential_scope("20231216", "cn-hangzhou")
    assert scope == "20231216/cn-hangzhou/oss/aliyun_v4_request"


def test_signing_key_is_cached_per_secret_date_region() -> None:
    first = policy.signing_key_chain("secret-a", "20240101", "cn-hangzhou")
    assert policy.signing_key_chain("secret-a", "20240101", "cn-hangzhou") is first
    assert policy.signing_key("secret-b", "20240101", "cn-hangzhou") != first.k_signing
    assert policy.signing_key("secret-a", "20240102", "cn-hangzhou") != first.k_signing
    assert policy.signing_key("secret-a", "20240101", "cn-shanghai") != first.k_signing
