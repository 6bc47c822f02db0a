"""Private files (DESIGN "Private files"): what each record carries (the URLs' signatures:
test_presign.py), who may read or delete it, and that a delete racing a callback or a
reconciliation leaves no orphan."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from shared.errors import Conflict, Unavailable
from shared.http import Core
from shared.records.base import PutResult, Record
from shared.records.sqlite import SqliteStore
from shared.settings import Limits
from shared.sign.downloads import content_disposition, thumbnail_process
from tests.support.callbacks import Removals
from tests.support.sign import NOW, assert_error, body, call, query_of

BUCKET = "example-bucket"
KEY = "uploads/alice/01HZX.png"


def rec(key: str = KEY, *, owner: str = "alice", etag: str = "E1", **fields: Any) -> Record:
    values = {"size": 10, "mime_type": "image/png", "created_at": int(NOW * 1000) - 5000, **fields}
    return Record(owner=owner, bucket=BUCKET, key=key, etag=etag, **values)


@pytest.mark.parametrize(
    "value", ["", "image/resize,m_lfit,w_256,h_256", "image/resize,w_100/format,webp/quality,q_80"]
)
def test_thumbnail_process_accepts(value: str) -> None:
    assert thumbnail_process(value) == value


@pytest.mark.parametrize(
    ("mime", "name", "expected"),
    [
        ("image/png", "", "inline"),
        ("image/png", "cat.png", 'inline; filename="cat.png"'),
        ("application/pdf", "r.pdf", 'attachment; filename="r.pdf"'),
        ("text/plain", "a.txt", 'attachment; filename="a.txt"'),
        ("image/svg+xml", "x.svg", 'attachment; filename="x.svg"'),
        (
            "image/jpeg",
            'é "q".jpg',
            "inline; filename=\"_ _q_.jpg\"; filename*=UTF-8''%C3%A9%20%22q%22.jpg",
        ),
        ("video/mp4", "a;b.mp4", "inline; filename=\"a_b.mp4\"; filename*=UTF-8''a%3Bb.mp4"),
    ],
)
def test_content_disposition(mime: str, name: str, expected: str) -> None:
    assert content_disposition(mime, name) == expected


@pytest.fixture
def records(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(str(tmp_path / "records.sqlite3"))
    store.put(rec(file_name="Ünïcode cat.png"), replace=False)
    store.put(rec("uploads/alice/01HZY.pdf", etag="E2", mime_type="application/pdf"), replace=False)
    store.put(rec("uploads/bob/01HZZ.png", owner="bob", etag="E3"), replace=False)
    return store


@pytest.fixture
def app(
    make_sign_app: Callable[..., Core], records: SqliteStore, removals: Removals
) -> Callable[..., Core]:
    """The sign core over `records` and `removals`; settings overridable."""
    return partial(
        make_sign_app, store_factory=lambda credentials: records, remover_factory=removals
    )


def upload_path(key: str) -> str:
    return "/uploads/" + "/".join(quote(segment, safe="") for segment in key.split("/"))


def test_each_record_carries_a_signed_url_and_images_a_thumbnail(app: Callable[..., Core]) -> None:
    items = body(call(app(), path="/uploads"))["items"]
    png, pdf = sorted(items, key=lambda item: item["key"])
    assert png["fileName"] == "Ünïcode cat.png"
    url = query_of(png["url"])
    assert url["x-oss-signature-version"] == "OSS4-HMAC-SHA256"
    assert url["x-oss-expires"] == "300"
    assert url["response-content-disposition"] == (
        "inline; filename=\"_n_code cat.png\"; filename*=UTF-8''%C3%9Cn%C3%AFcode%20cat.png"
    )
    assert urlsplit(png["url"]).path == "/" + KEY
    thumb = query_of(png["thumbnailUrl"])
    assert thumb["x-oss-process"] == "image/resize,m_lfit,w_256,h_256"
    assert "thumbnailUrl" not in pdf
    assert query_of(pdf["url"])["response-content-disposition"] == "attachment"


def test_v1_and_public_modes(app: Callable[..., Core]) -> None:
    v1 = body(call(app(OSS_SIGNATURE_VERSION="v1"), path="/uploads"))["items"][0]
    assert {"OSSAccessKeyId", "Expires", "Signature"} <= set(query_of(v1["url"]))
    assert query_of(v1["url"])["Expires"] == str(int(NOW) + 300)
    public = app(DOWNLOAD_MODE="public", DOWNLOAD_BASE_URL="https://files.example.com")
    item = body(call(public, path="/uploads"))["items"][0]
    assert item["url"].startswith("https://files.example.com/uploads/alice/")
    assert "x-oss-signature" not in item["url"]
    off = app(IMAGE_THUMBNAIL_PROCESS="")
    assert all("thumbnailUrl" not in i for i in body(call(off, path="/uploads"))["items"])


def test_get_one_upload_with_or_without_the_fc2_prefix_and_no_other_method(
    app: Callable[..., Core],
) -> None:
    data = body(call(app(), path=upload_path(KEY)))
    assert data["key"] == KEY
    assert query_of(data["url"])["x-oss-signature"]
    fc2 = call(app(), path="/2016-08-15/proxy/svc/fn" + upload_path(KEY))
    assert body(fc2)["key"] == KEY
    response = call(app(), method="PUT", path=upload_path(KEY))
    assert_error(response, 405, "MethodNotAllowed")
    assert response.header("Allow") == "GET, DELETE, OPTIONS"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize(
    "path",
    [
        upload_path("uploads/bob/01HZZ.png"),  # not yours
        upload_path("uploads/alice/absent.png"),  # absent
        "/uploads/uploads/alice/../bob/01HZZ.png",
        "/uploads/uploads%2Fbob%2F01HZZ.png",  # decoded by the adapter: still bob's
        "/uploads/uploads/bob/01HZZ%252Epng",
        "/uploads/" + "a/" * 600 + "x.png",
        "/uploads/uploads/alice/\x00.png",
        "/uploads/uploads/alice/%0a.png",
    ],
)
def test_not_yours_absent_or_tricks_are_one_404(
    app: Callable[..., Core], removals: Removals, method: str, path: str
) -> None:
    response = call(app(), method=method, path=path)
    assert_error(response, 404, "NotFound")
    assert body(response)["message"] == "no such upload"
    assert b"x-oss-signature" not in response.body
    assert removals.calls == []


def test_delete_removes_the_object_then_the_record_then_releases(
    app: Callable[..., Core], records: SqliteStore, removals: Removals
) -> None:
    """The quota is given back once (the ledger's usage row), not again by a retried DELETE."""
    stored = records.get(BUCKET, KEY)
    assert stored is not None
    records.charge(stored.owner, stored.size, 1, Limits())  # what the callback counted
    core = app()
    response = call(core, method="DELETE", path=upload_path(KEY))
    assert (response.status, response.body) == (204, b"")
    assert removals.calls == [(KEY, "E1")]
    assert records.get(BUCKET, KEY).deleted  # type: ignore[union-attr]
    usage = records.usage(stored.owner)
    assert (usage.used_bytes, usage.used_files) == (0, 0)
    assert KEY not in [i["key"] for i in body(call(core, path="/uploads"))["items"]]
    assert_error(call(core, path=upload_path(KEY)), 404, "NotFound")
    again = call(core, method="DELETE", path=upload_path(KEY))  # a retry finishes, idempotent
    assert again.status == 204
    assert removals.calls == [(KEY, "E1")]
    assert records.usage(stored.owner) == usage  # released once
    assert_error(call(core, method="DELETE", path=upload_path(KEY), user="bob"), 404, "NotFound")


def test_a_delete_that_fails_at_the_object_keeps_the_record_and_a_retry_finishes(
    app: Callable[..., Core], records: SqliteStore, removals: Removals
) -> None:
    removals.error = Unavailable("OSS answered 503")
    assert_error(call(app(), method="DELETE", path=upload_path(KEY)), 503, "Unavailable")
    assert not records.get(BUCKET, KEY).deleted  # type: ignore[union-attr]
    removals.error, removals.outcome = None, "gone"
    assert call(app(), method="DELETE", path=upload_path(KEY)).status == 204
    assert records.get(BUCKET, KEY).deleted  # type: ignore[union-attr]


def test_a_delete_that_fails_at_the_record_is_finished_by_a_retry(
    app: Callable[..., Core],
    records: SqliteStore,
    removals: Removals,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def down(*args: Any) -> bool:
        raise Unavailable("the record store is unavailable; try again")

    monkeypatch.setattr(records, "tombstone", down)
    assert_error(call(app(), method="DELETE", path=upload_path(KEY)), 503, "Unavailable")
    monkeypatch.undo()
    removals.outcome = "gone"  # the object went in the first attempt
    assert call(app(), method="DELETE", path=upload_path(KEY)).status == 204
    assert records.get(BUCKET, KEY).deleted  # type: ignore[union-attr]
    assert removals.calls == [(KEY, "E1"), (KEY, "E1")]


# --- races: delete against the callback and reconciliation (both orders) ------------------------


def test_after_a_delete_a_late_write_is_refused_and_a_newer_object_recorded(
    records: SqliteStore,
) -> None:
    """Delete first, then the callback (or a reconciliation) of that same object: refused; then
    the callback of a newer object under the key: recorded and listed. The tombstone is guarded
    by the etag the delete read."""
    assert not records.tombstone(BUCKET, KEY, "E-other", 1)
    assert not records.get(BUCKET, KEY).deleted  # type: ignore[union-attr]
    assert records.tombstone(BUCKET, KEY, "E1", int(NOW * 1000))
    for late in (rec(), rec(reconciled=True, created_at=1)):
        with pytest.raises(Conflict):
            records.put(late, replace=False)
    assert records.get(BUCKET, KEY).deleted  # type: ignore[union-attr]
    outcome = records.put(rec(etag="E9", created_at=1), replace=False)
    assert outcome.result is PutResult.REPLACED
    assert [r.etag for r in records.list_by_owner("alice").items if r.key == KEY] == ["E9"]


def test_callback_first_then_delete_keeps_the_newer_object_and_its_record(
    app: Callable[..., Core],
    records: SqliteStore,
    removals: Removals,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The owner's newer object (E9) lands and is recorded after DELETE read E1's record: the
    etag guard keeps E9's object (the remover sees another etag) and E9's record; 409."""
    stale = records.get(BUCKET, KEY)
    removals.outcome = "replaced"

    def reading_then_racing(bucket: str, key: str) -> Record | None:
        records.put(rec(etag="E9", created_at=int(NOW * 1000)), replace=True)
        return stale

    monkeypatch.setattr(records, "get", reading_then_racing)
    response = call(app(), method="DELETE", path=upload_path(KEY))
    monkeypatch.undo()
    assert_error(response, 409, "Conflict")
    kept = records.get(BUCKET, KEY)
    assert kept is not None
    assert (kept.etag, kept.deleted) == ("E9", False)
    assert removals.calls == [(KEY, "E1")]  # asked to delete E1 only; E9's object stays


def test_reconciliation_first_then_delete(records: SqliteStore) -> None:
    """Reconciliation re-writes the live object (a duplicate), then the delete tombstones it."""
    assert records.put(rec(reconciled=True), replace=False).result is PutResult.DUPLICATE
    assert records.tombstone(BUCKET, KEY, "E1", int(NOW * 1000))
    assert records.list_by_owner("alice").items[0].key != KEY


def test_an_earlier_sqlite_file_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(
            """CREATE TABLE records (bucket TEXT NOT NULL, key TEXT NOT NULL, owner TEXT NOT NULL,
            created_at INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
            mime_type TEXT NOT NULL, image_width INTEGER, image_height INTEGER,
            image_format TEXT NOT NULL, crc64 TEXT NOT NULL, content_md5 TEXT NOT NULL,
            client_ip TEXT NOT NULL, request_id TEXT NOT NULL, grant_id TEXT NOT NULL,
            reconciled INTEGER NOT NULL, PRIMARY KEY (bucket, key)) WITHOUT ROWID;
            INSERT INTO records VALUES ('example-bucket', 'uploads/alice/old.png', 'alice', 1, 1,
            'E0', 'image/png', NULL, NULL, '', '', '', '', '', '', 0);"""
        )
    db.close()
    store = SqliteStore(str(path))
    old = store.get(BUCKET, "uploads/alice/old.png")
    assert old is not None
    assert (old.file_name, old.deleted_at) == ("", 0)
    store.put(rec(file_name="n.png"), replace=False)
    assert store.get(BUCKET, KEY).file_name == "n.png"  # type: ignore[union-attr]
    store.close()
    reopened = SqliteStore(str(path))  # the migration runs once, and again harmlessly
    assert len(reopened.list_by_owner("alice").items) == 2
    reopened.close()
