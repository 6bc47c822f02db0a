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
