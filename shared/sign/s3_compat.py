"""S3-compatible signing for Uppy 6 (`@uppy/aws-s3` 6.x `signRequest`), with the server in control.

The plugin calls `signRequest({method, key, uploadId?, partNumber?})` in the browser once per
S3 request and sends that request, without our `Authorization` header, to the URL it gets back.
`web/oss-uppy.js` turns each call into one authenticated `POST /s3/sign`; the answer is
- a small file's PUT: a presigned OSS PutObject URL (`put_object.py`). The grant is an exact-key
  grant of the ledger, as `/signature` issues; the callback rides in the signed query, and the
  `Content-Type`, `x-oss-forbid-overwrite` and `x-oss-storage-class` headers are signed in and
  returned in `headers`, which the plugin sends in place of its own (a different type breaks
  the signature). With `"form": true`, `/signature`'s PostObject form instead (`fields`, which
  the plugin posts), whose policy OSS enforces before storing — the size included;
- an UploadPart PUT: the multipart service's presigned part URL (no Content-Type is signed, and
  the plugin sends none for a part: `Blob.slice` without a type);
- create, list parts, complete, abort: `path` = `/s3/op?capability=…`, a URL of this function.
  Create is done at sign time by the multipart service (the plugin takes the key from the sign
  answer, before its create request), so the capability only answers its XML. List, complete
  and abort run when the plugin calls the URL, through the same multipart service as the JSON
  `/multipart` routes: ListParts checks, Complete with the callback, the ledger. The plugin's
  own request body (its part list) and headers are never read: nothing it sends has an effect.

A capability (s3_capability.py) is a short-lived JWT binding the user, the operation, the upload
id and the key; only `/s3/sign`, behind sign-in, mints one, and a forged, expired or altered
token, or one used with another method, is 403. Answers on `/s3/op` are S3's XML (s3_xml.py);
the body of `/s3/sign` is parsed by s3_request.py.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.credentials import Credentials
from shared.errors import AppError, BadRequest, MethodNotAllowed, NotFound, Unavailable
from shared.http import Request, Response, json_response
from shared.multipart import layout
from shared.records import Store
from shared.settings import Secret
from shared.sign import jsonbody
from shared.sign.issue import ledger_entry
from shared.sign.multipart import MultipartRoutes
from shared.sign.presign import uri_encode
from shared.sign.put_object import sign_form, sign_put
from shared.sign.s3_capability import (
    ABORT,
    CAPABILITY_PARAMETER,
    CAPABILITY_TTL_SECONDS,
    COMPLETE,
    CREATE,
    LIST,
    Capability,
    capability_of,
    mint_capability,
    verify_capability,
)
from shared.sign.s3_request import SignCall, parse_sign_call
from shared.sign.s3_xml import (
    UploadRejected,
    complete_result,
    initiate_result,
    list_parts_result,
    xml_error,
)
from shared.sign.settings import SignSettings

ROUTE = "/s3/"
SIGN_ROUTE = "/s3/sign"
OP_ROUTE = "/s3/op"


# --- the multipart service this module drives ------------------------------------------------


class MultipartService:
    """The `/multipart` routes' own code (shared/sign/multipart.py), called for a user with the
    JSON body its route would get, answering its JSON: DESIGN "Multipart uploads" exactly."""

    def __init__(self, routes: MultipartRoutes) -> None:
        self.routes = routes

    def create(self, request: Request, user: str, upload: Mapping[str, Any]) -> dict[str, Any]:
        return _json(self.routes.create(_with_body(request, upload), user))

    def sign_part(self, request: Request, user: str, upload_id: str, number: int) -> dict[str, Any]:
        body = {"partNumbers": [number]}
        signed = _json(self.routes.parts(_with_body(request, body), user, upload_id))
        return dict(signed["parts"][0])

    def status(self, request: Request, user: str, upload_id: str) -> dict[str, Any]:
        return _json(self.routes.status(_with_body(request, None), user, upload_id))

    def complete(self, request: Request, user: str, upload_id: str) -> dict[str, Any]:
        return _json(self.routes.complete(_with_body(request, None), user, upload_id))

    def abort(self, request: Request, user: str, upload_id: str) -> None:
        self.routes.abort(_with_body(request, None), user, upload_id)


def _with_body(request: Request, body: Mapping[str, Any] | None) -> Request:
    """The request as the route would get it: our JSON body or none (the plugin's is ignored),
    and no query (the capability is ours, not the route's)."""
    data = b"" if body is None else json.dumps(body).encode("utf-8")
    return dataclasses.replace(request, body=data, query_string="")


def _json(response: Response) -> dict[str, Any]:
    value = json.loads(response.body)
    if not isinstance(value, dict):
        raise Unavailable("the multipart service answered no JSON object")
    return value


# (request, user, the upload's facts, as a form?) → the single request's answer.
PutObjectSigner = Callable[[Request, str, Mapping[str, Any], bool], Mapping[str, Any]]


# --- the routes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Compat:
    """`POST /s3/sign` (signed in) and `/s3/op?capability=…` (the capability is the authority)."""

    bucket: str
    endpoint: str  # OSS_ENDPOINT, for the `Location` of a completed upload
    secrets: tuple[Secret, ...]
    part_bytes: int  # MULTIPART_PART_BYTES
    user: Callable[[Request], str]  # sign-in: the caller's user id, or Unauthorized
    multipart: MultipartService
    put_object: PutObjectSigner
    clock: Callable[[], float] = time.time

    def __call__(self, request: Request) -> Response:
        route = request.route()
        if route == SIGN_ROUTE:
            if request.method != "POST":
                raise MethodNotAllowed("use POST /s3/sign", allow="POST, OPTIONS")
            return self.sign(request)
        if route != OP_ROUTE:
            raise NotFound(f"no route {route!r}: use POST /s3/sign")
        try:
            return self.operate(request, capability_of(request))
        except AppError as error:
            return xml_error(error)

    def sign(self, request: Request) -> Response:
        user = self.user(request)
        call = parse_sign_call(request.body)
        if call.upload_id is None:
            if call.method == "PUT":
                upload = dict(call.upload)
                form = upload.pop("form", False)
                if type(form) is not bool or "partSize" in upload:
                    raise BadRequest("a single upload takes form (true or false), not partSize")
                response = json_response(200, dict(self.put_object(request, user, upload, form)))
            elif call.method == "POST":
                response = self._create(request, user, call)
            else:
                raise BadRequest(f"{call.method} needs an uploadId: only uploads are signed here")
        elif call.method == "PUT":
            if call.part_number is None:
                raise BadRequest("a PUT with an uploadId is a part: partNumber is required")
            part = self.multipart.sign_part(request, user, call.upload_id, call.part_number)
            response = json_response(
                200, {"url": part["url"], "headers": dict(part.get("headers") or {})}
            )
        else:
            if call.part_number is not None:
                raise BadRequest("partNumber is only for a part's PUT")
            op = {"GET": LIST, "POST": COMPLETE, "DELETE": ABORT}[call.method]
            response = json_response(
                200, {"path": self._op_path(user, op, call.upload_id, call.key)}
            )
        response.log_fields.update(user=user, s3=call.method, part=call.part_number)
        return response

    def _create(self, request: Request, user: str, call: SignCall) -> Response:
        upload = dict(call.upload)
        if "form" in upload:
            raise BadRequest("form is for a single upload (PUT), not a multipart one")
        wanted = upload.pop("partSize", None)
        if wanted is not None:
            self._check_part_size(jsonbody.integer(wanted, "partSize"), upload.get("size"))
        created = self.multipart.create(request, user, upload)
        upload_id, key = str(created["uploadId"]), str(created["key"])
        answer = {
            "path": self._op_path(user, CREATE, upload_id, key),
            "key": key,
            "uploadId": upload_id,
            "partSize": created["partSize"],
        }
        return json_response(200, answer)

    def _check_part_size(self, wanted: int, size: Any) -> None:
        """The client cuts its parts before it asks (Uppy does): a different cut is refused now,
        before anything is created, rather than by ListParts at Complete."""
        if type(size) is not int or size < 1:
            return  # the create route says what is wrong with it
        try:
            ours = layout(size, self.part_bytes).part_size
        except ValueError:
            return
        if wanted != ours:
            raise BadRequest(
                f"parts of this file are {ours} bytes here, the client cuts {wanted}: "
                "set the client's partSize to MULTIPART_PART_BYTES"
            )

    def _op_path(self, user: str, op: str, upload_id: str, key: str) -> str:
        capability = Capability(
            user, op, upload_id, key, int(self.clock()) + CAPABILITY_TTL_SECONDS
        )
        return f"{OP_ROUTE}?{CAPABILITY_PARAMETER}={mint_capability(capability, self.secrets[0])}"

    def operate(self, request: Request, token: str) -> Response:
        capability = verify_capability(token, self.secrets, method=request.method, now=self.clock())
        user, upload_id = capability.user, capability.upload_id
        if capability.op == CREATE:
            response = initiate_result(self.bucket, capability.key, upload_id)
        elif capability.op == LIST:
            response = list_parts_result(
                self.bucket, self.multipart.status(request, user, upload_id)
            )
        elif capability.op == COMPLETE:
            response = self._complete(request, capability)
        else:
            self.multipart.abort(request, user, upload_id)
            response = Response(204)
        response.log_fields.update(user=user, s3=capability.op, upload=upload_id)
        return response

    def _complete(self, request: Request, capability: Capability) -> Response:
        answer = self.multipart.complete(request, capability.user, capability.upload_id)
        if answer.get("Status") != "OK":
            raise UploadRejected(
                str(answer.get("code", "Rejected")), str(answer.get("message", ""))
            )
        key = str(answer.get("key", capability.key))
        location = f"{self.endpoint.rstrip('/')}/{uri_encode(key, keep_slash=True)}"
        return complete_result(location, self.bucket, key, str(answer.get("etag", "")))


def create_routes(
    settings: SignSettings,
    *,
    user: Callable[[Request], str],
    multipart_routes: MultipartRoutes,
    store: Callable[[Request], Store],
    credentials: Callable[[Request], Credentials],
    clock: Callable[[], float],
) -> S3Compat:
    """The /s3/ routes of the sign function, over its own multipart routes, store and sign-in."""

    def put_object(
        request: Request, user: str, upload: Mapping[str, Any], form: bool
    ) -> dict[str, Any]:
        """A small file's presigned PutObject (or PostObject form): an exact-key grant, written
        to the ledger (rate limit, quota reservation) before it is returned."""
        now = clock()
        sign = sign_form if form else sign_put
        signed = sign(settings, user, upload, credentials(request), now)
        store(request).open_grant(ledger_entry(signed.grant, now), settings.limits, now)
        return signed.answer()

    return S3Compat(
        bucket=settings.oss.bucket,
        endpoint=settings.oss.endpoint,
        secrets=settings.grant_secrets,
        part_bytes=settings.upload.part_bytes,
        user=user,
        multipart=MultipartService(multipart_routes),
        put_object=put_object,
        clock=clock,
    )
