"""The dev app server: the demo page from web/, `GET /dev/token`, and the sign function.

One origin serves the page and the sign function, as a site would in production. `/dev/token`
exists only here: it mints the HS256 sign-in token the demo page needs (AUTH_JWT_SECRET, 1 h).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jwt
from werkzeug.security import safe_join
from werkzeug.utils import send_file
from werkzeug.wrappers import Request as WerkzeugRequest

from shared.errors import BadRequest, MethodNotAllowed, NotFound
from shared.http import Core, Request, Response, json_response
from shared.http.fc2 import wsgi_adapter
from shared.sign.settings import AuthSettings

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
TOKEN_PATH = "/dev/token"  # noqa: S105 - a URL path, not a secret
TOKEN_TTL_SECONDS = 3600
MAX_USER_CHARS = 128


def token_core(auth: AuthSettings, *, now: Callable[[], float] = time.time) -> Core:
    """`GET /dev/token?user=NAME` → `{"token": JWT}`: sub=NAME, HS256 with AUTH_JWT_SECRET, 1 h."""

    def core(request: Request) -> Response:
        if request.method != "GET":
            raise MethodNotAllowed("GET /dev/token?user=NAME")
        user = request.query().get("user", "")
        if not user or len(user) > MAX_USER_CHARS or not user.isprintable():
            raise BadRequest(f"user must be 1 to {MAX_USER_CHARS} printable characters")
        if auth.jwt_secret is None:
            raise NotFound("dev tokens need AUTH_JWT_SECRET (the stack is using AUTH_JWKS_URL)")
        issued = int(now())
        claims: dict[str, Any] = {"sub": user, "iat": issued, "exp": issued + TOKEN_TTL_SECONDS}
        if auth.audience:
            claims["aud"] = auth.audience
        if auth.issuer:
            claims["iss"] = auth.issuer
        token = jwt.encode(claims, auth.jwt_secret.value, algorithm="HS256")
        response = json_response(200, {"token": token})
        response.headers.append(("Cache-Control", "no-store"))
        response.log_fields["user"] = user
        return response

    return core


def create_app_server(
    sign: WSGIApp,
    *,
    web_root: Path,
    auth: AuthSettings,
    now: Callable[[], float] = time.time,
) -> WSGIApp:
    """Route /dev/token to the token core, existing files under web/ to disk, the rest to sign."""
    token = wsgi_adapter(token_core(auth, now=now), function="dev-token", max_body=1024)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = WerkzeugRequest(environ)
        if request.path == TOKEN_PATH:
            return token(environ, start_response)
        if request.method in ("GET", "HEAD"):
            path = static_file(web_root, request.path)
            if path is not None:
                response = send_file(path, environ, max_age=0)
                response.headers["Cache-Control"] = "no-cache"
                return response(environ, start_response)
        return sign(environ, start_response)

    return app


def static_file(web_root: Path, url_path: str) -> Path | None:
    """The file under web/ a URL path names (a folder means its index.html); never outside it."""
    relative = url_path.lstrip("/")
    joined = safe_join(str(web_root), relative) if relative else str(web_root)
    if joined is None:
        return None
    path = Path(joined)
    if path.is_dir():
        path = path / "index.html"
    return path if path.is_file() else None
