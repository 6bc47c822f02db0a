"""Reads from the emulator: header signatures (V1, V4, STS; oss2 as the client), ListObjects
(V1, V2, path-style), ranged and conditional reads, the stored fields (ACL, storage class,
encryption) that change what a read answers, and presigned GETs with `x-oss-process` resize and
info, signed by shared/sign/presign.py (the official SDKs' URLs byte for byte: test_presign.py).
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import oss2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from werkzeug.test import TestResponse

from local.dev_config import versioning
from local.oss_emulator.listing import ListQuery, iso8601, select
from local.oss_emulator.store import StoredObject
from shared.errors import ConfigError
from tests.oss_sdk import BUCKET, KEY_ID, REGION, auth, bucket, signed_headers
from tests.support.emulator import (
    AK,
    NOW,
    STS,
    Emu,
    assert_error,
    presigned,
    refusal,
)

KEY = "uploads/alice/é x+y.txt"
PHOTO = "uploads/alice/photo.png"
STS_LOGIN = {"key_id": STS.key_id, "secret": STS.secret, "token": STS.security_token}
KEYS = [
    "uploads/alice/a.txt",
    "uploads/alice/b/c.txt",
    "uploads/alice/b/d.txt",
    "uploads/bob/e f.txt",
    "uploads/bob/é.txt",
    "zeta.txt",
]


@pytest.fixture
def seeded(served: Emu) -> Emu:
    served.seed(KEY, b"hello", "5D41402ABC4B2A76B9719D911017C592")
    return served


# --- header signatures ------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v4"])
@pytest.mark.parametrize("sts", [False, True])
def test_the_right_credentials_list_head_and_get(seeded: Emu, version: str, sts: bool) -> None:
    sdk = seeded.sdk(version, **(STS_LOGIN if sts else {}))
    listed = sdk.list_objects_v2(prefix="uploads/", max_keys=10)
    assert [o.key for o in listed.object_list] == [KEY]
    assert [o.key for o in sdk.list_objects(prefix="uploads/").object_list] == [KEY]
    assert sdk.head_object(KEY).content_length == 5
    assert sdk.get_object(KEY).read() == b"hello"
    assert sdk.object_exists("uploads/alice/none.txt") is False


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_a_signature_covers_the_secret_the_key_and_the_signed_query(
    seeded: Emu, version: str
) -> None:
    """Unknown keys and STS tokens (one lookup for forms, headers and URLs): test_emulator.py."""
    client = seeded.client
    headers = signed_headers(auth(version), "HEAD", KEY)
    assert client.head(f"/{BUCKET}/{KEY}", headers=headers).status_code == 200
    other = client.head(f"/{BUCKET}/uploads/alice/other.txt", headers=headers)
    assert other.status_code == 403
    wrong = signed_headers(auth(version, secret="not-the-secret"), "GET", KEY)
    assert_error(client.get(f"/{BUCKET}/{KEY}", headers=wrong), 403, "SignatureDoesNotMatch")
    listing = signed_headers(auth(version), "GET", "", {"list-type": "2", "prefix": "uploads/"})
    assert client.get(f"/{BUCKET}/?list-type=2&prefix=uploads/", headers=listing).status_code == 200
    # V1 signs sub-resources only (continuation-token, not prefix); V4 signs the whole query.
    widened = client.get(f"/{BUCKET}/?list-type=2&prefix=", headers=listing)
    assert widened.status_code == (200 if version == "v1" else 403)


def test_requests_from_another_region_or_time_are_refused(seeded: Emu) -> None:
    sdk = bucket(seeded.url, auth("v4"), region="cn-shanghai")
    assert refusal(lambda: sdk.list_objects_v2(prefix="uploads/")) == (400, "InvalidArgument")
    assert refusal(lambda: sdk.head_object(KEY))[0] == 400
    seeded.clock = 2e9  # 2033, far from when oss2 signs
    for version in ("v1", "v4"):
        headers = signed_headers(auth(version), "HEAD", KEY)
        assert seeded.client.head(f"/{BUCKET}/{KEY}", headers=headers).status_code == 403
    headers = signed_headers(auth("v1"), "GET", KEY)
    assert_error(
        seeded.client.get(f"/{BUCKET}/{KEY}", headers=headers), 403, "RequestTimeTooSkewed"
    )


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
    assert_error(response, 400, "InvalidArgument")


# --- ListObjects ------------------------------------------------------------------------------


@pytest.fixture
def listed(served: Emu) -> Emu:
    for number, key in enumerate(KEYS):
        served.seed(key, key.encode(), f"{number:032X}", content_md5="bWQ1")
    return served


def signed(path: str, method: str = "GET", version: str = "v1", **who: str) -> dict[str, str]:
    """oss2's headers for `path` (root-style `/…` or path-style `/<bucket>/…`)."""
    parts = urlsplit(path)
    key = parts.path.removeprefix(f"/{BUCKET}").removeprefix("/")
    return signed_headers(auth(version, **who), method, key, dict(parse_qsl(parts.query, True)))


