"""Shared fixtures. Settings are built from dicts (tests/helpers.py), never from os.environ."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.http import Core
from shared.settings import SignSettings
from shared.sign_app import create_app
from tests.helpers import NOW, sign_settings


@pytest.fixture
def make_sign_app() -> Callable[..., Core]:
    """Build the sign core with a frozen clock and no ambient credentials; override settings."""

    def build(
        settings: SignSettings | None = None,
        *,
        environ: dict[str, str] | None = None,
        now: float = NOW,
        **overrides: Any,
    ) -> Core:
        options = {k: overrides.pop(k) for k in ("store_factory", "jwks_client") if k in overrides}
        return create_app(
            settings or sign_settings(**overrides),
            environ=environ or {},
            now=lambda: now,
            **options,
        )

    return build


@pytest.fixture
def sign_app(make_sign_app: Callable[..., Core]) -> Core:
    """The sign core with the default test settings (V4, JWT auth, one CORS origin)."""
    return make_sign_app()
