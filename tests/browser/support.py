"""Helpers of the browser tests: files, the routed origin, and the local stack on free ports."""

from __future__ import annotations

import contextlib
import json
import mimetypes
import signal
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import oss2
import pytest

from tests.support.devstack import DevProcess

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
STACK_START_SECONDS = 60


# --- files ------------------------------------------------------------------------------------


def png_bytes(width: int = 3, height: int = 2) -> bytes:
    """A valid RGB PNG (PNG spec: signature, IHDR, IDAT, IEND; each chunk CRC-32'd)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + bytes([200, 30, 60]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# --- a routed origin: the client without the stack -------------------------------------------

HARNESS_ORIGIN = "http://app.test"
HARNESS_HTML = """<!doctype html><html lang="en"><meta charset="utf-8"><title>harness</title>
<script type="module">
import * as oss from '/oss-upload.js';
window.oss = oss;
window.results = {};
/** Start an upload in the page; its outcome lands in window.results[name]. */
window.start = (name, promise) => {
  window.results[name] = { state: 'pending' };
  promise.then(
    (value) => { window.results[name] = { state: 'fulfilled', value }; },
    (error) => {
      const copy = { ...error, name: error.name, message: error.message,
        isUploadError: error instanceof oss.UploadError, cls: error.constructor.name };
      window.results[name] = { state: 'rejected', error: copy };
    },
  );
};
document.title = 'ready';
</script>"""


def serve_web(route: Any) -> None:
    """Serve web/ (and a harness page at /) on the routed origin."""
    path = urllib.parse.urlsplit(route.request.url).path
    if path in ("/", "/harness.html"):
        route.fulfill(status=200, content_type="text/html", body=HARNESS_HTML)
        return
    target = (WEB / path.lstrip("/")).resolve()
    if WEB not in target.parents or not target.is_file():
        route.fulfill(status=404, body="not found")
        return
    kind = "text/javascript" if target.suffix == ".js" else mimetypes.guess_type(target.name)[0]
    route.fulfill(
        status=200, content_type=kind or "application/octet-stream", body=target.read_bytes()
    )


def multipart_fields(content_type: str, body: bytes) -> list[tuple[str, bytes, str | None]]:
    """(name, value, filename) of each part, in the order the browser sent them."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts.append((str(name), part.get_payload(decode=True) or b"", part.get_filename()))
    return parts


def oss_error_xml(code: str, message: str) -> str:
    from xml.sax.saxutils import escape

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        "<RequestId>5C3D8A1E0000000000000001</RequestId><HostId>app.test</HostId></Error>"
    )


@dataclass
class FakeSign:
    """A sign function answering GET /signature on the routed origin; records each request."""

    dir: str = "uploads/alice/"
    ttl: int = 300
    requests: list[dict[str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    failure: tuple[int, dict[str, str]] | None = None

    def fields(self) -> dict[str, str]:
        return {
            "policy": f"cG9saWN5LW5v{len(self.requests):04d}",
            "x-oss-signature-version": "OSS4-HMAC-SHA256",
            "x-oss-credential": "dev-access-key-id/20250101/cn-hangzhou/oss/aliyun_v4_request",
            "x-oss-date": "20250101T000000Z",
            "x-oss-signature": "0" * 64,
            "success_action_status": "200",
            "callback": "eyJjYWxsYmFja1VybCI6Imh0dHA6Ly9jYi50ZXN0LyJ9",
        }

    def __call__(self, route: Any) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(route.request.url).query, True))
        self.requests.append(query)
        self.headers.append(route.request.headers)
        if self.failure is not None:
            status, payload = self.failure
            route.fulfill(status=status, content_type="application/json", body=json.dumps(payload))
            return
        fields = self.fields()
        grant: dict[str, Any] = {
            "host": f"{HARNESS_ORIGIN}/oss",
            "dir": self.dir,
            "policy": fields["policy"],
            "expire": int(time.time()) + self.ttl,
            "callback": fields["callback"],
            "fields": fields,
            "version": "v4",
        }
        if "filename" in query:
            ext = query["filename"].rsplit(".", 1)[-1].lower()
            grant["key"] = f"{self.dir}{len(self.requests):04d}.{ext}"
            fields["Content-Type"] = query.get("type", "application/octet-stream")
            fields["x-oss-forbid-overwrite"] = "true"
        route.fulfill(status=200, content_type="application/json", body=json.dumps(grant))


def record_for(parts: list[tuple[str, bytes, str | None]]) -> dict[str, Any]:
    """The JSON our callback would answer for this form (what OSS passes to the browser)."""
    values = {name: value for name, value, _ in parts}
    return {
        "Status": "OK",
        "key": values["key"].decode(),
        "size": len(values["file"]),
        "etag": "D41D8CD98F00B204E9800998ECF8427E",
        "mimeType": "image/png",
        "owner": "alice",
        "createdAt": 1735689600000,
    }


# --- the local stack (local/dev.py) on free ports ---------------------------------------------


@dataclass
class Stack:
    """A running `python -m local.dev`."""

    app_url: str
    oss_url: str
    callback_url: str
    data_dir: Path
    dev: DevProcess

    def get_json(self, path: str, token: str | None = None) -> Any:
        request = urllib.request.Request(self.app_url + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def token(self, user: str) -> str:
        token = self.get_json("/dev/token?" + urllib.parse.urlencode({"user": user}))["token"]
        return str(token)

    def uploads(self, token: str | None) -> list[dict[str, Any]]:
        return list(self.get_json("/uploads?limit=200", token)["items"])

    def object_status(self, key: str) -> int:
        """HeadObject as the bucket owner (the official SDK): the bucket is private."""
        owner = oss2.Bucket(
            oss2.auth.AuthV4("dev-access-key-id", "dev-access-key-secret"),
            self.oss_url,
            "dev-bucket",
            region="cn-hangzhou",
        )
        try:
            return int(owner.head_object(key).status)
        except oss2.exceptions.OssError as error:
            return int(error.status)


@contextlib.contextmanager
def run_stack(data_dir: Path, **settings: str) -> Iterator[Stack]:
    """Start the local stack on free ports with `settings` over the dev defaults; stop it after."""
    try:
        import local.dev  # noqa: F401  (the stack must exist before it can be started)
    except ImportError as exc:
        pytest.fail(f"the local stack (local/dev.py) cannot be imported: {exc}", pytrace=False)
    dev = DevProcess.start(settings, data_dir, new_session=True).wait_ready(STACK_START_SECONDS)
    stack = Stack(
        app_url=dev.url("app"),
        oss_url=dev.url("oss"),
        callback_url=dev.url("callback"),
        data_dir=data_dir,
        dev=dev,
    )
    try:
        yield stack
    finally:
        dev.stop(signal.SIGINT, 10, must_exit=False)  # Ctrl-C: the stack stops cleanly
