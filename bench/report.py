"""The report: one list of sections, rendered as a console table and as bench/RESULTS.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.coldstart import ColdStart
    from bench.collect import Results


@dataclass
class Section:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    name: str
    limit: str
    figure: str
    met: bool | None  # None: not measured in this run
    why: str = ""  # when missed: the cause and what would close it

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: "not measured"}[self.met]


def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def fmt_us(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} µs"


def fmt_mb(value: float | None) -> str:
    return "—" if value is None else f"{value / (1024 * 1024):.2f} MB"


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def text_table(section: Section) -> str:
    widths = [len(h) for h in section.headers]
    for row in section.rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    line = "  ".join("-" * w for w in widths)
    out = [section.title, "=" * len(section.title)]
    out.append("  ".join(h.ljust(w) for h, w in zip(section.headers, widths, strict=True)))
    out.append(line)
    for row in section.rows:
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    out.extend(f"  * {note}" for note in section.notes)
    return "\n".join(out)


def markdown_table(section: Section) -> str:
    def cells(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    out = [f"## {section.title}", ""]
    if section.rows:
        out.append(cells(section.headers))
        out.append("|" + "|".join("---" for _ in section.headers) + "|")
        out.extend(cells(row) for row in section.rows)
        out.append("")
    out.extend(f"- {note}" for note in section.notes)
    return "\n".join(out).rstrip() + "\n"


def targets_section(targets: list[Target]) -> Section:
    section = Section("Targets", ["target", "limit", "figure", "verdict"])
    for target in targets:
        section.rows.append([target.name, target.limit, target.figure, target.verdict])
    return section


def misses_markdown(targets: list[Target]) -> str:
    missed = [t for t in targets if t.met is False]
    if not missed:
        return "## Missed targets\n\nNone in this run.\n"
    out = ["## Missed targets: why, and what would close them", ""]
    for target in missed:
        out.append(f"### {target.name} ({target.figure}, limit {target.limit})")
        out.append("")
        out.append(target.why.strip())
        out.append("")
    return "\n".join(out)


def render_text(header: list[str], sections: list[Section]) -> str:
    return "\n".join(header) + "\n\n" + "\n\n".join(text_table(s) for s in sections) + "\n"


def render_markdown(
    title: str, header: list[str], sections: list[Section], targets: list[Target], preface: str
) -> str:
    out = [f"# {title}", "", preface.strip(), ""]
    out.extend(f"- {line}" for line in header)
    out.append("")
    for section in sections:
        out.append(markdown_table(section))
    out.append(misses_markdown(targets))
    return "\n".join(out).rstrip() + "\n"


MB = 1024 * 1024


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


def profile_text(results: Results, path: str, top: int = 6) -> str:
    entries = results.profiles.get(path, [])[:top]
    if not entries:
        return ""
    listed = ", ".join(f"`{name}` {share:.0f}%" for name, share in entries)
    return f" cProfile of the warm request (cumulative shares, nested): {listed}."


def part_us(results: Results, prefix: str) -> float | None:
    for part in results.parts:
        if part.label.startswith(prefix):
            return part.timing.min_us
    return None


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


def interpreter(python: str) -> str:
    from bench import coldstart

    if coldstart.is_replica(python):
        return (
            "the FC python3.10 runtime replica (.venv-fc: its built-in modules after the package)"
        )
    return f"{python} (no FC runtime replica: `make fc-runtime`)"


def above_bare(run: ColdStart, results: Results) -> float:
    """Each run less a bare run just before it (paired) when measured so, else less the bare median."""
    return run.above_bare_ms if run.above_bare_ms is not None else run.wall_ms - results.bare_ms
