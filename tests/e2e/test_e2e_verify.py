"""UPLOAD_VERIFY end to end (content, the default): real files and impostors through the stack;
the callback reads each object from the emulator with its own role's key and deletes what it
rejects; callbacks that describe no object stored now."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from shared.callback.settings import CallbackSettings
from shared.credentials import resolve_credentials
from shared.objects import OssObjects
from tests.samples import IMPOSTORS, SAMPLES, png
from tests.support.livestack import LiveStack

pytestmark = pytest.mark.e2e


def upload(live: LiveStack, user: str, ext: str, mime: str, data: bytes) -> tuple[str, Any]:
    token = live.token(user)
    grant = live.grant(token, path="v", filename=f"f.{ext}", size=str(len(data)), type=mime)
    reply = live.upload(grant, data, filename=f"f.{ext}", content_type=mime)
    assert reply.status_code == 200, reply.text
    return grant["key"], reply.json()


def test_real_files_are_recorded_and_impostors_rejected_and_deleted(live: LiveStack) -> None:
    for ext, (mime, data) in SAMPLES.items():
        key, answer = upload(live, "vera", ext, mime, data)
        assert (answer["Status"], answer["key"]) == ("OK", key), (ext, answer)
        assert live.get_object(key).content == data
    for name, ext, mime, data in IMPOSTORS[:3]:
        key, answer = upload(live, "ivan", ext, mime, data)
        assert (answer["Status"], answer["code"]) == ("Rejected", "ContentRejected"), name
        assert answer["message"], name
        assert live.get_object(key).status_code == 404, name  # gone from the bucket
    recorded = {item["key"].rsplit(".", 1)[-1] for item in live.uploads(live.token("vera"))}
    assert recorded == set(SAMPLES)
    assert live.uploads(live.token("ivan")) == []


# --- callbacks that describe no object stored now ----------------------------------------------


def test_a_lost_callback_replayed_after_the_object_was_deleted_records_nothing(
    live: LiveStack,
) -> None:
    data = png(4, 4)
    token = live.token("dora")
    grant = live.grant(token, path="d", filename="a.png", size=str(len(data)), type="image/png")
    live.journal.lose = True
    reply = live.upload(grant, data, filename="a.png", content_type="image/png")
    assert reply.status_code == 203, reply.text  # CallbackFailed: stored, not recorded
    (callback,) = live.journal.sent
    live.journal.lose = False
    # the callback's own role deletes it (what a rejection does)
    oss = CallbackSettings.from_env(live.stack.values).oss
    credentials = resolve_credentials(None, {}, oss.access_key_id, oss.access_key_secret)
    etag = hashlib.md5(data).hexdigest()  # noqa: S324 - OSS's ETag
    assert OssObjects(oss, credentials).remove(grant["key"], etag) == "deleted"
    answer = live.journal(callback, 10.0)
    assert answer.status == 503, answer.body
    assert b"not in the bucket" in answer.body
    assert live.uploads(token) == []
