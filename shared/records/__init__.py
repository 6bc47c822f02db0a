"""Upload records: one per stored object, behind one interface (`base.RecordStore`).

`open_store` is how both functions get their store: one per process, reused across invocations.
The Tablestore SDK is imported only when that backend is opened (it costs ~0.4 s at cold start
and is not needed by the SQLite backend).
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from shared.credentials import Credentials
from shared.errors import Unavailable
from shared.records.base import Page, PutOutcome, PutResult, Record, RecordStore
from shared.records.grants import GrantStore
from shared.settings import RecordsSettings

__all__ = [
    "Page",
    "PutOutcome",
    "PutResult",
    "Record",
    "RecordStore",
    "Store",
    "clear_cache",
    "open_store",
]


class Store(RecordStore, GrantStore, Protocol):
    """What `open_store` gives: the records and the grant ledger (grants.py) in one store."""


_lock = threading.Lock()
_cached: tuple[RecordsSettings, Any] | None = None  # (the settings it was opened with, store)


def open_store(settings: RecordsSettings, credentials: Credentials | None = None) -> Store:
    """The process's store for these settings; a Tablestore client follows credential rotation."""
    global _cached
    if settings.backend == "tablestore" and credentials is None:
        raise Unavailable("no credentials for the record store: give the function a RAM role")
    with _lock:
        if _cached is not None and _cached[0] == settings:
            store = _cached[1]
            if credentials is not None and settings.backend == "tablestore":
                store.use_credentials(credentials)  # rebuilds the client only if they rotated
            return store  # type: ignore[no-any-return]
        previous, _cached = _cached, (settings, _build(settings, credentials))
    if previous is not None:
        _close(previous[1])
    return _cached[1]  # type: ignore[no-any-return]


def clear_cache() -> None:
    """Forget the process's store (tests; a settings change in a long-lived dev process)."""
    global _cached
    with _lock:
        previous, _cached = _cached, None
    if previous is not None:
        _close(previous[1])


def _build(settings: RecordsSettings, credentials: Credentials | None) -> Any:
    if settings.backend == "sqlite":
        from shared.records.sqlite import SqliteStore  # noqa: PLC0415 - imports per backend

        return SqliteStore(settings.sqlite_path)
    assert credentials is not None  # checked by open_store
    from shared.records.tablestore import TablestoreStore  # noqa: PLC0415 - the SDK is heavy

    return TablestoreStore(settings, credentials)


def _close(store: Any) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        close()
