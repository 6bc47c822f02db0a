"""Ranged and conditional reads (local/oss_emulator/reads.py).

The emulator used to ignore `Range`, `If-Match`, `If-None-Match` and `If-Modified-Since` (always
200, whole object); OSS answers 206/304/412.
"""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import oss2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from local.dev_config import versioning
from shared.errors import ConfigError
from tests.support.emulator import Emu, refusal

KEY = "uploads/alice/photo.png"
DATA = b"hello"


@pytest.fixture
def sdk(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> Iterator[oss2.Bucket]:
    emu = Emu(tmp_path, oss_key, live=True)
    assert emu.upload().status_code == 204
    with emu.serving():
        yield emu.sdk()


def test_ranges_answer_206_with_the_bytes(sdk: oss2.Bucket) -> None:
    part = sdk.get_object(KEY, byte_range=(1, 3))
    assert (part.status, part.read()) == (206, b"ell")
    assert part.headers["Content-Range"] == "bytes 1-3/5"
    assert sdk.get_object(KEY, byte_range=(None, 2)).read() == b"lo"  # the last two
    assert sdk.get_object(KEY, byte_range=(3, None)).read() == b"lo"
    assert sdk.get_object(KEY, byte_range=(2, 99)).read() == b"llo"  # clipped to the size


def test_unsatisfiable_ranges_are_ignored_unless_standard_behaviour_is_asked(
    sdk: oss2.Bucket,
) -> None:
    whole = sdk.get_object(KEY, byte_range=(10, 20))
    assert (whole.status, whole.read()) == (200, DATA)
    standard = {"x-oss-range-behavior": "standard"}
    assert refusal(lambda: sdk.get_object(KEY, byte_range=(10, 20), headers=standard)) == (
        416,
        "InvalidRange",
    )


def test_conditional_reads(sdk: oss2.Bucket) -> None:
    head = sdk.head_object(KEY)
    etag, modified = f'"{head.etag}"', head.last_modified
    earlier = formatdate(modified - 60, usegmt=True)
    assert sdk.get_object(KEY, headers={"If-Match": etag}).read() == DATA
    assert sdk.get_object(KEY, headers={"If-Modified-Since": earlier}).read() == DATA
    assert sdk.get_object(KEY, headers={"If-None-Match": '"0000"'}).read() == DATA
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        sdk.get_object(KEY, headers={"If-Match": '"0000"'})
    with pytest.raises(oss2.exceptions.NotModified):
        sdk.get_object(KEY, headers={"If-None-Match": etag})
    # HEAD: the status, no body
    assert refusal(lambda: sdk.head_object(KEY, headers={"If-Unmodified-Since": earlier}))[0] == 412
    same = formatdate(modified, usegmt=True)
    assert refusal(lambda: sdk.head_object(KEY, headers={"If-Modified-Since": same}))[0] == 304


def test_the_dev_setting_names_a_versioning_state() -> None:
    assert versioning({"DEV_OSS_VERSIONING": "enabled"}) == "Enabled"
    assert versioning({}) == ""
    with pytest.raises(ConfigError):
        versioning({"DEV_OSS_VERSIONING": "on"})
