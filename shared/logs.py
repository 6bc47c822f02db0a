"""Structured one-line JSON logs on stderr (Function Compute ships them to SLS).

Callers pass only safe fields: never a secret, a token or a full Authorization value.
`redact` exists for the one place a header must be mentioned at all.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any

_logger = logging.getLogger("oss_direct_upload")
if not _logger.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(message)s"))
    _logger.addHandler(_handler)
    _logger.setLevel(logging.INFO)
    _logger.propagate = False


def _emit(level: int, event: str, fields: dict[str, Any]) -> None:
    if not _logger.isEnabledFor(level):
        return
    line = {
        "ts": round(time.time(), 3),
        "level": logging.getLevelName(level).lower(),
        "event": event,
    }
    line.update({k: v for k, v in fields.items() if v is not None and v != ""})
    _logger.log(level, json.dumps(line, ensure_ascii=False, default=str))


def access(**fields: Any) -> None:
    """The one line per request: function, request id, route, status, outcome code, key."""
    _emit(logging.INFO, "request", fields)


def info(event: str, **fields: Any) -> None:
    _emit(logging.INFO, event, fields)


def warning(event: str, **fields: Any) -> None:
    _emit(logging.WARNING, event, fields)


def exception(event: str, **fields: Any) -> None:
    fields["traceback"] = traceback.format_exc(limit=20)
    _emit(logging.ERROR, event, fields)


def redact(value: str | None, keep: int = 6) -> str | None:
    """Show only the start of a credential-like value, enough to correlate, never to replay."""
    if not value:
        return value
    return value[:keep] + "…" if len(value) > keep else "…"
