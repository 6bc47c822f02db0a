"""PutObject and GetBucketVersioning in the emulator, with the official SDKs as clients.

A single PUT is what Uppy sends for small files: a presigned URL (V4 or V1) whose signature
covers the Content-Type and, in the query, the upload callback. Negative cases first.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

import alibabacloud_oss_v2 as oss_v2
import pytest
import requests
from alibabacloud_oss_v2.signer.v4 import SignerV4
from alibabacloud_oss_v2.types import HttpRequest, SigningContext

from local.oss_emulator.crc64 import crc64
from tests.oss_sdk import BUCKET, KEY_ID, REGION, SECRET, auth, bucket
from tests.support.emulator import (  # noqa: F401 - fixtures
    CALLBACK_URL,
    Emu,
    json_reply,
    make_fixture,
    refusal,
    served_fixture,
)

KEY = "uploads/alice/big video.bin"

CALLBACK = base64.b64encode(
    json.dumps(
        {
            "callbackUrl": CALLBACK_URL,
            "callbackBody": '{"size":${size},"md5":${contentMd5},"op":${operation},"u":${x:u}}',
            "callbackBodyType": "application/json",
        }
    ).encode()
).decode()
CALLBACK_VAR = base64.b64encode(json.dumps({"x:u": "alice"}).encode()).decode()


def signed_put(url: str, version: str, params: dict[str, str], **headers: str) -> str:
    """A presigned PutObject URL carrying `params` in its signed query: oss2's V1 signer, or
    alibabacloud-oss-v2's V4 query signer (its presign() moves a callback into headers)."""
    if version == "v1":
        signed: str = bucket(url, auth("v1")).sign_url(
            "PUT", KEY, 300, params=params, headers=headers or None
        )
        return signed
    request = HttpRequest(
        "PUT", f"{url}/{BUCKET}/{quote(KEY)}?{urlencode(params, quote_via=quote)}"
    )
    request.headers.update(headers)
    context = SigningContext(
        product="oss",
        region=REGION,
        bucket=BUCKET,
        key=KEY,
        request=request,
        credentials=oss_v2.credentials.Credentials(KEY_ID, SECRET),
    )
    context.auth_method_query = True
    context.expiration_time = datetime.now(timezone.utc) + timedelta(seconds=300)
    SignerV4().sign(context)
    return str(request.url)


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-MD5": base64.b64encode(hashlib.md5(b"other").digest()).decode()},  # noqa: S324
        {"Content-MD5": "not-base64!"},
        {"x-oss-storage-class": "Cold"},
    ],
)
def test_a_tampered_body_and_bad_headers_are_refused(served: Emu, headers: dict[str, str]) -> None:
    """x-oss-forbid-overwrite: tests/test_emulator_multipart.py (the rule PutObject shares)."""
    sdk = served.sdk()
    code = "InvalidArgument" if "x-oss-storage-class" in headers else "InvalidDigest"
    assert refusal(lambda: sdk.put_object(KEY, b"body", headers=headers)) == (400, code)
    assert refusal(lambda: sdk.get_object(KEY)) == (404, "NoSuchKey")


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_a_presigned_put_binds_its_type_and_its_callback(served: Emu, version: str) -> None:
    params = {"callback": CALLBACK, "callback-var": CALLBACK_VAR}
    url = signed_put(served.url, version, params, **{"Content-Type": "image/png"})
    as_text = requests.put(url, data=b"x", headers={"Content-Type": "text/html"}, timeout=5)
    assert (as_text.status_code, "SignatureDoesNotMatch" in as_text.text) == (403, True)
    other_callback = url.replace("callback-var=", "callback-var=e30")  # {} prepended
    assert "SignatureDoesNotMatch" in requests.put(other_callback, data=b"x", timeout=5).text
    both = requests.put(
        url, data=b"x", headers={"Content-Type": "image/png", "x-oss-callback": CALLBACK}, timeout=5
    )
    assert "SignatureDoesNotMatch" in both.text  # an unsigned x-oss-* header (V1 and V4 sign them)
    assert served.recorder.sent == []


