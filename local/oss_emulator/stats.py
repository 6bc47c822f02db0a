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


BUCKET_GETS = {"uploads": "ListMultipartUploads", "versioning": "GetBucketVersioning"}
UPLOAD_ID_METHODS = {
    "PUT": "UploadPart",
    "GET": "ListParts",
    "POST": "CompleteMultipartUpload",
    "DELETE": "AbortMultipartUpload",
}
OBJECT_METHODS = {"HEAD": "HeadObject", "GET": "GetObject", "DELETE": "DeleteObject"}


def operation(request: Request, bucket: str) -> str:
    """The OSS operation a request is, by OSS's API names: the stats' keys and the app's routes."""
    method, path, args = request.method, request.path, request.args
    special = {"OPTIONS": "Options"}.get(method) or ("GetPublicKey" if path == KEY_PATH else "")
    if special:
        return special
    if method == "POST" and path == "/":
        return "PostObject"
    if path == "/" or path_style_key(request, bucket) == "":
        names = [name for sub, name in BUCKET_GETS.items() if sub in args] + ["ListObjects"]
        return names[0] if method == "GET" else method
    if "uploadId" in args:
        return UPLOAD_ID_METHODS.get(method, method)
    if method == "POST" and "uploads" in args:
        return "InitiateMultipartUpload"
    return {**OBJECT_METHODS, "PUT": "PutObject"}.get(method, method)
