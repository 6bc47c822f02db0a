"""End-to-end fixtures over tests/support/livestack.py's stacks: `live` (the dev defaults) and
its ledger."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.records.sqlite import SqliteStore
from tests.support.livestack import LiveStack, StartStack
from tests.support.multipart import PART


@pytest.fixture
def live(start_stack: StartStack) -> LiveStack:
    """The dev defaults, with OSS's smallest part (100 KiB) so multipart needs no large files."""
    return start_stack(MULTIPART_PART_BYTES=str(PART))


@pytest.fixture
def ledger(live: LiveStack) -> Iterator[SqliteStore]:
    with live.ledger() as store:
        yield store
