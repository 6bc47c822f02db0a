"""Requests served per OSS operation, at `GET /.well-known/oss-emulator/stats` (DESIGN.md, the
grant ledger): tests count what a run costs, e.g. the sweeper's HeadObject calls per grant."""

from __future__ import annotations

import json
import threading
from collections import Counter

from werkzeug.wrappers import Request, Response

from local.oss_emulator.keys import KEY_PATH
from local.oss_emulator.listing import path_style_key

STATS_PATH = "/.well-known/oss-emulator/stats"  # a path no object key can take (keys.py)


class RequestStats:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, request: Request) -> None:
        with self._lock:
            self._counts[operation(request, self.bucket)] += 1

    def response(self) -> Response:
        with self._lock:
            body = json.dumps(dict(self._counts), sort_keys=True)
        return Response(body, 200, content_type="application/json")


def operation(request: Request, bucket: str) -> str:
    """The OSS operation a request is, by OSS's API names (the stats' keys)."""
    method, path = request.method, request.path
    if method == "OPTIONS":
        return "Options"
    if path == KEY_PATH:
        return "GetPublicKey"
    if method == "POST" and path == "/":
        return "PostObject"
    if method == "GET" and (path == "/" or path_style_key(request, bucket) == ""):
        return "ListObjects"
    return {"HEAD": "HeadObject", "GET": "GetObject", "DELETE": "DeleteObject"}.get(method, method)
