"""What a stored PostObject answers: the object it describes, the success answer, the callback.

No callback: `success_action_redirect` (303), else `success_action_status` 200/201 (XML)/204.
With one, upload_callback.py makes it (protocol §5–§7).
"""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode, urlsplit

from werkzeug.wrappers import Response

from local.oss_emulator.config import EmulatorConfig
from local.oss_emulator.errors import XML_TYPE, xml_document
from local.oss_emulator.fields import STORAGE_CLASSES, content_type, stored_headers
from local.oss_emulator.form import PostForm, UploadedFile
from local.oss_emulator.store import StoredObject
from local.oss_emulator.upload_callback import object_headers


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
