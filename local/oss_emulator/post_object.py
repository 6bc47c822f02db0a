"""What a stored PostObject answers: the object it describes, the success answer, the callback.

No callback: `success_action_redirect` (303), else `success_action_status` 200/201 (XML)/204.
With one: OSS calls the app server and relays its answer (200), or answers 203 CallbackFailed
and keeps the object (protocol §5–§7).
"""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Request, Response

from local.oss_emulator import callback as cb
from local.oss_emulator.config import EmulatorConfig
from local.oss_emulator.errors import XML_TYPE, OssError, xml_document
from local.oss_emulator.fields import STORAGE_CLASSES, content_type, stored_headers
from local.oss_emulator.form import PostForm, UploadedFile
from local.oss_emulator.image import image_info
from local.oss_emulator.store import StoredObject


def describe(form: PostForm, upload: UploadedFile, key: str, now: float) -> StoredObject:
    """The object a PostObject stores: its digests, type, headers and fields."""
    return StoredObject(
        key=key,
        size=upload.size,
        etag=upload.md5.hex().upper(),
        content_type=content_type(form, upload, key),
        crc64=str(upload.crc64),
        content_md5=base64.b64encode(upload.md5).decode("ascii"),
        last_modified=now,
        headers=stored_headers(form),
        acl=form.get("x-oss-object-acl") or "default",
        storage_class=STORAGE_CLASSES[(form.get("x-oss-storage-class") or "standard").lower()],
        encryption=form.get("x-oss-server-side-encryption") or "",
    )


def success_response(form: PostForm, stored: StoredObject, config: EmulatorConfig) -> Response:
    """No callback: success_action_redirect, else success_action_status 200/201/204."""
    redirect = form.get("success_action_redirect")
    if redirect and urlsplit(redirect).scheme in ("http", "https"):
        query = urlencode({"bucket": config.bucket, "key": stored.key, "etag": f'"{stored.etag}"'})
        response = Response(b"", 303)
        response.headers["Location"] = redirect + ("&" if "?" in redirect else "?") + query
    else:
        status = form.get("success_action_status")
        if status == "201":
            location = f"{config.public_url.rstrip('/')}/{quote(stored.key)}"
            body = xml_document(
                "PostResponse",
                [
                    ("Bucket", config.bucket),
                    ("ETag", f'"{stored.etag}"'),
                    ("Key", stored.key),
                    ("Location", location),
                ],
            )
            response = Response(body, 201, content_type=XML_TYPE)
        else:
            response = Response(b"", 200 if status == "200" else 204)
    object_headers(response, stored)
    response.headers["Content-MD5"] = stored.content_md5
    return response


def callback_response(
    request: Request,
    *,
    request_id: str,
    callback: cb.CallbackConfig,
    stored: StoredObject,
    form: PostForm,
    upload: UploadedFile,
    emulator: EmulatorConfig,
    private_key: rsa.RSAPrivateKey,
    send: cb.Sender,
) -> Response | OssError:
    """Make the callback: 200 + the app server's body, or the 203 CallbackFailed to answer."""
    info = image_info(upload.head)
    variables = {
        "bucket": emulator.bucket,
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
    body = cb.render_body(callback, variables, custom)

    def make_request(url: str) -> cb.CallbackRequest:
        return cb.build_request(
            url,
            callback,
            body,
            private_key=private_key,
            key_url=emulator.key_url,
            bucket=emulator.bucket,
            request_id=request_id,
            owner=emulator.owner_id,
        )

    outcome = cb.run_callback(callback, make_request, send)
    if not outcome.ok or outcome.reply is None:
        return OssError(203, "CallbackFailed", outcome.failure, ec="0007-00000203")
    reply_type = outcome.reply.headers.get("content-type") or cb.JSON_TYPE
    response = Response(outcome.reply.body, 200, content_type=reply_type)
    object_headers(response, stored)
    return response


def object_headers(response: Response, stored: StoredObject) -> None:
    response.headers["ETag"] = f'"{stored.etag}"'
    response.headers["x-oss-hash-crc64ecma"] = stored.crc64