def test_both_callback_transports_at_once_are_invalid_argument(served: Emu) -> None:
    sdk = served.sdk()
    call = sdk._Bucket__do_object  # the SDK's signed request with both transports
    headers = {"x-oss-callback": CALLBACK}
    params = {"callback": CALLBACK}
    assert refusal(lambda: call("PUT", KEY, params=params, headers=headers, data=b"x")) == (
        400,
        "InvalidArgument",
    )
    long_var = base64.b64encode(json.dumps({"x:u": "a" * 4000}).encode()).decode()  # > 5 KB
    too_long = {"x-oss-callback": CALLBACK, "x-oss-callback-var": long_var}
    assert refusal(lambda: sdk.put_object(KEY, b"x", headers=too_long)) == (400, "InvalidArgument")
    assert refusal(lambda: sdk.get_object(KEY)) == (404, "NoSuchKey")


# --- what works ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_a_presigned_put_stores_the_signed_type_and_calls_back(served: Emu, version: str) -> None:
    served.recorder.reply = lambda _: json_reply({"Status": "OK"})
    params = {"callback": CALLBACK, "callback-var": CALLBACK_VAR}
    url = signed_put(served.url, version, params, **{"Content-Type": "image/png"})
    answer = requests.put(url, data=b"png bytes", headers={"Content-Type": "image/png"}, timeout=5)
    assert (answer.status_code, answer.json()) == (200, {"Status": "OK"})
    [(sent, _)] = served.recorder.sent
    md5 = base64.b64encode(hashlib.md5(b"png bytes").digest()).decode()  # noqa: S324
    assert json.loads(sent.body) == {"size": 9, "md5": md5, "op": "PutObject", "u": "alice"}
    head = served.sdk().head_object(KEY)
    assert (head.content_type, head.server_crc) == ("image/png", crc64(b"png bytes"))


def test_oss2_puts_with_headers(served: Emu) -> None:
    sdk = served.sdk("v1")
    headers = {"Content-Type": "text/plain", "x-oss-meta-a": "b", "x-oss-object-acl": "private"}
    result = sdk.put_object(KEY, b"hello", headers=headers)  # oss2 checks the CRC-64
    assert result.etag == hashlib.md5(b"hello").hexdigest().upper()  # noqa: S324
    head = sdk.head_object(KEY)
    assert (head.content_type, head.headers["x-oss-meta-a"]) == ("text/plain", "b")
    assert requests.get(f"{served.url}/{KEY}", timeout=5).status_code == 403  # private object


def test_the_official_v2_presigner_puts(served: Emu) -> None:
    config = oss_v2.config.load_default()
    config.credentials_provider = oss_v2.credentials.StaticCredentialsProvider(KEY_ID, SECRET)
    config.region = REGION
    config.endpoint = served.url
    config.use_cname = True
    request = oss_v2.PutObjectRequest(
        bucket=BUCKET, key=KEY, content_type="video/mp4", forbid_overwrite=True
    )
    signed = oss_v2.Client(config).presign(request, expires=timedelta(seconds=60))
    answer = requests.put(signed.url, data=b"mp4", headers=signed.signed_headers, timeout=5)
    assert answer.status_code == 200, answer.text
    again = requests.put(signed.url, data=b"mp4", headers=signed.signed_headers, timeout=5)
    assert again.status_code == 409  # forbid-overwrite was signed in
    assert served.sdk().head_object(KEY).content_type == "video/mp4"


@pytest.mark.parametrize("status", ["", "Enabled", "Suspended"])
def test_get_bucket_versioning_reports_the_setting(make: Callable[..., Emu], status: str) -> None:
    result: Any = make(versioning=status).sdk().get_bucket_versioning()
    assert result.status == (status or None)
