"""Object fields the emulator used to validate and drop: now stored, reported and acted on.

`x-oss-object-acl` (an object's ACL overrides its bucket's), `x-oss-storage-class` (Archive is
not readable until restored), `x-oss-server-side-encryption` (reported by HEAD); and header fields
with control characters are refused with InvalidArgument instead of stored (a stored CR/LF made
every later GET of the object a 500).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.emulator import Emu, assert_error, refusal

KEY = "uploads/alice/photo.png"


@pytest.fixture
def emu(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> Emu:
    return Emu(tmp_path, oss_key, live=True)


def test_an_objects_acl_overrides_the_buckets(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> None:
    emu = Emu(tmp_path, oss_key, live=True, bucket_acl="private")
    assert emu.upload(("x-oss-object-acl", "public-read")).status_code == 204
    assert emu.upload(key="uploads/alice/secret.png").status_code == 204
    assert emu.read(f"/{KEY}") == b"hello"
    assert_error(emu.client.get("/uploads/alice/secret.png"), 403, "AccessDenied")
    assert_error(emu.client.get("/uploads/alice/none.png"), 403, "AccessDenied")
    with emu.serving():  # the owner, signed, reads either
        assert emu.sdk().get_object("uploads/alice/secret.png").read() == b"hello"

    opened = Emu(tmp_path / "public", oss_key, live=True)  # public-read bucket, private object
    assert opened.upload(("x-oss-object-acl", "private")).status_code == 204
    assert_error(opened.client.get(f"/{KEY}"), 403, "AccessDenied")


def test_archive_objects_are_listed_and_headed_but_not_read(emu: Emu) -> None:
    fields = (("x-oss-storage-class", "archive"), ("x-oss-server-side-encryption", "AES256"))
    assert emu.upload(*fields).status_code == 204
    with emu.serving():
        sdk = emu.sdk()
        head = sdk.head_object(KEY)
        assert head.headers["x-oss-storage-class"] == "Archive"
        assert head.headers["x-oss-server-side-encryption"] == "AES256"
        (listed,) = sdk.list_objects_v2(prefix="uploads/").object_list
        assert listed.storage_class == "Archive"
        assert refusal(lambda: sdk.get_object(KEY)) == (403, "InvalidObjectState")
    assert_error(emu.client.get(f"/{KEY}"), 403, "InvalidObjectState")


def test_standard_objects_report_their_class(emu: Emu) -> None:
    assert emu.upload().status_code == 204
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
    emu: Emu, field: str, value: str
) -> None:
    assert_error(emu.upload((field, value)), 400, "InvalidArgument")
    assert emu.app.store.get(KEY) is None
    clean = value.replace("\r", "").replace("\n", " ").replace("\x00", "")
    assert emu.upload((field, clean)).status_code == 204
    assert emu.read(f"/{KEY}") == b"hello"
