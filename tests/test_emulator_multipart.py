"""Multipart uploads in the emulator, driven by the official SDKs as OSS would be.

oss2 (header signatures, V1 and V4, STS) initiates, uploads, lists, completes and aborts, and
runs `oss2.resumable_upload`; alibabacloud-oss-v2 and the project's presigner make UploadPart
URLs the emulator must accept — and refuse once used for another part or upload.
Negative cases first: each of OSS's multipart error codes, then what works.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import alibabacloud_oss_v2 as oss_v2
import oss2
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from oss2.models import PartInfo

from local.oss_emulator.callback import CallbackRequest
from local.oss_emulator.complete import multipart_etag
from local.oss_emulator.crc64 import combine, crc64
from local.oss_emulator.ram import RamPolicy
from local.oss_emulator.uploads import Part
from shared.credentials import Credentials
from shared.multipart_limits import MIN_PART_BYTES
from shared.settings import Secret
from shared.sign import presign
from tests.oss_sdk import BUCKET, KEY_ID, REGION, SECRET
from tests.support.emulator import (  # noqa: F401 - fixtures
    CALLBACK_URL,
    LIMITED,
    STS,
    Emu,
    json_reply,
    make_fixture,
    refusal,
    served_fixture,
)

KEY = "uploads/alice/big video.bin"


def data(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)  # noqa: S311 - test bytes, not secrets


def upload_parts(sdk: oss2.Bucket, upload_id: str, chunks: list[bytes]) -> list[PartInfo]:
    parts = []
    for number, chunk in enumerate(chunks, 1):
        result = sdk.upload_part(KEY, upload_id, number, chunk)
        parts.append(PartInfo(number, result.etag, size=len(chunk), part_crc=result.crc))
    return parts


CHUNKS = [data(MIN_PART_BYTES, 1), data(MIN_PART_BYTES + 7, 2), data(999, 3)]


# --- refusals -------------------------------------------------------------------------------


def test_unknown_aborted_completed_and_foreign_upload_ids_are_no_such_upload(
    served: Emu,
) -> None:
    sdk = served.sdk()
    assert refusal(lambda: sdk.upload_part(KEY, "0" * 32, 1, b"x")) == (404, "NoSuchUpload")
    assert refusal(lambda: sdk.list_parts(KEY, "../../etc")) == (404, "NoSuchUpload")
    aborted = sdk.init_multipart_upload(KEY).upload_id
    sdk.abort_multipart_upload(KEY, aborted)
    assert refusal(lambda: sdk.upload_part(KEY, aborted, 1, b"x")) == (404, "NoSuchUpload")
    assert refusal(lambda: sdk.abort_multipart_upload(KEY, aborted)) == (404, "NoSuchUpload")
    done = sdk.init_multipart_upload(KEY).upload_id
    sdk.complete_multipart_upload(KEY, done, upload_parts(sdk, done, [b"one part"]))
    assert refusal(lambda: sdk.list_parts(KEY, done)) == (404, "NoSuchUpload")
    other = sdk.init_multipart_upload(KEY).upload_id
    assert refusal(lambda: sdk.upload_part("uploads/bob/x", other, 1, b"x")) == (
        404,
        "NoSuchUpload",
    )


@pytest.mark.parametrize("number", ["0", "10001", "-1", "one", "¹", "١"])
def test_part_numbers_are_1_to_10000(served: Emu, number: str) -> None:
    sdk = served.sdk()
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    call = sdk._Bucket__do_object  # the SDK's own signed request, with a raw part number
    params = {"uploadId": upload_id, "partNumber": number}
    assert refusal(lambda: call("PUT", KEY, params=params, data=b"x")) == (400, "InvalidArgument")


def test_complete_refuses_what_oss_refuses(served: Emu) -> None:
    sdk = served.sdk()
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    parts = upload_parts(sdk, upload_id, CHUNKS)
    unordered = [parts[1], parts[0], parts[2]]
    call = sdk._Bucket__do_object
    xml = oss2.xml_utils.to_complete_upload_request(unordered)
    assert refusal(lambda: call("POST", KEY, params={"uploadId": upload_id}, data=xml)) == (
        400,
        "InvalidPartOrder",
    )
    wrong_etag = [parts[0], PartInfo(2, "0" * 32), parts[2]]
    assert refusal(lambda: sdk.complete_multipart_upload(KEY, upload_id, wrong_etag)) == (
        400,
        "InvalidPart",
    )
    missing = [*parts, PartInfo(9, parts[0].etag)]
    assert refusal(lambda: sdk.complete_multipart_upload(KEY, upload_id, missing)) == (
        400,
        "InvalidPart",
    )
    superscript = "<CompleteMultipartUpload><Part><PartNumber>¹</PartNumber><ETag>x</ETag></Part>"
    for body in (
        b"<CompleteMultipartUpload/>",
        b"not xml",
        b"<Other><Part/></Other>",
        (superscript + "</CompleteMultipartUpload>").encode(),
    ):
        assert refusal(lambda b=body: call("POST", KEY, params={"uploadId": upload_id}, data=b))[
            1
        ] == ("MalformedXML")
    small = sdk.init_multipart_upload(KEY).upload_id
    tiny = upload_parts(sdk, small, [b"a" * (MIN_PART_BYTES - 1), b"b"])
    assert refusal(lambda: sdk.complete_multipart_upload(KEY, small, tiny)) == (
        400,
        "EntityTooSmall",
    )
    everything = {"x-oss-complete-all": "yes"}
    assert refusal(
        lambda: call("POST", KEY, params={"uploadId": upload_id}, data=xml, headers=everything)
    ) == (400, "InvalidArgument")
    # Every refusal left the upload as it was: it still completes.
    sdk.complete_multipart_upload(KEY, upload_id, parts)
    assert sdk.get_object(KEY).read() == b"".join(CHUNKS)


def test_a_tampered_or_malformed_content_md5_is_invalid_digest(served: Emu) -> None:
    sdk = served.sdk()
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    other_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()  # noqa: S324
    for header in (other_md5, "not-base64!", base64.b64encode(b"short").decode()):
        assert refusal(
            lambda h=header: sdk.upload_part(KEY, upload_id, 1, b"part", headers={"Content-MD5": h})
        ) == (400, "InvalidDigest")
    assert sdk.list_parts(KEY, upload_id).parts == []
    good = base64.b64encode(hashlib.md5(b"part").digest()).decode()  # noqa: S324
    sdk.upload_part(KEY, upload_id, 1, b"part", headers={"Content-MD5": good})
    assert [p.size for p in sdk.list_parts(KEY, upload_id).parts] == [4]


@pytest.mark.parametrize(
    ("versioning", "refused"), [("", True), ("Enabled", False), ("Suspended", False)]
)
def test_forbid_overwrite_holds_unless_the_bucket_is_versioned(
    make: Callable[..., Emu], versioning: str, refused: bool
) -> None:
    """The rule (local/oss_emulator/multipart.py) PostObject and PutObject share."""
    forbid = {"x-oss-forbid-overwrite": "true"}
    sdk = make(versioning=versioning).sdk()
    sdk.put_object(KEY, b"already here")
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    parts = upload_parts(sdk, upload_id, [b"new"])
    if refused:
        assert refusal(lambda: sdk.init_multipart_upload(KEY, headers=forbid)) == (
            409,
            "FileAlreadyExists",
        )
        assert refusal(
            lambda: sdk.complete_multipart_upload(KEY, upload_id, parts, headers=forbid)
        ) == (409, "FileAlreadyExists")
        assert sdk.get_object(KEY).read() == b"already here"
        sdk.complete_multipart_upload(KEY, upload_id, parts)  # still there; no header
    else:
        sdk.init_multipart_upload(KEY, headers=forbid)
        sdk.complete_multipart_upload(KEY, upload_id, parts, headers=forbid)
    assert sdk.get_object(KEY).read() == b"new"


def test_anonymous_writes_are_refused(served: Emu) -> None:
    """Wrong signatures on every REST operation: tests/test_emulator_auth.py."""
    upload_id = served.sdk().init_multipart_upload(KEY).upload_id
    anonymous = oss2.Bucket(oss2.AnonymousAuth(), served.url, BUCKET)
    assert refusal(lambda: anonymous.upload_part(KEY, upload_id, 1, b"x")) == (403, "AccessDenied")
    assert refusal(lambda: anonymous.put_object(KEY, b"x")) == (403, "AccessDenied")
    assert served.sdk().list_parts(KEY, upload_id).parts == []


def test_ram_policies_allow_each_operation_only_its_action(make: Callable[..., Emu]) -> None:
    writer = RamPolicy.parse(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["oss:PutObject"],
                    "Resource": ["acs:oss:*:*:dev-bucket/uploads/*"],
                }
            ],
        }
    )
    sdk = make(policies={LIMITED.key_id: writer}).sdk(key_id=LIMITED.key_id, secret=LIMITED.secret)
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    parts = upload_parts(sdk, upload_id, [b"only part"])
    denied = (403, "AccessDenied")
    assert refusal(lambda: sdk.list_parts(KEY, upload_id)) == denied
    assert refusal(lambda: sdk.abort_multipart_upload(KEY, upload_id)) == denied
    assert refusal(sdk.list_multipart_uploads) == denied
    assert refusal(sdk.get_bucket_versioning) == denied
    assert refusal(lambda: sdk.init_multipart_upload("backups/x")) == denied
    acl = {"x-oss-object-acl": "public-read"}  # needs oss:PutObjectAcl too
    assert refusal(lambda: sdk.init_multipart_upload(KEY, headers=acl)) == denied
    sdk.complete_multipart_upload(KEY, upload_id, parts)
    assert refusal(lambda: sdk.put_object("backups/x", b"x")) == denied


# --- presigned part URLs ----------------------------------------------------------------------


def official_part_url(url: str, upload_id: str, number: int, **kwargs: Any) -> Any:
    config = oss_v2.config.load_default()
    config.credentials_provider = oss_v2.credentials.StaticCredentialsProvider(KEY_ID, SECRET)
    config.region = REGION
    config.endpoint = url
    config.use_cname = True
    request = oss_v2.UploadPartRequest(
        bucket=BUCKET, key=KEY, part_number=number, upload_id=upload_id, **kwargs
    )
    return oss_v2.Client(config).presign(request, expires=timedelta(seconds=300))


def ours(url: str, upload_id: str, number: int, *, version: str = "v4", **kwargs: Any) -> Any:
    common: dict[str, Any] = {
        "endpoint": url,
        "bucket": BUCKET,
        "key": KEY,
        "credentials": Credentials(KEY_ID, Secret(SECRET)),
        "now": time.time(),
        "expires": 300,
        "query": {"partNumber": str(number), "uploadId": upload_id},
        **kwargs,
    }
    if version == "v1":
        return presign.presign_v1("PUT", **common)
    return presign.presign_v4("PUT", region=REGION, **common)


def test_presigned_part_urls_bind_their_part_upload_and_md5(served: Emu) -> None:
    """Expiry and STS tokens of presigned URLs: tests/test_emulator_presign.py."""
    sdk = served.sdk()
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    other_upload = sdk.init_multipart_upload(KEY).upload_id
    for version in ("v4", "v1"):
        signed = ours(served.url, upload_id, 1, version=version)
        for_two = signed.url.replace("partNumber=1", "partNumber=2")
        assert requests.put(for_two, data=b"x", timeout=5).status_code == 403
        for_other = signed.url.replace(upload_id, other_upload)
        assert requests.put(for_other, data=b"x", timeout=5).status_code == 403
        assert requests.put(signed.url, data=b"x", timeout=5).status_code == 200
    chunk = CHUNKS[0]
    md5 = base64.b64encode(hashlib.md5(chunk).digest()).decode()  # noqa: S324
    bound = ours(served.url, upload_id, 2, headers={"Content-MD5": md5})
    corrupted = chunk[:-1] + b"!"
    answer = requests.put(bound.url, data=corrupted, headers=bound.headers, timeout=5)
    assert (answer.status_code, "<Code>InvalidDigest</Code>" in answer.text) == (400, True)
    unbound = requests.put(bound.url, data=chunk, timeout=5)  # the signed header left out
    assert "<Code>SignatureDoesNotMatch</Code>" in unbound.text
    answer = requests.put(bound.url, data=chunk, headers=bound.headers, timeout=5)
    assert answer.headers["ETag"] == f'"{hashlib.md5(chunk).hexdigest().upper()}"'  # noqa: S324
    assert answer.headers["x-oss-hash-crc64ecma"] == str(crc64(chunk))


def test_the_official_v2_presigner_uploads_parts(served: Emu) -> None:
    sdk = served.sdk()
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    for number, chunk in enumerate(CHUNKS, 1):
        signed = official_part_url(served.url, upload_id, number)
        answer = requests.put(signed.url, data=chunk, headers=signed.signed_headers, timeout=5)
        assert answer.status_code == 200, answer.text
    listed = sdk.list_parts(KEY, upload_id).parts
    assert [(p.part_number, p.size) for p in listed] == [
        (1, len(CHUNKS[0])),
        (2, len(CHUNKS[1])),
        (3, 999),
    ]
    sdk.complete_multipart_upload(KEY, upload_id, listed)
    assert sdk.get_object(KEY).read() == b"".join(CHUNKS)


# --- what works --------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "sts"), [("v1", False), ("v4", False), ("v4", True)])
def test_oss2_uploads_in_parts(served: Emu, version: str, sts: bool) -> None:
    credentials = {"key_id": STS.key_id, "secret": STS.secret, "token": STS.security_token}
    sdk = served.sdk(version, **(credentials if sts else {}))
    headers = {
        "Content-Type": "video/mp4",
        "x-oss-meta-origin": "test",
        "x-oss-storage-class": "IA",
        "Cache-Control": "no-cache",
    }
    upload_id = sdk.init_multipart_upload(KEY, headers=headers).upload_id
    assert len(upload_id) == 32
    parts = upload_parts(sdk, upload_id, CHUNKS)  # oss2 checks each part's CRC-64
    listed = sdk.list_parts(KEY, upload_id).parts
    assert [(p.part_number, p.etag, p.size) for p in listed] == [
        (p.part_number, p.etag, p.size) for p in parts
    ]
    result = sdk.complete_multipart_upload(KEY, upload_id, parts)  # and the object's CRC-64
    whole = b"".join(CHUNKS)
    expected = multipart_etag([Part(p.part_number, p.etag, p.size, 0, 0) for p in parts])
    assert result.etag == expected
    assert expected.endswith("-3")
    head = sdk.head_object(KEY)
    assert (head.etag, head.content_length, head.content_type) == (
        expected,
        len(whole),
        "video/mp4",
    )
    assert head.server_crc == crc64(whole)
    assert head.headers["x-oss-meta-origin"] == "test"
    assert head.headers["x-oss-storage-class"] == "IA"
    assert head.headers["Cache-Control"] == "no-cache"
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
    parts = [Part(1, hashlib.md5(b"a").hexdigest().upper(), 1, 0, 0)]  # noqa: S324
    parts.append(Part(2, hashlib.md5(b"b").hexdigest().upper(), 1, 0, 0))  # noqa: S324
    joined = hashlib.md5(b"a").digest() + hashlib.md5(b"b").digest()  # noqa: S324
    assert multipart_etag(parts) == hashlib.md5(joined).hexdigest().upper() + "-2"  # noqa: S324


def test_a_part_sent_again_replaces_the_first_and_complete_all_takes_every_part(
    served: Emu,
) -> None:
    sdk = served.sdk()
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    sdk.upload_part(KEY, upload_id, 1, b"first try")
    parts = upload_parts(sdk, upload_id, CHUNKS)
    assert sdk.list_parts(KEY, upload_id).parts[0].etag == parts[0].etag
    everything = {"x-oss-complete-all": "yes"}
    result = sdk.complete_multipart_upload(KEY, upload_id, None, headers=everything)
    assert result.crc == crc64(b"".join(CHUNKS))
    assert sdk.get_object(KEY).read() == b"".join(CHUNKS)


def test_a_completed_object_is_read_across_its_parts_and_replaced_cleanly(
    served: Emu,
) -> None:
    sdk = served.sdk()
    whole = b"".join(CHUNKS)
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    sdk.complete_multipart_upload(KEY, upload_id, upload_parts(sdk, upload_id, CHUNKS))
    objects = served.app.store.objects
    assert len([p for p in objects.iterdir() if not p.name.endswith(".json")]) == 3  # the parts
    for first, last in ((0, 9), (MIN_PART_BYTES - 5, MIN_PART_BYTES + 5), (len(whole) - 3, None)):
        span = sdk.get_object(KEY, byte_range=(first, last)).read()
        assert span == whole[first : None if last is None else last + 1]
    sdk.put_object(KEY, b"one file now")
    assert sdk.get_object(KEY).read() == b"one file now"
    assert len([p for p in objects.iterdir() if not p.name.endswith(".json")]) == 1
    again = sdk.init_multipart_upload(KEY).upload_id
    sdk.complete_multipart_upload(KEY, again, upload_parts(sdk, again, CHUNKS[2:]))
    assert sdk.get_object(KEY).read() == CHUNKS[2]
    assert len([p for p in objects.iterdir() if not p.name.endswith(".json")]) == 1
    sdk.delete_object(KEY)
    assert list(objects.iterdir()) == []


def test_list_parts_pages(served: Emu) -> None:
    sdk = served.sdk()
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    for number in (1, 2, 4, 7, 9):
        sdk.upload_part(KEY, upload_id, number, b"p%d" % number)
    first = sdk.list_parts(KEY, upload_id, max_parts=2)
    assert ([p.part_number for p in first.parts], first.is_truncated, first.next_marker) == (
        [1, 2],
        True,
        "2",
    )
    rest = sdk.list_parts(KEY, upload_id, marker="2", max_parts=2)
    assert [p.part_number for p in rest.parts] == [4, 7]
    every = oss2.PartIterator(sdk, KEY, upload_id, max_parts=2)
    assert [p.part_number for p in every] == [1, 2, 4, 7, 9]
    call = sdk._Bucket__do_object
    for bad in ({"max-parts": "0"}, {"max-parts": "1001"}, {"part-number-marker": "x"}):
        params = {"uploadId": upload_id, **bad}
        assert refusal(lambda p=params: call("GET", KEY, params=p)) == (400, "InvalidArgument")


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_resumable_upload(served: Emu, tmp_path: Path, version: str) -> None:
    source = tmp_path / "source.bin"
    whole = data(3 * MIN_PART_BYTES + 12345, 7)
    source.write_bytes(whole)
    sdk = served.sdk(version)
    oss2.resumable_upload(
        sdk,
        KEY,
        str(source),
        store=oss2.ResumableStore(root=str(tmp_path / "resume")),
        multipart_threshold=MIN_PART_BYTES,
        part_size=MIN_PART_BYTES,
        num_threads=2,
    )
    head = sdk.head_object(KEY)
    assert head.etag.endswith("-4")
    assert head.server_crc == crc64(whole)
    assert sdk.get_object(KEY).read() == whole


def test_list_multipart_uploads_shows_what_is_in_progress(served: Emu) -> None:
    sdk = served.sdk()
    ids = {sdk.init_multipart_upload(key).upload_id: key for key in ("uploads/a/1", "uploads/b/2")}
    done = sdk.init_multipart_upload("uploads/c/3").upload_id
    sdk.upload_part("uploads/c/3", done, 1, b"x")
    sdk.complete_multipart_upload("uploads/c/3", done, None, headers={"x-oss-complete-all": "yes"})
    listed = {u.upload_id: u.key for u in oss2.MultipartUploadIterator(sdk, max_uploads=1)}
    assert listed == ids
    page = sdk.list_multipart_uploads(prefix="uploads/", delimiter="/")
    assert page.prefix_list == ["uploads/a/", "uploads/b/"]
    for upload_id, key in ids.items():
        sdk.abort_multipart_upload(key, upload_id)
    assert sdk.list_multipart_uploads().upload_list == []


# --- the upload callback on CompleteMultipartUpload ----------------------------------------------


def callback_header(body: str) -> str:
    config = {
        "callbackUrl": CALLBACK_URL,
        "callbackBody": body,
        "callbackBodyType": "application/json",
    }
    return base64.b64encode(json.dumps(config).encode()).decode()


def test_complete_calls_back_with_the_whole_object(served: Emu) -> None:
    sdk = served.sdk()
    upload_id = sdk.init_multipart_upload(KEY, headers={"Content-Type": "video/mp4"}).upload_id
    parts = upload_parts(sdk, upload_id, CHUNKS)
    served.recorder.reply = lambda _: json_reply({"Status": "OK", "id": 7})
    body = (
        '{"size":${size},"etag":${etag},"md5":${contentMd5},"crc64":"${crc64}",'
        '"operation":${operation},"type":${mimeType},"uid":${x:uid}}'
    )
    headers = {
        "x-oss-callback": callback_header(body),
        "x-oss-callback-var": base64.b64encode(json.dumps({"x:uid": "alice"}).encode()).decode(),
        "x-oss-forbid-overwrite": "true",
    }
    call = sdk._Bucket__do_object
    xml = oss2.xml_utils.to_complete_upload_request(parts)
    response = call("POST", KEY, params={"uploadId": upload_id}, data=xml, headers=headers)
    assert json.loads(response.read()) == {"Status": "OK", "id": 7}  # the callback's answer
    whole = b"".join(CHUNKS)
    [(sent, _)] = served.recorder.sent
    assert isinstance(sent, CallbackRequest)
    assert json.loads(sent.body) == {
        "size": len(whole),
        "etag": sdk.head_object(KEY).etag,
        "md5": "",
        "crc64": str(crc64(whole)),
        "operation": "CompleteMultipartUpload",
        "type": "video/mp4",
        "uid": "alice",
    }
    stored = sdk.get_object(KEY).read()
    assert crc64(stored) == crc64(whole)


def test_a_failed_callback_keeps_the_object_and_answers_203(served: Emu) -> None:
    sdk = served.sdk()
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    parts = upload_parts(sdk, upload_id, [b"only"])
    served.recorder.reply = lambda _: json_reply({"no": 1}, status=500)
    headers = {"x-oss-callback": callback_header('{"size":${size}}')}
    result = sdk.complete_multipart_upload(KEY, upload_id, parts, headers=headers)
    assert result.status == 203  # a 2xx for the SDK; the body is OSS's error XML
    assert "<Code>CallbackFailed</Code>" in result.resp.read().decode()
    assert sdk.get_object(KEY).read() == b"only"
    bad = {"x-oss-callback": "not base64 json"}
    other = sdk.init_multipart_upload(KEY).upload_id
    assert refusal(
        lambda: sdk.complete_multipart_upload(
            KEY, other, upload_parts(sdk, other, [b"x"]), headers=bad
        )
    ) == (400, "InvalidArgument")


def test_requests_are_counted_per_operation(served: Emu) -> None:
    sdk = served.sdk()
    upload_id = sdk.init_multipart_upload(KEY).upload_id
    parts = upload_parts(sdk, upload_id, [b"a"])
    sdk.list_parts(KEY, upload_id)
    sdk.complete_multipart_upload(KEY, upload_id, parts)
    sdk.abort_multipart_upload(KEY, sdk.init_multipart_upload(KEY).upload_id)
    sdk.list_multipart_uploads()
    sdk.put_object(KEY, b"x")
    sdk.get_bucket_versioning()
    counts = requests.get(f"{served.url}/.well-known/oss-emulator/stats", timeout=5).json()
    expected = {
        "InitiateMultipartUpload": 2,
        "UploadPart": 1,
        "ListParts": 1,
        "CompleteMultipartUpload": 1,
        "AbortMultipartUpload": 1,
        "ListMultipartUploads": 1,
        "PutObject": 1,
        "GetBucketVersioning": 1,
    }
    assert {name: counts.get(name) for name in expected} == expected
