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

A capability is a JWT (HS256) with audience `oss-direct-upload:s3-op` binding the user, the
operation, the upload id, the key and a short expiry (CAPABILITY_TTL_SECONDS). Its key is derived
from GRANT_SECRET — the one secret every deployment of the sign function has (AUTH_JWT_SECRET
is absent with AUTH_JWKS_URL or AUTH_MODE=none) — as HMAC-SHA256(secret, a fixed label), so it
never verifies as a grant token or a sign-in token even where audiences were not checked; the
first secret signs, all verify (rotation, as for grants). Only `/s3/sign`, behind sign-in, mints
one, so it is what the signed-in user could get, usable for that one operation on that one
upload for a few minutes: a forged, expired or altered token, or one used with another method,
is 403. A capability acts as the user who asked for it, so one naming another user's upload
id finds no session of theirs: 404, and the other user's upload is untouched.

Answers on `/s3/op` are S3's XML (`Content-Type: application/xml`, which the plugin requires
to read an error's `Code`): errors as `<Error><Code>…</Code><Message>…</Message></Error>` with
our stable codes and statuses.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import jwt

from shared import jwt_codec
from shared.credentials import Credentials
from shared.errors import AppError, BadRequest, Forbidden, MethodNotAllowed, NotFound, Unavailable
from shared.http import Request, Response, json_response
from shared.multipart import layout
from shared.records import Store
from shared.settings import Secret
from shared.sign import jsonbody
from shared.sign.issue import ledger_entry
from shared.sign.multipart import MultipartRoutes
from shared.sign.presign import uri_encode
from shared.sign.put_object import sign_form, sign_put
from shared.sign.settings import SignSettings

ROUTE = "/s3/"
SIGN_ROUTE = "/s3/sign"
OP_ROUTE = "/s3/op"
# In the query, not the path: access logs name the route, and a capability must not be logged.
CAPABILITY_PARAMETER = "capability"
CAPABILITY_TTL_SECONDS = 300
AUDIENCE = "oss-direct-upload:s3-op"
ALGORITHM = "HS256"
_KEY_LABEL = b"oss-direct-upload s3-compat capability v1"
XML_TYPE = "application/xml"

CREATE, LIST, COMPLETE, ABORT = "create", "list", "complete", "abort"
# The HTTP method each operation arrives with (S3: POST ?uploads, GET, POST, DELETE ?uploadId).
OP_METHODS = {CREATE: "POST", LIST: "GET", COMPLETE: "POST", ABORT: "DELETE"}

MAX_KEY_CHARS = 1023
MAX_UPLOAD_ID_CHARS = 256
MAX_PART_NUMBER = 10_000
# The only fields /s3/sign reads; anything else is refused so nobody believes it had an effect.
UPLOAD_FIELDS = ("path", "filename", "size", "type", "partSize", "form")
SIGN_FIELDS = frozenset({"method", "key", "uploadId", "partNumber", *UPLOAD_FIELDS})


# --- capabilities ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Capability:
    """What a `/s3/op` URL lets its holder do: one operation on one upload, as one user."""

    user: str
    op: str
    upload_id: str
    key: str
    expires_at: int  # Unix seconds


def capability_key(secret: Secret) -> bytes:
    """The HMAC key of capabilities: derived from a GRANT_SECRET, used for nothing else."""
    return hmac.digest(secret.value.encode("utf-8"), _KEY_LABEL, "sha256")


def mint_capability(capability: Capability, secret: Secret) -> str:
    claims = {
        "aud": AUDIENCE,
        "sub": capability.user,
        "op": capability.op,
        "uid": capability.upload_id,
        "key": capability.key,
        "exp": capability.expires_at,
    }
    return jwt_codec.encode(claims, capability_key(secret), algorithm=ALGORITHM)


