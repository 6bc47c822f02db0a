"""`make bench`: measure both functions, print a table, write bench/RESULTS.md.

Usage: `.venv/bin/python -m bench.run [--quick] [--runs N] [--output PATH] [--dist DIR]`.
Loopback only: the one HTTP server is a key server on 127.0.0.1 for the naive verifier and
the callback's one cold key fetch.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import baselines, coldstart, components, fixtures, inprocess, sizes
from bench.coldstart import ColdStart
from bench.inprocess import Measured
from bench.machine import describe
from bench.report import (
    Section,
    Target,
    fmt_mb,
    fmt_ms,
    fmt_ratio,
    fmt_us,
    render_markdown,
    render_text,
    targets_section,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
MB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    runs: int  # fresh interpreters per cold-start figure
    sign_iterations: int
    callback_iterations: int
    naive_iterations: int
    bare_iterations: int
    component_iterations: int
    slow_runs: int  # cold starts that import the Tablestore SDK (~1 s each)
    profile_iterations: int

    @classmethod
    def full(cls, runs: int) -> Plan:
        return cls(runs, 3000, 1500, 400, 5000, 2000, min(runs, 3), 1000)

    @classmethod
    def quick(cls) -> Plan:
        return cls(1, 30, 30, 10, 50, 30, 1, 20)


@dataclass
class Results:
    plan: Plan
    bare_ms: float = 0.0
    bare_rss_kb: int = 0
    cold: dict[str, ColdStart | str] = None  # type: ignore[assignment]
    warm: dict[str, Measured | str] = None  # type: ignore[assignment]
    parts: list[Measured] = None  # type: ignore[assignment]
    heaviest: dict[str, list[tuple[str, float]]] = None  # type: ignore[assignment]
    sizes: dict[str, sizes.PackageSize | None] = None  # type: ignore[assignment]
    profiles: dict[str, list[tuple[str, float]]] = None  # type: ignore[assignment]
    python: str = ""  # the interpreter of the cold starts

    def __post_init__(self) -> None:
        self.cold, self.warm, self.parts, self.heaviest, self.sizes = {}, {}, [], {}, {}
        self.profiles = {}


def attempt(store: dict[str, Any], name: str, produce: Any) -> None:
    """Run one measurement; a failure becomes a row saying why, not a crashed run."""
    try:
        store[name] = produce()
    except Exception as exc:
        store[name] = f"not measured: {type(exc).__name__}: {str(exc)[:300]}"
        print(f"[bench] {name}: {store[name]}", file=sys.stderr)


def collect(plan: Plan, dist: pathlib.Path) -> Results:
    results = Results(plan)
    vectors = baselines.load_vectors()
    c1 = next(c for c in vectors["callbacks"] if c["id"] == "C1")
    sign_where = coldstart.layout("sign", dist)
    callback_where = coldstart.layout("callback", dist)
    # Built packages run in the FC runtime replica; the repository's code needs this venv.
    built = sign_where.source != "repository"
    python = coldstart.runtime_python() if built else sys.executable
    results.python = python
    results.bare_ms, results.bare_rss_kb = coldstart.bare_python(plan.runs, python)
    private_key = fixtures.new_private_key(2048)
    count = max(plan.callback_iterations, plan.naive_iterations) + 60
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as tmp,
        inprocess_key_server(private_key) as server,
    ):
        setup = inprocess.callback_setup(count, private_key, server.url)
        _cold(results, (sign_where, callback_where), setup, c1, tmp, python=python)
        _warm(results, plan, setup, c1)
    for function in ("sign", "callback"):
        results.sizes[function] = sizes.package_size(dist, function)
    return results


def not_shipped(where: coldstart.Layout, modules: tuple[str, ...]) -> tuple[str, ...]:
    """Modules a built package leaves out: blocked in its cold start, as on a bare runtime.

    `python -I` still sees the bench venv's site-packages; without the block PyJWT would import
    the venv's cryptography, which the sign package deliberately does not ship.
    """
    if where.source == "repository":
        return ()
    return tuple(m for m in modules if not any((pathlib.Path(p) / m).exists() for p in where.paths))


def inprocess_key_server(private_key: Any) -> Any:
    from bench.naive import KeyServer

    return KeyServer(fixtures.public_pem(private_key))


def _cold(
    results: Results,
    layouts: tuple[coldstart.Layout, coldstart.Layout],
    setup: inprocess.CallbackSetup,
    c1: dict[str, Any],
    tmp: str,
    *,
    python: str,
) -> None:
    """In the FC runtime replica when built (its built-ins, cryptography included, on the path
    after the package); otherwise in this venv, blocking what a package does not ship."""
    plan, (sign_where, callback_where) = results.plan, layouts
    cold, runs = results.cold, plan.runs
    replica = coldstart.is_replica(python)
    sign_env = fixtures.sign_env()
    sign_request = fixtures.sign_request_spec(fixtures.user_token())
    sign_block = () if replica else not_shipped(sign_where, ("cryptography",))
    attempt(
        cold,
        "sign",
        lambda: coldstart.cold_start(
            "sign", sign_where, sign_env, [sign_request], runs, block=sign_block, python=python
        ),
    )
    if not replica:
        attempt(
            cold,
            "sign-no-cryptography" if not sign_block else "sign-with-cryptography",
            lambda: coldstart.cold_start(
                "sign",
                sign_where,
                sign_env,
                [sign_request],
                runs,
                block=() if sign_block else ("cryptography",),
            ),
        )
    callback_env = fixtures.callback_env(setup.key_url, os.path.join(tmp, "cold.sqlite3"))
    specs = [c.spec() for c in setup.callbacks]
    attempt(
        cold,
        "callback",
        lambda: coldstart.cold_start(
            "callback", callback_where, callback_env, specs[:1], runs, python=python
        ),
    )
    pinned_env = {**callback_env, "OSS_BUCKET": "yonghu-test"}
    pinned = {**fixtures.c1_callback(c1).spec(), "expect": 400}
    attempt(
        cold,
        "callback-pinned",
        lambda: coldstart.cold_start(
            "callback C1", callback_where, pinned_env, [pinned], runs, python=python
        ),
    )
    ts_env = {**callback_env, **fixtures.tablestore_overrides()}
    attempt(
        cold,
        "callback-tablestore",
        lambda: coldstart.cold_start(
            "callback tablestore",
            callback_where,
            ts_env,
            specs[1:3],
            plan.slow_runs,
            stub_tablestore=True,
            python=python,
        ),
    )
    attempt(
        cold,
        "import-tablestore",
        lambda: coldstart.import_only("tablestore", plan.slow_runs, python=python),
    )
    attempt(cold, "import-requests", lambda: coldstart.import_only("requests", runs, python=python))
    for name, where, env, block in (
        ("sign", sign_where, sign_env, sign_block),
        ("callback", callback_where, callback_env, ()),
    ):
        try:
            results.heaviest[name] = coldstart.heaviest_imports(
                where, env, block=block, python=python
            )
        except Exception as exc:
            print(f"[bench] import profile of {name}: {exc}", file=sys.stderr)


def _warm(results: Results, plan: Plan, setup: inprocess.CallbackSetup, c1: dict[str, Any]) -> None:
    from shared.records.sqlite import SqliteStore

    warm = results.warm
    policy = baselines.typical_policy()
    attempt(warm, "bare-v4", lambda: inprocess.measure_bare_v4(plan.bare_iterations, policy))
    attempt(warm, "sign", lambda: inprocess.measure_sign(plan.sign_iterations))
    attempt(
        warm, "bare-rsa-test", lambda: inprocess.measure_bare_rsa(setup.bare, plan.bare_iterations)
    )
    oss_case = baselines.oss_c1_case(baselines.load_vectors())
    attempt(
        warm, "bare-rsa-oss", lambda: inprocess.measure_bare_rsa(oss_case, plan.bare_iterations)
    )
    n = plan.callback_iterations
    attempt(
        warm,
        "callback-memory",
        lambda: inprocess.measure_callback(
            setup,
            n,
            "callback: test key, store = in-memory dict",
            lambda _t: inprocess.MemoryStore(),
        ),
    )
    attempt(
        warm,
        "callback-sqlite",
        lambda: inprocess.measure_callback(
            setup,
            n,
            "callback: test key, SQLite store",
            lambda t: SqliteStore(os.path.join(t, "warm.sqlite3")),
        ),
    )
    attempt(warm, "callback-tablestore", lambda: _callback_tablestore(setup, n))
    attempt(warm, "callback-c1", lambda: inprocess.measure_callback_pinned_c1(c1, n))
    attempt(warm, "naive", lambda: inprocess.measure_naive(setup, plan.naive_iterations))
    try:
        results.profiles = _profiles(setup, plan.profile_iterations)
    except Exception as exc:
        print(f"[bench] profiles: {type(exc).__name__}: {exc}", file=sys.stderr)
    producers: list[Callable[[], list[Measured]]] = [
        lambda: components.sign_components(plan.component_iterations),
        lambda: components.callback_components(setup, plan.component_iterations),
    ]
    for produce in producers:
        try:
            results.parts.extend(produce())
        except Exception as exc:
            print(f"[bench] components: {type(exc).__name__}: {exc}", file=sys.stderr)


def _profiles(
    setup: inprocess.CallbackSetup, iterations: int
) -> dict[str, list[tuple[str, float]]]:
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
                "sign": components.profile_top(sign, iterations),
                "callback": components.profile_top(lambda i: callback(i + 1), iterations),
            }
    if sign.unexpected or callback.unexpected:
        raise RuntimeError("a profiled request was not answered 200")
    return profiles


def _callback_tablestore(setup: inprocess.CallbackSetup, iterations: int) -> Measured:
    """The real TablestoreStore over a fake OTSClient (no SDK encoding, no network)."""
    import tablestore

    from bench.fakes import FakeOTSClient
    from shared.credentials import Credentials
    from shared.records import tablestore as backend
    from shared.settings import RecordsSettings, Secret

    settings = RecordsSettings(
        backend="tablestore",
        tablestore_endpoint="https://bench.cn-hangzhou.ots.aliyuncs.com",
        tablestore_instance="bench",
        tablestore_table="oss_uploads",
        sqlite_path="",
    )
    credentials = Credentials("bench-key-id", Secret("bench-key-secret"))
    real = tablestore.OTSClient
    tablestore.OTSClient = FakeOTSClient
    try:
        store = backend.TablestoreStore(settings, credentials)
    finally:
        tablestore.OTSClient = real
    if not isinstance(store.client, FakeOTSClient):
        raise RuntimeError("the Tablestore store did not take the fake client")
    measured = inprocess.measure_callback(
        setup,
        iterations,
        "callback: test key, Tablestore store over a fake OTSClient",
        lambda _t: store,
        fixtures.tablestore_overrides(),
    )
    measured.extra["put_rows"] = store.client.put_rows
    return measured


# --- the report -------------------------------------------------------------------------------


def _ok(value: Any) -> Any:
    return value if not isinstance(value, str) else None


def build_report(results: Results, dist: pathlib.Path) -> tuple[list[Section], list[Target]]:
    cold = {k: _ok(v) for k, v in results.cold.items()}
    warm = {k: _ok(v) for k, v in results.warm.items()}
    sections = [
        _cold_section(results, cold),
        _warm_section(results),
        _ratio_section(warm),
        _tablestore_section(cold),
        _size_section(results, dist),
        _parts_section(results),
        _profile_section(results),
    ]
    targets = _targets(results, cold, warm)
    return [targets_section(targets), *sections], targets


def _cold_section(results: Results, cold: dict[str, ColdStart | None]) -> Section:
    section = Section(
        f"Cold start (fresh `python -I` of {_interpreter(results.python)}, median of {results.plan.runs} runs; "
        "above bare = median of each run less a bare run just before it)",
        [
            "what",
            "code from",
            "wall",
            "above bare Python",
            "handler import",
            "first request",
            "peak RSS",
        ],
    )
    section.rows.append(
        [
            "bare `python -I -c pass`",
            "—",
            fmt_ms(results.bare_ms),
            "—",
            "—",
            "—",
            fmt_mb(results.bare_rss_kb * 1024),
        ]
    )
    labels = {
        "sign": "sign: GET /signature",
        "sign-no-cryptography": "sign, `cryptography` not shipped (what-if)",
        "sign-with-cryptography": "sign, had the runtime `cryptography` (PyJWT imports it if it can)",
        "callback": "callback: test key fetched once from 127.0.0.1, SQLite",
        "callback-pinned": "callback: OSS vector C1, pinned key (400: body lacks our fields)",
        "callback-tablestore": "callback: Tablestore backend (fake OTSClient), 2 requests",
    }
    for name, label in labels.items():
        if name not in results.cold:
            continue  # not attempted for this build (one of the two sign variants)
        run = cold.get(name)
        if run is None:
            section.rows.append(
                [label, "—", str(results.cold.get(name, "not run")), "", "", "", ""]
            )
            continue
        requests = " then ".join(fmt_ms(ms) for ms in run.request_ms)
        section.rows.append(
            [
                label,
                run.source,
                fmt_ms(run.wall_ms),
                fmt_ms(_above(run, results)),
                fmt_ms(run.import_ms),
                requests,
                fmt_mb(run.maxrss_kb * 1024),
            ]
        )
    for name in ("sign", "callback"):
        heavy = results.heaviest.get(name)
        if heavy:
            listed = ", ".join(f"{pkg} {ms:.0f} ms" for pkg, ms in heavy)
            section.notes.append(
                f"{name}: heaviest imports made by our code (`-X importtime`, cumulative, "
                f"inflated by the profiler): {listed}"
            )
    section.notes.append(
        "wall = spawn to exit as seen by the parent; import, request and RSS are measured in the "
        "child (`ru_maxrss`)."
    )
    return section


def _warm_section(results: Results) -> Section:
    section = Section(
        "Warm per-request cost (in process, `wsgi_adapter` over `create_app`)",
        ["path", "µs/request", "batch spread", "requests", "notes"],
    )
    for _name, value in results.warm.items():
        if isinstance(value, str):
            section.rows.append([_name, "—", "", "", value])
            continue
        t = value.timing
        notes = [value.note] if value.note else []
        notes += [f"{k}={v}" for k, v in value.extra.items()]
        section.rows.append(
            [
                value.label,
                fmt_us(t.median_us),
                f"{t.min_us:.0f}–{t.max_us:.0f}",
                str(t.iterations),
                "; ".join(notes),
            ]
        )
    section.notes.append(
        "µs/request is the median of 5 batch means; GC stays on and the access log line is "
        "written (to /dev/null), as in production."
    )
    return section


def _ratio(num: Measured | None, den: Measured | None) -> float | None:
    if num is None or den is None or den.timing.median_us <= 0:
        return None
    return num.timing.median_us / den.timing.median_us


def _ratio_section(warm: dict[str, Measured | None]) -> Section:
    section = Section("Ratios (same run, side by side)", ["ratio", "value"])
    pairs = [
        ("sign hot path / bare V4 crypto (key chain + policy HMAC + base64)", "sign", "bare-v4"),
        (
            "callback (in-memory store) / one bare RSA verify, same 2048-bit key",
            "callback-memory",
            "bare-rsa-test",
        ),
        ("callback (SQLite) / one bare RSA verify, same key", "callback-sqlite", "bare-rsa-test"),
        (
            "callback (Tablestore, fake client) / one bare RSA verify, same key",
            "callback-tablestore",
            "bare-rsa-test",
        ),
        (
            "callback C1 pinned-key path / bare RSA verify with the 512-bit OSS key",
            "callback-c1",
            "bare-rsa-oss",
        ),
        (
            "naive verifier (key fetched per request) / our callback (in-memory store)",
            "naive",
            "callback-memory",
        ),
        ("naive verifier / our callback (SQLite store)", "naive", "callback-sqlite"),
    ]
    for label, num, den in pairs:
        section.rows.append([label, fmt_ratio(_ratio(warm.get(num), warm.get(den)))])
    section.notes.append(
        "The naive verifier does strictly less work than ours (no grant check, no record) but "
        "fetches the key over loopback on every request, as the official sample does; over the "
        "internet to gosspublic.alicdn.com each fetch costs a DNS lookup and a TLS handshake more."
    )
    return section


def _tablestore_section(cold: dict[str, ColdStart | None]) -> Section:
    section = Section("Tablestore SDK import cost", ["measure", "figure"])
    sdk, req = cold.get("import-tablestore"), cold.get("import-requests")
    sign, callback, ts = cold.get("sign"), cold.get("callback"), cold.get("callback-tablestore")
    if sdk is not None:
        section.rows.append(
            ["`import tablestore` alone, fresh interpreter (in-child)", fmt_ms(sdk.import_ms)]
        )
        section.rows.append(["peak RSS of that interpreter", fmt_mb(sdk.maxrss_kb * 1024)])
    if sign is not None:
        loaded = sign.loaded_after_requests.get("tablestore")
        section.rows.append(
            ["sign: SDK loaded after GET /signature?", "yes" if loaded else "no (never imported)"]
        )
    if callback is not None:
        loaded = callback.loaded_after_requests.get("tablestore")
        section.rows.append(
            ["callback (SQLite): SDK loaded after a request?", "yes" if loaded else "no"]
        )
    if ts is not None:
        section.rows.append(
            [
                "callback (tablestore backend): SDK loaded after handler import?",
                "yes" if ts.loaded_after_import.get("tablestore") else "no (lazy)",
            ]
        )
        section.rows.append(["… handler import", fmt_ms(ts.import_ms)])
        if len(ts.request_ms) == 2:
            section.rows.append(
                ["… first request (imports the SDK, builds the client)", fmt_ms(ts.request_ms[0])]
            )
            section.rows.append(["… second request", fmt_ms(ts.request_ms[1])])
        section.rows.append(["… peak RSS with the SDK loaded", fmt_mb(ts.maxrss_kb * 1024)])
    if req is not None:
        section.rows.append(
            [
                "`import requests` alone (the callback imports it for key fetches)",
                fmt_ms(req.import_ms),
            ]
        )
    section.notes.append(
        "What we do: the SDK is imported lazily (`shared.records.open_store`); the sign function's "
        "/signature path never imports it, and the callback imports it on its first store use. "
        "The FC python3.10 runtime ships its own tablestore, so it is not in the packages."
    )
    section.notes.append(
        "Still open: the first callback on a cold instance pays the SDK import inside OSS's 5 s "
        "window. An FC initializer (`initializer: index.initialize` opening the store) would move "
        "that cost out of the request, before the first callback arrives."
    )
    return section


def _size_section(results: Results, dist: pathlib.Path) -> Section:
    section = Section(
        "Package size", ["function", "zipped", "unzipped", "files", "largest entries"]
    )
    for function, size in results.sizes.items():
        if size is None:
            section.rows.append([function, "—", "—", "—", f"not built: no {dist.name}/{function}"])
            continue
        largest = ", ".join(f"{name} {n / MB:.2f} MB" for name, n in size.largest[:4])
        zipped = fmt_mb(size.zipped) if size.zipped is not None else "no zip"
        section.rows.append([function, zipped, fmt_mb(size.unzipped), str(size.files), largest])
    if all(v is None for v in results.sizes.values()):
        section.notes.append(
            "dist/ did not exist: run `make build` first to measure package sizes."
        )
    return section


def _parts_section(results: Results) -> Section:
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


def _profile_section(results: Results) -> Section:
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


def _profile_text(results: Results, path: str, top: int = 6) -> str:
    entries = results.profiles.get(path, [])[:top]
    if not entries:
        return ""
    listed = ", ".join(f"`{name}` {share:.0f}%" for name, share in entries)
    return f" cProfile of the warm request (cumulative shares, nested): {listed}."


def _part(results: Results, prefix: str) -> float | None:
    for part in results.parts:
        if part.label.startswith(prefix):
            return part.timing.min_us
    return None


def _interpreter(python: str) -> str:
    if coldstart.is_replica(python):
        return (
            "the FC python3.10 runtime replica (.venv-fc: its built-in modules after the package)"
        )
    return f"{python} (no FC runtime replica: `make fc-runtime`)"


def _above(run: ColdStart, results: Results) -> float:
    return run.above_bare_ms if run.above_bare_ms is not None else run.wall_ms - results.bare_ms


def _targets(
    results: Results, cold: dict[str, ColdStart | None], warm: dict[str, Measured | None]
) -> list[Target]:
    targets: list[Target] = []
    sign, sign_lean = cold.get("sign"), cold.get("sign-no-cryptography")
    sign_heavier = cold.get("sign-with-cryptography")
    heavy = ", ".join(f"{p} ≈{ms:.0f} ms" for p, ms in results.heaviest.get("sign", [])[:3])
    if sign is not None:
        above = _above(sign, results)
        if sign_lean is not None:  # this build ships cryptography (AUTH_JWKS_URL was set)
            variant = (
                "This sign package ships `cryptography` (built with AUTH_JWKS_URL set), which "
                "PyJWT imports at import time; without it the same cold start measured "
                f"{sign_lean.wall_ms - results.bare_ms:.0f} ms above bare Python."
            )
        elif coldstart.is_replica(results.python):
            variant = (
                "Measured in the FC runtime replica, whose `cryptography` (from "
                "aliyun-python-sdk-core) PyJWT would import eagerly; the sign entry point imports "
                "PyJWT for HMAC only (shared/startup.py) unless AUTH_JWKS_URL is set."
            )
        else:
            extra = (
                f"{sign_heavier.wall_ms - results.bare_ms:.0f} ms"
                if sign_heavier is not None
                else "not measured"
            )
            variant = (
                "This sign package ships no `cryptography` (built without AUTH_JWKS_URL), so it "
                "is blocked in the cold start as on a bare runtime; had FC's runtime a "
                f"`cryptography` of its own, PyJWT would import it: {extra} above bare Python."
            )
        targets.append(
            Target(
                "sign cold start above bare Python",
                "≤ 60 ms",
                f"{above:.0f} ms",
                above <= 60,
                f"The handler import takes {sign.import_ms:.0f} ms; the heaviest imports are "
                f"{heavy}. {variant} Closed already: PyJWT's eager `cryptography.x509` import and its JWKS "
                "client (`urllib.request`, `http.client`, `ssl`, `email`), both off the HS256 "
                "path. What remains is spread thin: PyJWT's HMAC modules (`hashlib`/OpenSSL, "
                "`typing_extensions`, `calendar`), `dataclasses` (which imports `inspect`) and "
                "our settings and record dataclasses being built; the packages already ship "
                "precompiled bytecode. A grant token checked without PyJWT would close the rest, "
                "at the price of our own JWT code.",
            )
        )
    else:
        targets.append(Target("sign cold start above bare Python", "≤ 60 ms", "—", None))
    targets.append(_callback_cold_target(results, cold))
    sign_warm = warm.get("sign")
    plain = _part(results, "PyJWT decode HS256, plain")
    str_key = _part(results, "PyJWT decode HS256, shared.jwt_codec")
    encode = _part(results, "shared.grant.issue_token")
    body_tpl = _part(results, "shared.callback.body")
    saved = (plain - str_key) if plain and str_key else 0.0
    saving = f"{saved:.0f} µs" if saved >= 2 else "nothing measurable in this run"
    targets.append(
        Target(
            "sign warm per request",
            "≤ 100 µs",
            fmt_us(sign_warm.timing.median_us) if sign_warm else "—",
            None if sign_warm is None else sign_warm.timing.median_us <= 100,
            "One grant is a chain of small costs, none of them dominant, so no single fix gets "
            "it under 100 µs. Applied already: a sign-in token is verified once and then served "
            "from a small bounded cache until its `exp` (checked against the clock on every "
            "request), PyJWT's HMAC key guard runs once per key (`shared/jwt_codec.py`; it saves "
            f"{saving} per decode against plain `jwt.decode` here), and tokens are checked with "
            "one compiled regex. Timed alone (best batch, 'Where the time goes'): a first-time "
            f"sign-in decode {fmt_us(str_key)}, the grant token {fmt_us(encode)}, "
            f"`callback_body_template` {fmt_us(body_tpl)} and the bare V4 crypto itself about "
            "20 µs; the rest is JSON for the policy, callback and answer, two object ids, query "
            "parsing, CORS and the access log line."
            + _profile_text(results, "sign")
            + " What would close it: trimming the JSON work (the callback JSON and the answer "
            "are two more `json.dumps` after the policy) and a grant token cheaper than a JWT "
            "(itsdangerous-style, no JSON header); both trade clarity for microseconds that a "
            "function billed per 1 ms does not charge for.",
        )
    )
    cb = warm.get("callback-memory")
    deadline = _part(results, "shared.deadline")
    verify_tok = _part(results, "shared.grant.verify_token")
    parse = _part(results, "shared.callback.parse_callback_body")
    bare = warm.get("bare-rsa-test")
    targets.append(
        Target(
            "callback warm per request, store excluded",
            "≤ 300 µs",
            fmt_us(cb.timing.median_us) if cb else "—",
            None if cb is None else cb.timing.median_us <= 300,
            "Timed alone (best batch): the grant token check (`verify_token`, a PyJWT HS256 "
            f"decode) {fmt_us(verify_tok)}; the hand-off of the record write to a deadline "
            f"worker thread {fmt_us(deadline)} with a no-op (a queue put, a thread switch and "
            f"an Event wait, on a loaded 2-core machine); the body parse {fmt_us(parse)}; the "
            f"RSA verify {fmt_us(bare.timing.median_us if bare else None)} with our 2048-bit key "
            "(OSS's real key is 512-bit and about half that)."
            + _profile_text(results, "callback")
            + " What would close it: the deadline hand-off is kept on purpose (it is what "
            "guarantees a 503 well inside OSS's 5 s when the store hangs); skipping it for a "
            "store that cannot hang, or handing off to a worker that is already spinning, would "
            "take most of the gap."
            + (
                " The figure is within noise of the target on this machine; an idle run is "
                "the fair judge."
                if cb is not None and cb.timing.median_us <= 360
                else ""
            ),
        )
    )
    urls = _part(results, "shared.sign.downloads")
    targets.append(
        Target(
            "download URLs for a page of 50 records (warm)",
            "≤ 2 ms",
            fmt_us(urls),
            None if urls is None else urls <= 2000,
            "100 V4 presigned GETs (`url`, `thumbnailUrl`): what the 50 URLs of one moment share "
            "(encoded `x-oss-*` parameters, the derived key) is made once per page "
            "(`V4Presigner`), ASCII is encoded by one `str.translate`; each URL still costs a "
            "SHA-256 and an HMAC over its canonical request.",
        )
    )
    for function, limit in (("sign", 1.0), ("callback", 15.0)):
        size = results.sizes.get(function)
        zipped = size.zipped if size is not None else None
        note = "excluding runtime-provided SDKs" if function == "callback" else ""
        targets.append(
            Target(
                f"{function} package zipped {note}".strip(),
                f"≤ {limit:g} MB",
                fmt_mb(zipped) if zipped is not None else "not built",
                None if zipped is None else zipped <= limit * MB,
                _size_why(size, limit),
            )
        )
    for function, name in (("sign", "sign"), ("callback", "callback")):
        run = cold.get(name)
        rss = run.maxrss_kb * 1024 if run else None
        targets.append(
            Target(
                f"{function} peak RSS (no Tablestore SDK)",
                "≤ 64 MB",
                fmt_mb(rss),
                None if rss is None else rss <= 64 * MB,
                "The peak is the interpreter plus the imported libraries; the largest share "
                "comes from `cryptography`'s Rust extension and OpenSSL. Lazy imports of "
                "`requests` (only for non-pinned key fetches) and of PyJWT's asymmetric support "
                "would lower it.",
            )
        )
    return targets


def _callback_cold_target(results: Results, cold: dict[str, ColdStart | None]) -> Target:
    pinned, fetched = cold.get("callback-pinned"), cold.get("callback")
    if pinned is None:
        return Target("callback cold start above bare Python", "≤ 150 ms", "—", None)
    above = _above(pinned, results)
    fetch = f"{_above(fetched, results):.0f} ms" if fetched is not None else "not measured"
    return Target(
        "callback cold start above bare Python (OSS's pinned key)",
        "≤ 150 ms",
        f"{above:.0f} ms",
        above <= 150,
        "OSS's callbacks name OSS's key, which the callback pins: no fetch, no `requests`. "
        f"Import {pinned.import_ms:.0f} ms. Closed: PyJWT's `cryptography.x509` and JWKS client "
        "(grant tokens are HS256), and `requests`, now imported by the first key fetch only. "
        f"A callback naming another trusted key URL fetches it once per instance: {fetch} "
        "above bare here, most of it `requests` (which loads its CA bundle at import) and the "
        "fetch. The Tablestore SDK's import is reported apart (below).",
    )


def _size_why(size: sizes.PackageSize | None, limit: float) -> str:
    if size is None:
        return ""
    largest = ", ".join(f"{n} {b / MB:.1f} MB" for n, b in size.largest[:4])
    text = f"The largest entries (unzipped) are {largest}."
    if size.largest and size.largest[0][0] == "cryptography":
        text += (
            " `cryptography` (its Rust/OpenSSL extension) is nearly all of it. The sign function "
            "needs it only for AUTH_JWKS_URL (RS256/ES256): PyJWT verifies HS256 with the "
            "standard library. To close it: build the sign package without `cryptography` when "
            "JWKS is not configured (the build adds it through its jwt → cryptography implied "
            "import), or offer two package variants; this also cuts the sign cold start (see "
            "above)."
        )
    else:
        text += f" Vendor only what the function imports to bring it under {limit:g} MB."
    return text


PREFACE = """
Figures, not timed tests: produced by `make bench` (`bench/run.py`), never asserted by the test
suite. Cold starts are fresh `python -I` interpreters importing `index.handler` and serving one
WSGI request; warm figures call the same handler in process. Loopback only: the one HTTP server
(127.0.0.1) serves the test public key to the naive verifier and to the callback's one cold fetch.
The callback is measured with our own 2048-bit key trusted via CALLBACK_TRUSTED_KEY_URLS, since
only OSS can sign with OSS's key; OSS's real 512-bit key is measured with vector C1.
On a shared 2-core machine, consecutive runs differed by up to 2x in the warm figures (see the
load average below): compare the ratios inside one run rather than absolute figures across runs,
and rerun `make bench` on an idle machine before judging a target that is near its limit.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny iteration counts (smoke test)")
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per cold start")
    parser.add_argument("--output", default=str(ROOT / "bench" / "RESULTS.md"))
    parser.add_argument("--dist", default=str(ROOT / "dist"))
    args = parser.parse_args(argv)
    plan = Plan.quick() if args.quick else Plan.full(max(1, args.runs))
    dist = pathlib.Path(args.dist)
    load_before = _load()
    started = time.monotonic()
    results = collect(plan, dist)
    sections, targets = build_report(results, dist)
    machine = describe()
    command = "make bench" + (
        "" if not args.quick else "  (quick mode: python -m bench.run --quick)"
    )
    header = [
        *machine.lines(),
        f"Load average before/after: {load_before} / {_load()} (other processes inflate figures)",
        f"Run time: {time.monotonic() - started:.0f} s",
        f"Reproduce: `{command}` (or `.venv/bin/python -m bench.run`)",
    ]
    print(render_text(header, sections))
    output = pathlib.Path(args.output)
    output.write_text(
        render_markdown("Benchmarks", header, sections, targets, PREFACE), encoding="utf-8"
    )
    print(f"wrote {output}")
    return 0


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
