"""Object fields the emulator used to validate and drop: now stored, reported and acted on.

`x-oss-object-acl` (an object's ACL overrides its bucket's), `x-oss-storage-class` (Archive is
not readable until restored), `x-oss-server-side-encryption` (reported by HEAD); and header fields
with control characters are refused with InvalidArgument instead of stored (a stored CR/LF made
every later GET of the object a 500).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import oss2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.oss_sdk import auth, bucket, serve
from tests.test_emulator import Emu, assert_error, v4_form

KEY = "uploads/alice/photo.png"


def live(tmp_path: Path, key: rsa.RSAPrivateKey, **config: Any) -> Emu:
    """An emulator on the real clock, so oss2's signatures are on time."""
    emu = Emu(tmp_path, key, **config)
    emu.clock = time.time()
    return emu


def upload(emu: Emu, *fields: tuple[str, str], key: str = KEY) -> Any:
    now = datetime.fromtimestamp(emu.clock, timezone.utc)
    form = v4_form(
        key=key, signed_at=now, expiration=now + timedelta(minutes=5), fields=list(fields)
    )
    return emu.post(form, ("photo.png", b"hello", "image/png"))


def test_an_objects_acl_overrides_the_buckets(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> None:
    emu = live(tmp_path, oss_key, bucket_acl="private")
    assert upload(emu, ("x-oss-object-acl", "public-read")).status_code == 204
    assert upload(emu, key="uploads/alice/secret.png").status_code == 204
    with emu.client.get(f"/{KEY}") as public:
        assert (public.status_code, public.data) == (200, b"hello")
    assert_error(emu.client.get("/uploads/alice/secret.png"), 403, "AccessDenied")
    assert_error(emu.client.get("/uploads/alice/none.png"), 403, "AccessDenied")
    with serve(emu.app) as url:  # the owner, signed, reads either
        assert bucket(url, auth()).get_object("uploads/alice/secret.png").read() == b"hello"

    opened = live(tmp_path / "public", oss_key)  # public-read bucket, private object
    assert upload(opened, ("x-oss-object-acl", "private")).status_code == 204
    assert_error(opened.client.get(f"/{KEY}"), 403, "AccessDenied")


def test_archive_objects_are_listed_and_headed_but_not_read(
    tmp_path: Path, oss_key: rsa.RSAPrivateKey
) -> None:
    emu = live(tmp_path, oss_key)
    fields = (("x-oss-storage-class", "archive"), ("x-oss-server-side-encryption", "AES256"))
    assert upload(emu, *fields).status_code == 204
    with serve(emu.app) as url:
        sdk = bucket(url, auth())
        head = sdk.head_object(KEY)
        assert head.headers["x-oss-storage-class"] == "Archive"
        assert head.headers["x-oss-server-side-encryption"] == "AES256"
        (listed,) = sdk.list_objects_v2(prefix="uploads/").object_list
        assert listed.storage_class == "Archive"
        with pytest.raises(oss2.exceptions.OssError) as caught:
            sdk.get_object(KEY)
        assert (caught.value.status, caught.value.code) == (403, "InvalidObjectState")
    assert_error(emu.client.get(f"/{KEY}"), 403, "InvalidObjectState")


def test_standard_objects_report_their_class(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> None:
    emu = live(tmp_path, oss_key)
    assert upload(emu).status_code == 204
    head = emu.client.head(f"/{KEY}")
    assert head.headers["x-oss-storage-class"] == "Standard"
    assert "x-oss-server-side-encryption" not in head.headers


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
    tmp_path: Path, oss_key: rsa.RSAPrivateKey, field: str, value: str
) -> None:
    emu = live(tmp_path, oss_key)
    assert_error(upload(emu, (field, value)), 400, "InvalidArgument")
    assert emu.app.store.get(KEY) is None
    assert (
        upload(
            emu, (field, value.replace("\r", "").replace("\n", " ").replace("\x00", ""))
        ).status_code
        == 204
    )
    with emu.client.get(f"/{KEY}") as served:
        assert served.status_code == 200
