"""Multipart uploads over real sockets: the sign function's /multipart routes (their own RAM
policy), the OSS emulator, the callback and the ledger. Every refusal is proven with nothing
recorded; where the declared size can never be met, the upload is gone from the emulator."""

from __future__ import annotations

import hashlib

import pytest

from shared.records.sqlite import SqliteStore
from tests.support.livestack import LiveStack, StartStack
from tests.support.multipart import PART, SIZE, Client, data, md5_b64, open_uploads, slices

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("verify", ["content", "object"])
def test_a_multipart_upload_is_recorded_once_under_the_servers_key(
    start_stack: StartStack, verify: str
) -> None:
    """create → part URLs (Content-MD5 signed in) → PUT the parts → resume view → complete →
    the record is listed by GET /uploads, the object is the file, the session is settled. The
    callback verified it (UPLOAD_VERIFY): If-Match on the multipart ETag, the whole CRC-64."""
    live = start_stack(MULTIPART_PART_BYTES=str(PART), UPLOAD_VERIFY=verify)
    alice = Client(live, "alice")
    content = data()
    session = alice.create(
        filename="Holiday film.bin", path="videos", type="application/octet-stream"
    )
    assert (session["partSize"], session["partCount"]) == (PART, 3)
    assert session["key"].startswith("uploads/alice/videos/")
    upload_id = session["uploadId"]
    chunks = slices(content)
    digests = {str(n): md5_b64(chunk) for n, chunk in enumerate(chunks, 1)}
    urls = alice.urls(upload_id, [1, 2, 3], digests)
    for part, chunk in zip(urls, chunks, strict=True):
        assert part["headers"] == {"Content-MD5": digests[str(part["partNumber"])]}
        sent = live.http.put(part["url"], data=chunk, headers=part["headers"], timeout=30)
        assert sent.status_code == 200, sent.text
    resume = alice.call("GET", f"/multipart/{upload_id}").json()
    sizes = [(p["partNumber"], p["size"]) for p in resume["parts"]]
    assert sizes == [(1, PART), (2, PART), (3, 1000)]
    assert resume["parts"][0]["etag"] == hashlib.md5(chunks[0]).hexdigest().upper()  # noqa: S324
    done = alice.complete(upload_id)
    assert done.status_code == 200, done.text
    record = done.json()
    assert (record["Status"], record["key"], record["size"]) == ("OK", session["key"], SIZE)
    assert record["etag"].endswith("-3")  # OSS's multipart ETag
    assert (record["owner"], record["fileName"]) == ("alice", "Holiday film.bin")
    assert record["grantId"] == upload_id
    listed = live.uploads(live.token("alice"))
    assert [item["key"] for item in listed] == [session["key"]]
    assert live.get_object(session["key"]).content == content
    assert open_uploads(live) == []
    with live.ledger() as ledger:
        assert ledger.get_grant("alice", upload_id).state == "used"
        usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.used_files, usage.reserved_bytes) == (SIZE, 1, 0)
    again = alice.complete(upload_id)  # a retry after success answers the same record
    assert (again.status_code, again.json()["etag"]) == (200, record["etag"])


@pytest.mark.parametrize(
    ("sizes", "named"),
    [
        ([PART, PART, 999], "part 3 has 999 bytes; it must have 1000"),
        ([PART + 1, PART, 1000], f"part 1 has {PART + 1} bytes; it must have {PART}"),
    ],
    ids=["short-of-the-declared-size", "a-part-over-part-size"],
)
def test_parts_that_can_never_make_the_declared_size_abort_the_upload(
    live: LiveStack, ledger: SqliteStore, sizes: list[int], named: str
) -> None:
    alice = Client(live, "alice")
    upload_id = alice.create()["uploadId"]
    for number, size in enumerate(sizes, 1):
        alice.put(upload_id, number, data(size, seed=number))
    refused = alice.complete(upload_id)
    assert (refused.status_code, refused.json()["code"]) == (400, "BadRequest")
    assert named in refused.json()["message"]
    assert open_uploads(live) == []
    assert live.uploads(live.token("alice")) == []
    assert ledger.get_grant("alice", upload_id).state == "rejected"
    assert ledger.usage("alice").reserved_bytes == 0
    assert alice.call("GET", f"/multipart/{upload_id}").status_code == 404


