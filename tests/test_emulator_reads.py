"""Ranged and conditional reads, and versioning's effect on x-oss-forbid-overwrite.

The emulator used to ignore `Range`, `If-Match`, `If-None-Match` and `If-Modified-Since` (always
200, whole object) and to enforce `x-oss-forbid-overwrite` whatever the bucket's versioning; OSS
answers 206/304/412 and ignores the header on a versioned bucket.
"""

from __future__ import annotations

from email.utils import formatdate
from pathlib import Path
from typing import Any

import oss2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from local.dev_config import versioning
from shared.errors import ConfigError
from tests.oss_sdk import auth, bucket, serve
from tests.test_emulator import assert_error
from tests.test_emulator_objects import KEY, live, upload

DATA = b"hello"


@pytest.fixture
def sdk(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> Any:
    emu = live(tmp_path, oss_key)
    assert upload(emu).status_code == 204
    with serve(emu.app) as url:
        yield bucket(url, auth())


def test_ranges_answer_206_with_the_bytes(sdk: Any) -> None:
    part = sdk.get_object(KEY, byte_range=(1, 3))
    assert (part.status, part.read()) == (206, b"ell")
    assert part.headers["Content-Range"] == "bytes 1-3/5"
    assert sdk.get_object(KEY, byte_range=(None, 2)).read() == b"lo"  # the last two
    assert sdk.get_object(KEY, byte_range=(3, None)).read() == b"lo"
    assert sdk.get_object(KEY, byte_range=(2, 99)).read() == b"llo"  # clipped to the size


def test_unsatisfiable_ranges_are_ignored_unless_standard_behaviour_is_asked(sdk: Any) -> None:
    whole = sdk.get_object(KEY, byte_range=(10, 20))
    assert (whole.status, whole.read()) == (200, DATA)
    with pytest.raises(oss2.exceptions.OssError) as caught:
        sdk.get_object(KEY, byte_range=(10, 20), headers={"x-oss-range-behavior": "standard"})
    assert (caught.value.status, caught.value.code) == (416, "InvalidRange")


def test_conditional_reads(sdk: Any) -> None:
    head = sdk.head_object(KEY)
    etag, modified = f'"{head.etag}"', head.last_modified
    assert sdk.get_object(KEY, headers={"If-Match": etag}).read() == DATA
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        sdk.get_object(KEY, headers={"If-Match": '"0000"'})
    earlier = formatdate(modified - 60, usegmt=True)
    with pytest.raises(oss2.exceptions.OssError) as failed:  # HEAD: the status, no body
        sdk.head_object(KEY, headers={"If-Unmodified-Since": earlier})
    assert failed.value.status == 412
    with pytest.raises(oss2.exceptions.NotModified):
        sdk.get_object(KEY, headers={"If-None-Match": etag})
    with pytest.raises(oss2.exceptions.OssError) as unchanged:
        sdk.head_object(KEY, headers={"If-Modified-Since": formatdate(modified, usegmt=True)})
    assert unchanged.value.status == 304
    assert sdk.get_object(KEY, headers={"If-Modified-Since": earlier}).read() == DATA
    assert sdk.get_object(KEY, headers={"If-None-Match": '"0000"'}).read() == DATA


@pytest.mark.parametrize(("state", "second"), [("", 409), ("Enabled", 204), ("Suspended", 204)])
def test_forbid_overwrite_is_ignored_on_a_versioned_bucket(
    tmp_path: Path, oss_key: rsa.RSAPrivateKey, state: str, second: int
) -> None:
    emu = live(tmp_path, oss_key, versioning=state)
    forbid = ("x-oss-forbid-overwrite", "true")
    assert upload(emu, forbid).status_code == 204
    response = upload(emu, forbid)
    assert response.status_code == second
    if second == 409:
        assert_error(response, 409, "FileAlreadyExists")


def test_the_dev_setting_names_a_versioning_state() -> None:
    assert versioning({"DEV_OSS_VERSIONING": "enabled"}) == "Enabled"
    assert versioning({}) == ""
    with pytest.raises(ConfigError):
        versioning({"DEV_OSS_VERSIONING": "on"})
