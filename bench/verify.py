"""UPLOAD_VERIFY's cost: the callback with `off`, `object` and `content` side by side on loopback.

The callback reads from the OSS emulator on 127.0.0.1 (oss2, V4 header signatures), seeded with
one object per signed callback: the metadata the callbacks name (etag, size, CRC-64) and a PNG's
bytes. Each request is counted at the emulator (OSS round trips per callback); our own CPU is
`shared.verify.upload_problem` with an in-memory reader (claim checks, signature sniff, image
facts), without the SDK or the socket.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.serving import make_server

from bench import fixtures, inprocess
from bench.inprocess import Measured
from bench.report import Section, Target, fmt_us
from bench.timing import per_call

if TYPE_CHECKING:
    from bench.collect import Results

MODES = ("off", "object", "content")
KEY = ("bench-access-key-id", "bench-access-key-secret")


class Counted:
    """The emulator's WSGI app, counting the requests it serves."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._lock:
            self.requests += 1
        return self.app(environ, start_response)


@contextmanager
def emulator(root: Path, count: int) -> Iterator[tuple[str, Counted]]:
    """An emulator on a free loopback port holding the objects of callbacks 0…count-1."""
    from local.oss_emulator import AccessKey, EmulatorConfig, OssEmulator
    from local.oss_emulator.store import StoredObject
    from tests.samples import png

    config = EmulatorConfig(
        bucket=fixtures.BUCKET,
        region="cn-hangzhou",
        access_keys=(AccessKey(*KEY),),
        data_dir=root,
        public_url="http://127.0.0.1:0",
    )
    oss = OssEmulator(config)
    source = root / "object.png"
    for index in range(count):
        values = fixtures.callback_values(index)
        data = png(640, 480)
        source.write_bytes(data + b"\x00" * (int(values["size"]) - len(data)))
        stored = StoredObject(
            key=values["object"],
            size=int(values["size"]),
            etag=values["etag"],
            content_type=values["mimeType"],
            crc64=values["crc64"],
            content_md5=values["contentMd5"],
            last_modified=time.time(),
        )
        oss.store.put(stored, source, forbid_overwrite=False)
    counted = Counted(oss)
    server = make_server("127.0.0.1", 0, counted, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", counted
    finally:
        server.shutdown()
        thread.join(5)


def measure_modes(setup: inprocess.CallbackSetup, iterations: int) -> list[Measured]:
    """The callback (in-memory store) per UPLOAD_VERIFY mode, against the loopback emulator."""
    measured: list[Measured] = []
    count = len(setup.callbacks)
    with (
        tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp,
        emulator(Path(tmp), count) as (url, counted),
    ):
        for mode in MODES:
            overrides = {
                "UPLOAD_VERIFY": mode,
                "OSS_ENDPOINT": url,
                "OSS_ACCESS_KEY_ID": KEY[0],
                "OSS_ACCESS_KEY_SECRET": KEY[1],
            }
            before = counted.requests
            result = inprocess.measure_callback(
                setup,
                iterations,
                f"callback, UPLOAD_VERIFY={mode} (loopback OSS)",
                lambda _t: inprocess.MemoryStore(),
                env_overrides=overrides,
            )
            measured_calls = result.timing.iterations
            calls = measured_calls + min(20, measured_calls)  # per_call's warm-up calls too
            result.extra["oss_requests_per_callback"] = round(
                (counted.requests - before) / max(calls, 1), 2
            )
            measured.append(result)
    measured.append(measure_own_cpu(iterations))
    return measured


class _Reader:
    def __init__(self, size: int, head: bytes) -> None:
        from shared.verify import Stored

        self.stored_value = Stored(size, "1234567890123456789", head)

    def stored(self, key: str, etag: str, first_bytes: int) -> Any:
        return self.stored_value


def measure_own_cpu(iterations: int) -> Measured:
    """`upload_problem` in content mode with the bytes already in memory: our CPU per callback."""
    from shared.content import default_allowed_types
    from shared.sniff import SNIFF_BYTES
    from shared.verify import Claim, upload_problem
    from tests.samples import png

    head = (png(640, 480) + b"\x00" * SNIFF_BYTES)[:SNIFF_BYTES]
    claim = Claim(
        "uploads/u/a.png",
        hashlib.md5(head).hexdigest().upper(),
        204800,
        "1234567890123456789",
        "image/png",
        "png",
        640,
        480,
    )
    reader = _Reader(204800, head)
    allowed = default_allowed_types()

    def call(_index: int) -> None:
        if upload_problem(reader, claim, "content", allowed) is not None:
            raise AssertionError("the bench PNG must pass")

    timing = per_call(call, max(iterations, 100) * 10)
    return Measured("our own CPU: upload_problem, content mode, no I/O", timing)


def verify_section(results: Results) -> Section:
    """UPLOAD_VERIFY off / object / content side by side (bench/verify.py)."""
    section = Section(
        "Verification (UPLOAD_VERIFY) on loopback: the callback with the OSS emulator on 127.0.0.1",
        ["path", "µs/request", "batch spread", "OSS requests per callback"],
    )
    for value in results.verify:
        t = value.timing
        section.rows.append(
            [
                value.label,
                fmt_us(t.median_us),
                f"{t.min_us:.0f}–{t.max_us:.0f}",
                str(value.extra.get("oss_requests_per_callback", "—")),
            ]
        )
    section.notes.append(
        "In-memory record store; oss2 signs V4 headers and the emulator checks them. A round "
        "trip here is mostly the emulator's own Python (signature check, file read) on the same "
        "busy cores and in the same process; what carries over to OSS's internal endpoint is "
        "the request count and our own CPU."
    )
    return section


def verify_targets(results: Results) -> list[Target]:
    rows = {m.label.split("=", 1)[-1].split(" ", 1)[0]: m for m in results.verify}
    off, content = rows.get("off"), rows.get("content")
    own = next((m for m in results.verify if m.label.startswith("our own CPU")), None)
    if off is None or content is None or own is None:
        return [Target("content verification cost", "≤ 2 OSS round trips, ≤ 1 ms CPU", "—", None)]
    trips = float(content.extra.get("oss_requests_per_callback", 0)) - float(
        off.extra.get("oss_requests_per_callback", 0)
    )
    cpu_ms = own.timing.median_us / 1000
    return [
        Target("UPLOAD_VERIFY=content: OSS round trips added", "≤ 2", f"{trips:g}", trips <= 2),
        Target("UPLOAD_VERIFY=content: our own CPU", "≤ 1 ms", f"{cpu_ms:.3f} ms", cpu_ms <= 1),
    ]
