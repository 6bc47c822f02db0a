"""`python -m local.dev` killed (SIGKILL) in the middle of an upload, then started again on the
same data: no half-written object or record, and reconciliation brings the missing record."""

from __future__ import annotations

import signal
import socket
import threading
from pathlib import Path

import pytest
import requests

from local.reconcile import dev_settings
from tests.reliability.conftest import assert_one_record_per_object, census, reconcile
from tests.support.devstack import SHELL_ROLE, DevProcess, http_session, sign_in_and_grant
from tests.support.emulator import multipart

pytestmark = pytest.mark.e2e


def start_dev(tmp_path: Path, **settings: str) -> DevProcess:
    """`python -m local.dev` on free ports over tmp_path/data (kept across restarts)."""
    return DevProcess.start(settings, tmp_path / "data", extra_env=SHELL_ROLE)


def big_upload(runner: DevProcess, name: str, data: bytes) -> tuple[str, str, bytes, str]:
    """A prefix grant for alice, and the PostObject form for `name` under it: host, key, body,
    content type."""
    grant = sign_in_and_grant(http_session(), runner.url("app"), "alice", path="big/")
    key = grant["dir"] + name
    fields = [("key", key), *grant["fields"].items()]
    body, content_type = multipart(fields, ("f.bin", data, "application/octet-stream"))
    return grant["host"], key, body, content_type


def values_of(runner: DevProcess, tmp_path: Path) -> dict[str, str]:
    return dev_settings(
        {"DEV_OSS_PORT": str(runner.ports["oss"]), "DEV_DATA_DIR": str(tmp_path / "data")}
    )


def kill(runner: DevProcess) -> None:
    assert runner.stop(signal.SIGKILL, 15) == -signal.SIGKILL


def test_killed_while_the_body_arrives_leaves_nothing_half_written(tmp_path: Path) -> None:
    runner = start_dev(tmp_path)
    runner.wait_ready(30)
    _, _, body, content_type = big_upload(runner, "half.bin", b"x" * 2_000_000)
    with socket.create_connection(("127.0.0.1", runner.ports["oss"]), timeout=10) as sock:
        head = (
            f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[: len(body) // 2])  # half the file is on the wire
        kill(runner)
    again = start_dev(tmp_path)  # same data directory, fresh ports
    try:
        again.wait_ready(30)
        values = values_of(again, tmp_path)
        found = census(values)
        assert (found.objects, found.records) == ({}, {})
        report = reconcile(values)
        assert (report.listed, report.count("recorded")) == (0, 0)
    finally:
        assert again.stop(signal.SIGTERM) == 0


class HoldingCallback:
    """An app server that takes the callback and never answers: the stack dies meanwhile."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/oss-callback"
        self.arrived = threading.Event()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._hold, daemon=True).start()

    def _hold(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        self.connections.append(connection)
        connection.recv(65536)
        self.arrived.set()

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.listener.close()


def test_killed_while_the_callback_is_in_flight_reconciliation_repairs(tmp_path: Path) -> None:
    holder = HoldingCallback()
    runner = start_dev(tmp_path, CALLBACK_URL=holder.url)
    try:
        runner.wait_ready(30)
        host, key, body, content_type = big_upload(runner, "kept.bin", b"y" * 100_000)
        failures: list[BaseException] = []

        def browser() -> None:
            try:
                http_session().post(
                    host, data=body, headers={"Content-Type": content_type}, timeout=30
                )
            except requests.RequestException as exc:  # the stack died under it
                failures.append(exc)

        upload = threading.Thread(target=browser)
        upload.start()
        assert holder.arrived.wait(15), "the emulator never made the callback"
        kill(runner)  # the object is stored; its callback never finished
        upload.join(15)
        assert failures, "the browser must not get an answer from a dead stack"
    finally:
        holder.close()

    again = start_dev(tmp_path)
    try:
        again.wait_ready(30)
        values = values_of(again, tmp_path)
        assert census(values).lost == {key}
        report = reconcile(values)
        assert report.recorded == [key]
        found = assert_one_record_per_object(values)
        assert list(found.records) == [key]
    finally:
        assert again.stop(signal.SIGTERM) == 0
