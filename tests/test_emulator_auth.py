"""Header signatures on every REST operation of the emulator, proved with oss2 as the client.

Before local/oss_emulator/request_auth.py, any Authorization naming a known key passed: a wrong
secret or a wrong V4 region listed and HEADed. Now the emulator computes V1 and V4 signatures as
OSS does and answers OSS's errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.oss_sdk import BUCKET, KEY_ID, REGION, auth, bucket, signed_headers
from tests.support.emulator import STS, Emu, code_of, refusal

KEY = "uploads/alice/é x+y.txt"


@pytest.fixture
def emu(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> Emu:
    emu = Emu(tmp_path, oss_key, live=True)
    emu.seed(KEY, b"hello", "5D41402ABC4B2A76B9719D911017C592")
    return emu


@pytest.fixture
def url(emu: Emu) -> Iterator[str]:
    with emu.serving() as served:
        yield served


@pytest.mark.parametrize("version", ["v1", "v4"])
@pytest.mark.parametrize("sts", [False, True])
def test_the_right_credentials_list_head_and_get(url: str, version: str, sts: bool) -> None:
    credentials = (
        auth(version, STS.key_id, STS.secret, STS.security_token) if sts else auth(version)
    )
    sdk = bucket(url, credentials)
    listed = sdk.list_objects_v2(prefix="uploads/", max_keys=10)
    assert [o.key for o in listed.object_list] == [KEY]
    assert [o.key for o in sdk.list_objects(prefix="uploads/").object_list] == [KEY]
    assert sdk.head_object(KEY).content_length == 5
    assert sdk.get_object(KEY).read() == b"hello"
    assert sdk.object_exists("uploads/alice/none.txt") is False


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_a_wrong_secret_is_signature_does_not_match(url: str, version: str) -> None:
    sdk = bucket(url, auth(version, secret="not-the-secret"))
    assert refusal(lambda: sdk.list_objects_v2(prefix="uploads/")) == (
        403,
        "SignatureDoesNotMatch",
    )
    assert refusal(lambda: sdk.head_object(KEY))[0] == 403
    assert refusal(lambda: sdk.get_object(KEY)) == (403, "SignatureDoesNotMatch")


def test_a_wrong_v4_region_is_refused_as_oss_does(url: str) -> None:
    sdk = bucket(url, auth("v4"), region="cn-shanghai")
    assert refusal(lambda: sdk.list_objects_v2(prefix="uploads/")) == (400, "InvalidArgument")
    assert refusal(lambda: sdk.head_object(KEY))[0] == 400


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_unknown_keys_and_bad_tokens_are_refused(url: str, version: str) -> None:
    unknown = bucket(url, auth(version, key_id="someone-else"))
    assert refusal(unknown.list_objects_v2) == (403, "InvalidAccessKeyId")
    wrong_token = bucket(url, auth(version, STS.key_id, STS.secret, "forged-token"))
    assert refusal(wrong_token.list_objects_v2) == (403, "InvalidSecurityToken")
    no_token = bucket(url, auth(version, STS.key_id, STS.secret))
    assert refusal(no_token.list_objects_v2) == (403, "InvalidAccessKeyId")


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_a_signature_covers_the_key_and_the_signed_query(emu: Emu, version: str) -> None:
    client = emu.client
    headers = signed_headers(auth(version), "HEAD", KEY)
    assert client.head(f"/{BUCKET}/{KEY}", headers=headers).status_code == 200
    other = client.head(f"/{BUCKET}/uploads/alice/other.txt", headers=headers)
    assert other.status_code == 403
    listing = signed_headers(auth(version), "GET", "", {"list-type": "2", "prefix": "uploads/"})
    assert client.get(f"/{BUCKET}/?list-type=2&prefix=uploads/", headers=listing).status_code == 200
    # V1 signs sub-resources only (continuation-token, not prefix); V4 signs the whole query.
    widened = client.get(f"/{BUCKET}/?list-type=2&prefix=", headers=listing)
    assert widened.status_code == (200 if version == "v1" else 403)


def test_requests_from_another_time_are_refused(emu: Emu) -> None:
    emu.clock = 2e9  # 2033, far from when oss2 signs
    client = emu.client
    for version in ("v1", "v4"):
        response = client.head(
            f"/{BUCKET}/{KEY}", headers=signed_headers(auth(version), "HEAD", KEY)
        )
        assert response.status_code == 403
    response = client.get(f"/{BUCKET}/{KEY}", headers=signed_headers(auth("v1"), "GET", KEY))
    assert code_of(response) == "RequestTimeTooSkewed"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer something",
        "OSS4-HMAC-SHA256 Signature=00",
        f"OSS4-HMAC-SHA256 Credential={KEY_ID}/20260101/{REGION}/s3/aliyun_v4_request,Signature=00",
    ],
)
def test_malformed_authorization_headers_are_invalid_argument(emu: Emu, authorization: str) -> None:
    response = emu.client.get("/?list-type=2", headers={"Authorization": authorization})
    assert (response.status_code, code_of(response)) == (400, "InvalidArgument")
