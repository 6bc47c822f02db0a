"""`python -m local.dev` as `make dev` runs it: the ready line, the dev defaults, /dev/token,
the demo page, and a clean stop on SIGINT (Ctrl-C) and SIGTERM."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import jwt
import pytest

from tests.support.devstack import ROOT, SHELL_ROLE, DevProcess, StackClient, http_session

pytestmark = pytest.mark.e2e


def start(tmp_path: Path, **settings: str) -> DevProcess:
    """`python -m local.dev` on free ports, data in tmp_path/data, with role credentials in the
    shell that must not leak into the dev stack."""
    return DevProcess.start(settings, tmp_path / "data", extra_env=SHELL_ROLE)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_make_dev_runs_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    runner = start(tmp_path)
    try:
        runner.wait_ready(30)
        before = runner.lines[: next(i for i, line in enumerate(runner.lines) if "ready" in line)]
        assert not any("ready" in line.lower() for line in before)
        client = StackClient(runner.url("app"), runner.url("oss"))
        token = client.token("carol")
        claims = jwt.decode(token, "dev-jwt-secret-not-for-production-0001", algorithms=["HS256"])
        assert claims["sub"] == "carol"
        assert claims["exp"] - claims["iat"] == 3600
        grant = client.grant(token, path="p/")
        assert grant["host"] == client.oss_url
        assert grant["version"] == "v4"
        assert grant["fields"]["x-oss-credential"].startswith("dev-access-key-id/")  # not LTAI
        key_url = f"{grant['host']}/.well-known/oss-emulator/callback_pub_key.pem"
        assert client.http.get(key_url, timeout=10).status_code == 200
        if (ROOT / "web" / "index.html").is_file():
            page = client.http.get(f"{client.app_url}/", timeout=10)
            assert page.status_code == 200
            assert "html" in page.headers["Content-Type"]
        assert client.http.get(f"{client.app_url}/dev/token", timeout=10).status_code == 400
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
    runner = start(tmp_path, OSS_SIGNATURE_VERSION="v3")
    assert runner.wait(30) == 2
    output = "".join(runner.lines)
    assert "OSS_SIGNATURE_VERSION" in output
    assert "ready" not in output


def test_key_survives_a_restart(tmp_path: Path) -> None:
    pems = []
    for _ in range(2):
        runner = start(tmp_path)
        try:
            runner.wait_ready(30)
            url = runner.url("oss") + "/.well-known/oss-emulator/callback_pub_key.pem"
            pems.append(http_session().get(url, timeout=10).text)
        finally:
            assert runner.stop(signal.SIGTERM) == 0
    assert pems[0] == pems[1]
