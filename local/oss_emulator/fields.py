"""PostObject's object fields: which are valid, which are stored, and the key they name.

Protocol §2.3: `x-oss-object-acl`, `x-oss-storage-class`, `x-oss-server-side-encryption` are
validated and stored with the object; `Cache-Control`, `Content-Disposition`, `Content-Encoding`,
`Expires` and `x-oss-meta-*` become the object's headers; `x-oss-tagging` is refused in
PostObject. A stored value holding a control character is refused (it could not be served).
"""

from __future__ import annotations

import base64
import hmac
import mimetypes
import re
from collections.abc import Mapping

from werkzeug.wrappers import Request

from local.oss_emulator.errors import OssError, invalid_argument
from local.oss_emulator.form import PostForm, UploadedFile
from local.oss_emulator.keys import RESERVED_KEY_PREFIX

ACLS = ("default", "private", "public-read", "public-read-write")
STORAGE_CLASSES = {  # as sent (any case) → as OSS reports it
    name.lower(): name for name in ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
}
SSE_ALGORITHMS = ("AES256", "KMS", "SM4")
STORED_FIELDS = ("cache-control", "content-disposition", "content-encoding", "expires")
MAX_USER_METADATA_BYTES = 8 * 1024
TYPE_FIELDS = ("content-type", "x-oss-content-type")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # horizontal tab is allowed in a header value


def check_fields(request: Request, form: PostForm) -> UploadedFile:
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
    check_object_fields(form.fields, form.names)
    if form.file.content_type and _CONTROL.search(form.file.content_type):
        raise invalid_argument("The Content-Type of the file contains a control character.")
    return form.file


def check_object_fields(values: Mapping[str, str], names: Mapping[str, str]) -> None:
    """The object's ACL, storage class, encryption and stored headers, as a PostObject's fields
    or a REST write's headers (`values` by lower-case name, `names` as spelled)."""
    acl = values.get("x-oss-object-acl")
    if acl is not None and acl not in ACLS:
        raise invalid_argument("no such bucket access control exists", ec="0016-00000101")
    storage = values.get("x-oss-storage-class")
    if storage is not None and storage.lower() not in STORAGE_CLASSES:
        raise invalid_argument(f"Invalid storage class: {storage}")
    sse = values.get("x-oss-server-side-encryption")
    if sse is not None and sse not in SSE_ALGORITHMS:
        raise OssError(
            400,
            "InvalidEncryptionAlgorithmError",
            "The Encryption request you specified is not valid. Supported value: AES256/KMS/SM4.",
        )
    for name, value in values.items():
        if (name in STORED_FIELDS or name in TYPE_FIELDS or name.startswith("x-oss-meta-")) and (
            _CONTROL.search(value)
        ):
            # A header field value cannot hold CR, LF or other control characters (RFC 9110
            # §5.5); OSS refuses such metadata rather than store what it could not serve.
            raise invalid_argument(
                f"The value of {names.get(name, name)} contains a control character."
            )
    meta = sum(len(k) + len(v) for k, v in values.items() if k.startswith("x-oss-meta-"))
    if meta > MAX_USER_METADATA_BYTES:
        raise OssError(
            400,
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size.",
        )


def expand_key(template: str, filename: str) -> str:
    """`${filename}` becomes the uploaded file's base name, after the policy was checked."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return check_key(template.replace("${filename}", base))


def check_key(key: str) -> str:
    """An object name OSS accepts (1–1023 UTF-8 bytes, not starting with `/` or `\\`, no control
    characters) and not the emulator's own reserved path; InvalidObjectName otherwise."""
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


def is_true(value: str | None) -> bool:
    """`x-oss-forbid-overwrite` and the like: only "true" (any case) means true."""
    return (value or "").strip().lower() == "true"


def content_type(form: PostForm, upload: UploadedFile, key: str) -> str:
    """x-oss-content-type > the file part's Content-Type > the Content-Type field (§2.3)."""
    for candidate in (
        form.get("x-oss-content-type"),
        upload.content_type,
        form.get("content-type"),
    ):
        if candidate and candidate.strip():
            return candidate.strip()
    return object_type(None, key)


def stored_headers(form: PostForm) -> dict[str, str]:
    return stored_values(form.fields, form.names)


def stored_values(values: Mapping[str, str], names: Mapping[str, str]) -> dict[str, str]:
    """Cache-Control, Content-Disposition, Content-Encoding, Expires (as spelled) and x-oss-meta-*
    (lower case): the headers an object is served with."""
    headers = {
        names.get(name, name): value for name, value in values.items() if name in STORED_FIELDS
    }
    headers.update(
        {name: value for name, value in values.items() if name.startswith("x-oss-meta-")}
    )
    return headers


def object_type(declared: str | None, key: str) -> str:
    """A REST write's Content-Type, else the type OSS guesses from the key's extension."""
    if declared and declared.strip():
        return declared.strip()
    guessed, _ = mimetypes.guess_type(key, strict=False)
    return guessed or "application/octet-stream"
