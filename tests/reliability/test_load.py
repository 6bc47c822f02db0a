"""Load: 240 uploads released at once through `python -m local.dev` (loopback only, bounded).

Mixed sizes: empty files (refused with EntityTooSmall), small ones, and a few of several MB.
Afterwards — once reconciliation has run for whatever a callback could not record in time —
every stored object has exactly one record and every record an object. Figures are printed
(`pytest -s` shows them; `make test` runs this too, in well under a minute on 2 cores).
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from requests.adapters import HTTPAdapter

from tests.reliability.conftest import assert_one_record_per_object, census, reconcile
from tests.reliability.test_restart import values_of
from tests.support.devstack import http_session, sign_in_and_grant, start_dev
from tests.support.emulator import code_of

pytestmark = [pytest.mark.e2e, pytest.mark.load]

UPLOADS = 240
CONCURRENCY = 240  # every upload in flight at once
USERS = 12
BIG = 3  # several-MB files
EMPTY = 6


@dataclass(frozen=True)
class Outcome:
    key: str
    size: int
    status: int
    code: str
    seconds: float


def test_concurrent_uploads_leave_one_record_per_object(tmp_path: Path) -> None:
    wall = time.monotonic()
    rng = random.Random(7)  # noqa: S311 - reproducible sizes, not a secret
    runner = start_dev(tmp_path)
    try:
        runner.wait_ready(30)
        http = http_session()
        http.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=CONCURRENCY))
        app = runner.url("app")
        grants = [sign_in_and_grant(http, app, f"user{n}", path="load/") for n in range(USERS)]
        # EMPTY zero-byte files, BIG files of 3-5 MB, the rest between 1 B and 64 KB
        sizes = [0] * EMPTY + [rng.randint(3 * 2**20, 5 * 2**20) for _ in range(BIG)]
        sizes += [rng.randint(1, 64 * 1024) for _ in range(UPLOADS - BIG - EMPTY)]
        rng.shuffle(sizes)
        plan = [
            (grants[n % USERS], f"{grants[n % USERS]['dir']}f{n:03d}.bin", size)
            for n, size in enumerate(sizes)
        ]
        payload = os.urandom(5 * 2**20 + 1)
        start = threading.Barrier(CONCURRENCY, timeout=30)

        def upload(item: tuple[dict[str, Any], str, int]) -> Outcome:
            grant, key, size = item
            fields = [("key", (None, key)), *((k, (None, v)) for k, v in grant["fields"].items())]
            files = [*fields, ("file", ("f.bin", payload[:size], "application/octet-stream"))]
            start.wait()
            began = time.monotonic()
            response = http.post(grant["host"], files=files, timeout=45)
            seconds = time.monotonic() - began
            return Outcome(key, size, response.status_code, code_of(response), seconds)

        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            outcomes = list(pool.map(upload, plan))
        values = values_of(runner, tmp_path)
        before = census(values)
        report = reconcile(values)
        after = assert_one_record_per_object(values)
    finally:
        assert runner.stop(signal.SIGTERM) == 0
    elapsed = time.monotonic() - wall

    empty = [o for o in outcomes if o.size == 0]
    stored = [o for o in outcomes if o.size > 0]
    assert {(o.status, o.code) for o in empty} == {(400, "EntityTooSmall")}
    assert {o.status for o in stored} <= {200, 203}, [
        o for o in stored if o.status not in (200, 203)
    ]
    # Every accepted upload is stored, no refused one.
    assert set(after.objects) == {o.key for o in stored}
    assert before.duplicated == 0
    latencies = sorted(o.seconds for o in stored)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    figures = {
        "uploads": len(outcomes),
        "accepted": len(stored),
        "refused (EntityTooSmall)": len(empty),
        "MB uploaded": round(sum(o.size for o in stored) / 2**20, 1),
        "records": len(after.records),
        "lost before reconciliation (203)": len(before.lost),
        "reconciled": report.count("recorded"),
        "lost": len(after.lost),
        "duplicated": after.duplicated,
        "orphan records": len(after.orphans),
        "p50 upload s": round(statistics.median(latencies), 3),
        "p95 upload s": round(p95, 3),
        "wall s": round(elapsed, 1),
    }
    print("\nload test: " + ", ".join(f"{name} {value}" for name, value in figures.items()))
    assert len(before.lost) == sum(o.status == 203 for o in stored)
