"""The local stack as `make dev` runs it (`python -m local.dev`, or `make dev` itself) in a child
process on free loopback ports, for the tests that need the real process: its ready line, its
exit codes, Ctrl-C / SIGTERM / SIGKILL. Every such test starts it through `DevProcess.start`."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
LOCAL_DEV = (sys.executable, "-m", "local.dev")
MAKE_DEV = ("make", "--no-print-directory", "dev")
# Settings the caller's shell may hold that must not leak into a test stack.
STACK_VARIABLE = re.compile(
    r"(OSS|AUTH|UPLOAD|POLICY|CALLBACK|GRANT|RECORDS|SQLITE|TABLESTORE|CORS|DEV|DOWNLOAD|ALIBABA_CLOUD)_"
)
# Role credentials a shell may hold; `make dev` must ignore them (it signs with the dev key).
SHELL_ROLE = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-from-the-shell",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret-from-the-shell",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "token-from-the-shell",
}
# listener name → (its port variable, its default port in local/dev_config.py)
LISTENERS = {
    "app": ("DEV_APP_PORT", 8000),
    "callback": ("DEV_CALLBACK_PORT", 8001),
    "oss": ("DEV_OSS_PORT", 9000),
}
DEFAULT_HOST = "127.0.0.1"

Dev = TypeVar("Dev", bound="DevProcess")


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port nothing listens on once this returns (the kernel picked it, the socket is closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(host: str = DEFAULT_HOST) -> dict[str, str]:
    """DEV_APP_PORT, DEV_CALLBACK_PORT and DEV_OSS_PORT, each a free port on `host`."""
    return {variable: str(free_port(host)) for variable, _ in LISTENERS.values()}


def stack_settings(data_dir: Path, **settings: str) -> dict[str, str]:
    """`local.dev.Stack`'s settings for an in-process test stack: loopback, ports the kernel
    picks, its data in `data_dir`; `settings` over them."""
    ports = {variable: "0" for variable, _ in LISTENERS.values()}
    return {"DEV_HOST": DEFAULT_HOST, **ports, "DEV_DATA_DIR": str(data_dir), **settings}


def unanswered_callback_url() -> str:
    """A callback URL nobody answers: OSS keeps each upload without a record, as when a
    callback is lost."""
    return f"http://{DEFAULT_HOST}:{free_port()}/oss-callback"


def http_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only, never a proxy from the environment
    return session


class StackClient:
    """What a browser does against a running stack: sign in, ask for a grant, POST the form to
    the OSS emulator, list its uploads, read an object back. Loopback only, never a proxy."""

    def __init__(self, app_url: str, oss_url: str, http: requests.Session | None = None) -> None:
        self.app_url, self.oss_url = app_url, oss_url
        self.http = http or http_session()

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
        grant: Mapping[str, Any],
        data: bytes,
        *,
        key: str | None = None,
        fields: list[tuple[str, str]] | None = None,
        change: Callable[[list[tuple[str, str]]], list[tuple[str, str]]] | None = None,
        filename: str = "file.bin",
        content_type: str | None = None,
    ) -> requests.Response:
        """POST the form a browser builds: key, the grant's fields in order (or `fields`), file."""
        items = list(grant["fields"].items()) if fields is None else fields
        form = [("key", key if key is not None else grant["key"]), *items]
        if change is not None:
            form = change(form)
        file_part = (filename, data, content_type) if content_type else (filename, data)
        parts: list[tuple[str, Any]] = [(name, (None, value)) for name, value in form]
        parts.append(("file", file_part))
        return self.http.post(grant["host"], files=parts, timeout=20)

    def uploads(self, token: str | None) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.http.get(
            f"{self.app_url}/uploads", params={"limit": "200"}, headers=headers, timeout=10
        )
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    def get_object(self, key: str) -> requests.Response:
        return self.http.get(f"{self.oss_url}/{key}", timeout=10)

    def emulator_stats(self) -> dict[str, int]:
        """How many requests of each OSS operation the emulator has answered."""
        answer = self.http.get(f"{self.oss_url}/.well-known/oss-emulator/stats", timeout=10)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def sign_in_and_grant(
    http: requests.Session, app_url: str, user: str, **params: str
) -> dict[str, Any]:
    """GET /dev/token?user=…, then GET /signature with that bearer token: the grant."""
    client = StackClient(app_url, "", http)
    return client.grant(client.token(user), **params)


