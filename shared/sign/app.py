"""The sign function's core: authenticate, then issue a grant (GET /signature), list uploads,
read or delete one, or tell the caller's quota (GET /quota).

Routes on the path suffix (`Request.route()` drops FC 2.0's `/2016-08-15/proxy/<svc>/<fn>`):
GET /signature, GET /uploads, GET and DELETE /uploads/{key}, GET /quota, the /multipart routes
(shared/sign/multipart.py), POST /s3/sign and /s3/op?capability=… (Uppy's S3 requests:
shared/sign/s3_compat.py), OPTIONS anything (CORS preflight). Every answer is
`Cache-Control: no-store` and varies by Origin. A grant is written to the ledger (rate limit
and quota reservation included) before it is returned: a store that is down answers 503 and
nothing is issued.

Records are answered with their download URLs (`downloads.UrlMinter`), minted only after the
record was read and found to be the caller's: no URL is ever made for a key named in a request.

GET and DELETE /uploads/{key}: shared/sign/uploads.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from shared.credentials import Credentials, resolve_credentials
from shared.digits import is_digits
from shared.errors import BadRequest, MethodNotAllowed, NotFound
from shared.http import Core, Request, Response, json_response, respond
from shared.objects import RemoverFactory, oss_remover
from shared.records import Store
from shared.records.base import DEFAULT_PAGE, MAX_PAGE, Record
from shared.records.grants import Usage
from shared.sign import cors, multipart, s3_compat
from shared.sign import uploads as uploads_module
from shared.sign.auth import Authenticator, SigningKeySource
from shared.sign.downloads import UrlMinter
from shared.sign.issue import issue, ledger_entry, signature_request
from shared.sign.settings import SignSettings

# The adapters refuse more; JSON bodies are capped lower (jsonbody.py). An S3 client's
# CompleteMultipartUpload body (read, never used: s3_compat.py) lists up to 10,000 parts, ~0.9 MB.
MAX_BODY = 1024 * 1024
LIST_PARAMETERS = frozenset({"limit", "cursor"})

StoreFactory = Callable[[Credentials | None], Store]


def create_app(
    settings: SignSettings,
    *,
    environ: Mapping[str, str],
    store_factory: StoreFactory | None = None,
    now: Callable[[], float] | None = None,
    jwks_client: SigningKeySource | None = None,
    remover_factory: RemoverFactory | None = None,
    bucket_factory: multipart.BucketFactory | None = None,
) -> Core:
    """Build the request → response core the FC adapters wrap."""
    clock = now or _wall_clock
    authenticator = Authenticator(settings.auth, keys=jwks_client, now=clock)

    removers = remover_factory or oss_remover(settings.oss)

    def store(credentials: Credentials | None) -> Store:
        if store_factory is not None:
            return store_factory(credentials)
        # Imported here: only /uploads needs a store; /signature stays free of cloud SDKs.
        from shared.records import open_store  # noqa: PLC0415

        return open_store(settings.records, credentials)  # cached per process, follows rotation

    def credentials(request: Request) -> Credentials:
        oss = settings.oss
        return resolve_credentials(
            request.context, environ, oss.access_key_id, oss.access_key_secret
        )

    def minter(request: Request) -> UrlMinter:
        signed = settings.downloads.mode == "signed"
        creds = credentials(request) if signed else None
        return UrlMinter(settings.downloads, settings.oss, creds, clock())

    def record_store(request: Request) -> Store:
        creds = credentials(request) if settings.records.backend == "tablestore" else None
        return store(creds)

    def signature(request: Request) -> Response:
        user = authenticator.user(request.header("authorization"))
        upload = signature_request(request.query(), settings.upload)
        now = clock()
        issued = issue(settings, user, upload, credentials(request), now)
        # Rate limit, quota reservation and the grant row, before anything is returned.
        record_store(request).open_grant(ledger_entry(issued.grant, now), settings.limits, now)
        response = json_response(200, issued.response)
        response.log_fields.update(
            user=user, dir=issued.dir, key=issued.grant.key, grant=issued.grant.grant_id
        )
        return response

    def uploads(request: Request) -> Response:
        user = authenticator.user(request.header("authorization"))
        limit, cursor = _list_query(request.query())
        page = record_store(request).list_by_owner(user, limit=limit, cursor=cursor)
        urls = minter(request)
        items = [urls.record_json(record) for record in page.items]
        response = json_response(200, {"items": items, "next": page.next})
        response.log_fields.update(user=user, count=len(page.items))
        return response

    def upload(request: Request) -> Response:
        if request.method not in ("GET", "DELETE"):
            raise MethodNotAllowed(
                f"{request.method} is not allowed here; use GET or DELETE",
                allow="GET, DELETE, OPTIONS",
            )
        user = authenticator.user(request.header("authorization"))
        key = uploads_module.upload_key(request.route())
        records, bucket = record_store(request), settings.oss.bucket
        if request.method == "GET":
            return uploads_module.get_upload(records, bucket, key, user, lambda: minter(request))
        return uploads_module.delete_upload(
            records,
            bucket,
            key,
            user,
            remover=lambda: removers(credentials(request)),
            now_ms=lambda: int(clock() * 1000),
            release=lambda record: release(records, record),
        )

    multipart_routes = multipart.MultipartRoutes(
        settings,
        user=lambda request: authenticator.user(request.header("authorization")),
        store=record_store,
        credentials=credentials,
        clock=clock,
        buckets=bucket_factory or multipart.oss_buckets(settings),
    )

    def quota(request: Request) -> Response:
        user = authenticator.user(request.header("authorization"))
        if request.query():
            raise BadRequest("/quota reads no query parameters")
        response = json_response(200, quota_json(record_store(request).usage(user), settings))
        response.log_fields.update(user=user)
        return response

    routes: dict[str, Callable[[Request], Response]] = {
        "/signature": signature,
        "/uploads": uploads,
        "/quota": quota,
    }

    # Routes with a path parameter, by prefix: /uploads/{key}, /multipart[/{uploadId}[/action]],
    # /s3/sign and /s3/op?capability=… (Uppy's S3 requests, shared/sign/s3_compat.py).
    prefixed = (
        (uploads_module.UPLOAD_ROUTE, upload),
        (multipart.ROUTE, multipart_routes),
        (
            s3_compat.ROUTE,
            s3_compat.create_routes(
                settings,
                user=lambda request: authenticator.user(request.header("authorization")),
                multipart_routes=multipart_routes,
                store=record_store,
                credentials=credentials,
                clock=clock,
            ),
        ),
    )

    def dispatch(request: Request) -> Response:
        return _dispatch(request, routes, prefixed, settings.cors_origins)

    def app(request: Request) -> Response:
        response = respond(dispatch, request)
        response.headers.append(("Cache-Control", "no-store"))
        return cors.decorate(response, request, settings.cors_origins)

    return app


def quota_json(usage: Usage, settings: SignSettings) -> dict[str, Any]:
    """GET /quota's answer: used, reserved and the limit (null: unlimited) of bytes and files."""
    limits = settings.limits
    return {
        "bytes": {
            "used": usage.used_bytes,
            "reserved": usage.reserved_bytes,
            "limit": limits.bytes,
        },
        "files": {
            "used": usage.used_files,
            "reserved": usage.reserved_files,
            "limit": limits.files,
        },
    }


