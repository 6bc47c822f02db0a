"""`python -m local.dev` as `make dev` runs it: /dev/token, a clean stop on SIGINT (Ctrl-C) and
SIGTERM with the emulator's key kept across the restart, and a bad setting failing before ready.
(The ready line, the dev defaults and the key URL: tests/test_contracts.py's make dev tests.)"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import jwt
import pytest

from tests.support.devstack import StackClient, start_dev

pytestmark = pytest.mark.e2e


def test_make_dev_stops_cleanly_and_keeps_its_key_across_a_restart(tmp_path: Path) -> None:
    pems = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        runner = start_dev(tmp_path)
        try:
            runner.wait_ready(30)
            client = StackClient(runner.url("app"), runner.url("oss"))
            token = client.token("carol")
            claims = jwt.decode(
                token, "dev-jwt-secret-not-for-production-0001", algorithms=["HS256"]
            )
            assert (claims["sub"], claims["exp"] - claims["iat"]) == ("carol", 3600)
            assert client.http.get(f"{client.app_url}/dev/token", timeout=10).status_code == 400
            key_url = f"{client.oss_url}/.well-known/oss-emulator/callback_pub_key.pem"
            pems.append(client.http.get(key_url, timeout=10).text)
        finally:
            code = runner.stop(sig)
        assert code == 0, runner.output
        for port in runner.ports.values():
            with (
                pytest.raises(ConnectionRefusedError),
                socket.create_connection(("127.0.0.1", port), timeout=1),
            ):
                pass
    assert pems[0].startswith("-----BEGIN PUBLIC KEY-----")
    assert pems[0] == pems[1]


def test_bad_setting_fails_before_ready(tmp_path: Path) -> None:
    runner = start_dev(tmp_path, OSS_SIGNATURE_VERSION="v3")
    assert runner.wait(30) == 2
    assert "OSS_SIGNATURE_VERSION" in runner.output
    assert "ready" not in runner.output