class DevProcess:
    """A running `make dev` stack: its output lines, listeners, and ways to stop it."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], new_session: bool) -> None:
        self.command = " ".join(os.path.basename(part) for part in command)
        self.host = env.get("DEV_HOST") or DEFAULT_HOST
        self.ports = {name: int(env.get(var) or port) for name, (var, port) in LISTENERS.items()}
        self.new_session = new_session
        self.lines: list[str] = []
        self.accepting_at_ready: dict[str, bool] = {}
        self.ready = threading.Event()
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter or make, our arguments
            list(command),
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=new_session,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    @classmethod
    def start(
        cls: type[Dev],
        settings: Mapping[str, str] | None = None,
        data_dir: Path | None = None,
        *,
        host: str | None = DEFAULT_HOST,
        ports: bool = True,
        extra_env: Mapping[str, str] | None = None,
        new_session: bool = False,
        command: Sequence[str] = LOCAL_DEV,
    ) -> Dev:
        """Start `command` with the shell's stack settings removed, then (later wins) `extra_env`,
        DEV_HOST=`host`, free ports (`ports`), DEV_DATA_DIR=`data_dir`, and `settings`.

        `host=None`, `ports=False` and no `data_dir` leave those to the stack's defaults.
        `new_session`: its own process group, so signals reach every process of it, as Ctrl-C in
        a terminal does (needed when `command` is make, which runs the stack as its child)."""
        env = {k: v for k, v in os.environ.items() if not STACK_VARIABLE.match(k)}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra_env or {})
        if host is not None:
            env["DEV_HOST"] = host
        if ports:
            env.update(free_ports(host or DEFAULT_HOST))
        if data_dir is not None:
            env["DEV_DATA_DIR"] = str(data_dir)
        env.update(settings or {})
        return cls(command, env, new_session)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if "ready" in line.lower() and not self.ready.is_set():
                self.accepting_at_ready = {name: self.accepts(name) for name in self.ports}
                self.ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.ports[name]}"

    @property
    def urls(self) -> dict[str, str]:
        return {name: self.url(name) for name in self.ports}

    def accepts(self, name: str) -> bool:
        """Whether listener `name` accepts a TCP connection right now."""
        try:
            with socket.create_connection((self.host, self.ports[name]), timeout=1):
                return True
        except OSError:
            return False

    def printed(self, text: str, seconds: float = 10) -> bool:
        """Whether `text` shows up in the output within `seconds` (details follow the ready line)."""
        deadline = time.monotonic() + seconds
        while text not in self.output:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def wait_ready(self: Dev, timeout: float = 60) -> Dev:
        """Wait for the first line containing "ready"; fail (and kill it) if it exits or times out."""
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._kill()
                pytest.fail(f"{self.command} printed no ready line:\n{self.output}", pytrace=False)
        return self

    def wait(self, timeout: float, *, must_exit: bool = True) -> int:
        """Wait for the exit code; past `timeout` kill it and, if `must_exit`, fail the test."""
        try:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                if must_exit:
                    pytest.fail(f"{self.command} did not stop:\n{self.output}", pytrace=False)
        finally:
            self.reader.join(timeout=5)
            assert self.process.stdout is not None
            self.process.stdout.close()
        return int(self.process.returncode)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15, *, must_exit: bool = True) -> int:
        """Send `sig` (to the whole group when it has its own session) and wait for the exit code."""
        if self.process.poll() is None:
            self._signal(sig)
        return self.wait(timeout, must_exit=must_exit)

    def _signal(self, sig: int) -> None:
        if self.new_session:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)

    def _kill(self) -> None:
        if self.process.poll() is None:
            self._signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def start_dev(tmp_path: Path, **settings: str) -> DevProcess:
    """`python -m local.dev` on free ports over tmp_path/data (kept across restarts), with role
    credentials in the shell that must not leak into the dev stack."""
    return DevProcess.start(settings, tmp_path / "data", extra_env=SHELL_ROLE)
