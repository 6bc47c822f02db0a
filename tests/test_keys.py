"""Where a file may go: requested folders, user folders, object ids, file extensions, keys."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import keys
from shared.errors import BadRequest
from tests.support.data import HOSTILE

FOLDERS = ["", "avatars/", "a/b/c/", "A-1_b.c/d/", ".../", "..a/b../", "x" * 255 + "/"]


@pytest.mark.parametrize(
    ("path", "folder"),
    [
        *((folder, folder) for folder in FOLDERS),
        *((folder.rstrip("/"), folder) for folder in FOLDERS),  # one trailing slash is optional
        ("x" * 256, "x" * 256 + "/"),  # 256 bytes at most, as given
    ],
)
def test_requested_dir_accepts(path: str, folder: str) -> None:
    assert keys.requested_dir(path) == folder


@pytest.mark.parametrize("path", [unquote_plus(p) for p in HOSTILE["paths"]])
def test_requested_dir_refuses(path: str) -> None:
    with pytest.raises(BadRequest):
        keys.requested_dir(path)


@given(st.text(max_size=300))
def test_requested_dir_only_returns_clean_folders(path: str) -> None:
    try:
        folder = keys.requested_dir(path)
    except BadRequest:
        return
    assert folder == "" or folder.endswith("/")
    assert not folder.startswith("/")
    assert "//" not in folder
    assert all(segment not in (".", "..") for segment in folder[:-1].split("/") if folder)
    assert re.fullmatch(r"([A-Za-z0-9._-]+/)*", folder)


@pytest.mark.parametrize("user", ["12", "alice", "a.b@example.com", "U-1_x"])
def test_key_safe_users_keep_their_id(user: str) -> None:
    assert keys.user_segment(user) == user


@pytest.mark.parametrize(
    "user",
    ["", ".", "..", "_x", "-x", "a/b", 'a"b', "a\nb", "名字", "a b", "x" * 65, "_" + "0" * 40],
)
def test_other_users_get_a_stable_digest(user: str) -> None:
    """…an id spelled like a digest folder included: it is hashed again, never reused."""
    segment = keys.user_segment(user)
    assert re.fullmatch(r"_[0-9a-f]{40}", segment)
    assert segment != user
    assert keys.user_segment(user) == segment


@given(st.text(max_size=80), st.text(max_size=80))
def test_distinct_users_never_share_a_segment(a: str, b: str) -> None:
    if a != b:
        assert keys.user_segment(a) != keys.user_segment(b)


def test_user_space_and_upload_dir_and_its_limits() -> None:
    assert keys.user_space("uploads/{user}/", "12") == "uploads/12/"
    assert keys.upload_dir("uploads/{user}/", "12", "") == "uploads/12/"
    assert keys.upload_dir("uploads/{user}/", "12", "a/b") == "uploads/12/a/b/"
    assert keys.upload_dir("{user}/files/", "bob", "x/") == "bob/files/x/"
    assert keys.upload_dir("", "anonymous", "avatars/") == "avatars/"
    with pytest.raises(BadRequest, match="whole bucket"):
        keys.upload_dir("", "anonymous", "")
    long_prefix = "/".join(["p" * 200] * 4) + "/{user}/"
    with pytest.raises(BadRequest):  # past OSS's key length
        keys.upload_dir(long_prefix, "u", "x" * 200)


def test_object_ids_are_ulids_sorted_by_time_and_unique() -> None:
    assert keys.new_object_id(0, b"\x00" * 10) == "0" * 26
    earlier = keys.new_object_id(1702743657000, b"\xff" * 10)
    assert earlier.endswith("z" * 16)
    assert earlier < keys.new_object_id(1702743657001, b"\x00" * 10)
    assert re.fullmatch(r"[0-9a-hjkmnp-tv-z]{26}", keys.new_object_id())
    assert len({keys.new_object_id(1702743657000) for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    ("name", "ext"),
    [("a.png", "png"), ("A.JPG", "jpg"), ("archive.tar.zip", "zip"), ("x y.pdf", "pdf")],
)
def test_extension_is_taken_lower_case(name: str, ext: str) -> None:
    assert keys.filename_extension(name) == ext


ACTIVE_NAMES = ["x.php", "x.php.jpg", "x.jpg.php", "x.HTML.png", "x.svg", "x.php%00.jpg"]
ODD_NAMES = ["noext", "dot.", "x\x00.png", "a/b.png", "a\\b.png", "x.p_g"]
LONG_NAMES = ["x." + "a" * 17, "x" * 252 + ".png"]


@pytest.mark.parametrize("name", ACTIVE_NAMES + ODD_NAMES + LONG_NAMES)
def test_extension_refused(name: str) -> None:
    with pytest.raises(BadRequest):
        keys.filename_extension(name)


VALID_KEYS = ["uploads/12/x.png", "a", "a/b.c/d@e-f_g"]
INVALID_KEYS = ["", "/a", "a/", "a//b", "a/../b", "a/./b", "..", "a%2e", "a b", "a\nb", "ü"]


@pytest.mark.parametrize(
    ("key", "valid"),
    [*((k, True) for k in VALID_KEYS), *((k, False) for k in [*INVALID_KEYS, "a" * 1024])],
)
def test_is_valid_key(key: str, valid: bool) -> None:
    assert keys.is_valid_key(key) is valid


@given(st.text(max_size=60))
def test_a_valid_key_never_has_dot_segments(key: str) -> None:
    if keys.is_valid_key(key):
        assert ".." not in key.split("/")
        assert "." not in key.split("/")
        assert "\\" not in key
        assert "%" not in key
