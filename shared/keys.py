"""Where a file may go: requested folders, user folders, object ids and object keys.

The server decides every key. Paths and keys are whole segments of a small alphabet, so a prefix
grant can never reach another user's folder (`uploads/12/` never admits `uploads/123/…`) and no
key carries dot-segments, escapes or control characters (security.md §2.2, §2.4).
"""

from __future__ import annotations

import hashlib
import os
import re
import time

from shared.content import is_active_content, is_active_name
from shared.errors import BadRequest
from shared.settings import USER_PLACEHOLDER

ANONYMOUS_USER = "anonymous"  # every caller with AUTH_MODE=none, and the owner of its uploads
MAX_PATH_BYTES = 256
MAX_KEY_BYTES = 1023  # OSS's object-name limit
MAX_FILENAME_BYTES = 255

_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_KEY_SEGMENT = re.compile(r"[A-Za-z0-9._@-]+")
_SAFE_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,16}")
_DIGEST_SEGMENT = re.compile(r"_[0-9a-fA-F]{40}")
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def requested_dir(path: str) -> str:
    """Validate a `path` query value; return it as a folder ("" or ending in one `/`)."""
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise BadRequest(f"path is longer than {MAX_PATH_BYTES} bytes")
    if path == "":
        return ""
    if path.startswith("/"):
        raise BadRequest("path must be relative (no leading '/')")
    body = path[:-1] if path.endswith("/") else path
    for segment in body.split("/"):
        if segment in ("", ".", ".."):
            raise BadRequest("path must not contain empty, '.' or '..' segments")
        if not _PATH_SEGMENT.fullmatch(segment):
            raise BadRequest("path segments may contain only letters, digits, '-', '_' and '.'")
    return body + "/"


def is_digest_segment(user: str) -> bool:
    """A user id spelled like the folder name `user_segment` gives ids that are not key-safe.

    Such an id is refused at sign-in: a folder `_<40 hex>` must always mean "the digest of some
    other id", never an id of its own (case-insensitively, to leave no near miss).
    """
    return _DIGEST_SEGMENT.fullmatch(user) is not None


def user_segment(user: str) -> str:
    """The caller's folder name: the user id itself when it is key-safe, else a stable digest.

    A digest starts with `_`, which a key-safe id never does, so the two cannot collide.
    """
    if _SAFE_USER.fullmatch(user) and user not in (".", ".."):
        return user
    return "_" + hashlib.sha256(user.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def user_space(template: str, user: str) -> str:
    """UPLOAD_KEY_PREFIX with `{user}` substituted: the caller's own space."""
    return template.replace(USER_PLACEHOLDER, user_segment(user))


def upload_dir(template: str, user: str, path: str) -> str:
    """The folder a grant allows: the caller's space plus the validated requested path."""
    folder = user_space(template, user) + requested_dir(path)
    if folder == "":
        raise BadRequest("path is required: no grant covers the whole bucket")
    if len(folder.encode()) > MAX_KEY_BYTES - 64:
        raise BadRequest("path is too long")
    return folder


def new_object_id(now_ms: int | None = None, random_bytes: bytes | None = None) -> str:
    """A time-ordered unique id (ULID layout: 48-bit ms time + 80 random bits, base32, 26 chars)."""
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    entropy = os.urandom(10) if random_bytes is None else random_bytes
    number = (millis << 80) | int.from_bytes(entropy, "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[number & 31])
        number >>= 5
    return "".join(reversed(chars))


def filename_extension(filename: str) -> str:
    """The lower-case extension of a client file name; the name itself is never used in a key."""
    if len(filename.encode("utf-8", "surrogatepass")) > MAX_FILENAME_BYTES:
        raise BadRequest(f"filename is longer than {MAX_FILENAME_BYTES} bytes")
    if any(ch in filename for ch in "/\\%") or any(
        ord(ch) < 0x20 or ord(ch) == 0x7F for ch in filename
    ):
        raise BadRequest(
            "filename must be a plain name without '/', '\\', '%' or control characters"
        )
    parts = filename.split(".")
    if len(parts) < 2 or not _EXTENSION.fullmatch(parts[-1]):
        raise BadRequest("filename must end in an extension like .png")
    if any(is_active_content(inner.strip().lower()) for inner in parts[1:]):
        raise BadRequest("filename carries an extension that is never allowed")
    return parts[-1].lower()


def is_valid_key(key: str) -> bool:
    """A key we could have issued: whole key-safe segments, no dot-segments, within OSS's limit."""
    if not key or len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES or key.startswith("/"):
        return False
    return all(
        _KEY_SEGMENT.fullmatch(segment) and segment not in (".", "..") for segment in key.split("/")
    )


def is_active_key(key: str) -> bool:
    """security.md §2.8: a key whose name carries an active extension anywhere (`x.html`, `x.svg.png`)."""
    return is_active_name(key)