def get(emu: Emu, path: str) -> TestResponse:
    return emu.client.get(path, headers=signed(path))


def document(response: TestResponse) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/xml")
    return ET.fromstring(response.data)  # noqa: S314 - our own emulator's reply


def keys_of(root: ET.Element) -> list[str]:
    return [node.text or "" for node in root.findall("Contents/Key")]


def prefixes_of(root: ET.Element) -> list[str]:
    return [node.text or "" for node in root.findall("CommonPrefixes/Prefix")]


@pytest.mark.parametrize("path", ["/?list-type=2", f"/{BUCKET}/?list-type=2"])
def test_v2_lists_every_key_in_order_at_the_root_and_path_style(listed: Emu, path: str) -> None:
    root = document(get(listed, path))
    assert keys_of(root) == sorted(KEYS, key=str.encode)
    assert (root.findtext("IsTruncated"), root.findtext("KeyCount")) == ("false", str(len(KEYS)))
    first = root.find("Contents")
    assert first is not None
    assert first.findtext("ETag") == '"00000000000000000000000000000000"'
    assert first.findtext("LastModified") == "2001-09-09T01:46:40.000Z"
    assert first.findtext("Size") == str(len(KEYS[0]))


def test_v1_pages_with_markers_prefix_and_url_encoding(listed: Emu) -> None:
    root = document(get(listed, "/?prefix=uploads/bob/&max-keys=1&encoding-type=url"))
    assert keys_of(root) == ["uploads/bob/e%20f.txt"]
    assert root.findtext("NextMarker") == "uploads/bob/e%20f.txt"
    rest = document(get(listed, "/?prefix=uploads/bob/&marker=uploads/bob/e%20f.txt"))
    assert (keys_of(rest), rest.findtext("IsTruncated")) == (["uploads/bob/é.txt"], "false")


def test_delimiter_folds_folders_into_common_prefixes(listed: Emu) -> None:
    root = document(get(listed, "/?list-type=2&prefix=uploads/alice/&delimiter=/"))
    assert (keys_of(root), prefixes_of(root)) == (["uploads/alice/a.txt"], ["uploads/alice/b/"])
    paged = document(get(listed, "/?list-type=2&prefix=uploads/&delimiter=/&max-keys=1"))
    assert prefixes_of(paged) == ["uploads/alice/"]
    token = paged.findtext("NextContinuationToken") or ""
    after = get(listed, f"/?list-type=2&prefix=uploads/&delimiter=/&continuation-token={token}")
    assert prefixes_of(document(after)) == ["uploads/bob/"]


@pytest.mark.parametrize(
    "query",
    [
        "list-type=3",
        "max-keys=0",
        "max-keys=1001",
        "max-keys=ten",
        "max-keys=%C2%B9",  # '¹': a digit to str.isdigit, not to int()
        "encoding-type=base64",
        "list-type=2&continuation-token=%25%25",
    ],
)
def test_bad_parameters_are_invalid_argument(listed: Emu, query: str) -> None:
    assert_error(get(listed, f"/?{query}"), 400, "InvalidArgument")


