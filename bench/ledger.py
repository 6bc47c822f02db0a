"""What the grant ledger costs: GET /signature with and without the ledger write, and the sweep.

Sign: the same handler and request as `measure_sign`, its store replaced by one that writes
nothing (the cost of issuing alone), a SQLite file, or the real TablestoreStore over the fake
OTSClient (bench/fakes.py: no SDK encoding, no network; a real Tablestore adds 3 round trips).
Sweep: N exact grants that ended with their objects stored but no record (lost callbacks), over
SQLite and an in-memory bucket: time and OSS requests per repaired grant.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from bench import fixtures
from bench.inprocess import Caller, Measured, quiet_stderr
from bench.timing import PerCall, per_call
from shared.records.grants import EXACT, LedgerGrant

EMPTY_MD5 = "1B2M2Y8AsgTpgAmY7PhCfg=="


class NoLedger:
    """A store whose ledger write does nothing: GET /signature as it cost before the ledger."""

    def open_grant(self, *args: Any) -> None:
        return None


def fake_tablestore() -> Any:
    import tablestore

    from bench.fakes import FakeOTSClient
    from shared.credentials import Credentials
    from shared.records.tablestore import TablestoreStore
    from shared.settings import RecordsSettings, Secret

    settings = RecordsSettings(
        "tablestore", "https://bench.ots.example.com", "bench", "oss_uploads", ""
    )
    real = tablestore.OTSClient
    tablestore.OTSClient = FakeOTSClient
    try:
        return TablestoreStore(settings, Credentials("bench-key-id", Secret("bench-secret")))
    finally:
        tablestore.OTSClient = real


def measure_sign_ledger(iterations: int, backend: str) -> Measured:
    """GET /signature (JWT, exact key, V4) with the ledger on `backend`: none, sqlite, tablestore."""
    from shared.http.fc2 import wsgi_adapter
    from shared.sign import app as sign_app
    from shared.sign.settings import SignSettings

    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        env = fixtures.sign_env(SQLITE_PATH=os.path.join(tmp, "ledger.sqlite3"))
        store: Any
        if backend == "none":
            store = NoLedger()
        elif backend == "sqlite":
            from shared.records.sqlite import SqliteStore

            store = SqliteStore(env["SQLITE_PATH"])
        else:
            store = fake_tablestore()
        core = sign_app.create_app(
            SignSettings.from_env(env), environ=env, store_factory=lambda _c: store
        )
        handler = wsgi_adapter(core, function="sign", max_body=sign_app.MAX_BODY)
        spec = fixtures.sign_request_spec(fixtures.user_token())
        caller = Caller(handler, [fixtures.environ_from_spec(spec)], expect=200)
        with quiet_stderr():
            timing = per_call(caller, iterations)
        if caller.unexpected:
            raise RuntimeError(
                f"sign with ledger={backend}: {caller.unexpected} unexpected answers"
            )
        labels = {
            "none": "sign: GET /signature, no ledger write (issuing alone)",
            "sqlite": "sign: GET /signature + ledger write, SQLite",
            "tablestore": "sign: GET /signature + ledger write, Tablestore (fake OTSClient)",
        }
        return Measured(labels[backend], timing)


class Bucket:
    """An in-memory bucket answering HeadObject; counts requests."""

    def __init__(self, keys: list[str]) -> None:
        from shared.objects import Head

        now = int(time.time())
        self.heads = {
            key: Head(key, 0 + 5, "5D41402ABC4B2A76B9719D911017C592", "text/plain", "0", "", now)
            for key in keys
        }
        self.requests = 0

    def list(self, prefix: str) -> Iterator[Any]:
        self.requests += 1
        return iter(())

    def head(self, key: str) -> Any:
        self.requests += 1
        return self.heads.get(key)

    def remove(self, key: str, etag: str) -> str:
        self.requests += 1
        return "deleted"

    def stored(self, key: str, etag: str, first_bytes: int) -> Any:
        """The verification's conditional ranged GET (UPLOAD_VERIFY=content): the object's bytes."""
        from shared.verify import Stored

        self.requests += 1
        return Stored(5, "0", b"hello"[:first_bytes])


def measure_sweep(grants: int) -> Measured:
    """One sweep repairing `grants` lost callbacks (SQLite), per repaired grant."""
    from shared.reconcile.sweep import sweep
    from shared.records.sqlite import SqliteStore
    from shared.settings import Limits

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        store = SqliteStore(os.path.join(tmp, "sweep.sqlite3"))
        issued = int(time.time()) - 3600
        keys = [f"uploads/u{n % 10}/{n:08d}.txt" for n in range(grants)]
        for number, key in enumerate(keys):
            grant = LedgerGrant(
                f"u{number % 10}", f"G{number:08d}", EXACT, key, fixtures.BUCKET, 5, issued, 0
            )
            store.open_grant(grant, Limits(), issued)
        bucket = Bucket(keys)
        with quiet_stderr():
            started = time.perf_counter_ns()
            report = sweep(bucket, store, limits=Limits(), workers=1)
            elapsed = time.perf_counter_ns() - started
        store.close()
    if report.count("recorded") != grants:
        raise RuntimeError(f"the sweep repaired {report.count('recorded')} of {grants}")
    per = elapsed / 1000 / grants
    timing = PerCall(per, per, per, grants)
    return Measured(
        f"sweep: {grants} ended grants with lost callbacks (SQLite), per repaired grant",
        timing,
        extra={"oss_requests_per_grant": bucket.requests / grants},
    )
