"""The OSS emulator as a WSGI app: one bucket at the root; PostObject, ListObjects,
Get/HeadObject, DeleteObject.

A PostObject is judged in OSS's order (DESIGN.md, Local stack): form shape (fields.py) →
signature (signature.py) → policy (expiration, then conditions) → size; then the callback
configuration is validated, the key expanded, the signer's RAM permission checked (ram.py), the
object stored and the callback made (post_object.py). A REST read is authenticated by its header
signature (request_auth.py) or its presigned query (presigned.py), authorized, then answered
(listing.py, reads.py; `x-oss-process` by process.py). Every refusal is
OSS's XML error with the right Code and status; CORS comes from cors.py on every answer.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Request, Response

from local.oss_emulator import callback as cb
from local.oss_emulator import complete, multipart, put_object
from local.oss_emulator.config import EmulatorConfig
from local.oss_emulator.cors import CorsConfiguration
from local.oss_emulator.errors import (
    XML_TYPE,
    OssError,
    access_denied,
    error_xml,
)
from local.oss_emulator.fields import (
    check_fields,
    expand_key,
    forbids_overwrite,
)
from local.oss_emulator.form import PostForm, parse_post_form
from local.oss_emulator.keys import KEY_PATH, load_or_create_key, public_pem
from local.oss_emulator.listing import list_objects, object_name, path_style_key
from local.oss_emulator.multipart import RestCall
from local.oss_emulator.policy import (
    check_conditions,
    check_expiration,
    check_size,
    decode_policy,
)
from local.oss_emulator.post_object import describe, success_response
from local.oss_emulator.presigned import authenticate_query, is_presigned
from local.oss_emulator.process import process_image
from local.oss_emulator.ram import bucket_resource, object_resource, write_actions
from local.oss_emulator.reads import object_response
from local.oss_emulator.request_auth import RestRequest, authenticate
from local.oss_emulator.signature import SignedBy, verify_post_signature
from local.oss_emulator.stats import STATS_PATH, RequestStats, operation
from local.oss_emulator.store import ObjectStore, StoredObject
from local.oss_emulator.upload_callback import callback_response, object_headers
from local.oss_emulator.uploads import MultipartStore
from shared import logs

PUBLIC_READ = ("public-read", "public-read-write")
# GetObject's response header overrides (query parameters a signed URL carries).
RESPONSE_OVERRIDES = {
    "response-content-disposition": "Content-Disposition",
    "response-content-type": "Content-Type",
}
# Operations every request of which must be signed; the rest are read and PostObject paths.
REST_OPERATIONS: dict[str, Callable[[OssEmulator, RestCall], Response]] = {}
# Not readable until restored (RestoreObject is not emulated: never readable here).
ARCHIVED = ("Archive", "ColdArchive", "DeepColdArchive")


class OssEmulator:
    """WSGI app; thread-safe (the object store locks its writes)."""

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        private_key: rsa.RSAPrivateKey | None = None,
        now: Callable[[], float] = time.time,
        send_callback: cb.Sender = cb.send_with_requests,
    ) -> None:
        self.config = config
        self.private_key = private_key or load_or_create_key(config.data_dir / "oss-emulator")
        self.public_key_pem = public_pem(self.private_key)
        self.store = ObjectStore(config.data_dir / "oss-emulator")
        self.uploads = MultipartStore(config.data_dir / "oss-emulator")
        self.keys = {key.key_id: key for key in config.access_keys}
        self.cors = CorsConfiguration.load(config.cors_file, origins=config.cors_origins)
        self.now = now
        self.send_callback = send_callback
        self.stats = RequestStats(config.bucket)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.monotonic()
        request = Request(environ)
        request_id = secrets.token_hex(12).upper()
        outcome = "OK"
        if request.path == STATS_PATH and request.method == "GET":
            return self.stats.response()(environ, start_response)
        self.stats.count(request)
        try:
            response = self._dispatch(request, request_id)
        except OssError as error:
            response = self.error_response(error, request, request_id)
            outcome = error.code
        self._finish(response, request, request_id)
        logs.access(
            function="oss-emulator",
            request_id=request_id,
            method=request.method,
            route=request.path,
            status=response.status_code,
            outcome=response.headers.get("x-emulator-outcome", outcome),
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        response.headers.pop("x-emulator-outcome", None)
        return response(environ, start_response)

    # --- routing --------------------------------------------------------------------------

    def _dispatch(self, request: Request, request_id: str) -> Response:
        method = request.method
        if method == "OPTIONS":
            return self._preflight(request)
        if method in ("GET", "HEAD") and request.path == KEY_PATH:
            return Response(self.public_key_pem, 200, content_type="application/x-pem-file")
        if method == "POST" and request.path == "/":
            return self._post_object(request, request_id)
        handler = REST_OPERATIONS.get(operation(request, self.config.bucket))
        if handler is not None:
            key = path_style_key(request, self.config.bucket)
            key = _object_key(request) if key is None else key
            return handler(self, RestCall(request, request_id, key, self.caller(request, key)))
        if method in ("GET", "HEAD"):
            return self._read(request)
        if method == "DELETE" and request.headers.get("Authorization"):
            return self._delete_object(request)
        raise OssError(
            405,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
            extra=(
                ("Method", method),
                ("ResourceType", "Object" if request.path != "/" else "Bucket"),
            ),
        )

    def error_response(self, error: OssError, request: Request, request_id: str) -> Response:
        host_id = f"{self.config.bucket}.{request.host}"
        body = error_xml(error, request_id=request_id, host_id=host_id)
        return Response(body, error.status, content_type=XML_TYPE)

    def _finish(self, response: Response, request: Request, request_id: str) -> None:
        response.headers["x-oss-request-id"] = request_id  # Server and Date: the HTTP server's
        if request.method != "OPTIONS":
            for name, value in self.cors.actual(
                request.headers.get("Origin"), request.method
            ).items():
                response.headers[name] = value

    def _preflight(self, request: Request) -> Response:
        """OPTIONS: judged against the bucket's CORS rules (deploy/oss/cors.xml)."""
        response = Response(b"", 200)
        for name, value in self.cors.preflight(
            request.headers.get("Origin", ""),
            request.headers.get("Access-Control-Request-Method", ""),
            request.headers.get("Access-Control-Request-Headers", ""),
        ).items():
            response.headers[name] = value
        return response

    # --- ListObjects / GetObject / HeadObject ----------------------------------------------

    def _read(self, request: Request) -> Response:
        """`/` lists; `/<key>` reads. Signed requests (the SDK's) are path-style: `/<bucket>/…`."""
        signed = bool(request.headers.get("Authorization"))
        presigned = not signed and is_presigned(request.args)
        # The SDKs address an IP endpoint path-style (`/<bucket>/<key>`), signed or presigned.
        key = path_style_key(request, self.config.bucket) if signed or presigned else None
        if key is None:
            key = _object_key(request)
        who = None
        if signed:
            who = self.authenticate(request, key).access_key_id
        elif presigned:
            who = self.authenticate(request, key, presigned=True).access_key_id
        if key:
            if who is not None:
                self.authorize(who, ("oss:GetObject",), key)
            return self._get_object(request, key, anonymous=who is None)
        if request.method != "GET":
            raise OssError(405, "MethodNotAllowed", "The specified method is not allowed.")
        if who is None:
            raise access_denied("You have no right to access this bucket because of bucket acl.")
        context = {
            "oss:Prefix": request.args.get("prefix", ""),
            "oss:Delimiter": request.args.get("delimiter", ""),
        }
        self.authorize(who, ("oss:ListObjects",), None, context)
        return list_objects(request, self.store, bucket=self.config.bucket)

    def authorize(
        self,
        key_id: str,
        actions: Iterable[str],
        key: str | None,
        context: Mapping[str, str] | None = None,
    ) -> None:
        """403 AccessDenied unless the key's RAM policy allows every action (owner: all)."""
        policy = self.config.policies.get(key_id)
        if policy is None:
            return
        config = self.config
        bucket = bucket_resource(config.region, config.owner_id, config.bucket)
        target = (
            bucket
            if key is None
            else object_resource(config.region, config.owner_id, config.bucket, key)
        )
        facts = {"acs:AccessId": key_id, **(context or {})}
        for action in actions:
            kms = f"acs:kms:{config.region}:{config.owner_id}:key/*"
            resource = target if action.startswith("oss:") else kms
            if not policy.allows(action, resource, facts):
                raise access_denied(
                    f"You are not allowed to do {action} on {resource} (RAM policy of {key_id})."
                )

    def caller(self, request: Request, key: str) -> str:
        """Who signed a request that must be signed (header or presigned URL); AccessDenied for
        an anonymous one (the bucket's ACL never lets anyone write)."""
        if request.headers.get("Authorization"):
            return self.authenticate(request, key).access_key_id
        if is_presigned(request.args):
            return self.authenticate(request, key, presigned=True).access_key_id
        raise access_denied("You have no right to access this object because of bucket acl.")

    def authenticate(self, request: Request, key: str, *, presigned: bool = False) -> SignedBy:
        """The header (or, presigned, query) signature of a REST request (V1/V4, STS) for
        `/<bucket>/<key>`."""
        rest = RestRequest(
            method=request.method,
            bucket=self.config.bucket,
            key=key,
            query=tuple(request.args.items(multi=True)),
            headers={name.lower(): value for name, value in request.headers.items()},
        )
        now = datetime.fromtimestamp(self.now(), timezone.utc)
        check = authenticate_query if presigned else authenticate
        return check(rest, self.keys, region=self.config.region, now=now)

    def _get_object(self, request: Request, key: str, *, anonymous: bool) -> Response:
        obj = self.store.get(key)
        acl = self.config.bucket_acl if obj is None or obj.acl == "default" else obj.acl
        if anonymous and acl not in PUBLIC_READ:
            # The object's ACL, when it has one, overrides the bucket's (PutObjectACL reference).
            raise access_denied("You have no right to access this object because of bucket acl.")
        if obj is None:
            raise OssError(
                404, "NoSuchKey", "The specified key does not exist.", extra=(("Key", key),)
            )
        if request.method == "GET" and obj.storage_class in ARCHIVED:
            raise OssError(
                403,
                "InvalidObjectState",
                "The operation is not valid for the object's state.",
                extra=(("Key", key),),
            )
        process = request.args.get("x-oss-process")
        if process is not None and request.method == "GET":
            processed = process_image(self.store.data_path(key).read_bytes(), process)
            return Response(processed.body, 200, content_type=processed.content_type)
        response = object_response(request, obj, self.store.data_path(key))
        for name, header in RESPONSE_OVERRIDES.items():
            value = request.args.get(name)
            if value is not None:
                response.headers[header] = value
        return response

    def _delete_object(self, request: Request) -> Response:
        """DeleteObject (`DELETE /<bucket>/<key>`, as oss2 sends it): 204, present or not."""
        key = path_style_key(request, self.config.bucket)
        if not key:
            raise OssError(405, "MethodNotAllowed", "The specified method is not allowed.")
        who = self.authenticate(request, key).access_key_id
        self.authorize(who, ("oss:DeleteObject",), key)
        self.store.delete(key)
        return Response(b"", 204)

    # --- PostObject -----------------------------------------------------------------------

    def _post_object(self, request: Request, request_id: str) -> Response:
        form = parse_post_form(
            request.stream,
            request.headers.get("Content-Type"),
            spool_dir=self.store.spool,
            max_object_bytes=self.config.max_object_bytes,
        )
        try:
            return self._judge_and_store(request, request_id, form)
        finally:
            form.discard()

    def _judge_and_store(self, request: Request, request_id: str, form: PostForm) -> Response:
        upload = check_fields(request, form)
        now = datetime.fromtimestamp(self.now(), timezone.utc)
        signed = verify_post_signature(form.fields, self.keys, region=self.config.region, now=now)
        policy = decode_policy(form.fields["policy"])
        check_expiration(policy, now)
        check_conditions(
            policy,
            form.fields,
            bucket=self.config.bucket,
            version=signed.version,
            strict_v4=self.config.strict_v4_policy,
        )
        check_size(policy, upload.size)
        callback_field = form.get("callback") or ""
        config = cb.parse_callback(callback_field) if callback_field else None
        key = expand_key(form.fields["key"], upload.filename)
        # After the policy and the key (emulator's order): what RAM allows this key to write.
        acl = form.get("x-oss-object-acl")
        context = {"oss:x-oss-object-acl": acl} if acl is not None else {}
        self.authorize(signed.access_key_id, write_actions(form.fields), key, context)
        stored = describe(form, upload, key, self.now())
        # OSS ignores x-oss-forbid-overwrite on a bucket whose versioning is Enabled or Suspended
        # (oss-protocol.md §2.3); the emulator keeps no old versions, it only stops refusing.
        forbid = forbids_overwrite(form) and not self.config.versioning
        self.store.put(stored, upload.spool, forbid_overwrite=forbid)
        if config is None:
            return success_response(form, stored, self.config)
        custom = {name: value for name, value in form.fields.items() if name.startswith("x:")}
        return self.call_back(
            request,
            request_id,
            config=config,
            stored=stored,
            custom=custom,
            head=upload.head,
            operation="PostObject",
        )

    def call_back(
        self,
        request: Request,
        request_id: str,
        *,
        config: cb.CallbackConfig,
        stored: StoredObject,
        custom: Mapping[str, str],
        head: bytes,
        operation: str,
    ) -> Response:
        """The callback after `stored` was written: its answer, or 203 CallbackFailed."""
        reply = callback_response(
            request,
            request_id=request_id,
            callback=config,
            stored=stored,
            custom=custom,
            head=head,
            operation=operation,
            emulator=self.config,
            private_key=self.private_key,
            send=self.send_callback,
        )
        if isinstance(reply, OssError):  # 203 CallbackFailed: the object is kept
            response = self.error_response(reply, request, request_id)
            response.headers["x-emulator-outcome"] = "CallbackFailed"
            object_headers(response, stored)
            return response
        return reply


REST_OPERATIONS.update(
    {
        "InitiateMultipartUpload": multipart.initiate,
        "UploadPart": multipart.upload_part,
        "ListParts": multipart.list_parts,
        "CompleteMultipartUpload": complete.complete,
        "AbortMultipartUpload": multipart.abort,
        "ListMultipartUploads": multipart.list_uploads,
        "PutObject": put_object.put_object,
        "GetBucketVersioning": put_object.get_bucket_versioning,
    }
)


# --- helpers ------------------------------------------------------------------------------


def _object_key(request: Request) -> str:
    return object_name(str(request.environ.get("PATH_INFO") or "/").encode("latin-1")[1:])
