"""UPLOAD_VERIFY in the callback core: a record only for what OSS confirms is stored.

The callback reads the object through an injected `FakeBucket` (HeadObject / ranged GetObject with
If-Match semantics); the oss2 reader against the emulator over loopback is proven in
tests/e2e/test_e2e_verify.py. Negative tests first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from shared.errors import Unavailable
from shared.http import Core, Request, serve
from shared.records.sqlite import SqliteStore
from shared.sniff import SNIFF_BYTES
from tests.samples import IMPOSTORS, SAMPLES, png, random_bytes
from tests.support.callbacks import BUCKET, EXACT_KEY, PREFIX, CallbackBuilder, FakeBucket


@pytest.fixture
def bucket() -> FakeBucket:
    return FakeBucket()


@pytest.fixture
def verifying(make_callback_app: Callable[..., Core], bucket: FakeBucket) -> Callable[[str], Core]:
    def make(mode: str = "content") -> Core:
        return make_callback_app(reader=bucket, remover=bucket, UPLOAD_VERIFY=mode)

    return make


@dataclass
class Kit:
    """The callback under test, its bucket and record store, and the callback builder."""

    make: Callable[[str], Core]
    build: CallbackBuilder
    bucket: FakeBucket
    store: SqliteStore


@pytest.fixture
def kit(
    verifying: Callable[[str], Core], build: CallbackBuilder, bucket: FakeBucket, store: SqliteStore
) -> Kit:
    return Kit(verifying, build, bucket, store)


def answer(app: Core, request: Request) -> tuple[int, dict[str, Any]]:
    response = serve(app, request, function="callback")
    return response.status, json.loads(response.body)


def upload(
    build: CallbackBuilder, bucket: FakeBucket, data: bytes, *, key: str = EXACT_KEY, **values: str
) -> Request:
    """Store `data` in the fake bucket and build the genuine callback OSS would send for it."""
    facts = bucket.put(key, data)
    facts.update(values)
    return build.request(values=facts)


PNG_INFO = {"imageInfo.format": "png", "imageInfo.width": "3", "imageInfo.height": "2"}


# --- object: the callback describes the object stored now ----------------------------------------


@pytest.mark.parametrize("mode", ["object", "content"])
def test_an_invented_callback_records_nothing(
    verifying: Callable[[str], Core],
    build: CallbackBuilder,
    bucket: FakeBucket,
    store: SqliteStore,
    mode: str,
) -> None:
    """No object under the key (never uploaded): retried briefly, then 503, nothing recorded."""
    status, payload = answer(verifying(mode), build.request())
    assert (status, payload["code"]) == (503, "Unavailable"), payload
    assert "not in the bucket" in payload["message"]
    assert store.get(BUCKET, EXACT_KEY) is None
    assert len(bucket.reads) == 4  # the first read and three brief retries
    assert bucket.removed == []  # nothing to delete, and nothing else is touched


@pytest.mark.parametrize("mode", ["object", "content"])
def test_a_callback_for_another_etag_records_nothing(
    verifying: Callable[[str], Core],
    build: CallbackBuilder,
    bucket: FakeBucket,
    store: SqliteStore,
    mode: str,
) -> None:
    bucket.put(EXACT_KEY, png())
    status, payload = answer(verifying(mode), build.request(values={"etag": "F" * 32}))
    assert (status, payload["code"]) == (409, "Conflict"), payload
    assert "different object" in payload["message"]
    assert store.get(BUCKET, EXACT_KEY) is None
    assert EXACT_KEY in bucket.objects  # the stored object is not ours to delete


def test_a_callback_after_the_object_was_deleted_records_nothing(
    verifying: Callable[[str], Core],
    build: CallbackBuilder,
    bucket: FakeBucket,
    store: SqliteStore,
) -> None:
    request = upload(build, bucket, png(), **PNG_INFO)
    del bucket.objects[EXACT_KEY]
    status, payload = answer(verifying("object"), request)
    assert (status, payload["code"]) == (503, "Unavailable")
    assert store.get(BUCKET, EXACT_KEY) is None


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [("size", "4", "bytes"), ("crc64", "1234", "CRC-64")],
)
def test_the_stored_size_and_crc64_must_match_the_callback(
    kit: Kit,
    field: str,
    value: str,
    why: str,
) -> None:
    request = upload(kit.build, kit.bucket, png(), **PNG_INFO, **{field: value})
    status, payload = answer(kit.make("object"), request)
    assert (status, payload["code"]) == (409, "Conflict")
    assert why in payload["message"]
    assert kit.store.get(BUCKET, EXACT_KEY) is None


def test_an_object_not_yet_visible_is_retried_then_recorded(
    verifying: Callable[[str], Core],
    build: CallbackBuilder,
    bucket: FakeBucket,
    store: SqliteStore,
) -> None:
    request = upload(build, bucket, png(), **PNG_INFO)
    bucket.hidden_reads = 2
    status, payload = answer(verifying("object"), request)
    assert (status, payload["Status"]) == (200, "OK"), payload
    assert [read[2] for read in bucket.reads] == [0, 0, 0]  # HeadObject only in object mode
    assert store.get(BUCKET, EXACT_KEY) is not None


def test_an_oss_outage_is_a_503_and_records_nothing(
    verifying: Callable[[str], Core],
    build: CallbackBuilder,
    bucket: FakeBucket,
    store: SqliteStore,
) -> None:
    request = upload(build, bucket, png(), **PNG_INFO)
    bucket.error = Unavailable("OSS answered 500 InternalError")
    status, payload = answer(verifying("content"), request)
    assert (status, payload["code"]) == (503, "Unavailable")
    assert store.get(BUCKET, EXACT_KEY) is None


def test_off_records_without_asking_oss(
    verifying: Callable[[str], Core],
    build: CallbackBuilder,
    bucket: FakeBucket,
    store: SqliteStore,
) -> None:
    status, _ = answer(verifying("off"), build.request())
    assert status == 200
    assert bucket.reads == []


def test_a_replay_after_an_overwrite_is_a_conflict_and_the_record_stays(
    verifying: Callable[[str], Core],
    build: CallbackBuilder,
    bucket: FakeBucket,
    store: SqliteStore,
) -> None:
    app = verifying("object")
    grant = build.prefix_grant()
    key = PREFIX + "cat.png"
    old = build.request(grant=grant, values=bucket.put(key, png(3, 2)))
    assert answer(app, old)[0] == 200
    new = build.request(grant=grant, values=bucket.put(key, png(5, 5)))
    assert answer(app, new)[0] == 200
    assert answer(app, old)[0] == 409
    stored = store.get(BUCKET, key)
    assert stored is not None
    assert stored.etag == bucket.objects[key][0]


# --- content: the bytes are what the name and type claim ------------------------------------------


@pytest.mark.parametrize("ext", sorted(SAMPLES))
def test_real_files_of_each_kind_are_recorded(
    verifying: Callable[[str], Core],
    build: CallbackBuilder,
    bucket: FakeBucket,
    store: SqliteStore,
    ext: str,
) -> None:
    mime, data = SAMPLES[ext]
    key = PREFIX + "file." + ext
    info = {"png": PNG_INFO}.get(ext, {"imageInfo.format": ""})
    if ext in ("jpg", "gif", "webp"):
        info = {"imageInfo.format": ext, "imageInfo.width": "1", "imageInfo.height": "1"}
    values = {**bucket.put(key, data), "mimeType": mime, **info}
    request = build.request(grant=build.prefix_grant(), values=values)
    status, payload = answer(verifying("content"), request)
    assert (status, payload["Status"]) == (200, "OK"), payload
    assert bucket.reads == [(key, values["etag"], SNIFF_BYTES)]  # one ranged GET
    assert store.get(BUCKET, key) is not None


@pytest.mark.parametrize(("name", "ext", "mime", "data"), IMPOSTORS, ids=[i[0] for i in IMPOSTORS])
def test_content_that_is_not_what_it_claims_is_rejected_and_deleted(
    kit: Kit,
    name: str,
    ext: str,
    mime: str,
    data: bytes,
) -> None:
    key = PREFIX + "file." + ext
    values = {**kit.bucket.put(key, data), "mimeType": mime, "imageInfo.format": ""}
    request = kit.build.request(grant=kit.build.prefix_grant(), values=values)
    status, payload = answer(kit.make("content"), request)
    assert (status, payload["Status"], payload["code"]) == (200, "Rejected", "ContentRejected")
    assert payload["message"]
    assert kit.store.get(BUCKET, key) is None
    assert key not in kit.bucket.objects  # deleted


def test_object_mode_does_not_read_the_content(
    verifying: Callable[[str], Core],
    build: CallbackBuilder,
    bucket: FakeBucket,
    store: SqliteStore,
) -> None:
    request = upload(build, bucket, random_bytes())
    status, payload = answer(verifying("object"), request)
    assert (status, payload["Status"]) == (200, "OK")


@pytest.mark.parametrize(
    ("info", "why"),
    [
        ({"imageInfo.format": "jpg", "imageInfo.width": "3", "imageInfo.height": "2"}, "jpg"),
        ({"imageInfo.format": "", "imageInfo.width": "", "imageInfo.height": ""}, "could not"),
        ({"imageInfo.format": "png", "imageInfo.width": "", "imageInfo.height": ""}, "dimension"),
    ],
)
def test_oss_image_facts_must_agree_with_the_bytes(
    kit: Kit,
    info: dict[str, str],
    why: str,
) -> None:
    """A PNG whose imageInfo says jpg (or that OSS could not read) is rejected."""
    request = upload(kit.build, kit.bucket, png(), **info)
    status, payload = answer(kit.make("content"), request)
    assert (status, payload["code"]) == (200, "ContentRejected"), payload
    assert why in payload["message"]
    assert kit.store.get(BUCKET, EXACT_KEY) is None
