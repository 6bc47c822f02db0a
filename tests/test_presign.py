"""Presigned URLs: OSS's published vectors stage by stage (next-capabilities.md §1.4/§1.5: the
official alibabacloud-oss-v2 signer's own tests, and an UploadPart URL it reproduces), and the
official SDKs byte for byte with time frozen (alibabacloud-oss-v2 V4 and V1, oss2 `sign_url`)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import alibabacloud_oss_v2 as oss_v2
import oss2
import pytest

from shared.credentials import Credentials
from shared.settings import Secret
from shared.sign import presign
from tests.support.sign import query_of

AK, SK = "ak", "sk"
UPLOAD_ID = "0004B999EF5A239BB9138C6227D69F95"
PART_KEY = "uploads/u1/big.bin"
PART_DATE = 1702743657  # 20231216T162057Z, the UploadPart vector's x-oss-date


def creds(token: str | None = None) -> Credentials:
    return Credentials(AK, Secret(SK), token)


def ours(version: str, method: str = "PUT", **overrides: Any) -> presign.Presigned:
    """Our presigner, asked for the UploadPart vector's request unless a call says otherwise."""
    options: dict[str, Any] = {
        "endpoint": "https://examplebucket.oss-cn-hangzhou.aliyuncs.com",
        "bucket": "examplebucket",
        "key": PART_KEY,
        "credentials": creds(),
        "now": PART_DATE,
        "expires": 900,
        "query": {"partNumber": "1", "uploadId": UPLOAD_ID},
        **overrides,
    }
    if version == "v4":
        return presign.presign_v4(method, region="cn-hangzhou", **options)
    return presign.presign_v1(method, **options)


def v4_signature(canonical: str, date_time: str, secret: str = SK) -> str:
    key = presign.signing_key(secret, date_time[:8], "cn-hangzhou")
    to_sign = presign.string_to_sign(date_time, "cn-hangzhou", canonical)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


# --- vectors ----------------------------------------------------------------------------------


def test_v4_vector_of_the_official_signer_stage_by_stage() -> None:
    """SDK-py2 test_auth_query: odd query names, unsigned headers ignored, `+` in the key."""
    date_time = "20231217T025437Z"
    odd = {"param1": "value1", "+param1": "value3", "|param1": "value4", "+param2": ""}
    query = {
        **odd,
        "|param2": "",
        "param2": "",
        "x-oss-signature-version": "OSS4-HMAC-SHA256",
        "x-oss-credential": "ak/20231217/cn-hangzhou/oss/aliyun_v4_request",
        "x-oss-date": date_time,
        "x-oss-expires": "599",
    }
    signed = {"x-oss-head1": "value", "content-type": "application/octet-stream"}
    headers = {**signed, "abc": "x", "ZAbc": "y", "XYZ": "z"}  # not signed: left out
    canonical = presign.canonical_request("PUT", "bucket", "1234+-/123/1.txt", query, headers)
    assert canonical == (
        "PUT\n/bucket/1234%2B-/123/1.txt\n"
        "%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2&param1=value1&param2&"
        "x-oss-credential=ak%2F20231217%2Fcn-hangzhou%2Foss%2Faliyun_v4_request&"
        "x-oss-date=20231217T025437Z&x-oss-expires=599&x-oss-signature-version=OSS4-HMAC-SHA256\n"
        "content-type:application/octet-stream\nx-oss-head1:value\n\n\nUNSIGNED-PAYLOAD"
    )
    assert (
        v4_signature(canonical, date_time)
        == "a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe"
    )


