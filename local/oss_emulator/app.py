"""The OSS emulator as a WSGI app: one bucket at the root, PostObject, GetObject/HeadObject.

A PostObject is judged in OSS's order (DESIGN.md, Local stack): form shape → signature → policy
(expiration, then conditions) → size; then the callback configuration is validated, the object
stored, and the callback made. Every refusal is OSS's XML error with the right Code and status.
"""

from __future__ import annotations

import base64
import hmac
import json
import mimetypes
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from local import emulator_listing
from local.oss_emulator import callback as cb
from local.oss_emulator.errors import XML_TYPE, OssError, error_xml, invalid_argument, xml_document
from local.oss_emulator.form import PostForm, UploadedFile, parse_post_form
from local.oss_emulator.image import image_info
from local.oss_emulator.keys import load_or_create_key, public_pem
from local.oss_emulator.policy import (
    MAX_OBJECT_BYTES,
    Policy,
    check_conditions,
    check_expiration,
    check_size,
    decode_policy,
)
from local.oss_emulator.signature import AccessKey, verify_post_signature
from local.oss_emulator.store import ObjectStore, StoredObject
from shared import logs

KEY_PATH = "/.well-known/oss-emulator/callback_pub_key.pem"
STATS_PATH = "/.well-known/oss-emulator/stats"  # requests served per OSS operation (tests count)
RESERVED_KEY_PREFIX = KEY_PATH[1:].rsplit("/", 1)[0] + "/"  # no object key can shadow the key
CORS_METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
EXPOSED_HEADERS = "ETag, x-oss-request-id, x-oss-hash-crc64ecma, Content-MD5"
ACLS = ("default", "private", "public-read", "public-read-write")
STORAGE_CLASSES = ("standard", "ia", "archive", "coldarchive", "deepcoldarchive")
SSE_ALGORITHMS = ("AES256", "KMS", "SM4")
STORED_FIELDS = ("cache-control", "content-disposition", "content-encoding", "expires")
MAX_USER_METADATA_BYTES = 8 * 1024


@dataclass(frozen=True)
class EmulatorConfig:
    bucket: str
    region: str
    access_keys: tuple[AccessKey, ...]
    data_dir: Path
    public_url: str  # how clients reach the emulator, e.g. http://127.0.0.1:9000
    cors_origins: frozenset[str] = frozenset()
    owner_id: str = "1000000000000000"  # bucket owner UID, sent as x-oss-owner/x-oss-requester
    strict_v4_policy: bool = True  # V4 policies must pin signature version, credential and date
    max_object_bytes: int = MAX_OBJECT_BYTES

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
        self.now = now
        self.send_callback = send_callback
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.monotonic()
        request = Request(environ)
        request_id = secrets.token_hex(12).upper()
        outcome = "OK"
        if request.path == STATS_PATH and request.method == "GET":
            with self._stats_lock:
                body = json.dumps(dict(self.stats), sort_keys=True)
            return Response(body, 200, content_type="application/json")(environ, start_response)
        with self._stats_lock:
            self.stats[operation(request, self.config.bucket)] += 1
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
        if method in ("GET", "HEAD") and emulator_listing.is_sdk_read(request, self.config.bucket):
            # ListObjects and path-style HeadObject: the SDK's calls (local/emulator_listing.py)
            return emulator_listing.sdk_read(self, request)
        if method in ("GET", "HEAD") and request.path != "/":
            return self._get_object(request)
        if method == "DELETE" and request.path != "/":
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

    def _error(self, error: OssError, request: Request, request_id: str) -> Response:
        host_id = f"{self.config.bucket}.{request.host}"
        body = error_xml(error, request_id=request_id, host_id=host_id)
        return Response(body, error.status, content_type=XML_TYPE)

    def _finish(self, response: Response, request: Request, request_id: str) -> None:
        response.headers["x-oss-request-id"] = request_id  # Server and Date: the HTTP server's
        origin = request.headers.get("Origin")
        if origin and origin in self.config.cors_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            response.vary.add("Origin")

    def _preflight(self, request: Request) -> Response:
        """OPTIONS: the dev origin may use any method and header (protocol §11)."""
        origin = request.headers.get("Origin", "")
        method = request.headers.get("Access-Control-Request-Method", "")
        if origin not in self.config.cors_origins or method.upper() not in CORS_METHODS:
            raise OssError(
                403,
                "AccessForbidden",
                "CORSResponse: This CORS request is not allowed. This is usually because the "
                "evalution of Origin, request method / Access-Control-Request-Method or "
                "Access-Control-Requet-Headers are not whitelisted by the resource's CORS spec.",
            )
        response = Response(b"", 200)
        response.headers["Access-Control-Allow-Methods"] = ", ".join(CORS_METHODS)
        requested = request.headers.get("Access-Control-Request-Headers")
        if requested:
            response.headers["Access-Control-Allow-Headers"] = requested
        response.headers["Access-Control-Max-Age"] = "600"
        return response

    # --- GetObject / HeadObject ------------------------------------------------------------

    def _get_object(self, request: Request) -> Response:
        key = _object_key(request)
        obj = self.store.get(key)
        if obj is None:
            raise OssError(
                404, "NoSuchKey", "The specified key does not exist.", extra=(("Key", key),)
            )
        if request.method == "HEAD":
            response = Response(b"", 200, content_type=obj.content_type)
        else:
            handle = self.store.data_path(key).open("rb")
            response = Response(
                wrap_file(request.environ, handle),
                200,
                content_type=obj.content_type,
                direct_passthrough=True,
            )
        response.headers["Content-Length"] = str(obj.size)
        response.headers["ETag"] = f'"{obj.etag}"'
        response.headers["Last-Modified"] = formatdate(obj.last_modified, usegmt=True)
        response.headers["x-oss-hash-crc64ecma"] = obj.crc64
        response.headers["Content-MD5"] = obj.content_md5
        response.headers["Accept-Ranges"] = "bytes"
        for name, value in obj.headers.items():
            response.headers[name] = value
        return response

    def _delete_object(self, request: Request) -> Response:
        """DeleteObject: 204 whether or not the key existed (OSS does the same)."""
        emulator_listing.check_access_key(request.headers.get("Authorization"), self.keys)
        key = emulator_listing.path_style_key(request, self.config.bucket) or _object_key(request)
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
        stored = self._describe(form, upload, key)
        self.store.put(stored, upload.spool, forbid_overwrite=_forbids_overwrite(form))
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
    meta = sum(len(k) + len(v) for k, v in form.fields.items() if k.startswith("x-oss-meta-"))
    if meta > MAX_USER_METADATA_BYTES:
        raise OssError(
            400,
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size.",
        )
    return form.file


def operation(request: Request, bucket: str) -> str:
    """The OSS operation a request is, by OSS's API names (the stats' keys)."""
    method, path = request.method, request.path
    if method == "OPTIONS":
        return "Options"
    if path == KEY_PATH:
        return "GetPublicKey"
    if method == "POST" and path == "/":
        return "PostObject"
    if method == "GET" and (path == "/" or emulator_listing.path_style_key(request, bucket) == ""):
        return "ListObjects"
    return {"HEAD": "HeadObject", "GET": "GetObject", "DELETE": "DeleteObject"}.get(method, method)


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
    raw = str(request.environ.get("PATH_INFO") or "/").encode("latin-1")
    try:
        return raw.decode("utf-8")[1:]
    except UnicodeDecodeError:
        raise OssError(400, "InvalidObjectName", "The specified object is not valid.") from None


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