def verify_capability(
    token: str, secrets: Sequence[Secret], *, method: str, now: float
) -> Capability:
    """The capability a token carries, for a request with `method`; Forbidden otherwise."""
    if not token or len(token) > 4096:
        raise Forbidden("the capability is missing")
    for secret in secrets:
        try:
            claims = jwt_codec.decode(
                token,
                capability_key(secret),
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={"require": ["aud", "sub", "op", "uid", "key", "exp"], "verify_exp": False},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise Forbidden("the capability is malformed") from exc
        capability = _capability_from_claims(claims)
        if now > capability.expires_at:
            raise Forbidden("the capability has expired: ask /s3/sign again")
        if OP_METHODS[capability.op] != method:
            raise Forbidden(f"this capability is for {capability.op}, not a {method} request")
        return capability
    raise Forbidden("the capability is not ours")


def _capability_from_claims(claims: Mapping[str, Any]) -> Capability:
    user, op, upload_id, key, exp = (claims[n] for n in ("sub", "op", "uid", "key", "exp"))
    if not all(isinstance(v, str) and v for v in (user, op, upload_id, key)):
        raise Forbidden("the capability is malformed")
    if op not in OP_METHODS or type(exp) is not int:
        raise Forbidden("the capability is malformed")
    return Capability(user=user, op=op, upload_id=upload_id, key=key, expires_at=exp)


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


# --- /s3/sign --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignCall:
    """One `signRequest` call of the plugin, as `web/oss-uppy.js` forwards it."""

    method: str
    key: str
    upload_id: str | None
    part_number: int | None
    upload: dict[str, Any]  # path, filename, size, type: a new upload's facts


def parse_sign_call(body: bytes) -> SignCall:
    """The JSON body of `POST /s3/sign` (jsonbody's strict rules); anything else is a 400."""
    data = jsonbody.json_object(body, SIGN_FIELDS)
    method = data.get("method")
    if method not in ("PUT", "POST", "GET", "DELETE"):
        raise BadRequest("method must be PUT, POST, GET or DELETE")
    key = _text(data, "key", MAX_KEY_CHARS)
    upload_id = _text(data, "uploadId", MAX_UPLOAD_ID_CHARS) if "uploadId" in data else None
    part_number = None
    if "partNumber" in data:
        part_number = jsonbody.integer(data["partNumber"], "partNumber")
        if not 1 <= part_number <= MAX_PART_NUMBER:
            raise BadRequest(f"partNumber must be from 1 to {MAX_PART_NUMBER}")
    upload = {name: data[name] for name in UPLOAD_FIELDS if name in data}
    if upload_id is not None and upload:
        raise BadRequest("an upload's facts are only sent to start it (without uploadId)")
    return SignCall(str(method), key, upload_id, part_number, upload)


def _text(data: Mapping[str, Any], name: str, limit: int) -> str:
    value = jsonbody.string(data.get(name), name)
    if not value or len(value) > limit:
        raise BadRequest(f"{name} must be 1 to {limit} characters")
    return value


def capability_of(request: Request) -> str:
    """The one query parameter of an `/s3/op` URL (a JWT: URL-safe as it is)."""
    query = request.query()
    unknown = sorted(set(query) - {CAPABILITY_PARAMETER})
    if unknown:
        raise BadRequest(f"unknown query parameter {unknown[0][:64]!r}")
    return query.get(CAPABILITY_PARAMETER, "")


# --- S3 XML ----------------------------------------------------------------------------------


def xml_response(
    status: int, root: str, children: Sequence[tuple[str, str]] = (), *, extra: str = ""
) -> Response:
    """`<?xml…?><root><name>text</name>…extra</root>` with S3's content type."""
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in children) + extra
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{inner}</{root}>'.encode()
    return Response(status, body, [("Content-Type", XML_TYPE)])


def xml_error(error: AppError) -> Response:
    """An error as S3 writes it; the plugin reads `Code` when the type is application/xml."""
    response = xml_response(
        error.status, "Error", [("Code", error.code), ("Message", error.message)]
    )
    response.headers.extend(error.headers)
    response.outcome = error.code
    response.log_fields["reason"] = error.message
    return response


def initiate_result(bucket: str, key: str, upload_id: str) -> Response:
    return xml_response(
        200,
        "InitiateMultipartUploadResult",
        [("Bucket", bucket), ("Key", key), ("UploadId", upload_id)],
    )


def list_parts_result(bucket: str, status: Mapping[str, Any]) -> Response:
    parts = "".join(
        f"<Part><PartNumber>{int(part['partNumber'])}</PartNumber>"
        f"<ETag>{escape(_quoted(str(part['etag'])))}</ETag><Size>{int(part['size'])}</Size></Part>"
        for part in status.get("parts", [])
    )
    children = [
        ("Bucket", bucket),
        ("Key", str(status["key"])),
        ("UploadId", str(status["uploadId"])),
        ("IsTruncated", "false"),
    ]
    return xml_response(200, "ListPartsResult", children, extra=parts)


def complete_result(location: str, bucket: str, key: str, etag: str) -> Response:
    children = [("Location", location), ("Bucket", bucket), ("Key", key), ("ETag", _quoted(etag))]
    return xml_response(200, "CompleteMultipartUploadResult", children)


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


class UploadRejected(AppError):
    """Complete ran, and the callback rejected the object (deleted, not recorded): the XML face of
    the callback's `{"Status": "Rejected", "code", "message"}`, so that Uppy shows an error."""

    status = 422

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


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
