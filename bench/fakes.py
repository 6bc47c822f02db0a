"""A stand-in for `tablestore.OTSClient`: accepts put_row/get_row and answers like an empty table.

It keeps rows in memory and honours EXPECT_NOT_EXIST, so the store's idempotent path runs as in
production; what it leaves out is the SDK's request encoding and the network round trip.
"""

from __future__ import annotations

import threading
from typing import Any


class FakeOTSClient:
    """Same constructor and call shapes as the SDK's OTSClient, for the calls the store makes."""

    instances = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        FakeOTSClient.instances += 1
        self.args = args
        self.kwargs = kwargs
        self.rows: dict[tuple[Any, ...], Any] = {}
        self.put_rows = 0
        self._lock = threading.Lock()

    def put_row(self, table_name: str, row: Any, condition: Any = None, *rest: Any) -> Any:
        import tablestore

        key = (table_name, *(tuple(pk) for pk in row.primary_key))
        expectation = getattr(condition, "row_existence_expectation", None)
        with self._lock:
            self.put_rows += 1
            exists = key in self.rows
            if (expectation == tablestore.RowExistenceExpectation.EXPECT_NOT_EXIST and exists) or (
                expectation == tablestore.RowExistenceExpectation.EXPECT_EXIST and not exists
            ):
                raise tablestore.OTSServiceError(
                    403, "OTSConditionCheckFail", "Condition check failed.", "fake-request-id"
                )
            self.rows[key] = row
        return tablestore.metadata.CapacityUnit(0, 1), None

    def get_row(self, table_name: str, primary_key: Any, *rest: Any, **kwargs: Any) -> Any:
        import tablestore

        key = (table_name, *(tuple(pk) for pk in primary_key))
        with self._lock:
            row = self.rows.get(key)
        return tablestore.metadata.CapacityUnit(1, 0), row, None
