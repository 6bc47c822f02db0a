"""PutObject (`PUT /<key>`, no uploadId) and GetBucketVersioning (`GET /?versioning`).

PutObject, as OSS's PutObject reference describes it: signed by header or presigned URL (the app
authenticates either); the stored type is the request's Content-Type — a signed one, since V4
and V1 both sign Content-Type — else guessed from the key; `x-oss-forbid-overwrite: true` is 409
FileAlreadyExists unless the bucket is versioned; `Content-MD5` is checked (body.py); the body
is at most 5 GB. A callback comes as `x-oss-callback` headers or, in a presigned URL, as the
signed `callback` / `callback-var` parameters (upload_callback.py); without one the answer is
200 with `ETag`, `x-oss-hash-crc64ecma` and `Content-MD5`.

GetBucketVersioning answers `VersioningConfiguration` with `Status` Enabled or Suspended, or
empty for a bucket that never had versioning (the emulator's DEV_OSS_VERSIONING), so a preflight
can tell whether `x-oss-forbid-overwrite` will hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from werkzeug.wrappers import Response

from local.oss_emulator.body import spool_body
from local.oss_emulator.errors import Element
from local.oss_emulator.fields import (
    STORAGE_CLASSES,
    check_key,
    check_object_fields,
    object_type,
    stored_values,
)
from local.oss_emulator.multipart import (
    RestCall,
    authorize_write,
    forbid_overwrite,
    header_names,
    lower_headers,
    xml_response,
)
from local.oss_emulator.store import StoredObject
from local.oss_emulator.upload_callback import object_headers, rest_callback
from shared.multipart_limits import MAX_PUT_OBJECT_BYTES

if TYPE_CHECKING:
    from local.oss_emulator.app import OssEmulator


def put_object(emu: OssEmulator, call: RestCall) -> Response:
    request, key = call.request, call.key
    headers = lower_headers(request)
    names = header_names(request)
    check_key(key)
    authorize_write(emu, call.who, headers, key)
    check_object_fields(headers, names)
    callback, custom = rest_callback(headers, request.args)
    forbid = forbid_overwrite(emu, headers.get("x-oss-forbid-overwrite"), key)
    body = spool_body(
        request.stream,
        emu.store.spool,
        length=request.content_length,
        limit=MAX_PUT_OBJECT_BYTES,
        content_md5=request.headers.get("Content-MD5"),
    )
    stored = StoredObject(
        key=key,
        size=body.size,
        etag=body.etag,
        content_type=object_type(headers.get("content-type"), key),
        crc64=str(body.crc64),
        content_md5=body.content_md5,
        last_modified=emu.now(),
        headers=stored_values(headers, names),
        acl=headers.get("x-oss-object-acl") or "default",
        storage_class=STORAGE_CLASSES[(headers.get("x-oss-storage-class") or "standard").lower()],
        encryption=headers.get("x-oss-server-side-encryption") or "",
    )
    try:
        emu.store.put(stored, body.path, forbid_overwrite=forbid)
    finally:
        body.path.unlink(missing_ok=True)
    if callback is not None:
        return emu.call_back(
            request,
            call.request_id,
            config=callback,
            stored=stored,
            custom=custom,
            head=body.head,
            operation="PutObject",
        )
    response = Response(b"", 200)
    object_headers(response, stored)
    response.headers["Content-MD5"] = stored.content_md5
    return response


def get_bucket_versioning(emu: OssEmulator, call: RestCall) -> Response:
    emu.authorize(call.who, ("oss:GetBucketVersioning",), None)
    status = emu.config.versioning
    elements: list[Element] = [("Status", status)] if status else []
    return xml_response("VersioningConfiguration", elements)
