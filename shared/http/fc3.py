"""FC 3.0's HTTP trigger contract: `handler(event, context)` with a JSON event, over one core.

The event carries `rawPath` (decoded into the bytes OSS signed) and, when FC gives it, the raw query.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes, urlencode

from shared.errors import AppError, BadRequest, TooLarge
from shared.http import Core, Request, Response, raising, serve


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
            return event_response(serve(raising(error), request, function=function))
        return event_response(serve(core, request, function=function))

    return handler
