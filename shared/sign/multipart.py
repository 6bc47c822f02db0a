"""Resumable multipart uploads (DESIGN "Multipart uploads"): the sign function's /multipart routes.

- `POST /multipart` `{"path", "filename", "size", "type"}`: the /signature rules decide the key,
  size and type (`issue.parse_upload_request`, `issue.exact_key`); a request the ledger would
  refuse (rate, quota) is refused before OSS is asked; InitiateMultipartUpload with the stored
  type, forbid-overwrite and the Standard class pinned; then the ledger grant (rate limit, quota
  reservation, atomically) — refused → the upload just made is aborted.
- `POST /multipart/{uploadId}/parts` `{"partNumbers", "contentMd5"}`: presigned UploadPart URLs
  (`shared.sign.part_urls`), short-lived and never past the session, `Content-MD5` signed in
  when given. No OSS call.
- `GET /multipart/{uploadId}`: ListParts, for resuming.
- `POST /multipart/{uploadId}/complete`: ListParts, then the parts against the declared layout
  (`shared.multipart.mismatch`): a part that can never fit → Abort, grant rejected, 400; parts
  still missing → 400 and the upload is kept (the client can upload them). Else
  CompleteMultipartUpload with `x-oss-callback` built as for a PostObject (same callback
  function, grant token and record path); the callback's answer is returned as OSS relays it.
  A retry after a completed upload answers its record.
- `DELETE /multipart/{uploadId}`: Abort, then the grant settles `expired` and its reservation
  is released (by the ledger's open → expired transition: once).

A session is the caller's ledger grant in mode `multipart` whose id is the UploadId: an id
that is not the caller's, not multipart, ended or past its expiry is one 404.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable
from typing import Any

from shared import logs
from shared import multipart as oss_multipart
from shared.credentials import Credentials
from shared.errors import AppError, BadRequest, Conflict, MethodNotAllowed, NotFound, Unavailable
from shared.grant import Grant, issue_token
from shared.http import Request, Response, json_response
from shared.oss import bucket_client
from shared.records import Store, grants
from shared.records.grants import EXPIRED, MULTIPART, OPEN, REJECTED, USED, LedgerGrant
from shared.sign import issue, jsonbody, part_urls
from shared.sign.settings import SignSettings

ROUTE = "/multipart"
ALLOW = {"": "POST, OPTIONS", "id": "GET, DELETE, OPTIONS", "action": "POST, OPTIONS"}
SESSION_SECONDS = 24 * 3600  # an upload may be resumed for a day; the sweeper aborts it after
CREATE_FIELDS = frozenset({"path", "filename", "size", "type"})
PARTS_FIELDS = frozenset({"partNumbers", "contentMd5"})
CLIENT_TIMEOUT_SECONDS = 10.0  # connect and each read; every call also has a hard deadline
_UPLOAD_ID = re.compile(r"[0-9A-Za-z._-]{1,128}")
_SHOWN_MISSING = 10

BucketFactory = Callable[[Credentials], Any]


def is_route(route: str) -> bool:
    return route == ROUTE or route.startswith(ROUTE + "/")


def oss_buckets(settings: SignSettings) -> BucketFactory:
    """oss2 clients for the role's credentials, rebuilt only when the credentials rotate."""
    cache: list[tuple[object, Any]] = []
    lock = threading.Lock()

    def factory(credentials: Credentials) -> Any:
        with lock:
            if not cache or cache[0][0] != credentials.identity:
                client = bucket_client(settings.oss, credentials, timeout=CLIENT_TIMEOUT_SECONDS)
                cache[:] = [(credentials.identity, client)]
            return cache[0][1]

    return factory


