"""FC 2.0's HTTP trigger contract: `handler(environ, start_response)` (WSGI) over one core.

PATH_INFO keeps the decoded path OSS signed (re-encoded from latin-1 to bytes); FC may strip its
`/2016-08-15/proxy/<svc>/<fn>` prefix, which `fc.request_uri` lets us restore.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, BinaryIO
from urllib.parse import unquote_to_bytes, urlsplit

from shared.errors import AppError, BadRequest, TooLarge
from shared.http import STATUS_TEXT, Core, Request, raising, serve


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
            response = serve(raising(error), request, function=function)
        else:
            response = serve(core, request, function=function)
        reason = STATUS_TEXT.get(response.status, "Unknown")
        start_response(f"{response.status} {reason}", response.headers)
        return [response.body]

    return handler
