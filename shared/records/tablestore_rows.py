"""What a record row looks like in Tablestore: the table's schema, its owner index and the row codec.

Main table PK [pk, bucket, key], pk = first 8 hex of md5(bucket/key); global index
`<table>_by_owner` PK [owner, created_at_rev, key] (+ pk, bucket appended by Tablestore), carrying
every other attribute (docs/records.md). Plain data only: this module does not import the SDK
(`tablestore.py` and `tablestore_client.py` do), and `tools/tables.py` creates the table from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from shared import logs
from shared.errors import Unavailable
from shared.records.base import Record

PRIMARY_KEY = [("pk", "STRING"), ("bucket", "STRING"), ("key", "STRING")]
INDEX_PRIMARY_KEY = ["owner", "created_at_rev", "key"]  # Tablestore appends pk, bucket
INVERTED_BASE = 2**63 - 1  # Tablestore INTEGER is a signed 64-bit value; created_at is ≤ 2**53
# Attribute columns, predefined so that the index can be keyed on and carry them.
DEFINED_COLUMNS = [
    ("owner", "STRING"),
    ("created_at", "INTEGER"),
    ("created_at_rev", "INTEGER"),  # derived from created_at, never a Record field
    ("size", "INTEGER"),
    ("etag", "STRING"),
    ("mime_type", "STRING"),
    ("image_width", "INTEGER"),
    ("image_height", "INTEGER"),
    ("image_format", "STRING"),
    ("crc64", "STRING"),
    ("content_md5", "STRING"),
    ("client_ip", "STRING"),
    ("request_id", "STRING"),
    ("grant_id", "STRING"),
    ("reconciled", "BOOLEAN"),
    ("file_name", "STRING"),
    ("deleted_at", "INTEGER"),
]
INDEX_COLUMNS = [name for name, _ in DEFINED_COLUMNS if name not in INDEX_PRIMARY_KEY]
DERIVED_COLUMNS = frozenset({"created_at_rev"})
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "STRING": (str,),
    "INTEGER": (int,),
    "BOOLEAN": (bool,),
}
_OPTIONAL = frozenset(
    field.name for field in dataclasses.fields(Record) if field.default is not dataclasses.MISSING
)


def index_name(table: str) -> str:
    return f"{table}_by_owner"


def partition_key(bucket: str, key: str) -> str:
    """8 hex digits of md5(bucket/key): spreads rows over partitions (not a security function)."""
    return hashlib.md5(f"{bucket}/{key}".encode(), usedforsecurity=False).hexdigest()[:8]


def primary_key(bucket: str, key: str) -> list[tuple[str, str]]:
    return [("pk", partition_key(bucket, key)), ("bucket", bucket), ("key", key)]


def inverted(created_at: int) -> int:
    """created_at mirrored in int64: an ascending (FORWARD) index read then lists newest first."""
    return INVERTED_BASE - created_at


def index_key(
    owner: str, created_at_rev: Any, key: Any, pk: Any, bucket: Any
) -> list[tuple[str, Any]]:
    """The index's full primary key: owner, created_at_rev, key, then the appended pk and bucket."""
    return [
        ("owner", owner),
        ("created_at_rev", created_at_rev),
        ("key", key),
        ("pk", pk),
        ("bucket", bucket),
    ]


def attribute_columns(record: Record) -> list[tuple[str, Any]]:
    """Every Record field but the primary key, and created_at_rev; absent image sizes left out."""
    values = record.as_dict()
    values["created_at_rev"] = inverted(record.created_at)
    return [(name, values[name]) for name, _ in DEFINED_COLUMNS if values[name] is not None]


def decode_row(row: Any) -> Record:
    """A Record from a main-table or index row; absent optional columns take the Record default."""
    values: dict[str, Any] = dict(row.primary_key)
    values.update((column[0], column[1]) for column in row.attribute_columns)
    fields: dict[str, Any] = {}
    for name, kind in PRIMARY_KEY[1:] + DEFINED_COLUMNS:
        if name in DERIVED_COLUMNS:
            continue
        value = values.get(name)
        if value is None and name in _OPTIONAL:
            continue
        if not isinstance(value, _PYTHON_TYPES[kind]) or (
            kind == "INTEGER" and isinstance(value, bool)
        ):
            # A row we did not write (or a column retyped by hand): a store fault, not a 500.
            logs.warning("records_malformed_row", backend="tablestore", column=name)
            raise Unavailable("a stored record is malformed")
        fields[name] = value
    rev = values.get("created_at_rev")  # absent from main-table rows written before it existed
    if rev is not None and rev != inverted(fields["created_at"]):
        # Listed at one place, resumed from another: a cursor could repeat or skip rows.
        logs.warning("records_malformed_row", backend="tablestore", column="created_at_rev")
        raise Unavailable("a stored record is malformed")
    return Record(**fields)