class MultipartRoutes:
    """The five routes over one request; the app gives it sign-in, the store and credentials."""

    def __init__(
        self,
        settings: SignSettings,
        *,
        user: Callable[[Request], str],
        store: Callable[[Request], Store],
        credentials: Callable[[Request], Credentials],
        clock: Callable[[], float],
        buckets: BucketFactory,
    ) -> None:
        self.settings = settings
        self.user = user
        self.store = store
        self.credentials = credentials
        self.clock = clock
        self.buckets = buckets

    def __call__(self, request: Request) -> Response:
        if not is_route(request.route()):
            raise NotFound(f"no route {request.route()!r}")
        parts = request.route()[len(ROUTE) :].split("/")[1:]  # [], [id] or [id, action]
        shape = "" if not parts else "id" if len(parts) == 1 else "action"
        if len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("parts", "complete")):
            raise NotFound(f"no route {request.route()!r}")
        if request.method not in ALLOW[shape].split(", ")[:-1]:
            raise MethodNotAllowed(f"{request.method} is not allowed here", allow=ALLOW[shape])
        user = self.user(request)
        if request.query_string:
            raise BadRequest("the /multipart routes read no query parameters: send JSON")
        if not parts:
            return self.create(request, user)
        upload_id = parts[0]
        if len(parts) == 2:
            action = self.parts if parts[1] == "parts" else self.complete
            return action(request, user, upload_id)
        return (self.status if request.method == "GET" else self.abort)(request, user, upload_id)

    # --- the routes -----------------------------------------------------------------------------

    def create(self, request: Request, user: str) -> Response:
        body = jsonbody.json_object(request.body, CREATE_FIELDS)
        if "filename" not in body or "size" not in body:
            raise BadRequest("filename and size are required")
        query = {"path": jsonbody.string(body.get("path", ""), "path")}
        query["filename"] = jsonbody.string(body["filename"], "filename")
        query["size"] = str(jsonbody.integer(body["size"], "size"))
        if "type" in body:
            query["type"] = jsonbody.string(body["type"], "type")
        settings = self.settings
        upload = issue.parse_upload_request(query, settings.upload.max_bytes)
        size = upload.size or 0
        now = self.clock()
        chosen = issue.exact_key(settings.upload, user, upload, int(now * 1000))
        plan = oss_multipart.layout(size, settings.upload.part_bytes)
        session = LedgerGrant(
            owner=user,
            grant_id="-",  # the UploadId, once OSS gave it
            mode=MULTIPART,
            target=chosen.key,
            bucket=settings.oss.bucket,
            max_bytes=size,
            expires_at=int(now) + SESSION_SECONDS,
            created_at=int(now * 1000),
            part_size=plan.part_size,
            file_name=upload.filename or "",
        )
        store = self.store(request)
        # Refused now when the ledger would refuse it (rate, quota): no OSS call for nothing.
        # The ledger's own check below stays the one that holds under concurrency.
        grants.admitted(store.usage(user), session, settings.limits, now)
        bucket = self.buckets(self.credentials(request))
        headers = {
            "Content-Type": chosen.stored_type,
            "x-oss-forbid-overwrite": oss_multipart.FORBID_OVERWRITE,
            issue.STORAGE_CLASS_FIELD: issue.STORAGE_CLASS,
        }
        upload_id = oss_multipart.initiate(bucket, chosen.key, headers)
        session = dataclasses.replace(session, grant_id=upload_id)
        try:
            if not _UPLOAD_ID.fullmatch(upload_id):
                raise Unavailable("OSS answered an upload id we cannot route")
            store.open_grant(session, settings.limits, now)
        except AppError:
            _abort_quietly(bucket, chosen.key, upload_id)  # nothing is issued: nothing is left
            raise
        response = json_response(
            200,
            {
                "uploadId": upload_id,
                "key": chosen.key,
                "partSize": plan.part_size,
                "partCount": plan.count,
                "expire": session.expires_at,
            },
        )
        response.log_fields.update(user=user, key=chosen.key, upload=upload_id, size=size)
        return response

    def parts(self, request: Request, user: str, upload_id: str) -> Response:
        body = jsonbody.json_object(request.body, PARTS_FIELDS)
        now = self.clock()
        session = self.session(request, user, upload_id, now)
        plan = oss_multipart.Layout(session.max_bytes, session.part_size)
        numbers = part_urls.part_numbers(body.get("partNumbers"), plan.count)
        digests = part_urls.content_md5s(body.get("contentMd5", {}), numbers)
        expires = min(part_urls.PART_URL_SECONDS, session.expires_at - int(now))
        sign = part_urls.signer(self.settings.oss, self.credentials(request), now, expires)
        signed = []
        for number in numbers:
            headers = {"Content-MD5": digests[number]} if number in digests else {}
            query = {"partNumber": str(number), "uploadId": upload_id}
            url = sign(session.target, query, headers)
            signed.append({"partNumber": number, "url": url, "headers": headers})
        response = json_response(200, {"parts": signed, "expire": int(now) + expires})
        response.log_fields.update(user=user, upload=upload_id, count=len(numbers))
        return response

    def status(self, request: Request, user: str, upload_id: str) -> Response:
        session = self.session(request, user, upload_id, self.clock())
        plan = oss_multipart.Layout(session.max_bytes, session.part_size)
        uploaded = self.listed(request, session)
        return json_response(
            200,
            {
                "uploadId": upload_id,
                "key": session.target,
                "size": session.max_bytes,
                "partSize": session.part_size,
                "partCount": plan.count,
                "parts": [
                    {"partNumber": p.number, "etag": p.etag, "size": p.size} for p in uploaded
                ],
            },
        )

    def complete(self, request: Request, user: str, upload_id: str) -> Response:
        jsonbody.json_object(request.body, frozenset(), empty=True)
        store = self.store(request)
        found = self.owned(store, user, upload_id)
        if found is not None and found.state == USED:  # a retry after success: its record
            record = store.get(found.bucket, found.target)
            if record is not None and record.owner == user and not record.deleted:
                return json_response(200, {"Status": "OK", **record.to_json()})
        session = self.session(request, user, upload_id, self.clock())
        plan = oss_multipart.Layout(session.max_bytes, session.part_size)
        uploaded = self.listed(request, session)
        bucket = self.buckets(self.credentials(request))
        problem = oss_multipart.mismatch(uploaded, plan)
        if problem is not None:
            oss_multipart.abort(bucket, session.target, upload_id)
            store.settle(user, upload_id, REJECTED)
            raise BadRequest(f"{problem}; the upload was aborted and nothing was recorded")
        absent = oss_multipart.missing(uploaded, plan)
        if absent:
            shown = ", ".join(str(n) for n in absent[:_SHOWN_MISSING])
            more = (
                f" and {len(absent) - _SHOWN_MISSING} more" if len(absent) > _SHOWN_MISSING else ""
            )
            raise BadRequest(f"parts {shown}{more} are missing: upload them, then complete again")
        grant = Grant(
            grant_id=upload_id,
            user=user,
            bucket=session.bucket,
            key=session.target,
            prefix=None,
            max_bytes=session.max_bytes,
            expires_at=session.expires_at,
            file_name=session.file_name,
        )
        token = issue_token(grant, self.settings.grant_secrets[0])
        callback = issue.callback_param(self.settings.upload.callback_url, token)
        try:
            done = oss_multipart.complete(bucket, session.target, upload_id, uploaded, callback)
        except oss_multipart.UploadGone as exc:  # completed or aborted by a concurrent request
            raise NotFound("no such upload in progress") from exc
        if done.status != 200:
            raise Unavailable(
                "the object is stored but its callback failed; reconciliation records it"
            )
        response = Response(200, done.body, [("Content-Type", "application/json")])
        response.log_fields.update(user=user, key=session.target, upload=upload_id)
        return response

    def abort(self, request: Request, user: str, upload_id: str) -> Response:
        store = self.store(request)
        found = self.owned(store, user, upload_id)
        if found is None or found.state == USED:
            raise NotFound("no such upload in progress")
        if found.state == OPEN:
            bucket = self.buckets(self.credentials(request))
            if not oss_multipart.abort(bucket, found.target, upload_id) and oss_multipart.stored(
                bucket, found.target
            ):
                # Completed, its callback lost: the sweeper records it once the session ends.
                raise Conflict("this upload was completed; its record follows")
            store.settle(user, upload_id, EXPIRED)  # the reservation goes back, once
        response = Response(204)
        response.log_fields.update(user=user, upload=upload_id)
        return response

    # --- helpers --------------------------------------------------------------------------------

    def owned(self, store: Store, user: str, upload_id: str) -> LedgerGrant | None:
        """The caller's multipart grant with that id, in any state."""
        if not _UPLOAD_ID.fullmatch(upload_id):
            return None
        grant = store.get_grant(user, upload_id)
        if grant is None or grant.mode != MULTIPART or grant.bucket != self.settings.oss.bucket:
            return None
        return grant

    def session(self, request: Request, user: str, upload_id: str, now: float) -> LedgerGrant:
        """The caller's open session; anything else (ended, expired, not theirs) is a 404."""
        grant = self.owned(self.store(request), user, upload_id)
        if grant is None or grant.state != OPEN or grant.expires_at <= int(now):
            raise NotFound("no such upload in progress")
        return grant

    def listed(self, request: Request, session: LedgerGrant) -> list[oss_multipart.Part]:
        bucket = self.buckets(self.credentials(request))
        try:
            return oss_multipart.list_parts(bucket, session.target, session.grant_id)
        except oss_multipart.UploadGone as exc:
            raise NotFound("no such upload in progress") from exc


def _abort_quietly(bucket: Any, key: str, upload_id: str) -> None:
    """Abort an upload nobody was given; if OSS fails now, the lifecycle rule removes it."""
    try:
        oss_multipart.abort(bucket, key, upload_id)
    except AppError:
        logs.warning("multipart_not_aborted", key=key[:256], upload=upload_id)
