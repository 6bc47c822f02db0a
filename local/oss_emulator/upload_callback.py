"""The upload callback of PostObject, PutObject and CompleteMultipartUpload: one runner.

Where the configuration comes from differs: PostObject's `callback` form field and `x:` fields;
PutObject's and CompleteMultipartUpload's `x-oss-callback` / `x-oss-callback-var` headers or
`callback` / `callback-var` query parameters of a presigned URL (next-capabilities.md §1.3) —
both at once is 400 InvalidArgument EC 0007-00000027. What is sent is the same: the body
rendered with the stored object's variables (`${contentMd5}` is empty after a multipart
upload, `${etag}` its multipart ETag, `${operation}` the operation's name), OSS's signature,
5 s; the app server's JSON becomes the answer (200), or the object is kept and the answer is
203 CallbackFailed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Request, Response

from local.oss_emulator import callback as cb
from local.oss_emulator.config import EmulatorConfig
from local.oss_emulator.errors import OssError, invalid_argument
from local.oss_emulator.image import image_info
from local.oss_emulator.store import StoredObject


def rest_callback(
    headers: Mapping[str, str], query: Mapping[str, str]
) -> tuple[cb.CallbackConfig | None, dict[str, str]]:
    """The callback and its custom variables of a REST write (headers by lower-case name)."""
    in_headers = "x-oss-callback" in headers or "x-oss-callback-var" in headers
    in_query = "callback" in query or "callback-var" in query
    if in_headers and in_query:
        raise invalid_argument(
            "The callback is given both as headers and as URL parameters; use one.",
            ec="0007-00000027",
        )
    config = headers.get("x-oss-callback") if in_headers else query.get("callback")
    variables = headers.get("x-oss-callback-var") if in_headers else query.get("callback-var")
    if not config:
        return None, {}
    return cb.parse_callback(config), parse_callback_var(variables or "")


def parse_callback_var(value: str) -> dict[str, str]:
    """base64 JSON `{"x:name": "value", …}`; InvalidArgument otherwise."""
    if not value:
        return {}
    try:
        decoded = json.loads(base64.b64decode(value, validate=True).decode("utf-8"))
    except (binascii.Error, ValueError):
        decoded = None
    if not isinstance(decoded, dict) or not all(
        isinstance(name, str) and name.startswith("x:") and isinstance(text, str)
        for name, text in decoded.items()
    ):
        raise invalid_argument(
            "The callback-var configuration is not a JSON object of x: variables.",
            ArgumentName="callback-var",
        )
    return decoded


def callback_response(
    request: Request,
    *,
    request_id: str,
    callback: cb.CallbackConfig,
    stored: StoredObject,
    custom: Mapping[str, str],
    head: bytes,
    operation: str,
    emulator: EmulatorConfig,
    private_key: rsa.RSAPrivateKey,
    send: cb.Sender,
) -> Response | OssError:
    """Make the callback: 200 + the app server's body, or the 203 CallbackFailed to answer."""
    info = image_info(head)
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
        "operation": operation,
    }
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