def test_only_signed_reads_are_path_style(listed: Emu) -> None:
    """Signed path-style reads (oss2's): test_the_right_credentials_list_head_and_get."""
    client = listed.client
    assert_error(client.get("/?list-type=2"), 403, "AccessDenied")  # listing needs a signature
    # Browsers do not sign: their paths stay root-style (a key that starts with the bucket name).
    assert client.get(f"/{BUCKET}/uploads/alice/a.txt").status_code == 404
    assert listed.read("/uploads/alice/a.txt") == b"uploads/alice/a.txt"
    assert client.head(f"/{BUCKET}/", headers=signed(f"/{BUCKET}/", "HEAD")).status_code == 405


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(
        st.text(
            st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=12
        ),
        unique=True,
        max_size=25,
    ),
    prefix=st.text(alphabet="ab/", max_size=3),
    delimiter=st.sampled_from(["", "/", "a"]),
    page=st.integers(1, 6),
)
def test_paging_sees_every_matching_key_once(
    keys: list[str], prefix: str, delimiter: str, page: int
) -> None:
    objects = sorted(
        (StoredObject(k, 1, "E", "t", "1", "m", 0.0) for k in keys), key=lambda o: o.key.encode()
    )
    seen: list[str] = []
    after = ""
    for _ in range(len(keys) + 2):
        query = ListQuery(2, prefix, delimiter, after, page, url_encoded=False, fetch_owner=False)
        found, prefixes, truncated, last = select(objects, query)
        assert len(found) + len(prefixes) <= page
        seen += [o.key for o in found] + prefixes
        if not truncated:
            break
        after = last
    matching = {k for k in keys if k.startswith(prefix)}
    expected = set()
    for key in matching:
        rest = key[len(prefix) :]
        cut = rest.find(delimiter) if delimiter else -1
        expected.add(key if cut < 0 else prefix + rest[: cut + len(delimiter)])
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))


def test_last_modified_is_whole_seconds_as_oss_lists_it() -> None:
    assert iso8601(1_700_000_000.987) == "2023-11-14T22:13:20.000Z"


# --- ranged and conditional reads -------------------------------------------------------------


@pytest.fixture
def sdk(served: Emu) -> oss2.Bucket:
    assert served.upload().status_code == 204
    return served.sdk()


def test_ranges_answer_206_and_unsatisfiable_ones_are_ignored_unless_asked(
    sdk: oss2.Bucket,
) -> None:
    part = sdk.get_object(PHOTO, byte_range=(1, 3))
    assert (part.status, part.read(), part.headers["Content-Range"]) == (206, b"ell", "bytes 1-3/5")
    assert sdk.get_object(PHOTO, byte_range=(None, 2)).read() == b"lo"  # the last two
    assert sdk.get_object(PHOTO, byte_range=(3, None)).read() == b"lo"
    assert sdk.get_object(PHOTO, byte_range=(2, 99)).read() == b"llo"  # clipped to the size
    whole = sdk.get_object(PHOTO, byte_range=(10, 20))
    assert (whole.status, whole.read()) == (200, b"hello")
    standard = {"x-oss-range-behavior": "standard"}
    answer = refusal(lambda: sdk.get_object(PHOTO, byte_range=(10, 20), headers=standard))
    assert answer == (416, "InvalidRange")


def test_conditional_reads(sdk: oss2.Bucket) -> None:
    head = sdk.head_object(PHOTO)
    etag, modified = f'"{head.etag}"', head.last_modified
    earlier = formatdate(modified - 60, usegmt=True)
    assert sdk.get_object(PHOTO, headers={"If-Match": etag}).read() == b"hello"
    assert sdk.get_object(PHOTO, headers={"If-Modified-Since": earlier}).read() == b"hello"
    assert sdk.get_object(PHOTO, headers={"If-None-Match": '"0000"'}).read() == b"hello"
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        sdk.get_object(PHOTO, headers={"If-Match": '"0000"'})
    with pytest.raises(oss2.exceptions.NotModified):
        sdk.get_object(PHOTO, headers={"If-None-Match": etag})
    # HEAD: the status, no body
    unmodified = {"If-Unmodified-Since": earlier}
    assert refusal(lambda: sdk.head_object(PHOTO, headers=unmodified))[0] == 412
    same = {"If-Modified-Since": formatdate(modified, usegmt=True)}
    assert refusal(lambda: sdk.head_object(PHOTO, headers=same))[0] == 304


# --- stored fields: ACL, storage class, encryption, control characters -----------------------


