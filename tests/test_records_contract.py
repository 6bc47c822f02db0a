"""One contract for every record store (shared/records/base.py), run against each backend.

SQLite runs on a real file; Tablestore runs the real backend code against an in-memory OTSClient
(tests/support/ots.py) patched in with pytest-mock, answering short pages to exercise continuation.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import BadRequest, Conflict
from shared.records import write
from shared.records.base import Page, PutOutcome, PutResult, Record, RecordStore
from shared.records.cursor import SortKey, decode_cursor, encode_cursor
from tests.support.records import BUCKET, OTHER_ETAG, MakeStore, newest_first, record


@pytest.fixture
def store(make_store: MakeStore) -> RecordStore:
    return make_store()


def all_pages(store: RecordStore, owner: str, limit: int) -> list[Page]:
    pages = [store.list_by_owner(owner, limit=limit)]
    while pages[-1].next is not None:
        assert len(pages) <= 1000, "pagination does not end"
        pages.append(store.list_by_owner(owner, limit=limit, cursor=pages[-1].next))
    return pages


# --- writes -----------------------------------------------------------------------------------


def test_a_new_object_is_created_and_read_back_and_no_other(store: RecordStore) -> None:
    new = record()
    outcome = store.put(new, replace=False)
    assert (outcome.result, outcome.record) == (PutResult.CREATED, new)
    assert store.get(BUCKET, new.key) == new
    assert store.get(BUCKET, "uploads/alice/other.png") is None
    assert store.get("other-bucket", new.key) is None


@pytest.mark.parametrize("replace", [False, True])
def test_the_same_object_again_is_a_duplicate_and_changes_nothing(
    store: RecordStore, replace: bool
) -> None:
    first = record()
    store.put(first, replace=False)
    again = record(created_at=first.created_at + 5000, request_id="REQ-2", grant_id="g-2")
    outcome = store.put(again, replace=replace)
    assert outcome.result is PutResult.DUPLICATE
    assert outcome.record == first
    assert store.get(BUCKET, first.key) == first


def test_etags_compare_as_digests_quoted_or_not(store: RecordStore) -> None:
    store.put(record(etag='"D41D8CD98F00B204E9800998ECF8427E"'), replace=False)
    outcome = store.put(record(etag="d41d8cd98f00b204e9800998ecf8427e"), replace=False)
    assert outcome.result is PutResult.DUPLICATE


def test_a_prefix_grant_replaces_with_the_newer_object(store: RecordStore) -> None:
    store.put(record(), replace=False)
    newer = record(
        etag=OTHER_ETAG,
        size=7,
        mime_type="text/plain",
        created_at=record().created_at + 60_000,
        image_width=None,
        image_height=None,
        image_format="",
        reconciled=True,
    )
    outcome = store.put(newer, replace=True)
    assert outcome.result is PutResult.REPLACED
    assert outcome.record == newer
    assert store.get(BUCKET, newer.key) == newer  # no stale image columns survive
    assert [r.etag for r in store.list_by_owner("alice").items] == [newer.etag]


def test_an_exact_key_grant_refuses_a_different_object(store: RecordStore) -> None:
    first = record()
    store.put(first, replace=False)
    with pytest.raises(Conflict) as caught:
        store.put(record(etag=OTHER_ETAG), replace=False)
    assert caught.value.status == 409
    assert store.get(BUCKET, first.key) == first


def test_a_replayed_older_object_never_overwrites_a_newer_record(store: RecordStore) -> None:
    newer = record(etag=OTHER_ETAG, created_at=2_000_000_000_000)
    store.put(newer, replace=False)
    with pytest.raises(Conflict):
        store.put(record(created_at=1_900_000_000_000), replace=True)
    assert store.get(BUCKET, newer.key) == newer


@pytest.mark.parametrize("racer_etag", [OTHER_ETAG, "FFFF"], ids=["same-object", "another-object"])
def test_a_lost_race_to_replace_is_judged_again(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch, racer_etag: str
) -> None:
    """Another writer replaces the row between our read and our guarded replace: the backend's
    guard refuses ours, and we judge again (the same object → duplicate, another → Conflict)."""
    store.put(record(), replace=False)
    racer = record(etag=racer_etag, created_at=record().created_at + 5)
    decide = write.decide

    def decide_then_race(stored: Record, incoming: Record, *, replace: bool) -> write.Action:
        monkeypatch.setattr(write, "decide", decide)  # the racer's own write decides as usual
        assert store.put(racer, replace=True).result is PutResult.REPLACED
        return decide(stored, incoming, replace=replace)

    monkeypatch.setattr(write, "decide", decide_then_race)
    ours = record(etag=OTHER_ETAG, created_at=record().created_at + 1)
    if racer_etag == OTHER_ETAG:
        assert store.put(ours, replace=True) == PutOutcome(racer, PutResult.DUPLICATE)
    else:
        with pytest.raises(Conflict):
            store.put(ours, replace=True)
    assert store.get(BUCKET, racer.key) == racer  # never overwritten


def test_optional_fields_round_trip(store: RecordStore) -> None:
    sparse = Record(
        owner="anonymous",
        bucket=BUCKET,
        key="avatars/x.bin",
        size=1,
        etag="X",
        mime_type="application/octet-stream",
        created_at=0,
        reconciled=True,
    )
    store.put(sparse, replace=False)
    assert store.get(BUCKET, sparse.key) == sparse
    assert store.list_by_owner("anonymous").items == [sparse]


@pytest.mark.parametrize(
    "overrides",
    [
        {"owner": ""},
        {"key": ""},
        {"bucket": ""},
        {"etag": ""},
        {"size": -1},
        {"key": "k" * 1024},
        {"created_at": -1},
        {"created_at": 2**53 + 1},  # no cursor could name it; no int64 could invert it
    ],
)
def test_an_unusable_record_is_a_bad_request(store: RecordStore, overrides: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        store.put(record(**overrides), replace=False)


# --- listing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 6])
def test_a_page_boundary_inside_a_tie_neither_skips_nor_repeats(
    store: RecordStore, limit: int
) -> None:
    t = 1_700_000_000_000
    tied = ["a", "b", "b/", "b0", "c", "é"]  # "/" < "0" < letters < "é": byte order, not locale
    for name in reversed(tied):  # written in the opposite order to the one listed
        store.put(record(key=f"uploads/alice/{name}", created_at=t, etag=name), replace=False)
    for bucket in ("zz-bucket", "aa-bucket"):  # the same key at the same time in other buckets
        store.put(record(bucket=bucket, key="uploads/alice/b", created_at=t), replace=False)
    store.put(record(key="uploads/alice/z-old", created_at=t - 1), replace=False)
    store.put(record(key="uploads/alice/0-new", created_at=t + 1), replace=False)
    store.put(record(owner="bob", key="uploads/alice/b1", created_at=t), replace=False)
    pages = all_pages(store, "alice", limit)
    seen = [r for page in pages for r in page.items]
    listed = [r.key.removeprefix("uploads/alice/") for r in seen]
    assert listed == ["0-new", "a", "b", "b", "b", *tied[2:], "z-old"]
    in_buckets = sorted(r.bucket for r in seen if r.key.endswith("/b"))
    assert in_buckets == ["aa-bucket", BUCKET, "zz-bucket"]  # each once, in the backend's order
    # Every cursor but the last was taken inside the tie or at its edge: each resumes exactly.
    assert all(len(page.items) == limit for page in pages[:-1])


def test_an_empty_listing_and_the_largest_page(store: RecordStore) -> None:
    assert store.list_by_owner("nobody") == Page(items=[], next=None)
    store.put(record(), replace=False)
    assert len(store.list_by_owner("alice", limit=200).items) == 1


def test_owners_are_isolated(store: RecordStore) -> None:
    for owner in ("alice", "bob", "alicea", "alic"):
        for i in range(3):
            store.put(
                record(owner=owner, key=f"uploads/{owner}/{i}", created_at=100 + i), replace=False
            )
    pages = all_pages(store, "alice", 2)
    assert {r.owner for page in pages for r in page.items} == {"alice"}
    assert sum(len(page.items) for page in pages) == 3
    # A cursor from another owner's listing positions the listing; it never reveals that owner.
    bob_cursor = store.list_by_owner("bob", limit=1).next
    assert bob_cursor is not None
    assert {r.owner for r in store.list_by_owner("alice", cursor=bob_cursor).items} <= {"alice"}


@pytest.mark.parametrize(
    ("at", "name", "expected"),
    [
        (102, "2x", ["1", "1b", "1c", "0"]),  # after item 2 (same time, greater key)
        (102, "1x", ["2", "1", "1b", "1c", "0"]),  # before item 2 (same time, smaller key)
        (101, "1b", ["1c", "0"]),  # inside a tie: only the greater keys of that millisecond
        (101, "1", ["1b", "1c", "0"]),  # a key of that millisecond that was never there
        (104, "9", ["3", "2", "1", "1b", "1c", "0"]),  # newer than everything
        (99, "0", []),  # older than everything
    ],
)
def test_a_cursor_resumes_after_its_item_even_when_that_item_is_gone(
    store: RecordStore, at: int, name: str, expected: list[str]
) -> None:
    for i in range(4):
        store.put(record(key=f"uploads/alice/{i}", created_at=100 + i, etag=f"E{i}"), replace=False)
    for name_ in ("1b", "1c"):  # items 1, 1b and 1c share a millisecond
        store.put(record(key=f"uploads/alice/{name_}", created_at=101), replace=False)
    cursor = encode_cursor(SortKey(at, f"uploads/alice/{name}", BUCKET))
    page = store.list_by_owner("alice", cursor=cursor)
    assert [r.key.rsplit("/", 1)[1] for r in page.items] == expected
    assert page.next is None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_CURSORS = [
    "",
    "!!!!",
    "a b",
    "x" * 5000,
    _b64(b"not json"),
    _b64(b'{"t":1,"k":"a","b":"b"}'),
    _b64(b'[1,"k"]'),
    _b64(b'[1,"k","b","extra"]'),
    _b64(b'[-1,"k","b"]'),
    _b64(b'[true,"k","b"]'),
    _b64(b'[1.5,"k","b"]'),
    _b64(b'[1,"","b"]'),
    _b64(b'[1,"k",""]'),
    _b64(b'[1,2,"b"]'),
    _b64(b'[1, "k", "b"]'),  # a valid position, spelled differently
    _b64(b'[1,"\\u006b","b"]'),  # the same, with an escape
    _b64(b'[1,"\\ud800","b"]'),  # a lone surrogate
    _b64(b'\xff[1,"k","b"]'),
    _b64(b'[1,"k","b"]') + "==",  # padding is not part of the format
    _b64(b'[9007199254740993,"k","b"]'),
]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_a_malformed_cursor_is_a_bad_request(store: RecordStore, cursor: str) -> None:
    with pytest.raises(BadRequest):
        store.list_by_owner("alice", cursor=cursor)


@pytest.mark.parametrize("limit", [0, -1, 201, True])
def test_a_limit_out_of_range_is_a_bad_request(store: RecordStore, limit: int) -> None:
    with pytest.raises(BadRequest):
        store.list_by_owner("alice", limit=limit)


# --- properties -------------------------------------------------------------------------------

uploads = st.lists(
    st.tuples(
        st.sampled_from(["alice", "bob"]),
        st.text(alphabet="ab/._-é", min_size=1, max_size=6),
        st.integers(min_value=0, max_value=4),
    ),
    max_size=14,
    unique_by=lambda u: u[1],
)


@settings(
    max_examples=25,
    deadline=None,
    # make_store hands out a fresh store per call, so nothing leaks between examples.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(uploads=uploads, limit=st.integers(min_value=1, max_value=5))
def test_every_listing_pages_through_one_owners_records_newest_first(
    make_store: MakeStore, uploads: list[tuple[str, str, int]], limit: int
) -> None:
    store = make_store()
    written = [
        record(owner=owner, key=key, created_at=t, etag=f"E{i}")
        for i, (owner, key, t) in enumerate(uploads)
    ]
    for item in written:
        assert store.put(item, replace=False).result is PutResult.CREATED
    for owner, mine in itertools.groupby(
        sorted(written, key=lambda r: r.owner), key=lambda r: r.owner
    ):
        pages = all_pages(store, owner, limit)
        assert [r for page in pages for r in page.items] == newest_first(list(mine))
        assert all(len(page.items) == limit for page in pages[:-1])
        assert 1 <= len(pages[-1].items) <= limit  # never an empty last page
    for item in written:  # and writing everything again changes nothing
        again = dataclasses.replace(item, request_id="again")
        assert store.put(again, replace=True).result is PutResult.DUPLICATE


# --- cursors ----------------------------------------------------------------------------------

positions = st.builds(
    SortKey,
    created_at=st.integers(min_value=0, max_value=2**53),
    key=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=300),
    bucket=st.from_regex(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", fullmatch=True),
)


@given(positions)
def test_a_cursor_is_url_safe_and_decodes_to_its_position(position: SortKey) -> None:
    cursor = encode_cursor(position)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)
    assert decode_cursor(cursor) == position


@given(st.one_of(st.text(max_size=64), st.binary(max_size=64).map(_b64)))
def test_decoding_any_text_gives_a_position_or_a_bad_request(text: str) -> None:
    try:
        position = decode_cursor(text)
    except BadRequest:
        return
    assert encode_cursor(position) == text  # accepted only in its one canonical spelling
