"""Multipart part URLs: what one presigned UploadPart URL costs the sign function, warm.

Three figures per part: the bare V4 presigner (`shared.sign.presign.V4Presigner`, one per request
as the route makes it, then one URL per part), the same with a signed Content-MD5 and V1, and the
whole `POST /multipart/{uploadId}/parts` route for 100 parts through the sign core in-process
(sign-in JWT, strict JSON body, the session read from a SQLite ledger, 100 URLs, the JSON answer)
divided by 100. No OSS request is made: part URLs are signed, not fetched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import time
from typing import TYPE_CHECKING, Any

from bench import fixtures
from bench.inprocess import Measured
from bench.report import Section, Target, fmt_us
from bench.timing import per_call

if TYPE_CHECKING:
    from bench.collect import Plan

PARTS = 100  # part numbers per request (the route's maximum)
UPLOAD_ID = "0004B999EF5A239BB9138C6227D69F95"
KEY = f"uploads/{fixtures.USER}/bench/01HZBENCHMULTIPART.bin"
TARGET_US = 50.0


def _md5s() -> dict[str, str]:
    return {
        str(n): base64.b64encode(hashlib.md5(str(n).encode()).digest()).decode()
        for n in range(1, PARTS + 1)
    }


def measure(iterations: int) -> list[Measured]:
    """Per-part figures: bare V4, V4 with Content-MD5, V1, and the whole route."""
    from shared.credentials import Credentials
    from shared.settings import Secret
    from shared.sign import presign

    env = fixtures.sign_env()
    creds = Credentials(env["OSS_ACCESS_KEY_ID"], Secret(env["OSS_ACCESS_KEY_SECRET"]))
    endpoint = f"https://{fixtures.BUCKET}.oss-cn-hangzhou.aliyuncs.com"
    md5s = _md5s()

    def v4(with_md5: bool) -> Any:
        def call(_index: int) -> None:
            signer = presign.V4Presigner(
                endpoint=endpoint,
                bucket=fixtures.BUCKET,
                region="cn-hangzhou",
                credentials=creds,
                now=time.time(),
                expires=900,
            )
            for n in range(1, PARTS + 1):
                headers = {"Content-MD5": md5s[str(n)]} if with_md5 else {}
                signer.presign("PUT", KEY, {"partNumber": str(n), "uploadId": UPLOAD_ID}, headers)

        return call

    def v1(_index: int) -> None:
        now = time.time()
        for n in range(1, PARTS + 1):
            presign.presign_v1(
                "PUT",
                endpoint=endpoint,
                bucket=fixtures.BUCKET,
                key=KEY,
                credentials=creds,
                now=now,
                expires=900,
                query={"partNumber": str(n), "uploadId": UPLOAD_ID},
            )

    runs = max(5, iterations)
    measured = [
        _per_part("V4 presigner, per part URL", per_call(v4(False), runs)),
        _per_part("V4 presigner + signed Content-MD5, per part URL", per_call(v4(True), runs)),
        _per_part("V1 presigner, per part URL", per_call(v1, runs)),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-parts-") as tmp:
        measured.append(_route(os.path.join(tmp, "ledger.sqlite3"), md5s, runs))
    return measured


def _route(sqlite_path: str, md5s: dict[str, str], runs: int) -> Measured:
    from shared.http import Request
    from shared.records.grants import MULTIPART, LedgerGrant
    from shared.records.sqlite import SqliteStore
    from shared.settings import Limits
    from shared.sign.app import create_app
    from shared.sign.settings import SignSettings

    now = time.time()
    store = SqliteStore(sqlite_path)
    session = LedgerGrant(
        owner=fixtures.USER,
        grant_id=UPLOAD_ID,
        mode=MULTIPART,
        target=KEY,
        bucket=fixtures.BUCKET,
        max_bytes=PARTS * 8 * 1024 * 1024,
        expires_at=int(now) + 86400,
        created_at=int(now * 1000),
        part_size=8 * 1024 * 1024,
    )
    store.open_grant(session, Limits(), now)
    store.close()

    def no_oss(_credentials: Any) -> Any:
        raise AssertionError("part URLs need no OSS request")

    settings = SignSettings.from_env(fixtures.sign_env(SQLITE_PATH=sqlite_path))
    core = create_app(settings, environ={}, bucket_factory=no_oss)
    body = json.dumps({"partNumbers": list(range(1, PARTS + 1)), "contentMd5": md5s}).encode()
    request = Request(
        method="POST",
        path=f"/multipart/{UPLOAD_ID}/parts",
        signed_path=b"",
        query_string="",
        headers={"authorization": f"Bearer {fixtures.user_token()}"},
        body=body,
    )

    def call(_index: int) -> None:
        response = core(request)
        if response.status != 200:
            raise AssertionError(response.body[:200])

    return _per_part(
        f"POST /multipart/{{uploadId}}/parts, {PARTS} parts with MD5s, per part",
        per_call(call, runs),
    )


def _per_part(label: str, timing: Any) -> Measured:
    from bench.timing import PerCall

    scaled = PerCall(
        timing.median_us / PARTS, timing.min_us / PARTS, timing.max_us / PARTS, timing.iterations
    )
    return Measured(label, scaled, extra={"requests": timing.iterations})


def report(plan: Plan) -> tuple[Section, list[Target]]:
    """The section and its target (≤ 50 µs per part, warm, through the route)."""
    section = Section(
        "Multipart part URLs (warm, in-process): cost per presigned UploadPart URL",
        ["path", "µs/part", "batch spread"],
    )
    try:
        measured = measure(max(5, plan.sign_iterations // 20))
    except Exception as exc:  # a figure missing is reported, never a crash of the whole bench
        section.notes.append(f"not measured: {type(exc).__name__}: {exc}")
        return section, [Target("part URL cost (route)", f"≤ {TARGET_US:.0f} µs", "—", None)]
    for value in measured:
        t = value.timing
        section.rows.append([value.label, fmt_us(t.median_us), f"{t.min_us:.1f}–{t.max_us:.1f}"])
    section.notes.append(
        f"One request signs up to {PARTS} parts; the route's figure includes sign-in, the JSON "
        "body, the ledger read and the answer, spread over its parts. Each URL is one SHA-256 "
        "and one HMAC over its canonical request; the derived key and the shared query "
        "parameters are made once per request."
    )
    route, bare = measured[-1].timing.median_us, measured[0].timing.median_us
    target = Target(
        f"POST /multipart/{{uploadId}}/parts: cost per part URL ({PARTS} per request, warm)",
        f"≤ {TARGET_US:.0f} µs",
        fmt_us(route),
        route <= TARGET_US,
        why=(
            f"the bare V4 presigner took {bare:.1f} µs per URL in this run (a SHA-256 and an "
            "HMAC over the canonical request, and the string work around them); the rest is "
            "the request's own work (sign-in, JSON, MD5 checks, ledger read) spread over its "
            "parts. Other processes inflate both (load average above): rerun `make bench` on "
            "an idle machine before judging it."
        ),
    )
    return section, [target]
