"""The emulator serves presigned GETs as OSS does, and `x-oss-process` resize and info.

URLs come from two independent signers: the official SDKs (alibabacloud-oss-v2 for V4, oss2 for
V1, clocks frozen at the emulator's) and the project's own (shared/sign/presign.py). Negative
cases first: a changed key, process, expiry or signature is refused with OSS's code.
"""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import alibabacloud_oss_v2 as oss_v2
import oss2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from PIL import Image

from tests.oss_sdk import BUCKET
from tests.support.emulator import AK, NOW, SK, STS, Emu, assert_error, official_client, presigned

KEY = "uploads/alice/photo.png"
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
    emu.seed(KEY, image_bytes("PNG"), content_type="image/png")
    return emu


def ours(query: dict[str, str] | None = None, key: str = KEY, **options: Any) -> str:
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


# --- refusals -------------------------------------------------------------------------------


def test_an_unsigned_read_of_a_private_bucket_is_access_denied(private: Emu) -> None:
    assert_error(private.client.get(f"/{KEY}"), 403, "AccessDenied")
    assert_error(private.client.get(f"/{KEY}?x-oss-process={PROCESS}"), 403, "AccessDenied")


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
        local(url).replace(KEY, "uploads/bob/secret.png"),
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


# --- the official SDKs' URLs ------------------------------------------------------------------


class _Frozen(datetime.datetime):
    @classmethod
    def now(cls, tz: datetime.tzinfo | None = None) -> _Frozen:
        return cls.fromtimestamp(NOW.timestamp(), tz)


def official_v4(monkeypatch: pytest.MonkeyPatch, token: str | None, **request: str) -> str:
    """alibabacloud-oss-v2's presigned GET, signed at NOW."""
    monkeypatch.setattr(oss_v2.signer.v4.datetime, "datetime", _Frozen)
    get = oss_v2.GetObjectRequest(bucket=BUCKET, key=KEY, **request)
    url: str = (
        official_client(ENDPOINT, token).presign(get, expires=datetime.timedelta(seconds=300)).url
    )
    return url


@pytest.mark.parametrize("token", [None, STS.security_token])
def test_the_official_v4_presigner_is_accepted(
    private: Emu, monkeypatch: pytest.MonkeyPatch, token: str | None
) -> None:
    plain = official_v4(monkeypatch, token)
    with private.client.get(local(plain)) as response:
        assert response.status_code == 200
        assert response.data == image_bytes("PNG")
    disposition = 'attachment; filename="a b.png"'
    named = official_v4(monkeypatch, token, response_content_disposition=disposition)
    assert private.client.get(local(named)).headers["Content-Disposition"] == disposition
    thumb = official_v4(monkeypatch, token, process=PROCESS)
    with private.client.get(local(thumb)) as response:
        assert response.status_code == 200
        assert Image.open(io.BytesIO(response.data)).size == (256, 160)
    info = with_query(thumb, **{"x-oss-process": "image/info"})
    assert_error(private.client.get(info), 403, "SignatureDoesNotMatch")


def test_the_official_v1_signer_is_accepted(private: Emu, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oss2.auth.time, "time", NOW.timestamp)
    sdk = oss2.Bucket(oss2.Auth(AK, SK), ENDPOINT, BUCKET, is_cname=True)
    url = sdk.sign_url("GET", KEY, 300, params={"x-oss-process": PROCESS})
    with private.client.get(local(url)) as response:
        assert response.status_code == 200
        assert Image.open(io.BytesIO(response.data)).size == (256, 160)
    private.clock = NOW.timestamp() + 301
    assert_error(private.client.get(local(url)), 403, "AccessDenied")


# --- x-oss-process ----------------------------------------------------------------------------


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


def test_small_images_are_not_enlarged(private: Emu) -> None:
    key = "uploads/alice/small.png"
    private.seed(key, image_bytes("PNG", (40, 20)), content_type="image/png")
    with private.client.get(local(ours({"x-oss-process": PROCESS}, key=key))) as response:
        assert Image.open(io.BytesIO(response.data)).size == (40, 20)


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


def test_a_process_on_a_non_image_is_400(private: Emu) -> None:
    private.seed("uploads/alice/notes.txt", b"plain text", content_type="text/plain")
    url = ours({"x-oss-process": "image/info"}, key="uploads/alice/notes.txt")
    assert_error(private.client.get(local(url)), 400, "InvalidArgument")
