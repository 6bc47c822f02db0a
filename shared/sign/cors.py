"""CORS for the sign function: exact origins only, never `*`, never credentials.

Auth is a Bearer header, not a cookie, so no `Access-Control-Allow-Credentials` is ever sent
(security.md §1: no origin reflection with credentials). Every answer varies by Origin.
"""

from __future__ import annotations

from collections.abc import Set

from shared.errors import Forbidden
from shared.http import Request, Response

ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"  # POST and DELETE: /multipart, /uploads/{key}
ALLOW_HEADERS = "Authorization, Content-Type"
MAX_AGE_SECONDS = 600
_METHODS = frozenset(m.strip() for m in ALLOW_METHODS.split(","))
_HEADERS = frozenset(h.strip().lower() for h in ALLOW_HEADERS.split(","))


def allowed_origin(request: Request, origins: Set[str]) -> str | None:
    """The request's Origin when it is listed exactly in CORS_ALLOWED_ORIGINS, else None."""
    origin = request.header("origin")
    return origin if origin is not None and origin in origins else None


def preflight(request: Request, origins: Set[str]) -> Response:
    """Answer OPTIONS: 204 with the grant for a listed origin and method/headers, else 403."""
    if request.header("origin") is None:
        return Response(204, headers=[("Allow", ALLOW_METHODS)])  # plain OPTIONS, not CORS
    origin = allowed_origin(request, origins)
    if origin is None:
        raise Forbidden("this origin may not call the sign function")
    method = (request.header("access-control-request-method") or "GET").strip().upper()
    if method not in _METHODS:
        raise Forbidden(f"method {method} is not allowed cross-origin")
    requested = request.header("access-control-request-headers") or ""
    names = {h.strip().lower() for h in requested.split(",") if h.strip()}
    if not names <= _HEADERS:
        raise Forbidden("a requested header is not allowed cross-origin")
    return Response(
        204,
        headers=[
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Methods", ALLOW_METHODS),
            ("Access-Control-Allow-Headers", ALLOW_HEADERS),
            ("Access-Control-Max-Age", str(MAX_AGE_SECONDS)),
        ],
    )


def decorate(response: Response, request: Request, origins: Set[str]) -> Response:
    """Add `Vary: Origin` to every answer and the allow-origin header for a listed origin."""
    origin = allowed_origin(request, origins)
    if origin is not None and response.header("Access-Control-Allow-Origin") is None:
        response.headers.append(("Access-Control-Allow-Origin", origin))
    if response.header("Vary") is None:
        response.headers.append(("Vary", "Origin"))
    return response
