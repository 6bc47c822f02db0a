"""The result tables of `make bench`: cold starts, the Tablestore SDK's import cost, warm
per-request figures and their ratios (bench/run.py puts them in order)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.report import Section, above_bare, fmt_mb, fmt_ms, fmt_ratio, fmt_us, interpreter

if TYPE_CHECKING:
    from bench.coldstart import ColdStart
    from bench.collect import Results
    from bench.inprocess import Measured


def cold_section(results: Results, cold: dict[str, ColdStart | None]) -> Section:
    section = Section(
        f"Cold start (fresh `python -I` of {interpreter(results.python)}, median of {results.plan.runs} runs; "
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
                fmt_ms(above_bare(run, results)),
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


def tablestore_section(cold: dict[str, ColdStart | None]) -> Section:
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


def warm_section(results: Results) -> Section:
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


def ratio(num: Measured | None, den: Measured | None) -> float | None:
    if num is None or den is None or den.timing.median_us <= 0:
        return None
    return num.timing.median_us / den.timing.median_us


def ratio_section(warm: dict[str, Measured | None]) -> Section:
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
        section.rows.append([label, fmt_ratio(ratio(warm.get(num), warm.get(den)))])
    section.notes.append(
        "The naive verifier does strictly less work than ours (no grant check, no record) but "
        "fetches the key over loopback on every request, as the official sample does; over the "
        "internet to gosspublic.alicdn.com each fetch costs a DNS lookup and a TLS handshake more."
    )
    return section
