"""The report: one list of sections, rendered as a console table and as bench/RESULTS.md."""

from __future__ import annotations

from dataclasses import dataclass, field


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
