"""HTTP for both Function Compute contracts: one `Request`/`Response` core (adapters: fc2, fc3).

FC 2.0 calls `handler(environ, start_response)` (WSGI, `shared.http.fc2`); FC 3.0 calls
`handler(event, context)` with a JSON event (`shared.http.fc3`). Both become a `Request` whose
`signed_path` keeps the bytes OSS signed (the decoded path) and whose `query_string` is the raw
query, so the callback verifier sees what arrived. Errors become answers here and nowhere else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from shared import logs
from shared.errors import AppError, BadRequest

JSON_TYPE = "application/json"
FC2_PROXY_MARK = "/proxy/"  # legacy endpoint: /2016-08-15/proxy/<service>/<function>/<path>


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # decoded path as text (routing)
    signed_path: bytes  # decoded path as bytes: what OSS signs
    query_string: str  # raw, undecoded
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    request_id: str = ""
    client_ip: str = ""
    context: Any = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def query(self) -> dict[str, str]:
        """Query parameters; a repeated name is a client error, not a silent pick."""
        try:
            pairs = parse_qsl(
                self.query_string, keep_blank_values=True, strict_parsing=False, errors="strict"
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest("the query string is not valid UTF-8") from exc
        result: dict[str, str] = {}
        for name, value in pairs:
            if name in result:
                raise BadRequest(f"query parameter {name!r} is repeated")
            result[name] = value
        return result

    def route(self) -> str:
        """The path with a legacy FC proxy prefix removed, for routing on the suffix."""
        path = self.path
        if path.startswith("/2016-08-15" + FC2_PROXY_MARK):
            parts = path.split("/", 5)  # '', date, 'proxy', service, function, rest
            path = "/" + (parts[5] if len(parts) > 5 else "")
        return path.rstrip("/") or "/"


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    outcome: str = "OK"  # stable code for the log line
    log_fields: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def json_response(status: int, payload: Mapping[str, Any], *, outcome: str = "OK") -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status, body, [("Content-Type", JSON_TYPE)], outcome=outcome)


def error_response(error: AppError) -> Response:
    """The one mapping of a domain error to HTTP: status, stable code, message, its headers."""
    payload = {"Status": error.answer, "code": error.code, "message": error.message}
    response = json_response(error.status, payload, outcome=error.code)
    response.headers.extend(error.headers)
    response.log_fields["reason"] = error.message
    return response


Core = Callable[[Request], Response]

STATUS_TEXT = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def respond(core: Core, request: Request) -> Response:
    """Run a core: domain errors become their JSON answer, anything else a bare 500 (logged)."""
    try:
        return core(request)
    except AppError as error:
        return error_response(error)
    except Exception:  # a bug: answer without details, log the traceback
        logs.exception("unhandled error", request_id=request.request_id, route=request.route())
        return json_response(
            500,
            {"Status": "Error", "code": "InternalError", "message": "internal error"},
            outcome="InternalError",
        )


def raising(error: AppError) -> Core:
    """A core that answers `error`: how an adapter serves a request it could not even parse."""

    def core(_: Request) -> Response:
        raise error

    return core


def serve(core: Core, request: Request, *, function: str) -> Response:
    """Answer one request (see `respond`), with Content-Length, and log it once."""
    started = time.monotonic()
    response = respond(core, request)
    if response.header("Content-Length") is None:
        response.headers.append(("Content-Length", str(len(response.body))))
    logs.access(
        function=function,
        request_id=request.request_id,
        method=request.method,
        route=request.route(),
        status=response.status,
        outcome=response.outcome,
        ms=round((time.monotonic() - started) * 1000, 1),
        **response.log_fields,
    )
    return response
