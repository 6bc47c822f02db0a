"""Requests the way Function Compute hands them over: one FC 2.0 WSGI environ builder and caller
(PEP 3333) and one FC 3.0 HTTP trigger event builder (platform.md §1.11)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ERROR_KEYS = {"Status", "code", "message"}


def environ(
    method: str = "GET",
    path: str | bytes = "/",
    query: str = "",
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    remote_addr: str = "198.51.100.1",
    **extra: Any,
) -> dict[str, Any]:
    """PATH_INFO is the decoded path as latin-1 text; QUERY_STRING raw; headers as HTTP_*.

    A header already spelled `HTTP_…` is taken as it is; Content-Type and Content-Length go to
    CONTENT_TYPE / CONTENT_LENGTH. `extra` (e.g. `fc.request_uri`) is added last."""
    raw = path if isinstance(path, bytes) else path.encode("utf-8")
    built: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": raw.decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": remote_addr,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    for name, value in (headers or {}).items():
        if name.startswith("HTTP_"):
            built[name] = value
        elif name.lower() == "content-type":
            built["CONTENT_TYPE"] = value
        elif name.lower() != "content-length":
            built["HTTP_" + name.upper().replace("-", "_")] = value
    built.update(extra)
    return built


@dataclass
class Answer:
    """A WSGI answer: status code, lower-cased headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def error(self, status: int, code: str) -> dict[str, Any]:
        """The error contract: that status, JSON `{"Status": "Error", "code", "message"}`."""
        data = self.json()
        assert (self.status, data.get("code")) == (status, code), (self.status, data)
        assert set(data) == ERROR_KEYS
        assert data["Status"] == "Error"
        assert isinstance(data["message"], str)
        assert data["message"]
        assert self.headers["content-type"] == "application/json"
        return dict(data)


def call(handler: Callable[..., Any], env: dict[str, Any]) -> Answer:
    """Run a WSGI handler on `env`."""
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started["status"] = int(status.split(maxsplit=1)[0])
        started["headers"] = {k.lower(): v for k, v in headers}

    payload = b"".join(handler(env, start_response))
    return Answer(started["status"], started["headers"], payload)


def event(
    method: str = "POST",
    raw_path: str = "/",
    *,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    raw_query: str = "",
    body: bytes | str = b"",
    base64_body: bool = False,
    source_ip: str = "198.51.100.1",
    **fields: Any,
) -> dict[str, Any]:
    """An FC 3.0 event (rawPath URL-encoded, body text or base64); `fields` override any key."""
    raw = body.encode() if isinstance(body, str) else body
    built: dict[str, Any] = {
        "version": "v1",
        "rawPath": raw_path,
        "headers": dict(headers or {}),
        "queryParameters": dict(query or {}),
        "body": base64.b64encode(raw).decode("ascii") if base64_body else raw.decode("utf-8"),
        "isBase64Encoded": base64_body,
        "requestContext": {
            "requestId": "fc3-req-1",
            "http": {"method": method, "path": raw_path, "sourceIp": source_ip},
        },
    }
    if raw_query:
        built["rawQueryString"] = raw_query
    built.update(fields)
    return built
