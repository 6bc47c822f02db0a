"""Header signatures on every REST operation of the emulator, proved with oss2 as the client.

Before local/oss_emulator/request_auth.py, any Authorization naming a known key passed: a wrong
secret or a wrong V4 region listed and HEADed. Now the emulator computes V1 and V4 signatures as
OSS does and answers OSS's errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import oss2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.test import Client

from local.oss_emulator import AccessKey, EmulatorConfig, OssEmulator
from local.oss_emulator.store import StoredObject
from tests.oss_sdk import BUCKET, KEY_ID, REGION, SECRET, auth, bucket, serve, signed_headers

STS = AccessKey("STS.dev-temporary-id", "dev-temporary-secret", "dev-security-token")
KEY = "uploads/alice/é x+y.txt"


@cache
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_emulator(tmp_path: Path, **config: Any) -> OssEmulator:
    emulator = OssEmulator(
        EmulatorConfig(
            bucket=BUCKET,
            region=REGION,
            access_keys=(AccessKey(KEY_ID, SECRET), STS),
            data_dir=tmp_path,
            public_url="http://127.0.0.1:9000",
            **config,
        ),
        private_key=signing_key(),
    )
    source = tmp_path / "spooled"
    source.write_bytes(b"hello")
    obj = StoredObject(KEY, 5, "5D41402ABC4B2A76B9719D911017C592", "text/plain", "1", "XUFA", 1e9)
    emulator.store.put(obj, source, forbid_overwrite=False)
    return emulator


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with serve(make_emulator(tmp_path)) as served:
        yield served


def refusal(call: Any) -> tuple[int, str]:
    with pytest.raises(oss2.exceptions.OssError) as caught:
        call()
    return caught.value.status, caught.value.code


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
def test_a_signature_covers_the_key_and_the_signed_query(tmp_path: Path, version: str) -> None:
    client = Client(make_emulator(tmp_path))
    headers = signed_headers(auth(version), "HEAD", KEY)
    assert client.head(f"/{BUCKET}/{KEY}", headers=headers).status_code == 200
    other = client.head(f"/{BUCKET}/uploads/alice/other.txt", headers=headers)
    assert other.status_code == 403
    listing = signed_headers(auth(version), "GET", "", {"list-type": "2", "prefix": "uploads/"})
    assert client.get(f"/{BUCKET}/?list-type=2&prefix=uploads/", headers=listing).status_code == 200
    # V1 signs sub-resources only (continuation-token, not prefix); V4 signs the whole query.
    widened = client.get(f"/{BUCKET}/?list-type=2&prefix=", headers=listing)
    assert widened.status_code == (200 if version == "v1" else 403)


def test_requests_from_another_time_are_refused(tmp_path: Path) -> None:
    emulator = make_emulator(tmp_path)
    emulator.now = lambda: 2e9  # 2033, far from when oss2 signs
    client = Client(emulator)
    for version in ("v1", "v4"):
        response = client.head(
            f"/{BUCKET}/{KEY}", headers=signed_headers(auth(version), "HEAD", KEY)
        )
        assert response.status_code == 403
    response = client.get(f"/{BUCKET}/{KEY}", headers=signed_headers(auth("v1"), "GET", KEY))
    assert re.search(r"<Code>RequestTimeTooSkewed</Code>", response.text)


@pytest.mark.parametrize(
    ("authorization", "status", "code"),
    [
        ("Bearer something", 400, "InvalidArgument"),
        ("OSS4-HMAC-SHA256 Signature=00", 400, "InvalidArgument"),
        (
            f"OSS4-HMAC-SHA256 Credential={KEY_ID}/20260101/{REGION}/s3/aliyun_v4_request,"
            "Signature=00",
            400,
            "InvalidArgument",
        ),
    ],
)
def test_malformed_authorization_headers(
    tmp_path: Path, authorization: str, status: int, code: str
) -> None:
    response = Client(make_emulator(tmp_path)).get(
        "/?list-type=2", headers={"Authorization": authorization}
    )
    assert response.status_code == status
    assert f"<Code>{code}</Code>" in response.text
