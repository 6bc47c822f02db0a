"""`python -m local.dev` as `make dev` runs it: the ready line, the dev defaults, /dev/token,
the demo page, and a clean stop on SIGINT (Ctrl-C) and SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import jwt
import pytest
import requests

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STACK_VARIABLE = re.compile(
    r"(OSS|AUTH|UPLOAD|POLICY|CALLBACK|GRANT|RECORDS|SQLITE|TABLESTORE|CORS|DEV|DOWNLOAD|ALIBABA_CLOUD)_"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Runner:
    def __init__(self, tmp_path: Path, **settings: str) -> None:
        self.ports = {name: free_port() for name in ("app", "callback", "oss")}
        env = {k: v for k, v in os.environ.items() if not STACK_VARIABLE.match(k)}
        env.update(
            DEV_HOST="127.0.0.1",
            DEV_APP_PORT=str(self.ports["app"]),
            DEV_CALLBACK_PORT=str(self.ports["callback"]),
            DEV_OSS_PORT=str(self.ports["oss"]),
            DEV_DATA_DIR=str(tmp_path / "data"),
            PYTHONUNBUFFERED="1",
            # The caller's role credentials must not leak into the dev stack.
            ALIBABA_CLOUD_ACCESS_KEY_ID="LTAI-from-the-shell",
            ALIBABA_CLOUD_ACCESS_KEY_SECRET="secret-from-the-shell",
        )
        env.update(settings)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.dev"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if "ready" in line:
                self.ready.set()

    def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not self.ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail("no ready line:\n" + "".join(self.lines))

    def wait(self, seconds: float) -> int:
        try:
            code = self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            pytest.fail("the stack did not stop:\n" + "".join(self.lines))
        finally:
            self.reader.join(timeout=5)
            assert self.process.stdout is not None
            self.process.stdout.close()
        return code

    def stop(self, sig: int) -> int:
        self.process.send_signal(sig)
        return self.wait(15)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_make_dev_runs_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    runner = Runner(tmp_path)
    try:
        runner.wait_ready()
        before = runner.lines[: next(i for i, line in enumerate(runner.lines) if "ready" in line)]
        assert not any("ready" in line.lower() for line in before)
        app = f"http://127.0.0.1:{runner.ports['app']}"
        http = requests.Session()
        http.trust_env = False
        token = http.get(f"{app}/dev/token", params={"user": "carol"}, timeout=10).json()["token"]
        claims = jwt.decode(token, "dev-jwt-secret-not-for-production-0001", algorithms=["HS256"])
        assert claims["sub"] == "carol"
        assert claims["exp"] - claims["iat"] == 3600
        grant = http.get(
            f"{app}/signature",
            params={"path": "p/"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        assert grant["host"] == f"http://127.0.0.1:{runner.ports['oss']}"
        assert grant["version"] == "v4"
        assert grant["fields"]["x-oss-credential"].startswith("dev-access-key-id/")  # not LTAI
        key_url = f"{grant['host']}/.well-known/oss-emulator/callback_pub_key.pem"
        assert http.get(key_url, timeout=10).status_code == 200
        if (ROOT / "web" / "index.html").is_file():
            page = http.get(f"{app}/", timeout=10)
            assert page.status_code == 200
            assert "html" in page.headers["Content-Type"]
        assert http.get(f"{app}/dev/token", timeout=10).status_code == 400
    finally:
        code = runner.stop(sig)
    assert code == 0, "".join(runner.lines)
    for port in runner.ports.values():
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", port), timeout=1),
        ):
            pass


def test_bad_setting_fails_before_ready(tmp_path: Path) -> None:
    runner = Runner(tmp_path, OSS_SIGNATURE_VERSION="v3")
    assert runner.wait(30) == 2
    output = "".join(runner.lines)
    assert "OSS_SIGNATURE_VERSION" in output
    assert "ready" not in output


def test_key_survives_a_restart(tmp_path: Path) -> None:
    pems = []
    for _ in range(2):
        runner = Runner(tmp_path)
        try:
            runner.wait_ready()
            url = f"http://127.0.0.1:{runner.ports['oss']}/.well-known/oss-emulator/callback_pub_key.pem"
            pems.append(requests.get(url, timeout=10).text)
        finally:
            assert runner.stop(signal.SIGTERM) == 0
    assert pems[0] == pems[1]
