"""`python -m local.dev` killed (SIGKILL) in the middle of an upload, then started again on the
same data: no half-written object or record, and reconciliation brings the missing record."""

from __future__ import annotations

import select
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from local.reconcile import dev_settings
from tests.reliability.conftest import assert_one_record_per_object, census, reconcile
from tests.support.devstack import DevProcess, http_session, sign_in_and_grant, start_dev
from tests.support.emulator import multipart

pytestmark = pytest.mark.e2e


def big_upload(runner: DevProcess, name: str, data: bytes) -> tuple[str, str, bytes, str]:
    """A prefix grant for alice, and the PostObject form for `name` under it: host, key, body,
    content type."""
    grant = sign_in_and_grant(http_session(), runner.url("app"), "alice", path="big/")
    key = grant["dir"] + name
    fields = [("key", key), *grant["fields"].items()]
    body, content_type = multipart(fields, ("f.bin", data, "application/octet-stream"))
    return grant["host"], key, body, content_type


def values_of(runner: DevProcess, tmp_path: Path) -> dict[str, str]:
    """The running stack's settings (its emulator's port, the data directory)."""
    ports = {"DEV_OSS_PORT": str(runner.ports["oss"]), "DEV_DATA_DIR": str(tmp_path / "data")}
    return dev_settings(ports)


def kill(runner: DevProcess) -> None:
    assert runner.stop(signal.SIGKILL, 15) == -signal.SIGKILL


@contextmanager
def restarted(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The stack started again on the same data directory (fresh ports): its settings."""
    again = start_dev(tmp_path).wait_ready(30)
    try:
        yield values_of(again, tmp_path)
    finally:
        assert again.stop(signal.SIGTERM) == 0


def test_killed_while_the_body_arrives_leaves_nothing_half_written(tmp_path: Path) -> None:
    runner = start_dev(tmp_path).wait_ready(30)
    _, _, body, content_type = big_upload(runner, "half.bin", b"x" * 2_000_000)
    with socket.create_connection(("127.0.0.1", runner.ports["oss"]), timeout=10) as sock:
        head = (
            f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[: len(body) // 2])  # half the file is on the wire
        kill(runner)
    with restarted(tmp_path) as values:
        found = census(values)
        assert (found.objects, found.records) == ({}, {})
        report = reconcile(values)
        assert (report.listed, report.count("recorded")) == (0, 0)


def test_killed_while_the_callback_is_in_flight_reconciliation_repairs(tmp_path: Path) -> None:
    # The app server takes the callback's connection and never answers: the stack dies meanwhile.
    with socket.create_server(("127.0.0.1", 0)) as holder:
        url = f"http://127.0.0.1:{holder.getsockname()[1]}/oss-callback"
        runner = start_dev(tmp_path, CALLBACK_URL=url).wait_ready(30)
        host, key, body, content_type = big_upload(runner, "kept.bin", b"y" * 100_000)
        failures: list[BaseException] = []

        def browser() -> None:
            try:
                headers = {"Content-Type": content_type}
                http_session().post(host, data=body, headers=headers, timeout=30)
            except requests.RequestException as exc:  # the stack died under it
                failures.append(exc)

        upload = threading.Thread(target=browser)
        upload.start()
        arrived, _, _ = select.select([holder], [], [], 15)  # a connection waits to be accepted
        assert arrived, "the emulator never made the callback"
        kill(runner)  # the object is stored; its callback never finished
        upload.join(15)
        assert failures, "the browser must not get an answer from a dead stack"
    with restarted(tmp_path) as values:
        assert census(values).lost == {key}
        assert reconcile(values).recorded == [key]
        assert list(assert_one_record_per_object(values).records) == [key]
