"""The callback function's core: verify OSS's signature, bind the callback to our grant, record it.

Order (DESIGN.md, Callback function): POST only (405) → Authorization present and key URL
trusted (401, before any network I/O) → RSA signature (401) → body usable (400) → grant token
(403) → bucket, key and size inside the grant (403) → stored type (DESIGN "Hardening": exactly one
allow-listed type for the key's extension, else the object is deleted and the answer is 200
`{"Status": "Rejected", "code": "ContentRejected"}`, or 503 when it could not be deleted) →
idempotent record write (409/503) → 200 JSON. A valid OSS signature only proves OSS sent the
request, so nothing is written or deleted before the grant checks pass. The store write and the
deletion run under a deadline so OSS (5 s limit) gets a 503, not a timeout, when either hangs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from shared.callback.body import CallbackFields, parse_callback_body
from shared.callback.pubkeys import Fetch, PublicKeys
from shared.callback.settings import CallbackSettings
from shared.callback.signature import decode_authorization, string_to_verify, verify_signature
from shared.content import stored_type_problem
from shared.credentials import Credentials, resolve_credentials
from shared.deadline import DeadlinePool
from shared.errors import GrantInvalid, MethodNotAllowed, Unavailable
from shared.grant import Grant, verify_token
from shared.http import Core, Request, Response, json_response, respond
from shared.keys import is_valid_key
from shared.objects import RemoverFactory, oss_remover
from shared.records import open_store
from shared.records.base import PutOutcome, Record, RecordStore
from shared.settings import RecordsSettings

MAX_BODY = 64 * 1024
STORE_DEADLINE_SECONDS = 2.5  # the record backends have their own, shorter timeouts
ANSWER_BUDGET_SECONDS = 4.0  # OSS gives up after 5 s
MIN_STORE_SECONDS = 0.5
STORE_WORKERS = 8  # bounded: a hanging store cannot pile up threads or connections
REMOVE_DEADLINE_SECONDS = 3.0  # HeadObject + DeleteObject, each with the SDK's own 1.5 s timeout
REMOVE_WORKERS = 4
MAX_LOGGED_KEY = 256
REJECTED = "Rejected"
CONTENT_REJECTED = "ContentRejected"

_WRITERS = DeadlinePool("record-store", workers=STORE_WORKERS)  # one per process
_REMOVERS = DeadlinePool("object-remover", workers=REMOVE_WORKERS)

StoreFactory = Callable[[Credentials | None], RecordStore]
Clock = Callable[[], float]


def create_app(
    settings: CallbackSettings,
    *,
    environ: Mapping[str, str],
    store_factory: StoreFactory | None = None,
    fetch: Fetch | None = None,
    now: Clock | None = None,
    remover_factory: RemoverFactory | None = None,
) -> Core:
    """Build the callback core; settings and the key cache are ready before the first request."""
    keys = PublicKeys(settings.trusted_key_urls, fetch=fetch)
    removers = remover_factory or oss_remover(settings.oss)
    stores = _Stores(store_factory or _open_store(settings.records))
    clock = now or _wall_clock

    def handle(request: Request, trail: dict[str, Any]) -> Response:
        started = time.monotonic()
        if request.method != "POST":
            raise MethodNotAllowed("the callback accepts POST only", allow="POST")
        authorization = request.header("authorization")
        decode_authorization(authorization)  # malformed → 401 before the key is even looked up
        public_key = keys.for_header(request.header("x-oss-pub-key-url"))
        verify_signature(string_to_verify(request), authorization, public_key)
        fields = parse_callback_body(request.body)
        trail["key"] = fields.object[:MAX_LOGGED_KEY]
        current = clock()
        grant = verify_token(fields.grant, settings.grant_secrets, now=current)
        trail["grant_id"] = grant.grant_id
        check_grant(fields, grant, settings.bucket)
        problem = stored_type_problem(fields.object, fields.mime_type, settings.allowed_types)
        if problem is not None:
            return reject(request, fields, problem, started, trail)
        record = build_record(fields, grant, request, created_at=int(current * 1000))
        credentials = _credentials(request, environ, settings.records)
        budget = ANSWER_BUDGET_SECONDS - (time.monotonic() - started)
        outcome: PutOutcome = _WRITERS.call(
            lambda: stores.get(credentials).put(record, replace=grant.mode == "prefix"),
            max(MIN_STORE_SECONDS, min(STORE_DEADLINE_SECONDS, budget)),
            what="the record store",
        )
        trail["result"] = outcome.result.value
        payload: dict[str, Any] = {"Status": "OK", **outcome.record.to_json()}
        if settings.download_base_url:
            payload["url"] = download_url(settings.download_base_url, outcome.record.key)
        return json_response(200, payload)

    def reject(
        request: Request,
        fields: CallbackFields,
        problem: str,
        started: float,
        trail: dict[str, Any],
    ) -> Response:
        """Delete the refused object, record nothing, and tell OSS (and so the browser) why."""
        credentials = resolve_credentials(
            request.context, environ, settings.oss.access_key_id, settings.oss.access_key_secret
        )
        budget = ANSWER_BUDGET_SECONDS - (time.monotonic() - started)
        try:
            removal = _REMOVERS.call(
                lambda: removers(credentials).remove(fields.object, fields.etag),
                max(MIN_STORE_SECONDS, min(REMOVE_DEADLINE_SECONDS, budget)),
                what="OSS",
            )
        except Unavailable as error:
            trail["result"] = "rejected-not-deleted"
            # Not a 200: OSS reports CallbackFailed, and the object stays without a record.
            raise Unavailable(
                f"the upload was refused ({problem}) but could not be deleted: {error.message}"
            ) from error
        trail["result"] = f"rejected-{removal}"
        return json_response(
            200, {"Status": REJECTED, "code": CONTENT_REJECTED, "message": problem}
        )

    def app(request: Request) -> Response:
        trail: dict[str, Any] = {}
        response = respond(lambda request: handle(request, trail), request)
        response.log_fields.update(trail)  # outcome, key, grant id: never a header or token
        return response

    return app


def check_grant(fields: CallbackFields, grant: Grant, bucket: str) -> None:
    """The grant binds the callback: our bucket, a key it admits, a size within [1, max]."""
    if fields.bucket != bucket or grant.bucket != bucket:
        raise GrantInvalid("the callback names a bucket outside the grant")
    if not is_valid_key(fields.object) or not grant.admits_key(fields.object):
        raise GrantInvalid("the object key is outside the grant")
    if not 1 <= fields.size <= grant.max_bytes:
        raise GrantInvalid("the object size is outside the grant")


def build_record(
    fields: CallbackFields, grant: Grant, request: Request, *, created_at: int
) -> Record:
    """One record per stored object, owned by the grant's user (DESIGN.md, Records)."""
    return Record(
        owner=grant.user,
        bucket=fields.bucket,
        key=fields.object,
        size=fields.size,
        etag=fields.etag,
        mime_type=fields.mime_type,
        created_at=created_at,
        image_width=fields.image_width,
        image_height=fields.image_height,
        image_format=fields.image_format,
        crc64=fields.crc64,
        content_md5=fields.content_md5,
        client_ip=fields.client_ip,
        request_id=fields.req_id or request.header("x-oss-request-id") or "",
        grant_id=grant.grant_id,
        file_name=grant.file_name,
    )


def _wall_clock() -> float:
    """Real time, looked up per call so that tests freezing `time.time` freeze grant expiry too."""
    return time.time()


def download_url(base: str, key: str) -> str:
    return f"{base}/{quote(key, safe='/')}"


def _credentials(
    request: Request, environ: Mapping[str, str], records: RecordsSettings
) -> Credentials | None:
    """Role credentials for Tablestore; the SQLite backend runs without any."""
    try:
        return resolve_credentials(request.context, environ)
    except Unavailable:
        if records.backend == "sqlite":
            return None
        raise


def _open_store(records: RecordsSettings) -> StoreFactory:
    def factory(credentials: Credentials | None) -> RecordStore:
        return open_store(records, credentials)  # the Tablestore SDK loads only for that backend

    return factory


class _Stores:
    """One store per credential set: rebuilt when role credentials rotate, shared otherwise."""

    def __init__(self, factory: StoreFactory) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._store: RecordStore | None = None
        self._identity: object = object()

    def get(self, credentials: Credentials | None) -> RecordStore:
        identity = credentials.identity if credentials is not None else None
        with self._lock:
            if self._store is None or identity != self._identity:
                self._store = self._factory(credentials)
                self._identity = identity
            return self._store
