"""Package sizes as Function Compute sees them: the zip it uploads and the tree it unpacks."""

from __future__ import annotations

import os
import pathlib
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.report import MB, Section, fmt_mb

if TYPE_CHECKING:
    from bench.collect import Results


@dataclass(frozen=True)
class PackageSize:
    function: str
    zipped: int | None  # bytes of dist/<function>.zip, None when it was not built
    unzipped: int  # bytes of the files under dist/<function>/ (or in the zip)
    files: int
    largest: tuple[tuple[str, int], ...]  # top-level entries by size: what to trim first


def tree_size(root: pathlib.Path) -> tuple[int, int, dict[str, int]]:
    """Total bytes, file count, and bytes per top-level entry of a directory."""
    total, count = 0, 0
    per_top: dict[str, int] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = pathlib.Path(dirpath) / name
            if path.is_symlink():
                continue
            size = path.stat().st_size
            total += size
            count += 1
            top = path.relative_to(root).parts[0]
            per_top[top] = per_top.get(top, 0) + size
    return total, count, per_top


def zip_contents(archive: pathlib.Path) -> tuple[int, int, dict[str, int]]:
    """Uncompressed bytes, file count and bytes per top-level entry inside a zip."""
    per_top: dict[str, int] = {}
    total = count = 0
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            total += info.file_size
            count += 1
            top = info.filename.split("/", 1)[0]
            per_top[top] = per_top.get(top, 0) + info.file_size
    return total, count, per_top


def find_zip(dist: pathlib.Path, function: str) -> pathlib.Path | None:
    """dist/<function>.zip, or the one zip whose name starts with the function's name."""
    exact = dist / f"{function}.zip"
    if exact.is_file():
        return exact
    matches = sorted(p for p in dist.glob(f"{function}*.zip") if p.is_file())
    return matches[0] if len(matches) == 1 else None


def package_size(dist: pathlib.Path, function: str) -> PackageSize | None:
    """Sizes of one built package, or None when `make build` has not produced it."""
    tree, archive = dist / function, find_zip(dist, function)
    if tree.is_dir():
        unzipped, files, per_top = tree_size(tree)
    elif archive is not None:
        unzipped, files, per_top = zip_contents(archive)
    else:
        return None
    largest = tuple(sorted(per_top.items(), key=lambda item: -item[1])[:6])
    zipped = archive.stat().st_size if archive is not None else None
    return PackageSize(function, zipped, unzipped, files, largest)


def size_section(results: Results, dist: pathlib.Path) -> Section:
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
