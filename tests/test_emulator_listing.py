"""The emulator's ListObjects (V1, V2) and the SDK's path-style reads (local/oss_emulator/listing.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import Client, TestResponse

from local.oss_emulator import OssEmulator
from local.oss_emulator.listing import ListQuery, iso8601, select
from local.oss_emulator.store import StoredObject
from tests.oss_sdk import BUCKET, auth, signed_headers
from tests.support.emulator import Emu, code_of

KEYS = [
    "uploads/alice/a.txt",
    "uploads/alice/b/c.txt",
    "uploads/alice/b/d.txt",
    "uploads/bob/e f.txt",
    "uploads/bob/é.txt",
    "zeta.txt",
]


@pytest.fixture
def emulator(tmp_path: Path, oss_key: rsa.RSAPrivateKey) -> OssEmulator:
    emu = Emu(tmp_path, oss_key, live=True)
    for number, key in enumerate(KEYS):
        emu.seed(key, key.encode(), f"{number:032X}", content_md5="bWQ1")
    return emu.app


def signed(path: str, method: str = "GET", version: str = "v1", **who: str) -> dict[str, str]:
    """oss2's headers for `path` (root-style `/…` or path-style `/<bucket>/…`)."""
    parts = urlsplit(path)
    key = parts.path.removeprefix(f"/{BUCKET}").removeprefix("/")
    return signed_headers(auth(version, **who), method, key, dict(parse_qsl(parts.query, True)))


def get(emulator: OssEmulator, path: str, headers: dict[str, str] | None = None) -> TestResponse:
    return Client(emulator).get(path, headers=signed(path) if headers is None else headers)


def document(response: TestResponse) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/xml")
    return ET.fromstring(response.data)  # noqa: S314 - our own emulator's reply


def keys_of(root: ET.Element) -> list[str]:
    return [node.text or "" for node in root.findall("Contents/Key")]


@pytest.mark.parametrize("path", ["/?list-type=2", f"/{BUCKET}/?list-type=2"])
def test_v2_lists_every_key_in_order_at_the_root_and_path_style(
    emulator: OssEmulator, path: str
) -> None:
    root = document(get(emulator, path))
    assert keys_of(root) == sorted(KEYS, key=str.encode)
    assert root.findtext("IsTruncated") == "false"
    assert root.findtext("KeyCount") == str(len(KEYS))
    first = root.find("Contents")
    assert first is not None
    assert first.findtext("ETag") == '"00000000000000000000000000000000"'
    assert first.findtext("LastModified") == "2001-09-09T01:46:40.000Z"
    assert first.findtext("Size") == str(len(KEYS[0]))


def test_v2_pages_with_continuation_tokens(emulator: OssEmulator) -> None:
    seen: list[str] = []
    token = ""
    for _ in range(10):
        root = document(get(emulator, f"/?list-type=2&max-keys=2&continuation-token={token}"))
        seen += keys_of(root)
        if root.findtext("IsTruncated") == "false":
            break
        token = root.findtext("NextContinuationToken") or ""
    assert seen == sorted(KEYS, key=str.encode)


def test_v1_pages_with_markers_prefix_and_url_encoding(emulator: OssEmulator) -> None:
    root = document(get(emulator, "/?prefix=uploads/bob/&max-keys=1&encoding-type=url"))
    assert keys_of(root) == ["uploads/bob/e%20f.txt"]
    assert root.findtext("NextMarker") == "uploads/bob/e%20f.txt"
    rest = document(get(emulator, "/?prefix=uploads/bob/&marker=uploads/bob/e%20f.txt"))
    assert keys_of(rest) == ["uploads/bob/é.txt"]
    assert rest.findtext("IsTruncated") == "false"


def test_delimiter_folds_folders_into_common_prefixes(emulator: OssEmulator) -> None:
    root = document(get(emulator, "/?list-type=2&prefix=uploads/alice/&delimiter=/"))
    assert keys_of(root) == ["uploads/alice/a.txt"]
    assert [p.text for p in root.findall("CommonPrefixes/Prefix")] == ["uploads/alice/b/"]
    paged = document(get(emulator, "/?list-type=2&prefix=uploads/&delimiter=/&max-keys=1"))
    assert [p.text for p in paged.findall("CommonPrefixes/Prefix")] == ["uploads/alice/"]
    token = paged.findtext("NextContinuationToken") or ""
    after = document(
        get(emulator, f"/?list-type=2&prefix=uploads/&delimiter=/&continuation-token={token}")
    )
    assert [p.text for p in after.findall("CommonPrefixes/Prefix")] == ["uploads/bob/"]


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
def test_bad_parameters_are_invalid_argument(emulator: OssEmulator, query: str) -> None:
    response = get(emulator, f"/?{query}")
    assert (response.status_code, code_of(response)) == (400, "InvalidArgument")


def test_listing_needs_a_signature(emulator: OssEmulator) -> None:
    response = get(emulator, "/?list-type=2", {})
    assert (response.status_code, code_of(response)) == (403, "AccessDenied")
    v4 = get(emulator, "/?list-type=2", signed("/?list-type=2", version="v4"))
    assert v4.status_code == 200


def test_signed_path_style_reads_name_the_key_after_the_bucket(emulator: OssEmulator) -> None:
    client = Client(emulator)
    path = f"/{BUCKET}/uploads/alice/a.txt"
    head = client.head(path, headers=signed(path, "HEAD", "v4"))
    assert head.status_code == 200
    assert head.headers["ETag"] == '"00000000000000000000000000000000"'
    assert head.headers["Content-Length"] == str(len(KEYS[0]))
    none = f"/{BUCKET}/uploads/alice/none.txt"
    missing = client.head(none, headers=signed(none, "HEAD", "v4"))
    assert missing.status_code == 404
    refused = client.head(path, headers=signed(path, "HEAD", key_id="x"))
    assert refused.status_code == 403
    # Browsers do not sign: their paths stay root-style (a key that starts with the bucket name).
    assert client.get(f"/{BUCKET}/uploads/alice/a.txt").status_code == 404
    plain = client.get("/uploads/alice/a.txt")
    assert plain.data == b"uploads/alice/a.txt"
    plain.close()
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