def release(records: Store, record: Record) -> None:
    """A deleted upload gives its bytes and file back to its owner's quota (the grant ledger)."""
    records.refund(record.owner, record.size, 1)


def _wall_clock() -> float:
    """Real time, looked up per call so that tests freezing `time.time` freeze grants too."""
    return time.time()


def _dispatch(
    request: Request,
    routes: Mapping[str, Callable[[Request], Response]],
    prefixed: tuple[tuple[str, Callable[[Request], Response]], ...],
    origins: frozenset[str],
) -> Response:
    if request.method == "OPTIONS":
        return cors.preflight(request, origins)
    for prefix, prefixed_handler in prefixed:
        if request.route().startswith(prefix):
            return prefixed_handler(request)
    handler = routes.get(request.route())
    if handler is None:
        raise NotFound(
            f"no route {request.route()!r}: use /signature, /uploads, /quota or /multipart"
        )
    if request.method != "GET":
        raise MethodNotAllowed(
            f"{request.method} is not allowed here; use GET", allow="GET, OPTIONS"
        )
    return handler(request)


def _list_query(query: Mapping[str, str]) -> tuple[int, str | None]:
    """DESIGN GET /uploads: `limit` default 50 (also when empty), at most 200 (larger asks get 200)."""
    unknown = sorted(set(query) - LIST_PARAMETERS)
    if unknown:
        raise BadRequest(f"unknown query parameter {unknown[0]!r}: only limit and cursor are read")
    text = query.get("limit") or ""
    limit = DEFAULT_PAGE
    if text:
        digits = text.lstrip("0") if is_digits(text) else ""
        if not digits:
            raise BadRequest("limit must be a whole number of at least 1")
        limit = MAX_PAGE if len(digits) > 3 else min(int(digits), MAX_PAGE)
    return limit, query.get("cursor") or None  # the store decodes it (records/cursor.py)
