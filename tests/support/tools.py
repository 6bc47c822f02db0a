"""A test whose tool is missing (Chromium, node_modules, the FC runtime replica): skipped on a
developer's machine, a failure under `CI=true`, where `.ci/run` installs everything."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test: {reason}", pytrace=False)
    pytest.skip(reason)