def test_a_complete_before_every_part_keeps_the_upload(
    live: LiveStack, ledger: SqliteStore
) -> None:
    """Missing parts can still come: 400 naming them, nothing aborted, then it completes."""
    alice = Client(live, "alice")
    content = data()
    upload_id = alice.create()["uploadId"]
    chunks = slices(content)
    alice.put(upload_id, 2, chunks[1])
    early = alice.complete(upload_id)
    assert (early.status_code, early.json()["code"]) == (400, "BadRequest")
    assert "parts 1, 3 are missing" in early.json()["message"]
    assert [upload for _, upload in open_uploads(live)] == [upload_id]
    assert ledger.get_grant("alice", upload_id).state == "open"
    alice.put(upload_id, 1, chunks[0])
    alice.put(upload_id, 3, chunks[2])
    done = alice.complete(upload_id)
    assert (done.status_code, done.json()["Status"]) == (200, "OK")


def test_another_users_upload_is_404_on_every_route(live: LiveStack) -> None:
    alice, mallory = Client(live, "alice"), Client(live, "mallory")
    upload_id = alice.create()["uploadId"]
    alice.put(upload_id, 1, data(PART))
    for method, path, payload in [
        ("POST", f"/multipart/{upload_id}/parts", {"partNumbers": [1]}),
        ("GET", f"/multipart/{upload_id}", None),
        ("POST", f"/multipart/{upload_id}/complete", None),
        ("DELETE", f"/multipart/{upload_id}", None),
    ]:
        answer = mallory.call(method, path, payload)
        assert (answer.status_code, answer.json()["code"]) == (404, "NotFound"), path
    assert [upload for _, upload in open_uploads(live)] == [upload_id]
    assert len(alice.call("GET", f"/multipart/{upload_id}").json()["parts"]) == 1


def test_over_the_quota_at_create_leaves_no_upload(start_stack: StartStack) -> None:
    live = start_stack(MULTIPART_PART_BYTES=str(PART), QUOTA_BYTES_PER_USER=str(SIZE - 1))
    alice = Client(live, "alice")
    refused = alice.call("POST", "/multipart", {"filename": "film.bin", "size": SIZE})
    assert (refused.status_code, refused.json()["code"]) == (403, "QuotaExceeded")
    assert open_uploads(live) == []
    stats = live.emulator_stats()
    assert "InitiateMultipartUpload" not in stats  # refused before OSS was asked anything
    with live.ledger() as ledger:
        assert ledger.usage("alice").reserved_bytes == 0


def test_delete_aborts_and_releases_the_reservation_once(
    live: LiveStack, ledger: SqliteStore
) -> None:
    alice = Client(live, "alice")
    upload_id = alice.create()["uploadId"]
    kept = alice.create(size=PART)["uploadId"]  # its reservation must survive both DELETEs
    alice.put(upload_id, 1, data(PART))
    assert ledger.usage("alice").reserved_bytes == SIZE + PART
    first = alice.call("DELETE", f"/multipart/{upload_id}")
    assert first.status_code == 204
    assert open_uploads(live) == [(ledger.get_grant("alice", kept).target, kept)]
    assert ledger.get_grant("alice", upload_id).state == "expired"
    usage = ledger.usage("alice")
    assert (usage.reserved_bytes, usage.reserved_files) == (PART, 1)
    assert alice.call("DELETE", f"/multipart/{upload_id}").status_code == 204  # idempotent
    usage = ledger.usage("alice")
    assert (usage.reserved_bytes, usage.reserved_files) == (PART, 1)  # released once
    assert alice.call("GET", f"/multipart/{upload_id}").status_code == 404
    assert alice.complete(upload_id).status_code == 404


def test_a_rejected_callback_answer_is_passed_through(live: LiveStack) -> None:
    """A .png that is no PNG: the callback (UPLOAD_VERIFY=content) rejects it, deletes the
    object, and the browser gets its `Rejected` answer from Complete."""
    alice = Client(live, "alice")
    session = alice.create(size=PART + 10, filename="cat.png", type="image/png")
    content = data(PART + 10)
    for number, chunk in enumerate(slices(content), 1):
        alice.put(session["uploadId"], number, chunk)
    answer = alice.complete(session["uploadId"])
    assert answer.status_code == 200, answer.text
    assert (answer.json()["Status"], answer.json()["code"]) == ("Rejected", "ContentRejected")
    assert live.uploads(live.token("alice")) == []
    assert live.get_object(session["key"]).status_code == 404
