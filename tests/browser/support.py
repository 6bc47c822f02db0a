"""Helpers of the browser tests: the routed origin and the local stack on free ports."""

from __future__ import annotations

import json
import mimetypes
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import oss2

from tests.support.devstack import DevProcess, StackClient

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"


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


def json_route(status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    """A route handler answering `body` as JSON (a str is sent as it is)."""
    text = body if isinstance(body, str) else json.dumps(body)

    def answer(route: Any) -> None:
        route.fulfill(status=status, content_type="application/json", headers=headers, body=text)

    return answer


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


def oss_error_route(status: int, code: str, message: str = "Refused.") -> Any:
    """A route handler answering as OSS does when it refuses a request (protocol §7)."""

    def answer(route: Any) -> None:
        route.fulfill(
            status=status, content_type="application/xml", body=oss_error_xml(code, message)
        )

    return answer


def sign_error(status: int, code: str, message: str, **headers: str) -> Any:
    """A route handler answering as the sign function does when it refuses a request."""
    return json_route(status, {"Status": "Error", "code": code, "message": message}, headers)


@dataclass
class FakeSign:
    """A sign function answering GET /signature on the routed origin; records each request."""

    dir: str = "uploads/alice/"
    ttl: int = 300
    requests: list[dict[str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    failure: Any = None  # a route handler answering instead of the grant

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
            self.failure(route)
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
        json_route(200, grant)(route)


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


class Stack(StackClient):
    """A running `python -m local.dev`, seen by a browser's helper and by the bucket owner."""

    def __init__(self, dev: DevProcess) -> None:
        super().__init__(dev.url("app"), dev.url("oss"))

    def owner_bucket(self) -> oss2.Bucket:
        """The bucket as its owner (the official SDK): the bucket is private."""
        auth = oss2.auth.AuthV4("dev-access-key-id", "dev-access-key-secret")
        return oss2.Bucket(auth, self.oss_url, "dev-bucket", region="cn-hangzhou")

    def object_status(self, key: str) -> int:
        """HeadObject as the bucket owner."""
        try:
            return int(self.owner_bucket().head_object(key).status)
        except oss2.exceptions.OssError as error:
            return int(error.status)

    def open_uploads(self, prefix: str = "") -> list[tuple[str, str]]:
        """ListMultipartUploads as the bucket owner: (key, upload id) of each upload left open."""
        listing = self.owner_bucket().list_multipart_uploads(prefix=prefix)
        return [(upload.key, upload.upload_id) for upload in listing.upload_list]


def sign_in(page: Any, stack: Stack, user: str) -> None:
    """Open the demo page of `stack` and get a dev token for `user`."""
    page.goto(stack.app_url + "/")
    page.wait_for_selector("html[data-ready='true']", state="attached")
    page.get_by_label("User name").fill(user)
    page.get_by_role("button", name="Get dev token").click()
    page.wait_for_function("document.getElementById('whoami').textContent.startsWith('Signed in')")


def throttle(page: Any, bytes_per_second: int) -> Any:
    """Slow the page's uplink (no request interception: routing a page makes Chromium copy
    every upload body through the driver, seconds per 64 MiB); -1 lifts the limit."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    conditions = {"offline": False, "latency": 0, "downloadThroughput": -1}
    cdp.send(
        "Network.emulateNetworkConditions", {**conditions, "uploadThroughput": bytes_per_second}
    )
    return cdp
