"""The OSS emulator as a WSGI app: one bucket at the root, PostObject, GetObject/HeadObject.

A PostObject is judged in OSS's order (DESIGN.md, Local stack): form shape → signature → policy
(expiration, then conditions) → size; then the callback configuration is validated, the object
stored, and the callback made. Every refusal is OSS's XML error with the right Code and status.
"""

from __future__ import annotations

import base64
import hmac
import mimetypes
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Request, Response

from local.oss_emulator import callback as cb
from local.oss_emulator.conditional import byte_range, not_modified
from local.oss_emulator.cors import DEPLOYED as DEPLOYED_CORS
from local.oss_emulator.cors import CorsConfiguration
from local.oss_emulator.errors import (
    XML_TYPE,
    OssError,
    access_denied,
    error_xml,
    invalid_argument,
    xml_document,
)
from local.oss_emulator.form import PostForm, UploadedFile, parse_post_form
from local.oss_emulator.image import image_info
from local.oss_emulator.keys import load_or_create_key, public_pem
from local.oss_emulator.listing import list_objects, object_name, path_style_key
from local.oss_emulator.policy import (
    MAX_OBJECT_BYTES,
    Policy,
    check_conditions,
    check_expiration,
    check_size,
    decode_policy,
)
from local.oss_emulator.ram import RamPolicy, bucket_resource, object_resource, write_actions
from local.oss_emulator.request_auth import RestRequest, authenticate
from local.oss_emulator.signature import AccessKey, SignedBy, verify_post_signature
from local.oss_emulator.store import ObjectStore, StoredObject
from shared import logs

KEY_PATH = "/.well-known/oss-emulator/callback_pub_key.pem"
RESERVED_KEY_PREFIX = KEY_PATH[1:].rsplit("/", 1)[0] + "/"  # no object key can shadow the key
ACLS = ("default", "private", "public-read", "public-read-write")
PUBLIC_READ = ("public-read", "public-read-write")
STORAGE_CLASSES = {  # as sent (any case) → as OSS reports it
    name.lower(): name for name in ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
}
# Not readable until restored (RestoreObject is not emulated: never readable here).
ARCHIVED = ("Archive", "ColdArchive", "DeepColdArchive")
SSE_ALGORITHMS = ("AES256", "KMS", "SM4")
STORED_FIELDS = ("cache-control", "content-disposition", "content-encoding", "expires")
MAX_USER_METADATA_BYTES = 8 * 1024
TYPE_FIELDS = ("content-type", "x-oss-content-type")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # horizontal tab is allowed in a header value


