"""UPLOAD_VERIFY end to end (unset: content, the default): real files and impostors through the
`make dev` stack.

The browser's part is played by `requests` (grant → form POST → what OSS relays); the callback
reads the object from the emulator with oss2 (a ranged, conditional GetObject signed with the
callback role's own key under its RAM policy) and deletes what it rejects.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from shared.callback.settings import CallbackSettings
from shared.credentials import resolve_credentials
from shared.objects import OssObjects
from tests.e2e.conftest import LiveStack
from tests.samples import IMPOSTORS, SAMPLES, png

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


def test_the_image_facts_oss_reports_are_recorded(live: LiveStack) -> None:
    _, answer = upload(live, "vera", "png", "image/png", png(7, 5))
    assert answer["imageInfo"] == {"width": 7, "height": 5, "format": "png"}


# --- callbacks that describe no object stored now ----------------------------------------------


def remover(live: LiveStack) -> OssObjects:
    settings = CallbackSettings.from_env(live.stack.values)
    credentials = resolve_credentials(
        None, {}, settings.oss.access_key_id, settings.oss.access_key_secret
    )
    return OssObjects(settings.oss, credentials)


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
    etag = hashlib.md5(data).hexdigest()  # noqa: S324 - OSS's ETag
    assert remover(live).remove(grant["key"], etag) == "deleted"
    answer = live.journal(callback, 10.0)
    assert answer.status == 503, answer.body
    assert b"not in the bucket" in answer.body
    assert live.uploads(token) == []


def test_a_replayed_callback_for_an_overwritten_key_is_a_conflict(live: LiveStack) -> None:
    """A prefix grant's owner overwrites a key; the first upload's callback, replayed, is 409
    and the record stays the newer object's."""
    token = live.token("olga")
    grant = live.grant(token, path="p")
    key = grant["dir"] + "same.png"
    first, second = png(2, 2), png(3, 3)
    assert live.upload(grant, first, key=key, content_type="image/png").json()["Status"] == "OK"
    old_callback = live.journal.sent[-1]
    assert live.upload(grant, second, key=key, content_type="image/png").json()["Status"] == "OK"
    answer = live.journal(old_callback, 10.0)
    assert answer.status == 409, answer.body
    (record,) = live.uploads(token)
    assert record["etag"] == hashlib.md5(second).hexdigest().upper()  # noqa: S324
