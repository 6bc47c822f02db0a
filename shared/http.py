"""HTTP for both Function Compute contracts: one `Request`/`Response` core, two thin adapters.

FC 2.0 calls `handler(environ, start_response)` (WSGI); FC 3.0 calls `handler(event, context)` with
a JSON event. Both become a `Request` whose `signed_path` keeps the bytes OSS signed (the decoded
path) and whose `query_string` is the raw query, so the callback verifier sees what arrived.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, unquote_to_bytes, urlencode, urlsplit

from shared import logs
from shared.errors import AppError, BadRequest, TooLarge

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
    payload = {"Status": "Error", "code": error.code, "message": error.message}
    return json_response(error.status, payload, outcome=error.code)


def canonical_base64_header(
    header: str | None, *, name: str, max_chars: int, error: type[AppError]
) -> bytes:
    """A header whose value is bare, canonical base64 (OSS's Authorization, x-oss-pub-key-url).

    Surrounding spaces and tabs are dropped (RFC 9110); anything else non-canonical — another
    alphabet, line breaks, padding games — raises `error`, so every parse failure is ours.
    """
    value = (header or "").strip(" \t")
    if not value:
        raise error(f"the {name} header is missing")
    if len(value) > max_chars:
        raise error(f"the {name} header is too long")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise error(f"the {name} header is not base64") from exc
    if base64.b64encode(raw).decode("ascii") != value:
        raise error(f"the {name} header is not canonical base64")
    return raw


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
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def serve(core: Core, request: Request, *, function: str) -> Response:
    """Run a core, turning domain errors into JSON and anything else into a bare 500; log once."""
    started = time.monotonic()
    try:
        response = core(request)
    except AppError as error:
        response = error_response(error)
    except Exception:  # a bug: answer without details, log the traceback
        logs.exception("unhandled error", function=function, request_id=request.request_id)
        response = json_response(
            500,
            {"Status": "Error", "code": "InternalError", "message": "internal error"},
            outcome="InternalError",
        )
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


# --- FC 2.0: WSGI ---------------------------------------------------------------------------


def read_body(
    stream: BinaryIO, length_header: str | None, limit: int, *, terminated: bool = False
) -> bytes:
    """Read at most `limit` bytes; a longer body is refused before any other work.

    Without Content-Length, PEP 3333 lets an application read the stream only when the server
    marks it `wsgi.input_terminated`; otherwise the body is taken as empty (reading would block).
    """
    try:
        length = int(length_header) if length_header else None
    except ValueError as exc:
        raise BadRequest("Content-Length is not a number") from exc
    if length is not None and length < 0:
        raise BadRequest("Content-Length is negative")
    if length is not None and length > limit:
        raise TooLarge(f"the request body is over {limit} bytes")
    if length is None and not terminated:
        return b""
    body = stream.read(length if length is not None else limit + 1)
    if len(body) > limit:
        raise TooLarge(f"the request body is over {limit} bytes")
    return body


def request_from_environ(environ: Mapping[str, Any], *, max_body: int) -> Request:
    try:
        path_bytes = str(environ.get("PATH_INFO") or "/").encode("latin-1")
    except UnicodeEncodeError as exc:  # PEP 3333 gives bytes as latin-1 text; anything else is odd
        raise BadRequest("the request path is not a byte string") from exc
    signed_path = _restore_stripped_prefix(path_bytes, environ.get("fc.request_uri"))
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    context = environ.get("fc.context")
    body = read_body(
        environ["wsgi.input"],
        environ.get("CONTENT_LENGTH"),
        max_body,
        terminated=bool(environ.get("wsgi.input_terminated")),
    )
    return Request(
        method=str(environ.get("REQUEST_METHOD") or "GET").upper(),
        path=signed_path.decode("utf-8", "replace"),
        signed_path=signed_path,
        query_string=str(environ.get("QUERY_STRING") or ""),
        headers=headers,
        body=body,
        request_id=str(getattr(context, "request_id", "") or headers.get("x-fc-request-id", "")),
        client_ip=str(environ.get("REMOTE_ADDR") or ""),
        context=context,
    )


def _restore_stripped_prefix(path: bytes, request_uri: object) -> bytes:
    """FC 2.0 may strip `/2016-08-15/proxy/<svc>/<fn>` from PATH_INFO; OSS signed the full path."""
    if not isinstance(request_uri, str) or not request_uri:
        return path
    try:
        full = unquote_to_bytes(urlsplit(request_uri).path or "/")
    except ValueError:
        return path
    if len(full) > len(path) and full.endswith(path) and (path.startswith(b"/") or path == b""):
        return full
    return path


def wsgi_adapter(core: Core, *, function: str, max_body: int) -> Callable[..., Iterable[bytes]]:
    def handler(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            request = request_from_environ(environ, max_body=max_body)
        except AppError as error:
            request = Request("?", "/", b"/", "", {}, b"")
            response = serve(_raise(error), request, function=function)
        else:
            response = serve(core, request, function=function)
        reason = STATUS_TEXT.get(response.status, "Unknown")
        start_response(f"{response.status} {reason}", response.headers)
        return [response.body]

    return handler


def _raise(error: AppError) -> Core:
    def core(_: Request) -> Response:
        raise error

    return core


# --- FC 3.0: event --------------------------------------------------------------------------


def request_from_event(
    event: bytes | str | Mapping[str, Any], context: Any, *, max_body: int
) -> Request:
    try:
        data = event if isinstance(event, Mapping) else json.loads(event)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("the event is not JSON") from exc
    if not isinstance(data, Mapping):
        raise BadRequest("the event is not a JSON object")
    context_data = _object(data, "requestContext")
    http = _object(context_data, "http")
    raw_path = str(data.get("rawPath") or http.get("path") or "/")
    signed_path = unquote_to_bytes(raw_path)
    headers = {str(k).lower(): str(v) for k, v in _object(data, "headers").items()}
    body_text = data.get("body") or ""
    if not isinstance(body_text, str):
        raise BadRequest("the event body is not a string")
    if data.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body_text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest("the event body is not valid base64") from exc
    else:
        body = body_text.encode("utf-8")
    if len(body) > max_body:
        raise TooLarge(f"the request body is over {max_body} bytes")
    query = data.get("rawQueryString")
    if not isinstance(query, str):
        # FC 3.0 gives a dict with repeated values comma-joined; the raw query is lost.
        query = urlencode(_object(data, "queryParameters"))
    return Request(
        method=str(http.get("method") or data.get("httpMethod") or "GET").upper(),
        path=signed_path.decode("utf-8", "replace"),
        signed_path=signed_path,
        query_string=query,
        headers=headers,
        body=body,
        request_id=str(getattr(context, "request_id", "") or context_data.get("requestId", "")),
        client_ip=str(http.get("sourceIp") or ""),
        context=context,
    )


def _object(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """An optional JSON object inside the event; any other shape is the caller's error, not a 500."""
    value = data.get(name) or {}
    if not isinstance(value, Mapping):
        raise BadRequest(f"the event's {name} is not a JSON object")
    return value


def event_response(response: Response) -> dict[str, Any]:
    body = response.body
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode("ascii"), True
    return {
        "statusCode": response.status,
        "headers": {k: v for k, v in response.headers if k.lower() != "content-length"},
        "isBase64Encoded": is_b64,
        "body": text,
    }


def event_adapter(
    core: Core, *, function: str, max_body: int
) -> Callable[[Any, Any], dict[str, Any]]:
    def handler(event: Any, context: Any) -> dict[str, Any]:
        try:
            request = request_from_event(event, context, max_body=max_body)
        except AppError as error:
            request = Request("?", "/", b"/", "", {}, b"", context=context)
            return event_response(serve(_raise(error), request, function=function))
        return event_response(serve(core, request, function=function))

    return handler