@dataclass(frozen=True)
class EmulatorConfig:
    bucket: str
    region: str
    access_keys: tuple[AccessKey, ...]
    data_dir: Path
    public_url: str  # how clients reach the emulator, e.g. http://127.0.0.1:9000
    cors_origins: frozenset[str] = frozenset()  # replace the origins of the deployed CORS rules
    cors_file: Path = DEPLOYED_CORS  # the PutBucketCors document the bucket gets
    versioning: str = ""  # "", "Enabled" or "Suspended": x-oss-forbid-overwrite is ignored once set
    bucket_acl: str = "public-read"  # unsigned reads work unless an object's own ACL says private
    owner_id: str = "1000000000000000"  # bucket owner UID, sent as x-oss-owner/x-oss-requester
    strict_v4_policy: bool = True  # V4 policies must pin signature version, credential and date
    max_object_bytes: int = MAX_OBJECT_BYTES
    # access key id → the RAM policy bound to it; a key without one is the bucket owner's
    policies: Mapping[str, RamPolicy] = field(default_factory=dict)

    @property
    def key_url(self) -> str:
        """The URL OSS names in x-oss-pub-key-url; the callback function is told to trust it."""
        return self.public_url.rstrip("/") + KEY_PATH


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
        self.keys = {key.key_id: key for key in config.access_keys}
        self.cors = CorsConfiguration.load(config.cors_file, origins=config.cors_origins)
        self.now = now
        self.send_callback = send_callback

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.monotonic()
        request = Request(environ)
        request_id = secrets.token_hex(12).upper()
        outcome = "OK"
        try:
            response = self._dispatch(request, request_id)
        except OssError as error:
            response = self._error(error, request, request_id)
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
        if method in ("GET", "HEAD"):
            return self._read(request)
        raise OssError(
            405,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
            extra=(
                ("Method", method),
                ("ResourceType", "Object" if request.path != "/" else "Bucket"),
            ),
        )

    def _error(self, error: OssError, request: Request, request_id: str) -> Response:
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
        key = path_style_key(request, self.config.bucket) if signed else None
        if key is None:
            key = _object_key(request)
        who = self.authenticate(request, key).access_key_id if signed else None
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

    def authenticate(self, request: Request, key: str) -> SignedBy:
        """The header signature of a REST request (V1/V4, STS) for `/<bucket>/<key>`."""
        rest = RestRequest(
            method=request.method,
            bucket=self.config.bucket,
            key=key,
            query=tuple(request.args.items(multi=True)),
            headers={name.lower(): value for name, value in request.headers.items()},
        )
        now = datetime.fromtimestamp(self.now(), timezone.utc)
        return authenticate(rest, self.keys, region=self.config.region, now=now)

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
        headers = {name.lower(): value for name, value in request.headers.items()}
        if not_modified(headers, etag=obj.etag, last_modified=obj.last_modified):
            response = Response(b"", 304)
            del response.headers["Content-Type"]
            response.headers["ETag"] = f'"{obj.etag}"'
            response.headers["Last-Modified"] = formatdate(obj.last_modified, usegmt=True)
            return response
        span = byte_range(headers, obj.size)
        first, last = span if span is not None else (0, obj.size - 1)
        status = 200 if span is None else 206
        if request.method == "HEAD":
            response = Response(b"", status, content_type=obj.content_type)
        else:
            body = _file_slice(self.store.data_path(key), first, last - first + 1)
            response = Response(
                body, status, content_type=obj.content_type, direct_passthrough=True
            )
        response.headers["Content-Length"] = str(max(last - first + 1, 0))
        if span is not None:
            response.headers["Content-Range"] = f"bytes {first}-{last}/{obj.size}"
        response.headers["ETag"] = f'"{obj.etag}"'
        response.headers["Last-Modified"] = formatdate(obj.last_modified, usegmt=True)
        response.headers["x-oss-object-type"] = "Normal"
        response.headers["x-oss-hash-crc64ecma"] = obj.crc64
        response.headers["Content-MD5"] = obj.content_md5
        response.headers["Accept-Ranges"] = "bytes"
        response.headers["x-oss-storage-class"] = obj.storage_class
        if obj.encryption:
            response.headers["x-oss-server-side-encryption"] = obj.encryption
        for name, value in obj.headers.items():
            response.headers[name] = value
        return response

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
        upload = _form_shape(request, form)
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
        key = _expand_key(form.fields["key"], upload.filename)
        # After the policy and the key (emulator's order): what RAM allows this key to write.
        acl = form.get("x-oss-object-acl")
        context = {"oss:x-oss-object-acl": acl} if acl is not None else {}
        self.authorize(signed.access_key_id, write_actions(form.fields), key, context)
        stored = self._describe(form, upload, key)
        # OSS ignores x-oss-forbid-overwrite on a bucket whose versioning is Enabled or Suspended
        # (oss-protocol.md §2.3); the emulator keeps no old versions, it only stops refusing.
        forbid = _forbids_overwrite(form) and not self.config.versioning
        self.store.put(stored, upload.spool, forbid_overwrite=forbid)
        if config is not None:
            return self._callback(
                request,
                request_id=request_id,
                config=config,
                stored=stored,
                form=form,
                upload=upload,
            )
        return self._success(form, stored, policy)

    def _describe(self, form: PostForm, upload: UploadedFile, key: str) -> StoredObject:
        return StoredObject(
            key=key,
            size=upload.size,
            etag=upload.md5.hex().upper(),
            content_type=_content_type(form, upload, key),
            crc64=str(upload.crc64),
            content_md5=base64.b64encode(upload.md5).decode("ascii"),
            last_modified=self.now(),
            headers=_stored_headers(form),
            acl=form.get("x-oss-object-acl") or "default",
            storage_class=STORAGE_CLASSES[(form.get("x-oss-storage-class") or "standard").lower()],
            encryption=form.get("x-oss-server-side-encryption") or "",
        )

    def _success(self, form: PostForm, stored: StoredObject, policy: Policy) -> Response:
        """No callback: success_action_redirect, else success_action_status 200/201/204."""
        del policy
        redirect = form.get("success_action_redirect")
        if redirect and urlsplit(redirect).scheme in ("http", "https"):
            query = urlencode(
                {"bucket": self.config.bucket, "key": stored.key, "etag": f'"{stored.etag}"'}
            )
            response = Response(b"", 303)
            response.headers["Location"] = redirect + ("&" if "?" in redirect else "?") + query
        else:
            status = form.get("success_action_status")
            if status == "201":
                location = f"{self.config.public_url.rstrip('/')}/{quote(stored.key)}"
                body = xml_document(
                    "PostResponse",
                    [
                        ("Bucket", self.config.bucket),
                        ("ETag", f'"{stored.etag}"'),
                        ("Key", stored.key),
                        ("Location", location),
                    ],
                )
                response = Response(body, 201, content_type=XML_TYPE)
            else:
                response = Response(b"", 200 if status == "200" else 204)
        _object_headers(response, stored)
        response.headers["Content-MD5"] = stored.content_md5
        return response

    def _callback(
        self,
        request: Request,
        *,
        request_id: str,
        config: cb.CallbackConfig,
        stored: StoredObject,
        form: PostForm,
        upload: UploadedFile,
    ) -> Response:
        """Make the callback; 200 + the app server's body, or 203 CallbackFailed (object kept)."""
        info = image_info(upload.head)
        variables = {
            "bucket": self.config.bucket,
            "object": stored.key,
            "etag": stored.etag,
            "size": str(stored.size),
            "mimeType": stored.content_type,
            "imageInfo.height": str(info.height) if info else "",
            "imageInfo.width": str(info.width) if info else "",
            "imageInfo.format": info.format if info else "",
            "crc64": stored.crc64,
            "contentMd5": stored.content_md5,
            "vpcId": "",
            "clientIp": request.remote_addr or "",
            "reqId": request_id,
            "operation": "PostObject",
        }
        custom = {name: value for name, value in form.fields.items() if name.startswith("x:")}
        body = cb.render_body(config, variables, custom)

        def make_request(url: str) -> cb.CallbackRequest:
            return cb.build_request(
                url,
                config,
                body,
                private_key=self.private_key,
                key_url=self.config.key_url,
                bucket=self.config.bucket,
                request_id=request_id,
                owner=self.config.owner_id,
            )

        outcome = cb.run_callback(config, make_request, self.send_callback)
        if outcome.ok and outcome.reply is not None:
            content_type = outcome.reply.headers.get("content-type") or cb.JSON_TYPE
            response = Response(outcome.reply.body, 200, content_type=content_type)
        else:
            error = OssError(203, "CallbackFailed", outcome.failure, ec="0007-00000203")
            response = self._error(error, request, request_id)
            response.headers["x-emulator-outcome"] = "CallbackFailed"
        _object_headers(response, stored)
        return response


