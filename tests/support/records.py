"""Upload records for the record-store tests: a valid record to vary, DESIGN.md's listing order,
and `make_store` (a plugin fixture, tests/conftest.py): fresh stores of each backend — SQLite on a
real file, Tablestore's real backend code over tests/support/ots.py's in-memory client answering
short pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.records.base import Record, RecordStore
from tests.support.ots import FakeOTS, tablestore_over

BUCKET = "dev-bucket"
OTHER_ETAG = "0CC175B9C0F1B6A831C399E269772661"
MakeStore = Callable[[], RecordStore]


def record(**overrides: Any) -> Record:
    """A valid record; each test overrides only what it is about."""
    values: dict[str, Any] = {
        "owner": "alice",
        "bucket": BUCKET,
        "key": "uploads/alice/0001.png",
        "size": 1024,
        "etag": "D41D8CD98F00B204E9800998ECF8427E",
        "mime_type": "image/png",
        "created_at": 1_700_000_000_000,
        "image_width": 640,
        "image_height": 480,
        "image_format": "png",
        "crc64": "1234567890123456789",
        "content_md5": "1B2M2Y8AsgTpgAmY7PhCfg==",
        "client_ip": "203.0.113.7",
        "request_id": "REQ-1",
        "grant_id": "g-1",
    }
    values.update(overrides)
    return Record(**values)


@pytest.fixture(params=["sqlite", "tablestore"])
def make_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mocker: Any
) -> Iterator[MakeStore]:
    """A factory of fresh, empty stores of one backend (fresh per call, for Hypothesis)."""
    opened: list[Any] = []
    if request.param == "sqlite":
        from shared.records.sqlite import SqliteStore

        def make() -> RecordStore:
            store = SqliteStore(str(tmp_path_factory.mktemp("records") / "records.sqlite3"))
            opened.append(store)
            return store

    else:
        make = tablestore_over(mocker, lambda: FakeOTS(page_cap=3))

    yield make
    for store in opened:
        store.close()


def newest_first(records: list[Record]) -> list[Record]:
    """DESIGN.md's listing order: createdAt descending, then key (ascending)."""
    return sorted(records, key=lambda r: (-r.created_at, r.key))
