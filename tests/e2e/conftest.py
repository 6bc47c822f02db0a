"""The local stack over real sockets on 127.0.0.1, free ports, in-process (local.dev.Stack).

`requests` plays the browser: it asks the sign function for a grant, POSTs the multipart form to
the OSS emulator, and reads what OSS relays from the callback function. The emulator's clock can
be shifted (expired policies) and every callback it sends is journaled (replays).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests

from local.dev import Stack
from local.oss_emulator.callback import CallbackReply, CallbackRequest, send_with_requests
from shared.credentials import Credentials
from shared.settings import Secret
from shared.sign.presign import presign_v4

STS_KEY = ("STS.e2e-temporary-key-id", "e2e-temporary-secret", "e2e-security-token-CAIS")


class ShiftedClock:
    """The emulator's clock: real time plus an offset a test may move."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Journal:
    """Sends callbacks for real (loopback) and keeps each request the emulator made."""

    def __init__(self) -> None:
        self.sent: list[CallbackRequest] = []

    def __call__(self, request: CallbackRequest, timeout: float) -> CallbackReply:
        self.sent.append(request)
        return send_with_requests(request, timeout)


class LiveStack:
    def __init__(self, stack: Stack, clock: ShiftedClock, journal: Journal) -> None:
        self.stack = stack
        self.clock = clock
        self.journal = journal
        self.app_url = stack.url("app")
        self.oss_url = stack.url("oss")
        self.callback_url = stack.values["CALLBACK_URL"]
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only: never through a proxy from the environment

    def token(self, user: str) -> str:
        response = self.http.get(f"{self.app_url}/dev/token", params={"user": user}, timeout=10)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def signature(self, token: str | None, **params: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.get(
            f"{self.app_url}/signature", params=params, headers=headers, timeout=10
        )

    def grant(self, token: str | None, **params: str) -> dict[str, Any]:
        response = self.signature(token, **params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def upload(
        self,
        grant: dict[str, Any],
        data: bytes,
        *,
        key: str | None = None,
        filename: str = "file.bin",
        content_type: str | None = None,
        change: Callable[[list[tuple[str, str]]], list[tuple[str, str]]] | None = None,
    ) -> requests.Response:
        """POST the form a browser builds: key, every field of the grant in order, then file."""
        fields = [("key", key if key is not None else grant["key"]), *grant["fields"].items()]
        if change is not None:
            fields = change(fields)
        file_part = (filename, data, content_type) if content_type else (filename, data)
        parts: list[tuple[str, Any]] = [(name, (None, value)) for name, value in fields]
        parts.append(("file", file_part))
        return self.http.post(grant["host"], files=parts, timeout=15)

    def uploads(self, token: str | None) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.http.get(
            f"{self.app_url}/uploads", params={"limit": "200"}, headers=headers, timeout=10
        )
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

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


StartStack = Callable[..., LiveStack]


class Stacks:
    """In-process stacks on free ports, each with its own data dir under `root`; `stop_all` at
    the end. Every one has a shiftable emulator clock and a callback journal."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Stack] = []

    def start(self, settings: Mapping[str, str], **options: Any) -> LiveStack:
        """A stack with `settings` over the dev defaults; `options` go to `local.dev.Stack`."""
        environ = {
            "DEV_HOST": "127.0.0.1",
            "DEV_APP_PORT": "0",
            "DEV_CALLBACK_PORT": "0",
            "DEV_OSS_PORT": "0",
            "DEV_DATA_DIR": str(self.root / f"stack-{len(self.started)}"),
            "DEV_OSS_RAM_POLICIES": "1",  # each function with its own role's permissions
            **settings,
        }
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
    """Start a stack with settings over the dev defaults; `sts=True` signs with an STS key."""
    stacks = Stacks(tmp_path)

    def start(*, sts: bool = False, **settings: str) -> LiveStack:
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
        return stacks.start(settings, sign_environ=sign_environ)

    yield start
    stacks.stop_all()
