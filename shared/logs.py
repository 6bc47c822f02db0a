"""Structured one-line JSON logs on stderr (Function Compute ships them to SLS).

Callers pass only safe fields: never a secret, a token or a full Authorization value.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from typing import Any

_lock = threading.Lock()


def _emit(level: str, event: str, fields: dict[str, Any]) -> None:
    line: dict[str, Any] = {"ts": round(time.time(), 3), "level": level, "event": event}
    line.update({k: v for k, v in fields.items() if v is not None and v != ""})
    text = json.dumps(line, ensure_ascii=False, default=str) + "\n"
    with _lock:  # one line stays one line when instances serve concurrent requests
        sys.stderr.write(text)
        sys.stderr.flush()


def access(**fields: Any) -> None:
    """The one line per request: function, request id, route, status, outcome code, key."""
    _emit("info", "request", fields)


def info(event: str, **fields: Any) -> None:
    _emit("info", event, fields)


def warning(event: str, **fields: Any) -> None:
    _emit("warning", event, fields)


def exception(event: str, **fields: Any) -> None:
    fields["traceback"] = traceback.format_exc(limit=20)
    _emit("error", event, fields)
