"""The seed corpus kept in tests/fuzz/corpus/<target>/: files Hypothesis always tries first.

Each file is one input, read as bytes (or UTF-8 text). `seeded(target, name)` turns every file of a
target into a `hypothesis.example`, so the seeds run on every test run, before any generated input.
Add a file when a bug is found or a tricky shape is worth keeping.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import example

CORPUS = Path(__file__).resolve().parent / "corpus"
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
