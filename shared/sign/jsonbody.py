"""Strict JSON request bodies for the sign function's POST routes (/multipart…).

A body is at most MAX_JSON_BYTES of UTF-8 holding one object; a repeated name, NaN/Infinity,
nesting deep enough to exhaust the parser or a name the route does not read is a 400 (nobody
should believe an ignored field had an effect). Values are checked by type: a number must be a
JSON integer (not `5.0`, not `true`), a string a string.
"""

from __future__ import annotations

import json
from collections.abc import Set
from typing import Any

from shared.errors import BadRequest, TooLarge

MAX_JSON_BYTES = 8 * 1024  # a parts request for 100 numbers with their MD5s is about 4 KB
MAX_SHOWN_NAME = 64  # names are the caller's: answers stay small


def json_object(body: bytes, fields: Set[str], *, empty: bool = False) -> dict[str, Any]:
    """The body's object; `empty`: an empty body counts as `{}`."""
    if len(body) > MAX_JSON_BYTES:
        raise TooLarge(f"the request body is over {MAX_JSON_BYTES} bytes")
    if empty and not body.strip():
        return {}
    try:
        value = json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_unique,
            parse_constant=_no_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"the request body is not one JSON object: {_reason(exc)}") from exc
    if not isinstance(value, dict):
        raise BadRequest("the request body must be one JSON object")
    unknown = sorted(set(value) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields)) or "no fields"
        raise BadRequest(f"unknown field {unknown[0][:MAX_SHOWN_NAME]!r}: this route reads {known}")
    return value


def integer(value: Any, name: str) -> int:
    if type(value) is not int:
        raise BadRequest(f"{name} must be a whole number")
    return value


def string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"the field {name[:MAX_SHOWN_NAME]!r} is repeated")
        result[name] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    return str(exc)[:200]