def test_an_objects_acl_overrides_the_buckets(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> None:
    emu = Emu(tmp_path, oss_key, live=True, bucket_acl="private")
    assert emu.upload(("x-oss-object-acl", "public-read")).status_code == 204
    assert emu.upload(key="uploads/alice/secret.png").status_code == 204
    assert emu.read(f"/{PHOTO}") == b"hello"
    assert_error(emu.client.get("/uploads/alice/secret.png"), 403, "AccessDenied")
    assert_error(emu.client.get("/uploads/alice/none.png"), 403, "AccessDenied")
    with emu.serving():  # the owner, signed, reads either
        assert emu.sdk().get_object("uploads/alice/secret.png").read() == b"hello"

    opened = Emu(tmp_path / "public", oss_key, live=True)  # public-read bucket, private object
    assert opened.upload(("x-oss-object-acl", "private")).status_code == 204
    assert_error(opened.client.get(f"/{PHOTO}"), 403, "AccessDenied")


def test_archive_objects_are_listed_and_headed_but_not_read(served: Emu) -> None:
    assert served.upload(key="uploads/alice/standard.png").status_code == 204
    standard = served.client.head("/uploads/alice/standard.png")
    assert standard.headers["x-oss-storage-class"] == "Standard"
    assert "x-oss-server-side-encryption" not in standard.headers
    fields = (("x-oss-storage-class", "archive"), ("x-oss-server-side-encryption", "AES256"))
    assert served.upload(*fields).status_code == 204
    sdk = served.sdk()
    head = sdk.head_object(PHOTO)
    assert head.headers["x-oss-storage-class"] == "Archive"
    assert head.headers["x-oss-server-side-encryption"] == "AES256"
    listed = sdk.list_objects_v2(prefix="uploads/").object_list
    assert [(o.key, o.storage_class) for o in listed] == [
        (PHOTO, "Archive"),
        ("uploads/alice/standard.png", "Standard"),
    ]
    assert refusal(lambda: sdk.get_object(PHOTO)) == (403, "InvalidObjectState")
    assert_error(served.client.get(f"/{PHOTO}"), 403, "InvalidObjectState")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Content-Disposition", "inline\r\nSet-Cookie: a=b"),
        ("Cache-Control", "no-cache\nX-Injected: 1"),
        ("x-oss-meta-note", "a\x00b"),
        ("Content-Encoding", "gzip\r"),
        ("x-oss-content-type", "image/png\r\nX-Injected: 1"),
    ],
)
def test_control_characters_in_stored_fields_are_invalid_argument(
    served: Emu, field: str, value: str
) -> None:
    assert_error(served.upload((field, value)), 400, "InvalidArgument")
    assert served.app.store.get(PHOTO) is None
    clean = value.replace("\r", "").replace("\n", " ").replace("\x00", "")
    assert served.upload((field, clean)).status_code == 204
    assert served.read(f"/{PHOTO}") == b"hello"


def test_the_dev_setting_names_a_versioning_state() -> None:
    assert versioning({"DEV_OSS_VERSIONING": "enabled"}) == "Enabled"
    assert versioning({}) == ""
    with pytest.raises(ConfigError):
        versioning({"DEV_OSS_VERSIONING": "on"})


# --- presigned GETs and x-oss-process ----------------------------------------------------------

PROCESS = "image/resize,m_lfit,w_256,h_256"
ENDPOINT = "http://127.0.0.1:9000"
SCOPE = "oss/aliyun_v4_request"


def image_bytes(fmt: str, size: tuple[int, int] = (640, 400)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 60)).save(out, format=fmt)
    return out.getvalue()