# --- helpers ------------------------------------------------------------------------------


def _form_shape(request: Request, form: PostForm) -> UploadedFile:
    """What must hold before any signature is looked at (protocol §2.1–§2.3)."""
    digest = request.headers.get("Content-MD5")
    if digest is not None:
        expected = base64.b64encode(form.body_md5).decode("ascii")
        if not hmac.compare_digest(digest.strip().encode(), expected.encode()):
            raise OssError(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")
    if form.file is None:
        raise OssError(
            400,
            "IncorrectNumberOfFilesInPOSTRequest",
            "POST requires exactly one file upload per request.",
        )
    if "x-oss-tagging" in form.fields:
        raise invalid_argument("x-oss-tagging is not supported in PostObject.")
    acl = form.get("x-oss-object-acl")
    if acl is not None and acl not in ACLS:
        raise invalid_argument("no such bucket access control exists", ec="0016-00000101")
    storage = form.get("x-oss-storage-class")
    if storage is not None and storage.lower() not in STORAGE_CLASSES:
        raise invalid_argument(f"Invalid storage class: {storage}")
    sse = form.get("x-oss-server-side-encryption")
    if sse is not None and sse not in SSE_ALGORITHMS:
        raise OssError(
            400,
            "InvalidEncryptionAlgorithmError",
            "The Encryption request you specified is not valid. Supported value: AES256/KMS/SM4.",
        )
    for name, value in form.fields.items():
        if (name in STORED_FIELDS or name in TYPE_FIELDS or name.startswith("x-oss-meta-")) and (
            _CONTROL.search(value)
        ):
            # A header field value cannot hold CR, LF or other control characters (RFC 9110
            # §5.5); OSS refuses such metadata rather than store what it could not serve.
            raise invalid_argument(f"The value of {form.names[name]} contains a control character.")
    if form.file.content_type and _CONTROL.search(form.file.content_type):
        raise invalid_argument("The Content-Type of the file contains a control character.")
    meta = sum(len(k) + len(v) for k, v in form.fields.items() if k.startswith("x-oss-meta-"))
    if meta > MAX_USER_METADATA_BYTES:
        raise OssError(
            400,
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size.",
        )
    return form.file


def _expand_key(template: str, filename: str) -> str:
    """`${filename}` becomes the uploaded file's base name, after the policy was checked."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    key = template.replace("${filename}", base)
    raw = key.encode("utf-8", "surrogatepass")
    if (
        not key
        or len(raw) > 1023
        or key[0] in "/\\"
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key)
        or key.startswith(RESERVED_KEY_PREFIX)
    ):
        raise OssError(
            400,
            "InvalidObjectName",
            "The specified object is not valid.",
            extra=(("ObjectName", key),),
        )
    return key


def _object_key(request: Request) -> str:
    return object_name(str(request.environ.get("PATH_INFO") or "/").encode("latin-1")[1:])


def _file_slice(path: Path, offset: int, length: int) -> Iterator[bytes]:
    """`length` bytes of the file from `offset`, in chunks; the file is closed at the end."""
    with path.open("rb") as handle:
        handle.seek(offset)
        while length > 0:
            chunk = handle.read(min(length, 64 * 1024))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def _forbids_overwrite(form: PostForm) -> bool:
    return (form.get("x-oss-forbid-overwrite") or "").strip().lower() == "true"


def _content_type(form: PostForm, upload: UploadedFile, key: str) -> str:
    """x-oss-content-type > the file part's Content-Type > the Content-Type field (§2.3)."""
    for candidate in (
        form.get("x-oss-content-type"),
        upload.content_type,
        form.get("content-type"),
    ):
        if candidate and candidate.strip():
            return candidate.strip()
    guessed, _ = mimetypes.guess_type(key, strict=False)
    return guessed or "application/octet-stream"


def _stored_headers(form: PostForm) -> dict[str, str]:
    headers = {
        form.names[name]: value for name, value in form.fields.items() if name in STORED_FIELDS
    }
    headers.update(
        {name: value for name, value in form.fields.items() if name.startswith("x-oss-meta-")}
    )
    return headers


def _object_headers(response: Response, stored: StoredObject) -> None:
    response.headers["ETag"] = f'"{stored.etag}"'
    response.headers["x-oss-hash-crc64ecma"] = stored.crc64
