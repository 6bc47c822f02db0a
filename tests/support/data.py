"""The test data in tests/data/: OSS's vectors (oss.json), hostile inputs and the fuzz corpus.

`VECTORS` is tests/data/oss.json (copied from the team's shared vectors; see tests/data/README.md).
The seed corpus is kept in tests/data/corpus/<target>/: files Hypothesis always tries first.

Each file is one input, read as bytes (or UTF-8 text). `seeded(target, name)` turns every file of a
target into a `hypothesis.example`, so the seeds run on every test run, before any generated input.
Add a file when a bug is found or a tricky shape is worth keeping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import example

DATA = Path(__file__).resolve().parents[1] / "data"
VECTORS: dict[str, Any] = json.loads((DATA / "oss.json").read_text("utf-8"))
# Hostile inputs every layer refuses: paths and file names as query values, key URLs before base64.
HOSTILE: dict[str, list[str]] = json.loads((DATA / "hostile.json").read_text("utf-8"))
CORPUS = DATA / "corpus"
F = TypeVar("F", bound=Callable[..., Any])


def seeds(target: str) -> list[bytes]:
    files = sorted(p for p in (CORPUS / target).iterdir() if p.is_file())
    assert files, f"no seeds in {CORPUS / target}"
    return [p.read_bytes() for p in files]


def text_seeds(target: str) -> list[str]:
    return [seed.decode("utf-8") for seed in seeds(target)]


def seeded(target: str, name: str, *, text: bool = True, **fixed: Any) -> Callable[[F], F]:
    """Decorate a @given test so that each seed file is tried as argument `name` (with `fixed`)."""
    values: list[Any] = text_seeds(target) if text else seeds(target)

    def decorate(test: F) -> F:
        for value in values:
            test = example(**{name: value}, **fixed)(test)
        return test

    return decorate
