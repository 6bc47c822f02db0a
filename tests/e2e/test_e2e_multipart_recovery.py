"""Multipart uploads when something goes wrong after the parts are in: the callback lost at
Complete, the ledger refusing after Initiate, sessions left open (the sweeper, with the reconcile
function's own RAM policy), and a file past PostObject's 5 GiB (helpers:
tests/support/multipart.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from local.dev_config import ROLE_KEYS
from shared.credentials import Credentials
from shared.errors import QuotaExceeded
from shared.objects import OssObjects
from shared.reconcile.settings import ReconcileSettings
from shared.reconcile.sweep import sweep
from shared.records.sqlite import SqliteStore
from shared.settings import Secret
from shared.sign import multipart
from shared.sign.app import create_app
from shared.sign.settings import SignSettings
from tests.support.livestack import LiveStack, StartStack
from tests.support.multipart import PART, SIZE, Client, data, open_uploads, slices
from tests.support.sign import request

pytestmark = pytest.mark.e2e


def test_the_sweeper_aborts_a_session_left_open_and_records_one_whose_callback_was_lost(
    live: LiveStack, ledger: SqliteStore
) -> None:
    """OSS stored one upload but its Complete callback never arrived; the other was left open
    with one part. The reconcile function's own key (deploy/ram/reconcile-policy.json)."""
    alice = Client(live, "alice")
    left_open = alice.create()["uploadId"]
    alice.put(left_open, 1, data(PART))
    session = alice.create()
    upload_id = session["uploadId"]
    for number, chunk in enumerate(slices(data()), 1):
        alice.put(upload_id, number, chunk)
    live.journal.lose = True
    lost = alice.complete(upload_id)
    live.journal.lose = False
    assert (lost.status_code, lost.json()["code"]) == (503, "Unavailable")
    assert live.uploads(live.token("alice")) == []
    assert ledger.get_grant("alice", upload_id).state == "open"
    refused = alice.call("DELETE", f"/multipart/{upload_id}")
    assert (refused.status_code, refused.json()["code"]) == (409, "Conflict")
    # the bucket as the reconcile function sees it: its own key, bound to its RAM policy
    settings, role = ReconcileSettings.from_env(live.stack.values), ROLE_KEYS["reconcile"]
    objects = OssObjects(settings.oss, Credentials(role.key_id, Secret(role.secret)))
    ended = time.time() + multipart.SESSION_SECONDS + 200  # past the grace and the settle time
    report = sweep(objects, ledger, limits=settings.limits, now=lambda: ended)
    counts = {what: report.count(what) for what in ("aborted", "released", "recorded", "failed")}
    assert counts == {"aborted": 1, "released": 1, "recorded": 1, "failed": 0}
    assert open_uploads(live) == []
    assert ledger.get_grant("alice", left_open).state == "expired"
    record = ledger.get(live.stack.values["OSS_BUCKET"], session["key"])
    assert record is not None
    assert (record.owner, record.size, record.grant_id) == ("alice", SIZE, upload_id)
    assert ledger.get_grant("alice", upload_id).state == "used"
    assert ledger.usage("alice").reserved_bytes == 0


def test_a_file_past_postobjects_5_gib_is_planned_in_10000_parts(start_stack: StartStack) -> None:
    """UPLOAD_MAX_BYTES above 5 GiB: /multipart takes a 6 GiB file (the part size raised so that
    10,000 parts hold it), /signature refuses it."""
    six = 6 * 1024**3
    live = start_stack(MULTIPART_PART_BYTES=str(PART), UPLOAD_MAX_BYTES=str(six))
    alice = Client(live, "alice")
    session = alice.create(size=six, filename="disk.bin")
    assert (session["partSize"], session["partCount"]) == (644_246, 10_000)
    (last,) = alice.urls(session["uploadId"], [10_000])
    assert "partNumber=10000&" in last["url"]
    post = alice.call("GET", "/signature?filename=disk.bin&size=" + str(six))
    assert (post.status_code, post.json()["code"]) == (413, "TooLarge")
    assert alice.call("DELETE", f"/multipart/{session['uploadId']}").status_code == 204
    assert open_uploads(live) == []


class LosingLedger:
    """A real ledger whose grant write is refused, as when a concurrent request took the last
    room between the early check and the write."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner

    def open_grant(self, grant: Any, limits: Any, now: float) -> None:
        raise QuotaExceeded("another upload took the last room meanwhile")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_an_upload_the_ledger_refuses_after_initiate_is_aborted(
    live: LiveStack, ledger: SqliteStore
) -> None:
    values = dict(live.stack.values)
    core = create_app(
        SignSettings.from_env(values),
        environ={},
        store_factory=lambda _credentials: LosingLedger(ledger),
    )
    headers = {"Authorization": f"Bearer {live.token('alice')}"}
    body = b'{"filename": "film.bin", "size": 300000}'
    response = core(request("POST", "/multipart", headers=headers, body=body))
    assert (response.status, json.loads(response.body)["code"]) == (403, "QuotaExceeded")
    stats = live.emulator_stats()
    assert (stats["InitiateMultipartUpload"], stats["AbortMultipartUpload"]) == (1, 1)
    assert open_uploads(live) == []
