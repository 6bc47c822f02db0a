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

PNG_INFO = {"imageInfo.format": "png", "imageInfo.width": "3", "imageInfo.height": "2"}


@dataclass
class Kit:
    """The callback builder, the bucket it reads and the record store it writes."""

    build: CallbackBuilder
    bucket: FakeBucket
    store: SqliteStore
    make_app: Callable[..., Core]

    def answer(self, mode: str, request: Request) -> tuple[int, dict[str, Any]]:
        """The answer of a callback core running UPLOAD_VERIFY=`mode` over this bucket."""
        app = self.make_app(reader=self.bucket, remover=self.bucket, UPLOAD_VERIFY=mode)
        response = serve(app, request, function="callback")
        return response.status, json.loads(response.body)

    def upload(self, data: bytes, *, key: str = EXACT_KEY, **values: str) -> Request:
        """Store `data` and build the genuine callback OSS would send for it."""
        return self.build.request(values={**self.bucket.put(key, data), **values})

    def recorded(self, key: str = EXACT_KEY) -> bool:
        return self.store.get(BUCKET, key) is not None


@pytest.fixture
def kit(make_callback_app: Callable[..., Core], build: CallbackBuilder, store: SqliteStore) -> Kit:
    return Kit(build, FakeBucket(), store, make_callback_app)


# --- object: the callback describes the object stored now ----------------------------------------


@pytest.mark.parametrize(
    ("mode", "stored", "values", "status", "why"),
    [
        # No object under the key (never uploaded, or deleted since): retried briefly, then 503.
        ("object", None, {}, 503, "not in the bucket"),
        ("content", None, {}, 503, "not in the bucket"),
        # Another object is stored there now: not ours to record, nor to delete.
        ("object", png(), {"etag": "F" * 32}, 409, "different object"),
        ("content", png(), {"etag": "F" * 32}, 409, "different object"),
        ("object", png(), {"size": "4"}, 409, "bytes"),
        ("object", png(), {"crc64": "1234"}, 409, "CRC-64"),
    ],
)
def test_a_callback_for_an_object_not_stored_records_nothing(
    *, kit: Kit, mode: str, stored: bytes | None, values: dict[str, str], status: int, why: str
) -> None:
    facts = kit.bucket.put(EXACT_KEY, stored) if stored is not None else {}
    request = kit.build.request(values={**facts, **PNG_INFO, **values})
    got, payload = kit.answer(mode, request)
    assert (got, payload["code"]) == (status, {503: "Unavailable", 409: "Conflict"}[status])
    assert why in payload["message"]
    assert not kit.recorded()
    assert kit.bucket.removed == []  # nothing is deleted
    assert len(kit.bucket.reads) == (1 if stored else 4)  # the first read and three brief retries


def test_an_oss_outage_is_a_503_and_records_nothing(kit: Kit) -> None:
    request = kit.upload(png(), **PNG_INFO)
    kit.bucket.error = Unavailable("OSS answered 500 InternalError")
    status, payload = kit.answer("content", request)
    assert (status, payload["code"]) == (503, "Unavailable")
    assert not kit.recorded()


@pytest.mark.parametrize(
    ("mode", "hidden", "reads"),
    [
        ("off", 0, []),  # OSS is not asked
        ("object", 0, [0]),  # HeadObject only
        ("object", 2, [0, 0, 0]),  # a new object not yet visible: asked again, then recorded
    ],
)
def test_off_and_object_modes_record_without_judging_the_content(
    kit: Kit, mode: str, hidden: int, reads: list[int]
) -> None:
    """Random bytes under a .png name: the content is not read in these modes."""
    request = kit.upload(random_bytes())
    kit.bucket.hidden_reads = hidden
    status, payload = kit.answer(mode, request)
    assert (status, payload["Status"]) == (200, "OK"), payload
    assert [read[2] for read in kit.bucket.reads] == reads
    assert kit.recorded()


@pytest.mark.parametrize("mode", ["object", "content"])
def test_a_replay_after_an_overwrite_is_a_conflict_and_the_record_stays(
    kit: Kit, mode: str
) -> None:
    """A prefix grant may overwrite its key; the older callback replayed inside the grant's
    validity must not roll the record back to the object OSS no longer holds."""
    grant = kit.build.prefix_grant()
    key = PREFIX + "cat.png"
    info = {"imageInfo.format": "png", "imageInfo.width": "3", "imageInfo.height": "2"}
    old = kit.build.request(grant=grant, values={**kit.bucket.put(key, png(3, 2)), **info})
    assert kit.answer(mode, old)[0] == 200
    info.update({"imageInfo.width": "5", "imageInfo.height": "5"})
    new = kit.build.request(grant=grant, values={**kit.bucket.put(key, png(5, 5)), **info})
    assert kit.answer(mode, new)[0] == 200
    status, payload = kit.answer(mode, old)
    assert (status, payload["code"]) == (409, "Conflict")
    stored = kit.store.get(BUCKET, key)
    assert stored is not None
    assert stored.etag == kit.bucket.objects[key][0]
    assert key in kit.bucket.objects  # the newer object is not deleted


# --- content: the bytes are what the name and type claim ------------------------------------------


@pytest.mark.parametrize("ext", sorted(SAMPLES))
def test_real_files_of_each_kind_are_recorded(kit: Kit, ext: str) -> None:
    mime, data = SAMPLES[ext]
    key = PREFIX + "file." + ext
    info = {"png": PNG_INFO}.get(ext, {"imageInfo.format": ""})
    if ext in ("jpg", "gif", "webp"):
        info = {"imageInfo.format": ext, "imageInfo.width": "1", "imageInfo.height": "1"}
    values = {**kit.bucket.put(key, data), "mimeType": mime, **info}
    request = kit.build.request(grant=kit.build.prefix_grant(), values=values)
    status, payload = kit.answer("content", request)
    assert (status, payload["Status"]) == (200, "OK"), payload
    assert kit.bucket.reads == [(key, values["etag"], SNIFF_BYTES)]  # one ranged GET
    assert kit.recorded(key)


NO_IMAGE = {"imageInfo.format": "", "imageInfo.width": "", "imageInfo.height": ""}


@pytest.mark.parametrize(
    ("ext", "mime", "data", "info", "why"),
    [
        *(pytest.param(e, m, d, NO_IMAGE, "", id=name) for name, e, m, d in IMPOSTORS),
        # A PNG whose imageInfo says jpg, or that OSS could not read, or without dimensions.
        *(
            pytest.param("png", "image/png", png(), info, why, id=f"a PNG, OSS says {why}")
            for info, why in (
                ({**PNG_INFO, "imageInfo.format": "jpg"}, "jpg"),
                (NO_IMAGE, "could not"),
                (NO_IMAGE | {"imageInfo.format": "png"}, "dimension"),
            )
        ),
    ],
)
def test_content_that_is_not_what_it_claims_is_rejected_and_deleted(
    *, kit: Kit, ext: str, mime: str, data: bytes, info: dict[str, str], why: str
) -> None:
    key = PREFIX + "file." + ext
    values = {**kit.bucket.put(key, data), "mimeType": mime, **info}
    request = kit.build.request(grant=kit.build.prefix_grant(), values=values)
    status, payload = kit.answer("content", request)
    assert (status, payload["Status"], payload["code"]) == (200, "Rejected", "ContentRejected")
    assert payload["message"]
    assert why in payload["message"]
    assert not kit.recorded(key)
    assert key not in kit.bucket.objects  # deleted
