"""The official SDK (oss2) against an emulator: an `oss2.Bucket` on one `serve`d on loopback, or
`signed_headers` for tests that call the WSGI app directly."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import oss2
from werkzeug.serving import make_server

from local.oss_emulator import OssEmulator

BUCKET = "dev-bucket"
REGION = "cn-hangzhou"
KEY_ID = "dev-access-key-id"
SECRET = "dev-access-key-secret"


@contextmanager
def serve(emulator: OssEmulator | Callable[..., Iterable[bytes]]) -> Iterator[str]:
    """The emulator (or another WSGI app) on a free loopback port, while the block runs."""
    server = make_server("127.0.0.1", 0, emulator, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def auth(
    version: str = "v4", key_id: str = KEY_ID, secret: str = SECRET, token: str | None = None
) -> Any:
    """oss2 credentials: permanent V1/V4, or STS (a token) of either version."""
    if token is not None:
        return oss2.StsAuth(key_id, secret, token, auth_version=version)
    return oss2.auth.AuthV4(key_id, secret) if version == "v4" else oss2.Auth(key_id, secret)


def bucket(url: str, credentials: Any, *, region: str = REGION, name: str = BUCKET) -> oss2.Bucket:
    return oss2.Bucket(credentials, url, name, region=region, connect_timeout=5)


def signed_headers(
    credentials: Any,
    method: str,
    key: str,
    params: Mapping[str, str] | None = None,
    *,
    region: str = REGION,
) -> dict[str, str]:
    """The headers oss2 would send for `method /<bucket>/<key>?params` (Authorization included)."""
    request = oss2.http.Request(
        method, f"http://127.0.0.1/{BUCKET}/{key}", params=dict(params or {}), region=region
    )
    request.product = "oss"
    credentials._sign_request(request, BUCKET, key)
    return {name: value for name, value in request.headers.items() if value is not None}
