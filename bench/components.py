"""Where a warm request's time goes: the shared building blocks timed one by one.

These explain the end-to-end figures (and any missed target); each row calls the real function
from `shared/` with the inputs a request gives it.
"""

from __future__ import annotations

import base64
import os
import pathlib
import sys
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jwt

from bench import fixtures, inprocess
from bench.inprocess import CallbackSetup, Measured
from bench.report import Section, fmt_us
from bench.timing import per_call

if TYPE_CHECKING:
    from bench.collect import Results

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _row(label: str, call: Callable[[int], object], iterations: int, note: str = "") -> Measured:
    return Measured(label, per_call(call, iterations), note)


def sign_components(iterations: int) -> list[Measured]:
    from shared import jwt_codec
    from shared.callback.body import callback_body_template
    from shared.grant import Grant, issue_token
    from shared.settings import Secret

    token = fixtures.user_token()
    secret = fixtures.JWT_SECRET
    prepared = jwt.PyJWK({"kty": "oct", "k": _b64url(secret.encode())}, algorithm="HS256")
    grant = Grant("g", fixtures.USER, fixtures.BUCKET, "uploads/alice/x.png", None, 1, 2**31)
    grant_token = fixtures.prefix_grant_token()
    grant_secret = Secret(fixtures.GRANT_SECRET)
    return [
        _row(
            "PyJWT encode HS256 (key as str)",
            lambda _i: jwt.encode({"sub": "alice", "exp": 2**31}, secret, algorithm="HS256"),
            iterations,
        ),
        _row(
            "PyJWT decode HS256, plain jwt.decode",
            lambda _i: jwt.decode(token, secret, algorithms=["HS256"]),
            iterations,
            "re-checks the key as DER/X.509 on every call",
        ),
        _row(
            "PyJWT decode HS256, shared.jwt_codec (as now)",
            lambda _i: jwt_codec.decode(token, secret, algorithms=["HS256"]),
            iterations,
            "key guard once per key; the per-character base64url check remains",
        ),
        _row(
            "PyJWT decode HS256, key prepared once (PyJWK)",
            lambda _i: jwt.decode(token, prepared, algorithms=["HS256"]),
            iterations,
        ),
        _row("shared.grant.issue_token", lambda _i: issue_token(grant, grant_secret), iterations),
        _row(
            "shared.callback.body.callback_body_template",
            lambda _i: callback_body_template(grant_token),
            iterations,
            f"token of {len(grant_token)} chars, one regex match",
        ),
        _download_urls_row(max(1, iterations // 50)),
    ]


def _download_urls_row(iterations: int) -> Measured:
    """GET /uploads: `url` and `thumbnailUrl` (V4) for a page of 50 image records; target ≤ 2 ms."""
    from shared.credentials import Credentials
    from shared.records.base import Record
    from shared.settings import Env, OssSettings, Secret
    from shared.sign.downloads import DownloadSettings, UrlMinter

    env = Env({"OSS_BUCKET": fixtures.BUCKET, "OSS_REGION": "cn-hangzhou"})
    oss = OssSettings.load(env)
    downloads = DownloadSettings.load(env, oss)
    credentials = Credentials("bench-key-id", Secret("bench-key-secret"), "bench-sts-token")
    page = [
        Record(
            owner=fixtures.USER,
            bucket=fixtures.BUCKET,
            key=f"uploads/{fixtures.USER}/01HZ{n:04d}.png",
            size=1000,
            etag="E",
            mime_type="image/png",
            created_at=1_700_000_000_000 + n,
            file_name=f"photo {n}.png",
        )
        for n in range(50)
    ]

    def mint(_i: int) -> object:
        minter = UrlMinter(downloads, oss, credentials, 1_700_000_000.0)
        return [minter.record_json(record) for record in page]

    return _row(
        "shared.sign.downloads: URLs for a page of 50 records",
        mint,
        iterations,
        "100 V4 presigned GETs (url + thumbnailUrl) with STS; target ≤ 2 ms in total",
    )


def callback_components(setup: CallbackSetup, iterations: int) -> list[Measured]:
    from shared.callback.body import parse_callback_body
    from shared.grant import verify_token
    from shared.settings import Secret

    body = setup.callbacks[0].body
    fields = parse_callback_body(body)
    secrets = (Secret(fixtures.GRANT_SECRET),)
    return [
        _deadline_row(iterations),
        _row(
            "shared.callback.parse_callback_body", lambda _i: parse_callback_body(body), iterations
        ),
        _row(
            "shared.grant.verify_token",
            lambda _i: verify_token(fields.grant, secrets),
            iterations,
            "PyJWT decode with the secret as str",
        ),
    ]


def _deadline_row(iterations: int) -> Measured:
    """The hand-off that puts the record write under a deadline (a worker thread and back)."""
    from shared import deadline

    pool_class = getattr(deadline, "DeadlinePool", None)
    if pool_class is not None:
        pool = pool_class("bench", workers=2)
        return _row(
            "shared.deadline.DeadlinePool.call(no-op)",
            lambda _i: pool.call(lambda: None, 2.5, what="bench"),
            iterations,
            "queue to a long-lived worker thread, wait on an Event",
        )
    call_with_deadline = getattr(deadline, "call_with_deadline")  # noqa: B009 - older module
    return _row(
        "shared.deadline.call_with_deadline(no-op)",
        lambda _i: call_with_deadline(lambda: None, 2.5, what="bench"),
        iterations,
        "a new thread per call",
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def profile_top(
    call: Callable[[int], object], iterations: int, top: int = 10
) -> list[tuple[str, float]]:
    """cProfile over `iterations` requests: the functions with the largest cumulative share.

    Wrappers that hold (almost) the whole request are left out; entries nest, so the shares
    overlap. The profiler inflates pure-Python calls, so shares are indicative, not additive.
    """
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for i in range(iterations):
        call(i)
    profile.disable()
    stats: Any = getattr(pstats.Stats(profile), "stats")  # noqa: B009 - untyped in typeshed
    total = max((row[3] for row in stats.values()), default=0.0)
    if not total:
        return []
    share = {func: row[3] / total * 100 for func, row in stats.items()}
    entries: list[tuple[str, float]] = []
    seen: set[str] = set()
    for func, percent in sorted(share.items(), key=lambda item: -item[1]):
        if percent >= 85 or percent < 2:
            continue
        callers = stats[func][4]
        # A thin wrapper chain (decode → decode_complete → …) shows once: its outermost link.
        if any(percent <= share.get(c, 0) < min(85, percent + 3) for c in callers):
            continue
        label = _where(func[0], func[2])
        if label in seen:
            continue
        seen.add(label)
        entries.append((label, percent))
    return entries[:top]


def _where(filename: str, name: str) -> str:
    """`shared.sign.auth.user`, `jwt.api_jwt.decode`, `json.dumps`, `{built-in any}`."""
    if filename == "~":
        label = name.replace("<built-in method ", "").replace("<method ", "").rstrip(">")
        return label + (" (per-character generator checks)" if label == "builtins.any" else "")
    path = filename.replace("\\", "/")
    version = f"/lib/python{sys.version_info.major}.{sys.version_info.minor}/"
    for marker in ("/site-packages/", version, str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1] if "/" in path else path
    module = path.removesuffix(".py").replace("/__init__", "").replace("/", ".")
    return f"{module}.{name}"


def profiles(setup: inprocess.CallbackSetup, iterations: int) -> dict[str, list[tuple[str, float]]]:
    """cProfile the two warm hot paths (sign; callback with the in-memory store)."""
    sign_env = fixtures.sign_env()
    spec = fixtures.sign_request_spec(fixtures.user_token())
    sign = inprocess.Caller(
        inprocess.sign_handler(sign_env), [fixtures.environ_from_spec(spec)], 200
    )
    store = inprocess.MemoryStore()
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        env = fixtures.callback_env(setup.key_url, os.path.join(tmp, "unused.sqlite3"))
        handler = inprocess.callback_handler(env, lambda _c: store, inprocess.FetchOnce(setup.pem))
        callback = inprocess.Caller(handler, setup.environs(), 200)
        with inprocess.quiet_stderr():
            callback(0)  # the one key fetch happens outside the profile
            sign(0)
            profiles = {
                "sign": profile_top(sign, iterations),
                "callback": profile_top(lambda i: callback(i + 1), iterations),
            }
    if sign.unexpected or callback.unexpected:
        raise RuntimeError("a profiled request was not answered 200")
    return profiles


def parts_section(results: Results) -> Section:
    section = Section(
        "Where the time goes (shared building blocks timed alone, best batch)",
        ["call", "µs/call", "notes"],
    )
    for part in results.parts:
        section.rows.append([part.label, fmt_us(part.timing.min_us), part.note])
    section.notes.append(
        "Each call is timed alone, many times; the best batch mean is shown because it is the "
        "figure least disturbed by other processes (timeit's advice)."
    )
    return section


def profile_section(results: Results) -> Section:
    section = Section(
        "Profile of the warm hot paths (cProfile, cumulative share of request time)",
        ["path", "function", "share"],
    )
    for path, entries in results.profiles.items():
        for name, share in entries:
            section.rows.append([path, f"`{name}`", f"{share:.0f}%"])
    section.notes.append(
        "Entries nest (a caller's share includes its callees) and the profiler inflates "
        "pure-Python calls, so shares are indicative, not additive. Request wrappers above 85% "
        "are left out."
    )
    return section
