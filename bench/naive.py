"""The naive verifier the official callback sample amounts to (its key host: tests/support/keyhost).

The sample (oss-protocol.md §8, `callback_app_server.py`) checks the key URL's prefix, fetches
the public key on every request with no cache, verifies RSA-MD5 over
`unquote(path) [+ "?" + query] + "\\n" + body` and answers `{"Status": "OK"}`. It checks no
grant and writes no record, so it does strictly less work than our callback except the fetch.
"""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_PATH = "/callback_pub_key.pem"


def naive_app(
    trusted_prefix: str,
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """A WSGI app doing what the official sample does, per request, including the key fetch."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        url = base64.b64decode(environ["HTTP_X_OSS_PUB_KEY_URL"]).decode()
        if not url.startswith(trusted_prefix):
            return _answer(start_response, "400 Bad Request", b'{"Status": "Error"}')
        with urllib.request.urlopen(url, timeout=5) as reply:  # every request, no cache
            key = serialization.load_pem_public_key(reply.read())
        assert isinstance(key, rsa.RSAPublicKey)
        signature = base64.b64decode(environ["HTTP_AUTHORIZATION"])
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        query = environ.get("QUERY_STRING") or ""
        signed = unquote_to_bytes(environ["PATH_INFO"].encode("latin-1")) + (
            b"?" + query.encode() if query else b""
        )
        key.verify(signature, signed + b"\n" + body, padding.PKCS1v15(), hashes.MD5())
        return _answer(start_response, "200 OK", b'{"Status": "OK"}')

    return app


def _answer(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
