"""Browser tests: Debian's /usr/bin/chromium (never downloaded) driven headless by Playwright.
Without it they skip, except under CI=true, where that is a failure: CI cannot pass by skipping."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser.support import HARNESS_ORIGIN, Stack, serve_web
from tests.support.devstack import DevProcess
from tests.support.tools import unavailable

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is missing: `make venv` installs it")
        raise
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def harness(page: Any) -> Any:
    """A page on a routed origin with `window.oss` = web/oss-upload.js (no sockets)."""
    page.route(f"{HARNESS_ORIGIN}/**", serve_web)
    page.goto(f"{HARNESS_ORIGIN}/")
    page.wait_for_function("document.title === 'ready'")
    return page


StackFactory = Callable[..., Stack]


@pytest.fixture(scope="module")
def stack_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackFactory]:
    """Start `python -m local.dev` on free ports with settings over the dev defaults; every stack
    stops (Ctrl-C, as in a terminal) when the module is done."""
    started: list[DevProcess] = []

    def start(**settings: str) -> Stack:
        dev = DevProcess.start(settings, tmp_path_factory.mktemp("stack"), new_session=True)
        started.append(dev)
        return Stack(dev.wait_ready(60))

    yield start
    for dev in started:
        dev.stop(signal.SIGINT, 10, must_exit=False)
