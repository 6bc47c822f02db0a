"""PutObject and multipart uploads in the emulator, driven by the official SDKs as OSS would be.

oss2 (header signatures, V1 and V4, STS) puts, initiates, uploads, lists, completes and aborts;
oss2's and alibabacloud-oss-v2's signers make PutObject URLs, the project's presigner UploadPart
URLs (byte for byte the official SDKs': tests/test_presign.py), which the emulator must accept —
and refuse once used for another type, callback, part or upload. Negative cases first.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

import alibabacloud_oss_v2 as oss_v2
import oss2
import pytest
import requests
from alibabacloud_oss_v2.signer.v4 import SignerV4
from alibabacloud_oss_v2.types import HttpRequest, SigningContext
from hypothesis import given
from hypothesis import strategies as st
from oss2.models import PartInfo

from local.oss_emulator.complete import multipart_etag
from local.oss_emulator.crc64 import combine, crc64
from local.oss_emulator.ram import RamPolicy
from local.oss_emulator.uploads import Part
from shared.multipart_limits import MIN_PART_BYTES
from tests.oss_sdk import BUCKET, KEY_ID, REGION, SECRET, auth, bucket
from tests.support.emulator import (
    CALLBACK_URL,
    LIMITED,
    STS,
    Emu,
    b64json,
    json_reply,
    presigned,
    refusal,
)

KEY = "uploads/alice/big video.bin"
BAD = (400, "InvalidArgument")
DENIED = (403, "AccessDenied")
NO_UPLOAD = (404, "NoSuchUpload")
COMPLETE_ALL = {"x-oss-complete-all": "yes"}


def data(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)  # noqa: S311 - test bytes, not secrets


def md5_of(chunk: bytes) -> str:
    return base64.b64encode(hashlib.md5(chunk).digest()).decode()  # noqa: S324 - OSS's Content-MD5


def upload_parts(sdk: oss2.Bucket, upload_id: str, chunks: list[bytes]) -> list[PartInfo]:
    parts = []
    for number, chunk in enumerate(chunks, 1):
        result = sdk.upload_part(KEY, upload_id, number, chunk)
        parts.append(PartInfo(number, result.etag, size=len(chunk), part_crc=result.crc))
    return parts


def callback(body: str) -> str:
    return b64json(
        {"callbackUrl": CALLBACK_URL, "callbackBody": body, "callbackBodyType": "application/json"}
    )


CHUNKS = [data(MIN_PART_BYTES, 1), data(MIN_PART_BYTES + 7, 2), data(999, 3)]
CALLBACK = callback('{"size":${size},"md5":${contentMd5},"op":${operation},"u":${x:u}}')
CALLBACK_VAR = b64json({"x:u": "alice"})


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


@pytest.fixture
def sdk(served: Emu) -> oss2.Bucket:
    return served.sdk()


def part_url(url: str, upload_id: str, number: int, **options: Any) -> Any:
    query = {"partNumber": str(number), "uploadId": upload_id}
    return presigned("PUT", url, KEY, now=time.time(), query=query, **options)


# --- PutObject refusals -----------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_a_presigned_put_binds_its_type_and_its_callback_then_calls_back(
    served: Emu, version: str
) -> None:
    params = {"callback": CALLBACK, "callback-var": CALLBACK_VAR}
    url = signed_put(served.url, version, params, **{"Content-Type": "image/png"})
    as_text = requests.put(url, data=b"x", headers={"Content-Type": "text/html"}, timeout=5)
    assert (as_text.status_code, "SignatureDoesNotMatch" in as_text.text) == (403, True)
    other_callback = url.replace("callback-var=", "callback-var=e30")  # {} prepended
    assert "SignatureDoesNotMatch" in requests.put(other_callback, data=b"x", timeout=5).text
    headers = {"Content-Type": "image/png", "x-oss-callback": CALLBACK}
    both = requests.put(url, data=b"x", headers=headers, timeout=5)
    assert "SignatureDoesNotMatch" in both.text  # an unsigned x-oss-* header (V1 and V4 sign them)
    assert served.recorder.sent == []
    answer = requests.put(url, data=b"png bytes", headers={"Content-Type": "image/png"}, timeout=5)
    assert (answer.status_code, answer.json()) == (200, {"Status": "OK"})
    [(sent, _)] = served.recorder.sent
    expected = {"size": 9, "md5": md5_of(b"png bytes"), "op": "PutObject", "u": "alice"}
    assert json.loads(sent.body) == expected
    head = served.sdk().head_object(KEY)
    assert (head.content_type, head.server_crc) == ("image/png", crc64(b"png bytes"))


def test_both_callback_transports_at_once_are_invalid_argument(
    served: Emu, sdk: oss2.Bucket
) -> None:
    call = sdk._Bucket__do_object  # the SDK's signed request with both transports
    headers, params = {"x-oss-callback": CALLBACK}, {"callback": CALLBACK}
    assert refusal(lambda: call("PUT", KEY, params=params, headers=headers, data=b"x")) == BAD
    long_var = b64json({"x:u": "a" * 4000})  # > 5 KB
    too_long = {"x-oss-callback": CALLBACK, "x-oss-callback-var": long_var}
    assert refusal(lambda: sdk.put_object(KEY, b"x", headers=too_long)) == BAD
    assert refusal(lambda: sdk.get_object(KEY)) == (404, "NoSuchKey")
    sdk.put_object(KEY, b"x", headers={"x-oss-callback": callback('{"size":${size}}')})
    [(sent, _)] = served.recorder.sent  # one transport, and callback-var is optional
    assert json.loads(sent.body) == {"size": 1}


# --- multipart refusals -----------------------------------------------------------------------


def test_unknown_aborted_completed_and_foreign_upload_ids_are_no_such_upload(
    sdk: oss2.Bucket,
) -> None:
    assert refusal(lambda: sdk.upload_part(KEY, "0" * 32, 1, b"x")) == NO_UPLOAD
    assert refusal(lambda: sdk.list_parts(KEY, "../../etc")) == NO_UPLOAD
    aborted = sdk.init_multipart_upload(KEY).upload_id
    sdk.abort_multipart_upload(KEY, aborted)
    assert refusal(lambda: sdk.upload_part(KEY, aborted, 1, b"x")) == NO_UPLOAD
    assert refusal(lambda: sdk.abort_multipart_upload(KEY, aborted)) == NO_UPLOAD
    done = sdk.init_multipart_upload(KEY).upload_id
    sdk.complete_multipart_upload(KEY, done, upload_parts(sdk, done, [b"one part"]))
    assert refusal(lambda: sdk.list_parts(KEY, done)) == NO_UPLOAD
    other = sdk.init_multipart_upload(KEY).upload_id
    assert refusal(lambda: sdk.upload_part("uploads/bob/x", other, 1, b"x")) == NO_UPLOAD


@pytest.mark.parametrize("number", ["0", "10001", "-1", "one", "¹", "١"])
def test_part_numbers_are_1_to_10000(sdk: oss2.Bucket, number: str) -> None:
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    call = sdk._Bucket__do_object  # the SDK's own signed request, with a raw part number
    params = {"uploadId": upload_id, "partNumber": number}
    assert refusal(lambda: call("PUT", KEY, params=params, data=b"x")) == BAD


def test_complete_refuses_what_oss_refuses(sdk: oss2.Bucket) -> None:
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    parts = upload_parts(sdk, upload_id, CHUNKS)

    def complete(body: bytes, **headers: str) -> tuple[int, str]:
        call = sdk._Bucket__do_object  # the SDK's signed request, with a raw body
        params = {"uploadId": upload_id}
        return refusal(lambda: call("POST", KEY, params=params, data=body, headers=headers))

    def listed(chosen: list[PartInfo]) -> bytes:
        return bytes(oss2.xml_utils.to_complete_upload_request(chosen))

    assert complete(listed([parts[1], parts[0], parts[2]])) == (400, "InvalidPartOrder")
    assert complete(listed([parts[0], PartInfo(2, "0" * 32), parts[2]])) == (400, "InvalidPart")
    assert complete(listed([*parts, PartInfo(9, parts[0].etag)])) == (400, "InvalidPart")
    superscript = "<CompleteMultipartUpload><Part><PartNumber>¹</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>"
    for body in ("<CompleteMultipartUpload/>", "not xml", "<Other><Part/></Other>", superscript):
        assert complete(body.encode()) == (400, "MalformedXML")
    assert complete(listed(parts), **COMPLETE_ALL) == BAD
    small = sdk.init_multipart_upload(KEY).upload_id
    tiny = upload_parts(sdk, small, [b"a" * (MIN_PART_BYTES - 1), b"b"])
    too_small = (400, "EntityTooSmall")
    assert refusal(lambda: sdk.complete_multipart_upload(KEY, small, tiny)) == too_small
    # Every refusal left the upload as it was: it still completes.
    sdk.complete_multipart_upload(KEY, upload_id, parts)
    assert sdk.get_object(KEY).read() == b"".join(CHUNKS)


def test_bad_md5s_headers_and_anonymous_writes_are_refused(served: Emu, sdk: oss2.Bucket) -> None:
    """Content-MD5 is judged by the body spooler PutObject and UploadPart share; wrong signatures
    on every REST operation: tests/test_emulator_reads.py."""
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    anonymous = oss2.Bucket(oss2.AnonymousAuth(), served.url, BUCKET)
    assert refusal(lambda: anonymous.upload_part(KEY, upload_id, 1, b"x")) == DENIED
    assert refusal(lambda: anonymous.put_object(KEY, b"x")) == DENIED
    for header in (md5_of(b"other"), "not-base64!", base64.b64encode(b"short").decode()):
        headers = {"Content-MD5": header}
        answer = refusal(lambda h=headers: sdk.upload_part(KEY, upload_id, 1, b"part", headers=h))
        assert answer == (400, "InvalidDigest")
    assert sdk.list_parts(KEY, upload_id).parts == []
    sdk.upload_part(KEY, upload_id, 1, b"part", headers={"Content-MD5": md5_of(b"part")})
    assert [p.size for p in sdk.list_parts(KEY, upload_id).parts] == [4]
    md5 = {"Content-MD5": md5_of(b"other")}
    assert refusal(lambda: sdk.put_object(KEY, b"body", headers=md5)) == (400, "InvalidDigest")
    cold = {"x-oss-storage-class": "Cold"}
    assert refusal(lambda: sdk.put_object(KEY, b"body", headers=cold)) == BAD
    assert refusal(lambda: sdk.get_object(KEY)) == (404, "NoSuchKey")


@pytest.mark.parametrize(
    ("versioning", "refused"), [("", True), ("Enabled", False), ("Suspended", False)]
)
def test_forbid_overwrite_holds_unless_the_bucket_is_versioned(
    make: Callable[..., Emu], versioning: str, refused: bool
) -> None:
    """The rule (local/oss_emulator/multipart.py) PostObject, PutObject and multipart share; and
    GetBucketVersioning reports the setting."""
    forbid = {"x-oss-forbid-overwrite": "true"}
    sdk = make(versioning=versioning).sdk()
    assert sdk.get_bucket_versioning().status == (versioning or None)
    sdk.put_object(KEY, b"already here")
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    parts = upload_parts(sdk, upload_id, [b"new"])
    if refused:
        exists = (409, "FileAlreadyExists")
        assert refusal(lambda: sdk.put_object(KEY, b"x", headers=forbid)) == exists
        assert refusal(lambda: sdk.init_multipart_upload(KEY, headers=forbid)) == exists
        complete = sdk.complete_multipart_upload
        assert refusal(lambda: complete(KEY, upload_id, parts, headers=forbid)) == exists
        assert sdk.get_object(KEY).read() == b"already here"
        sdk.complete_multipart_upload(KEY, upload_id, parts)  # still there; no header
    else:
        sdk.put_object(KEY, b"again", headers=forbid)
        sdk.init_multipart_upload(KEY, headers=forbid)
        sdk.complete_multipart_upload(KEY, upload_id, parts, headers=forbid)
    assert sdk.get_object(KEY).read() == b"new"


def test_ram_policies_allow_each_operation_only_its_action(make: Callable[..., Emu]) -> None:
    uploads = {"Action": ["oss:PutObject"], "Resource": ["acs:oss:*:*:dev-bucket/uploads/*"]}
    writer = RamPolicy.parse({"Version": "1", "Statement": [{"Effect": "Allow", **uploads}]})
    sdk = make(policies={LIMITED.key_id: writer}).sdk(key_id=LIMITED.key_id, secret=LIMITED.secret)
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    parts = upload_parts(sdk, upload_id, [b"only part"])
    assert refusal(lambda: sdk.list_parts(KEY, upload_id)) == DENIED
    assert refusal(lambda: sdk.abort_multipart_upload(KEY, upload_id)) == DENIED
    assert refusal(sdk.list_multipart_uploads) == DENIED
    assert refusal(sdk.get_bucket_versioning) == DENIED
    assert refusal(lambda: sdk.init_multipart_upload("backups/x")) == DENIED
    acl = {"x-oss-object-acl": "public-read"}  # needs oss:PutObjectAcl too
    assert refusal(lambda: sdk.init_multipart_upload(KEY, headers=acl)) == DENIED
    sdk.complete_multipart_upload(KEY, upload_id, parts)
    assert refusal(lambda: sdk.put_object("backups/x", b"x")) == DENIED


def test_presigned_part_urls_bind_their_part_upload_and_md5(served: Emu, sdk: oss2.Bucket) -> None:
    """Expiry and STS tokens of presigned URLs: tests/test_emulator_reads.py."""
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    other_upload = sdk.init_multipart_upload(KEY).upload_id
    for version in ("v4", "v1"):
        signed = part_url(served.url, upload_id, 1, version=version)
        for_two = signed.url.replace("partNumber=1", "partNumber=2")
        assert requests.put(for_two, data=b"x", timeout=5).status_code == 403
        for_other = signed.url.replace(upload_id, other_upload)
        assert requests.put(for_other, data=b"x", timeout=5).status_code == 403
        assert requests.put(signed.url, data=b"x", timeout=5).status_code == 200
    chunk = CHUNKS[0]
    bound = part_url(served.url, upload_id, 2, headers={"Content-MD5": md5_of(chunk)})
    unbound = requests.put(bound.url, data=chunk, timeout=5)  # the signed header left out
    assert "<Code>SignatureDoesNotMatch</Code>" in unbound.text
    answer = requests.put(bound.url, data=chunk, headers=bound.headers, timeout=5)
    assert answer.headers["ETag"] == f'"{hashlib.md5(chunk).hexdigest().upper()}"'  # noqa: S324
    assert answer.headers["x-oss-hash-crc64ecma"] == str(crc64(chunk))


# --- what works --------------------------------------------------------------------------------


def test_oss2_puts_with_headers(served: Emu) -> None:
    sdk = served.sdk("v1")
    headers = {"Content-Type": "text/plain", "x-oss-meta-a": "b", "x-oss-object-acl": "private"}
    result = sdk.put_object(KEY, b"hello", headers=headers)  # oss2 checks the CRC-64
    assert result.etag == hashlib.md5(b"hello").hexdigest().upper()  # noqa: S324
    head = sdk.head_object(KEY)
    assert (head.content_type, head.headers["x-oss-meta-a"]) == ("text/plain", "b")
    assert requests.get(f"{served.url}/{KEY}", timeout=5).status_code == 403  # private object


@pytest.mark.parametrize(("version", "sts"), [("v1", False), ("v4", False), ("v4", True)])
def test_oss2_uploads_in_parts(served: Emu, version: str, sts: bool) -> None:
    credentials = {"key_id": STS.key_id, "secret": STS.secret, "token": STS.security_token}
    sdk = served.sdk(version, **(credentials if sts else {}))
    kept = {"Content-Type": "video/mp4", "x-oss-meta-origin": "test", "x-oss-storage-class": "IA"}
    kept["Cache-Control"] = "no-cache"
    upload_id = sdk.init_multipart_upload(KEY, headers=kept).upload_id
    assert len(upload_id) == 32
    parts = upload_parts(sdk, upload_id, CHUNKS)  # oss2 checks each part's CRC-64
    listed = sdk.list_parts(KEY, upload_id).parts
    numbered = [(p.part_number, p.etag, p.size) for p in parts]
    assert [(p.part_number, p.etag, p.size) for p in listed] == numbered
    result = sdk.complete_multipart_upload(KEY, upload_id, parts)  # and the object's CRC-64
    whole = b"".join(CHUNKS)
    expected = multipart_etag([Part(p.part_number, p.etag, p.size, 0, 0) for p in parts])
    assert (result.etag, expected[-2:]) == (expected, "-3")
    head = sdk.head_object(KEY)
    assert (head.etag, head.content_length, head.server_crc) == (expected, len(whole), crc64(whole))
    assert {name: head.headers[name] for name in kept} == kept
    assert (head.object_type, "Content-MD5" in head.headers) == ("Multipart", False)
    [listed_object] = sdk.list_objects_v2(prefix=KEY).object_list
    assert (listed_object.etag, listed_object.type) == (expected, "Multipart")
    assert sdk.get_object(KEY).read() == whole


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=5))
def test_a_combined_crc64_is_the_crc64_of_the_concatenation(chunks: list[bytes]) -> None:
    combined = 0
    for chunk in chunks:
        combined = combine(combined, crc64(chunk), len(chunk))
    assert combined == crc64(b"".join(chunks))


def test_the_multipart_etag_is_md5_of_part_md5s_then_the_count() -> None:
    digests = [hashlib.md5(b).digest() for b in (b"a", b"b")]  # noqa: S324 - OSS's ETags
    parts = [Part(n, d.hex().upper(), 1, 0, 0) for n, d in enumerate(digests, 1)]
    whole = hashlib.md5(b"".join(digests)).hexdigest().upper()  # noqa: S324
    assert multipart_etag(parts) == whole + "-2"


def test_a_part_sent_again_replaces_the_first_and_complete_all_takes_every_part(
    sdk: oss2.Bucket,
) -> None:
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    sdk.upload_part(KEY, upload_id, 1, b"first try")
    parts = upload_parts(sdk, upload_id, CHUNKS)
    assert [p.etag for p in sdk.list_parts(KEY, upload_id).parts] == [p.etag for p in parts]
    result = sdk.complete_multipart_upload(KEY, upload_id, None, headers=COMPLETE_ALL)
    assert result.crc == crc64(b"".join(CHUNKS))
    assert sdk.get_object(KEY).read() == b"".join(CHUNKS)


def test_a_completed_object_is_read_across_its_parts_and_replaced_cleanly(
    served: Emu,
    sdk: oss2.Bucket,
) -> None:
    whole = b"".join(CHUNKS)
    objects = served.app.store.objects

    def files() -> int:
        return len([p for p in objects.iterdir() if not p.name.endswith(".json")])

    upload_id = sdk.init_multipart_upload(KEY).upload_id
    sdk.complete_multipart_upload(KEY, upload_id, upload_parts(sdk, upload_id, CHUNKS))
    assert files() == 3  # the parts
    for first, last in ((0, 9), (MIN_PART_BYTES - 5, MIN_PART_BYTES + 5), (len(whole) - 3, None)):
        span = sdk.get_object(KEY, byte_range=(first, last)).read()
        assert span == whole[first : None if last is None else last + 1]
    sdk.put_object(KEY, b"one file now")
    assert (sdk.get_object(KEY).read(), files()) == (b"one file now", 1)
    again = sdk.init_multipart_upload(KEY).upload_id
    sdk.complete_multipart_upload(KEY, again, upload_parts(sdk, again, CHUNKS[2:]))
    assert (sdk.get_object(KEY).read(), files()) == (CHUNKS[2], 1)
    sdk.delete_object(KEY)
    assert list(objects.iterdir()) == []


def test_list_parts_pages(sdk: oss2.Bucket) -> None:
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    for number in (1, 2, 4, 7, 9):
        sdk.upload_part(KEY, upload_id, number, b"p%d" % number)
    first = sdk.list_parts(KEY, upload_id, max_parts=2)
    numbers = [p.part_number for p in first.parts]
    assert (numbers, first.is_truncated, first.next_marker) == ([1, 2], True, "2")
    rest = sdk.list_parts(KEY, upload_id, marker="2", max_parts=2)
    assert [p.part_number for p in rest.parts] == [4, 7]
    every = oss2.PartIterator(sdk, KEY, upload_id, max_parts=2)
    assert [p.part_number for p in every] == [1, 2, 4, 7, 9]
    call = sdk._Bucket__do_object
    for bad in ({"max-parts": "0"}, {"max-parts": "1001"}, {"part-number-marker": "x"}):
        params = {"uploadId": upload_id, **bad}
        assert refusal(lambda p=params: call("GET", KEY, params=p)) == BAD


def test_list_multipart_uploads_shows_what_is_in_progress(sdk: oss2.Bucket) -> None:
    ids = {sdk.init_multipart_upload(key).upload_id: key for key in ("uploads/a/1", "uploads/b/2")}
    done = sdk.init_multipart_upload("uploads/c/3").upload_id
    sdk.upload_part("uploads/c/3", done, 1, b"x")
    sdk.complete_multipart_upload("uploads/c/3", done, None, headers=COMPLETE_ALL)
    listed = {u.upload_id: u.key for u in oss2.MultipartUploadIterator(sdk, max_uploads=1)}
    assert listed == ids
    page = sdk.list_multipart_uploads(prefix="uploads/", delimiter="/")
    assert page.prefix_list == ["uploads/a/", "uploads/b/"]
    for upload_id, key in ids.items():
        sdk.abort_multipart_upload(key, upload_id)
    assert sdk.list_multipart_uploads().upload_list == []


# --- the upload callback on CompleteMultipartUpload ----------------------------------------------


def test_complete_calls_back_with_the_whole_object(served: Emu, sdk: oss2.Bucket) -> None:
    upload_id = sdk.init_multipart_upload(KEY, headers={"Content-Type": "video/mp4"}).upload_id
    parts = upload_parts(sdk, upload_id, CHUNKS)
    served.recorder.reply = lambda _: json_reply({"Status": "OK", "id": 7})
    body = (
        '{"size":${size},"etag":${etag},"md5":${contentMd5},"crc64":"${crc64}",'
        '"operation":${operation},"type":${mimeType},"uid":${x:uid}}'
    )
    headers = {
        "x-oss-callback": callback(body),
        "x-oss-callback-var": b64json({"x:uid": "alice"}),
        "x-oss-forbid-overwrite": "true",
    }
    xml = oss2.xml_utils.to_complete_upload_request(parts)
    call = sdk._Bucket__do_object
    response = call("POST", KEY, params={"uploadId": upload_id}, data=xml, headers=headers)
    assert json.loads(response.read()) == {"Status": "OK", "id": 7}  # the callback's answer
    whole = b"".join(CHUNKS)
    [(sent, _)] = served.recorder.sent
    assert json.loads(sent.body) == {
        "size": len(whole),
        "etag": sdk.head_object(KEY).etag,
        "md5": "",
        "crc64": str(crc64(whole)),
        "operation": "CompleteMultipartUpload",
        "type": "video/mp4",
        "uid": "alice",
    }
    assert sdk.get_object(KEY).read() == whole
