"""The local stack with faults injected where production would meet them, and the invariant.

Faults go in through the stack's own seams: a wrapper around the store the callback writes
(`Stack(callback_store=…)`), the callback's clock, the emulator's clock, a slow or failing
listener put in front of the callback function or the key URL, and a killed `python -m local.dev`.
Afterwards `reconcile` runs the real reconciliation (oss2 against the emulator) and `census`
checks that every stored object has exactly one record.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from shared.credentials import Credentials
from shared.objects import OssObjects
from shared.reconcile.app import run
from shared.reconcile.report import Report
from shared.reconcile.settings import ReconcileSettings
from shared.reconcile.watermark import WATERMARK_KEY
from shared.records.sqlite import SqliteStore
from shared.settings import Secret

DEV_KEY = Credentials("dev-access-key-id", Secret("dev-access-key-secret"))


def reconcile(values: dict[str, str], **options: Any) -> Report:
    """A real run (oss2 → emulator, SQLite) over the stack's settings; settle 0: nothing in flight."""
    settings = ReconcileSettings.from_env(values)
    with closing(SqliteStore(settings.records.sqlite_path)) as store:
        return run(settings, DEV_KEY, store=store, settle=0, **options)


@dataclass(frozen=True)
class Census:
    objects: dict[str, str]  # key → etag, as ListObjectsV2 says
    records: dict[str, str]  # key → etag, one row per key (the primary key)
    lost: set[str]  # stored objects without a record
    orphans: set[str]  # records without an object (or for another version of it)
    duplicated: int


def census(values: dict[str, str], prefix: str = "uploads/") -> Census:
    """Objects through the SDK, records straight from the SQLite file (every row, no API)."""
    settings = ReconcileSettings.from_env(values)
    objects = {o.key: o.etag for o in OssObjects(settings.oss, DEV_KEY).list(prefix)}
    with closing(SqliteStore(settings.records.sqlite_path)) as schema:
        schema.ensure_schema()  # a stack whose store never worked has no table yet
    with sqlite3.connect(settings.records.sqlite_path) as db:
        rows = db.execute(
            "SELECT key, etag FROM records WHERE key != ?", (WATERMARK_KEY,)
        ).fetchall()
    db.close()
    records = dict(rows)
    orphans = {k for k, e in records.items() if objects.get(k, "").upper() != e.upper()}
    return Census(objects, records, set(objects) - set(records), orphans, len(rows) - len(records))


def assert_one_record_per_object(values: dict[str, str]) -> Census:
    found = census(values)
    assert found.lost == set(), f"objects without a record: {sorted(found.lost)}"
    assert found.orphans == set(), f"records without their object: {sorted(found.orphans)}"
    assert found.duplicated == 0
    return found
