"""The callback function's core: verify OSS's signature, bind the callback to our grant, record it.

Order (DESIGN.md, Callback function): POST only (405) → Authorization present and key URL
trusted (401, before any network I/O) → RSA signature (401) → body usable (400) → grant token
(403) → bucket and key inside the grant (403, nothing touched) → size inside the grant (else the
object is deleted, an exact grant's reservation released, 403; 503 when it could not be deleted)
→ stored type (DESIGN "Hardening": exactly one allow-listed type for the key's extension, else
the object is deleted and the answer is 200 `{"Status": "Rejected", "code": "ContentRejected"}`,
or 503 when it could not be deleted) → verification (UPLOAD_VERIFY, `shared.verify`: the object
with the callback's etag is stored now, else 409 `Conflict`; not visible after brief retries,
503; content that is not what it claims: rejected and deleted as above) → idempotent record
write, counted against the owner's quota (records/uploads.py: an upload that would pass it is
deleted and answered 200 `{"Status": "Rejected", "code": "QuotaExceeded"}`) (409/503) → 200 JSON.
A valid OSS signature only proves OSS sent the request, so nothing is written or deleted before
the bucket and key checks pass. The reads, the store write and the deletion run under deadlines
so OSS (5 s limit) gets a 503, not a timeout, when any of them hangs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from shared import logs
from shared.callback.body import CallbackFields, parse_callback_body
from shared.callback.pubkeys import Fetch, PublicKeys
from shared.callback.settings import CallbackSettings
from shared.callback.signature import decode_authorization, string_to_verify, verify_signature
from shared.callback.upload import build_record, check_grant, claim_of, download_url
from shared.content import stored_type_problem
from shared.credentials import Credentials, resolve_credentials
from shared.deadline import DeadlinePool
from shared.errors import ContentRejected, GrantInvalid, MethodNotAllowed, Rejected, Unavailable
from shared.grant import Grant, verify_token
from shared.http import Core, Request, Response, json_response, respond
from shared.objects import (
    REMOVE_TIMEOUT_SECONDS,
    ReaderFactory,
    Removal,
    RemoverFactory,
    oss_reader,
    oss_remover,
)
from shared.records import Store, open_store
from shared.records.base import PutOutcome
from shared.records.grants import REJECTED
from shared.records.uploads import record_upload
from shared.settings import RecordsSettings
from shared.verify import ObjectMissing, upload_problem

MAX_BODY = 64 * 1024
STORE_DEADLINE_SECONDS = 2.5  # the record backends have their own, shorter timeouts
ANSWER_BUDGET_SECONDS = 4.0  # OSS gives up after 5 s
MIN_STORE_SECONDS = 0.5
STORE_WORKERS = 8  # bounded: a hanging store cannot pile up threads or connections
REMOVE_DEADLINE_SECONDS = 3.0  # HeadObject + DeleteObject, each with the SDK's own 1.5 s timeout
REMOVE_WORKERS = 4
VERIFY_BUDGET_SECONDS = 2.0  # reads and retries; the record write keeps the rest of the 4 s
VERIFY_WORKERS = 8
VISIBLE_RETRY_DELAYS = (0.1, 0.2, 0.4)  # a new object not yet visible: ask again, briefly
MAX_LOGGED_KEY = 256

_WRITERS = DeadlinePool("record-store", workers=STORE_WORKERS)  # one per process
_REMOVERS = DeadlinePool("object-remover", workers=REMOVE_WORKERS)
_READERS = DeadlinePool("object-reader", workers=VERIFY_WORKERS)

StoreFactory = Callable[[Credentials | None], Store]
Clock = Callable[[], float]


def create_app(
    settings: CallbackSettings,
    *,
    environ: Mapping[str, str],
    store_factory: StoreFactory | None = None,
    fetch: Fetch | None = None,
    now: Clock | None = None,
    remover_factory: RemoverFactory | None = None,
    reader_factory: ReaderFactory | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Core:
    """Build the callback core; settings and the key cache are ready before the first request."""
    return CallbackApp(
        settings,
        environ=environ,
        keys=PublicKeys(settings.trusted_key_urls, fetch=fetch),
        removers=remover_factory or oss_remover(settings.oss),
        readers=reader_factory or oss_reader(settings.oss, timeout=REMOVE_TIMEOUT_SECONDS),
        stores=_Stores(store_factory or _open_store(settings.records)),
        clock=now or _wall_clock,
        sleep=sleep,
    )


class CallbackApp:
    """The callback core (module docstring); one instance per process, one `handle` per call."""

    def __init__(
        self,
        settings: CallbackSettings,
        *,
        environ: Mapping[str, str],
        keys: PublicKeys,
        removers: RemoverFactory,
        readers: ReaderFactory,
        stores: _Stores,
        clock: Clock,
        sleep: Callable[[float], None],
    ) -> None:
        self.settings = settings
        self.environ = environ
        self.keys = keys
        self.removers = removers
        self.readers = readers
        self.stores = stores
        self.clock = clock
        self.sleep = sleep

    def __call__(self, request: Request) -> Response:
        trail: dict[str, Any] = {}
        response = respond(lambda request: self.handle(request, trail), request)
        response.log_fields.update(trail)  # outcome, key, grant id: never a header or token
        return response

    def handle(self, request: Request, trail: dict[str, Any]) -> Response:
        started = time.monotonic()
        settings = self.settings
        if request.method != "POST":
            raise MethodNotAllowed("the callback accepts POST only", allow="POST")
        authorization = request.header("authorization")
        decode_authorization(authorization)  # malformed → 401 before the key is even looked up
        public_key = self.keys.for_header(request.header("x-oss-pub-key-url"))
        verify_signature(string_to_verify(request), authorization, public_key)
        fields = parse_callback_body(request.body)
        trail["key"] = fields.object[:MAX_LOGGED_KEY]
        current = self.clock()
        grant = verify_token(fields.grant, settings.grant_secrets, now=current)
        trail["grant_id"] = grant.grant_id
        oversized = check_grant(fields, grant, settings.bucket)

        def remove(key: str) -> Removal:
            """Delete the object this callback describes (its etag only): nothing else."""
            removal = self.removers(self.oss_credentials(request)).remove(key, fields.etag)
            trail["removal"] = removal
            return removal

        if oversized is not None:
            self.refuse(
                request, grant, remove, key=fields.object, problem=oversized, started=started
            )
            raise GrantInvalid(oversized)
        problem = self.verify(request, fields, started)
        if problem is not None:
            self.refuse(request, grant, remove, key=fields.object, problem=problem, started=started)
            raise Rejected(ContentRejected(problem))
        record = build_record(fields, grant, request, created_at=int(current * 1000))
        credentials = _credentials(request, self.environ, settings.records)
        outcome: PutOutcome = _WRITERS.call(
            lambda: record_upload(
                self.stores.get(credentials),
                record,
                grant_id=grant.grant_id,
                exact=grant.mode == "key",
                limits=settings.limits,
                delete=remove,
            ),
            _budget(started, STORE_DEADLINE_SECONDS),
            what="the record store",
        )
        trail["result"] = outcome.result.value
        payload: dict[str, Any] = {"Status": "OK", **outcome.record.to_json()}
        if settings.download_base_url:
            payload["url"] = download_url(settings.download_base_url, outcome.record.key)
        return json_response(200, payload)

    def oss_credentials(self, request: Request) -> Credentials:
        oss = self.settings.oss
        return resolve_credentials(
            request.context, self.environ, oss.access_key_id, oss.access_key_secret
        )

    def verify(self, request: Request, fields: CallbackFields, started: float) -> str | None:
        """The stored type, then (UPLOAD_VERIFY) OSS's word on the object, before any record.

        Returns a content problem (the caller rejects); raises Conflict (another object is
        stored) or Unavailable (OSS slow or failing, or the object not visible within the budget:
        OSS reports CallbackFailed and reconciliation verifies it later; never recorded here).
        """
        settings, claim = self.settings, claim_of(fields)
        if settings.verify == "off":
            return stored_type_problem(claim.key, claim.mime_type, settings.allowed_types)
        reader = self.readers(self.oss_credentials(request))
        return confirmed(
            lambda: upload_problem(reader, claim, settings.verify, settings.allowed_types),
            deadline=started + VERIFY_BUDGET_SECONDS,
            sleep=self.sleep,
        )

    def refuse(
        self,
        request: Request,
        grant: Grant,
        remove: Callable[[str], Removal],
        *,
        key: str,
        problem: str,
        started: float,
    ) -> None:
        """Delete a refused upload, then give an exact grant's reservation back. When the
        deletion fails the answer is a 503 (OSS reports CallbackFailed), the object stays without
        a record and the sweeper deletes it once the grant ends."""
        try:
            _REMOVERS.call(
                lambda: remove(key), _budget(started, REMOVE_DEADLINE_SECONDS), what="OSS"
            )
        except Unavailable as error:
            raise Unavailable(
                f"the upload was refused ({problem}) but could not be deleted: {error.message}"
            ) from error
        if grant.mode == "key":
            self.release(request, grant, started)

    def release(self, request: Request, grant: Grant, started: float) -> None:
        """An exact grant whose upload was refused: its quota reservation is released now (the
        sweeper would, once the grant ends, if this fails)."""
        credentials = _credentials(request, self.environ, self.settings.records)
        store = self.stores.get(credentials)
        try:
            _WRITERS.call(
                lambda: store.settle(grant.user, grant.grant_id, REJECTED),
                _budget(started, STORE_DEADLINE_SECONDS),
                what="the record store",
            )
        except Unavailable:
            logs.warning("reservation_not_released", grant=grant.grant_id)


def _budget(started: float, cap: float) -> float:
    """What is left of the answer budget for one step, at least MIN_STORE_SECONDS, at most `cap`."""
    left = ANSWER_BUDGET_SECONDS - (time.monotonic() - started)
    return max(MIN_STORE_SECONDS, min(cap, left))


def confirmed(
    check: Callable[[], str | None], *, deadline: float, sleep: Callable[[float], None]
) -> str | None:
    """`check()` under the deadline; while OSS answers 404, ask again briefly (a new object may
    not be visible yet), then answer 503. OSS slow or failing: Unavailable as well."""
    for delay in (*VISIBLE_RETRY_DELAYS, None):
        try:
            return _READERS.call(check, max(0.1, deadline - time.monotonic()), what="OSS")
        except ObjectMissing:
            if delay is None or time.monotonic() + delay >= deadline:
                break
            sleep(delay)
    raise Unavailable(
        "the object is not in the bucket (not yet visible, deleted or never uploaded); "
        "nothing was recorded"
    )


def _wall_clock() -> float:
    """Real time, looked up per call so that tests freezing `time.time` freeze grant expiry too."""
    return time.time()


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
    def factory(credentials: Credentials | None) -> Store:
        return open_store(records, credentials)  # the Tablestore SDK loads only for that backend

    return factory


class _Stores:
    """One store per credential set: rebuilt when role credentials rotate, shared otherwise."""

    def __init__(self, factory: StoreFactory) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._identity: object = object()

    def get(self, credentials: Credentials | None) -> Store:
        identity = credentials.identity if credentials is not None else None
        with self._lock:
            if self._store is None or identity != self._identity:
                self._store = self._factory(credentials)
                self._identity = identity
            return self._store
