"""The local stack in-process (local.dev.Stack) over real sockets on 127.0.0.1, free ports;
`requests` plays the browser. The emulator's clock can be shifted (expired URLs and policies) and
every callback it sends is journaled (replays, lost callbacks). tests/conftest.py registers this
module as a plugin: `start_stack` serves tests/e2e and tests/reliability alike."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests

from local.dev import Stack
from local.oss_emulator.callback import (
    CallbackReply,
    CallbackRequest,
    CallbackUnreachable,
    send_with_requests,
)
from shared.credentials import Credentials
from shared.records.sqlite import SqliteStore
from shared.settings import Secret
from shared.sign.presign import presign_v4
from tests.support.devstack import StackClient, stack_settings

STS_KEY = ("STS.e2e-temporary-key-id", "e2e-temporary-secret", "e2e-security-token-CAIS")


class ShiftedClock:
    """The emulator's clock: real time plus an offset a test may move."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Journal:
    """Sends callbacks for real (loopback) and keeps each request the emulator made; with `lose`
    set, keeps them without sending (a lost callback: OSS answers 203 CallbackFailed)."""

    def __init__(self) -> None:
        self.sent: list[CallbackRequest] = []
        self.lose = False

    def __call__(self, request: CallbackRequest, timeout: float) -> CallbackReply:
        self.sent.append(request)
        if self.lose:
            raise CallbackUnreachable("the callback was lost on the way (test)")
        return send_with_requests(request, timeout)


class LiveStack(StackClient):
    def __init__(self, stack: Stack, clock: ShiftedClock, journal: Journal) -> None:
        super().__init__(stack.url("app"), stack.url("oss"))
        self.stack = stack
        self.clock = clock
        self.journal = journal
        self.callback_url = stack.values["CALLBACK_URL"]

    def get_object(self, key: str) -> requests.Response:
        """Read as the bucket owner (a presigned GET on the emulator's clock): the bucket is
        private in signed mode, so an unsigned read would be refused."""
        values = self.stack.values
        owner = Credentials(values["OSS_ACCESS_KEY_ID"], Secret(values["OSS_ACCESS_KEY_SECRET"]))
        url = presign_v4(
            "GET",
            endpoint=self.oss_url,
            bucket=values["OSS_BUCKET"],
            key=key,
            region=values["OSS_REGION"],
            credentials=owner,
            now=self.clock(),
            expires=60,
        ).url
        return self.http.get(url, timeout=10)

    @contextlib.contextmanager
    def ledger(self) -> Iterator[SqliteStore]:
        """The stack's SQLite ledger (records, grants, usage), read directly."""
        store = SqliteStore(self.stack.values["SQLITE_PATH"])
        try:
            yield store
        finally:
            store.close()


StartStack = Callable[..., LiveStack]


class Stacks:
    """In-process stacks on free ports, each with its own data dir under `root`; `stop_all` at
    the end. Every one has a shiftable emulator clock and a callback journal."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Stack] = []

    def start(self, settings: Mapping[str, str], **options: Any) -> LiveStack:
        """A stack with `settings` over the dev defaults; `options` go to `local.dev.Stack`."""
        data_dir = self.root / f"stack-{len(self.started)}"
        # Each function with its own role's permissions.
        environ = {**stack_settings(data_dir, DEV_OSS_RAM_POLICIES="1"), **settings}
        clock, journal = ShiftedClock(), Journal()
        stack = Stack(environ, emulator_clock=clock, send_callback=journal, **options)
        stack.start()
        self.started.append(stack)
        return LiveStack(stack, clock, journal)

    def stop_all(self) -> None:
        for stack in self.started:
            stack.stop()


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[StartStack]:
    """Start a stack with settings over the dev defaults; `sts=True` signs with an STS key;
    `callback_store` wraps the callback's store, `callback_clock` is its clock."""
    stacks = Stacks(tmp_path)

    def start(*, sts: bool = False, **settings: Any) -> LiveStack:
        sign_environ = None
        if sts:
            key_id, secret, token = STS_KEY
            settings.update(
                DEV_OSS_STS_ACCESS_KEY_ID=key_id,
                DEV_OSS_STS_ACCESS_KEY_SECRET=secret,
                DEV_OSS_STS_TOKEN=token,
            )
            # The role credentials FC would give the function (make dev itself ignores these).
            sign_environ = {
                "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
                "ALIBABA_CLOUD_SECURITY_TOKEN": token,
            }
        options = {name: settings.pop(name, None) for name in ("callback_store", "callback_clock")}
        return stacks.start(settings, sign_environ=sign_environ, **options)

    yield start
    stacks.stop_all()