@pytest.fixture
def private(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> Emu:
    emu = Emu(tmp_path, oss_key, bucket_acl="private")
    emu.seed(PHOTO, image_bytes("PNG"), content_type="image/png")
    return emu


def ours(query: dict[str, str] | None = None, key: str = PHOTO, **options: Any) -> str:
    """shared/sign/presign.py's GET URL at NOW (the emulator's clock)."""
    return presigned("GET", ENDPOINT, key, now=NOW.timestamp(), query=query, **options).url


def local(url: str) -> str:
    """The path and query of a URL, for the emulator's test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return f"{parts.path}?{urlencode(query)}"


@pytest.mark.parametrize(
    ("version", "longer", "forged"),
    [
        ("v4", {"x-oss-expires": "604800"}, {"x-oss-signature": "0" * 64}),
        ("v1", {"Expires": str(int(NOW.timestamp()) + 9999)}, {"Signature": "AAAA"}),
    ],
)
def test_changed_urls_are_refused(
    private: Emu, version: str, longer: dict[str, str], forged: dict[str, str]
) -> None:
    private.seed("uploads/bob/secret.png", image_bytes("PNG"), content_type="image/png")
    url = ours({"x-oss-process": PROCESS}, version=version)
    assert private.client.get(local(url)).status_code == 200
    for changed in (
        local(url).replace(PHOTO, "uploads/bob/secret.png"),
        with_query(url, **{"x-oss-process": "image/resize,w_4000"}),
        with_query(url, **{"x-oss-process": "image/info"}),
        with_query(url, **longer),
        with_query(url, **forged),
    ):
        assert_error(private.client.get(changed), 403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_an_expired_url_is_access_denied(private: Emu, version: str) -> None:
    url = ours(version=version, expires=60)
    private.clock = NOW.timestamp() + 61
    response = private.client.get(local(url))
    assert_error(response, 403, "AccessDenied")
    assert b"Request has expired." in response.data
    assert b"<ServerTime>" in response.data


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"x-oss-expires": "0"}, 400, "InvalidArgument"),
        ({"x-oss-expires": "604801"}, 400, "InvalidArgument"),
        ({"x-oss-signature-version": "OSS2"}, 400, "InvalidArgument"),
        ({"x-oss-credential": f"{AK}/20300501/cn-beijing/{SCOPE}"}, 400, "InvalidArgument"),
        ({"x-oss-credential": f"nobody/20300501/cn-hangzhou/{SCOPE}"}, 403, "InvalidAccessKeyId"),
        ({"x-oss-date": "20300502T120000Z"}, 400, "InvalidArgument"),
        ({"x-oss-security-token": "forged"}, 403, "InvalidSecurityToken"),
    ],
)
def test_malformed_v4_urls(private: Emu, changes: dict[str, str], status: int, code: str) -> None:
    assert_error(private.client.get(with_query(ours(), **changes)), status, code)


@pytest.mark.parametrize(
    ("version", "field"), [("v4", "x-oss-security-token"), ("v1", "security-token")]
)
def test_sts_urls_need_their_token(private: Emu, version: str, field: str) -> None:
    url = ours(version=version, token=STS.security_token)
    assert private.client.get(local(url)).status_code == 200
    other = with_query(url, **{field: "other"})
    assert_error(private.client.get(other), 403, "InvalidSecurityToken")


def test_a_signed_response_header_overrides_the_stored_one(private: Emu) -> None:
    """Presigned GETs as alibabacloud-oss-v2 and oss2 sign them: ours, which test_presign.py
    proves byte for byte theirs (process, disposition, STS tokens, V1 and V4)."""
    disposition = 'attachment; filename="a b.png"'
    url = local(ours({"response-content-disposition": disposition}))
    assert private.client.get(url).headers["Content-Disposition"] == disposition


@pytest.mark.parametrize(
    ("fmt", "mime", "name"),
    [
        ("PNG", "image/png", "png"),
        ("JPEG", "image/jpeg", "jpg"),
        ("GIF", "image/gif", "gif"),
        ("WEBP", "image/webp", "webp"),
    ],
)
def test_resize_and_info_for_each_format(private: Emu, fmt: str, mime: str, name: str) -> None:
    key = f"uploads/alice/pic.{name}"
    data = image_bytes(fmt, (300, 900))
    private.seed(key, data, content_type=mime)
    with private.client.get(local(ours({"x-oss-process": PROCESS}, key=key))) as response:
        assert response.status_code == 200
        assert response.mimetype == mime
        thumb = Image.open(io.BytesIO(response.data))
        assert (thumb.format, thumb.size) == (fmt, (85, 256))
    with private.client.get(local(ours({"x-oss-process": "image/info"}, key=key))) as response:
        info = json.loads(response.data)
    assert info == {
        "FileSize": {"value": str(len(data))},
        "Format": {"value": name},
        "ImageHeight": {"value": "900"},
        "ImageWidth": {"value": "300"},
        **({"FrameCount": {"value": "1"}} if name == "gif" else {}),
    }


def test_small_images_are_not_enlarged_and_other_files_not_processed(private: Emu) -> None:
    key = "uploads/alice/small.png"
    private.seed(key, image_bytes("PNG", (40, 20)), content_type="image/png")
    with private.client.get(local(ours({"x-oss-process": PROCESS}, key=key))) as response:
        assert Image.open(io.BytesIO(response.data)).size == (40, 20)
    private.seed("uploads/alice/notes.txt", b"plain text", content_type="text/plain")
    url = ours({"x-oss-process": "image/info"}, key="uploads/alice/notes.txt")
    assert_error(private.client.get(local(url)), 400, "InvalidArgument")


@pytest.mark.parametrize(
    "process",
    [
        "image/resize,w_0",
        "image/resize,w_99999",
        "image/resize,m_pad,w_10",
        "image/resize",
        "image/rotate,90",
        "video/snapshot,t_0",
        "image/resize,w_x",
        "image/resize,w_¹",
    ],
)
def test_bad_processes_are_400(private: Emu, process: str) -> None:
    url = local(ours({"x-oss-process": process}))
    assert_error(private.client.get(url), 400, "InvalidArgument")