@pytest.mark.parametrize(
    ("headers", "signature"),
    [
        ({}, "cbe01c2c50df3d052bdd19a75e576b58482100cd07c94230440685084a811d15"),
        (
            {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="},
            "3f2d31ea11df63aa1174435485c93cbdcadf2642382ac44e8c1083b1f2ea5bd1",
        ),
    ],
)
def test_v4_upload_part_vector(headers: dict[str, str], signature: str) -> None:
    signed = ours("v4", headers=headers)
    query = query_of(signed.url)
    assert (query.pop("x-oss-signature"), signed.headers) == (signature, headers)
    assert signed.expires_at == PART_DATE + 900
    canonical = presign.canonical_request("PUT", "examplebucket", PART_KEY, query, headers)
    if not headers:  # the vector's canonical request, by its hash
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        assert digest == "9dfd8dcab6829bbbc1cdd511844a15e40dc035e84e894c9e0196f74fe1a98387"


@pytest.mark.parametrize(
    ("expires_at", "resource", "signature"),
    [
        (1699807420, "/bucket/key?versionId=versionId", "dcLTea+Yh9ApirQ8o8dOPqtvJXQ="),
        (
            1702744557,
            f"/examplebucket/{PART_KEY}?partNumber=1&uploadId={UPLOAD_ID}",
            "lRlSURuWPU9X+Wfkj4TbUxpqZik=",
        ),
    ],
)
def test_v1_vectors(expires_at: int, resource: str, signature: str) -> None:
    method = "GET" if "versionId" in resource else "PUT"
    to_sign = presign.string_to_sign_v1(method, expires_at, {}, resource)
    assert to_sign == f"{method}\n\n\n{expires_at}\n{resource}"
    digest = hmac.new(SK.encode(), to_sign.encode(), hashlib.sha1).digest()
    assert base64.b64encode(digest).decode() == signature


def test_v1_upload_part_url_carries_the_vector_signature() -> None:
    signed = ours("v1", now=1702744557 - 60, expires=60)
    assert query_of(signed.url)["Signature"] == "lRlSURuWPU9X+Wfkj4TbUxpqZik="


@pytest.mark.parametrize(
    ("query", "expires", "reason"),
    [({"acl": ""}, 60, "sub-resource"), ({}, presign.MAX_V4_EXPIRES + 1, "x-oss-expires")],
)
def test_unknown_query_parameters_or_too_long_a_life_are_refused_not_signed(
    query: dict[str, str], expires: int, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        ours("v4", "GET", now=0, expires=expires, query=query)


# --- the official SDKs, byte for byte ---------------------------------------------------------

FROZEN = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.timezone.utc)
ENDPOINT = "oss-cn-hangzhou.aliyuncs.com"
BUCKET = "example-bucket"


class _FrozenDatetime(datetime.datetime):
    @classmethod
    def now(cls, tz: datetime.tzinfo | None = None) -> _FrozenDatetime:
        return cls.fromtimestamp(FROZEN.timestamp(), tz)


def at_example_bucket(token: str | None) -> dict[str, Any]:
    return {
        "endpoint": f"https://{BUCKET}.{ENDPOINT}",
        "bucket": BUCKET,
        "credentials": creds(token),
        "now": FROZEN.timestamp(),
    }


def official(
    request: object, token: str | None = None, version: str = "v4"
) -> oss_v2.PresignResult:
    provider = oss_v2.credentials.StaticCredentialsProvider(AK, SK, token)
    config = oss_v2.config.load_default()
    config.credentials_provider = provider
    config.region = "cn-hangzhou"
    config.endpoint = ENDPOINT
    config.signature_version = version
    return oss_v2.Client(config).presign(request, expires=datetime.timedelta(seconds=900))


MD5 = "1B2M2Y8AsgTpgAmY7PhCfg=="
PROCESS = "image/resize,m_lfit,w_256,h_256"
PART = {"partNumber": "7", "uploadId": UPLOAD_ID}
LAST_PART = {"partNumber": "10000", "uploadId": UPLOAD_ID}
DISPOSITION = {"response-content-disposition": 'attachment; filename="r.pdf"'}
CASES = [  # UploadPart with and without a signed Content-MD5, GETs; odd characters in keys
    pytest.param("PUT", "uploads/alice/01HZ.bin", PART, {}, id="part"),
    pytest.param("PUT", "uploads/alice/a b+é.bin", LAST_PART, {"Content-MD5": MD5}, id="md5"),
    pytest.param("GET", "uploads/alice/a b+é.png", {"x-oss-process": PROCESS}, {}, id="process"),
    pytest.param("GET", "uploads/alice/r.pdf", DISPOSITION, {}, id="disposition"),
]


def sdk_request(method: str, key: str, query: dict[str, str], headers: dict[str, str]) -> object:
    """The same request, spelled as alibabacloud-oss-v2 takes it."""
    if method == "PUT":
        return oss_v2.UploadPartRequest(
            bucket=BUCKET,
            key=key,
            part_number=int(query["partNumber"]),
            upload_id=query["uploadId"],
            content_md5=headers.get("Content-MD5"),
        )
    return oss_v2.GetObjectRequest(
        bucket=BUCKET,
        key=key,
        process=query.get("x-oss-process"),
        response_content_disposition=query.get("response-content-disposition"),
    )


# alibabacloud-oss-v2's V1 signer leaves x-oss-process out, oss2 signs it as a sub-resource (as
# ours does: test_v1_urls_match_oss2); every other case in both versions.
SDK_CASES = [
    pytest.param(version, *case.values, id=f"{version}-{case.id}")
    for version in ("v4", "v1")
    for case in CASES
    if version == "v4" or "x-oss-process" not in case.values[2]
]


@pytest.mark.parametrize("token", [None, "sts-token/with+odd=chars"])
@pytest.mark.parametrize(("version", "method", "key", "query", "headers"), SDK_CASES)
def test_urls_match_alibabacloud_oss_v2(  # noqa: PLR0917 - parametrized cases
    monkeypatch: pytest.MonkeyPatch,
    version: str,
    method: str,
    key: str,
    query: dict[str, str],
    headers: dict[str, str],
    token: str | None,
) -> None:
    """The same URL byte for byte, the same headers the client must send, the same expiry."""
    monkeypatch.setattr(oss_v2.signer.v4.datetime, "datetime", _FrozenDatetime)
    monkeypatch.setattr(oss_v2.signer.v1.datetime, "datetime", _FrozenDatetime)
    expected = official(sdk_request(method, key, query, headers), token, version)
    signed = ours(
        version, method, **at_example_bucket(token), key=key, query=query, headers=headers
    )
    assert (signed.method, signed.url) == (expected.method, expected.url)
    assert signed.headers == dict(expected.signed_headers or {})
    assert signed.expires_at == int(expected.expiration.timestamp())


@pytest.mark.parametrize("token", [None, "sts-token"])
def test_v1_urls_match_oss2(monkeypatch: pytest.MonkeyPatch, token: str | None) -> None:
    monkeypatch.setattr(oss2.auth.time, "time", FROZEN.timestamp)
    auth = oss2.StsAuth(AK, SK, token) if token else oss2.Auth(AK, SK)
    bucket = oss2.Bucket(auth, f"https://{ENDPOINT}", BUCKET)
    key, query = "uploads/alice/a b+é.png", {"x-oss-process": PROCESS}
    url = urlsplit(ours("v1", "GET", **at_example_bucket(token), key=key, query=query).url)
    expected = urlsplit(bucket.sign_url("GET", key, 900, params=query))
    assert sorted(parse_qsl(url.query)) == sorted(parse_qsl(expected.query))
    # oss2 also escapes '/' in the path (%2F); OSS decodes both spellings to the same key.
    assert unquote(url.path) == unquote(expected.path)
