"""What a stored PostObject answers: the object it describes, the success answer, the callback.

No callback: `success_action_redirect` (303), else `success_action_status` 200/201 (XML)/204.
With one, upload_callback.py makes it (protocol §5–§7).
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit

from werkzeug.wrappers import Request, Response

from local.oss_emulator import callback as cb
from local.oss_emulator.config import EmulatorConfig
from local.oss_emulator.errors import XML_TYPE, xml_document
from local.oss_emulator.fields import (
    STORAGE_CLASSES,
    check_fields,
    content_type,
    expand_key,
    stored_headers,
)
from local.oss_emulator.form import PostForm, UploadedFile, parse_post_form
from local.oss_emulator.multipart import forbid_overwrite
from local.oss_emulator.policy import check_conditions, check_expiration, check_size, decode_policy
from local.oss_emulator.ram import write_actions
from local.oss_emulator.signature import verify_post_signature
from local.oss_emulator.store import StoredObject
from local.oss_emulator.upload_callback import object_headers

if TYPE_CHECKING:
    from local.oss_emulator.app import OssEmulator


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


def post_object(emu: OssEmulator, request: Request, request_id: str) -> Response:
    """PostObject, judged in OSS's order (app.py's docstring); the form's spool is removed."""
    form = parse_post_form(
        request.stream,
        request.headers.get("Content-Type"),
        spool_dir=emu.store.spool,
        max_object_bytes=emu.config.max_object_bytes,
    )
    try:
        return _judge_and_store(emu, request, request_id, form)
    finally:
        form.discard()


def _judge_and_store(
    emu: OssEmulator, request: Request, request_id: str, form: PostForm
) -> Response:
    upload = check_fields(request, form)
    now = datetime.fromtimestamp(emu.now(), timezone.utc)
    signed = verify_post_signature(form.fields, emu.keys, region=emu.config.region, now=now)
    policy = decode_policy(form.fields["policy"])
    check_expiration(policy, now)
    check_conditions(
        policy,
        form.fields,
        bucket=emu.config.bucket,
        version=signed.version,
        strict_v4=emu.config.strict_v4_policy,
    )
    check_size(policy, upload.size)
    callback_field = form.get("callback") or ""
    config = cb.parse_callback(callback_field) if callback_field else None
    key = expand_key(form.fields["key"], upload.filename)
    # After the policy and the key (emulator's order): what RAM allows this key to write.
    acl = form.get("x-oss-object-acl")
    context = {"oss:x-oss-object-acl": acl} if acl is not None else {}
    emu.authorize(signed.access_key_id, write_actions(form.fields), key, context)
    stored = describe(form, upload, key, emu.now())
    forbid = forbid_overwrite(emu, form.get("x-oss-forbid-overwrite"), key)
    emu.store.put(stored, upload.spool, forbid_overwrite=forbid)
    if config is None:
        return success_response(form, stored, emu.config)
    custom = {name: value for name, value in form.fields.items() if name.startswith("x:")}
    return emu.call_back(
        request,
        request_id,
        config=config,
        stored=stored,
        custom=custom,
        head=upload.head,
        operation="PostObject",
    )
