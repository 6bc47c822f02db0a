"""Which content we accept: the allow-list of extensions and types, and active content we never do.

Active content is what a browser may run or render as a document when the object is served
(HTML, SVG, XML, scripts: stored XSS, security.md §2.8). It is refused whatever
`UPLOAD_ALLOWED_TYPES` says, at sign time, in the callback and in reconciliation.

A stored object is accepted (`stored_type_problem`) only when its type is exactly one
`type/subtype` that the allow-list gives for its key's extension: no lists (`image/png,text/xml`),
no wildcards (`*/*`), no `unknown/unknown` or `application/unknown` (Chromium sniffs those, and
finds HTML), no parameters. The callback and reconciliation ask this one function; the sign
function grants from the same table (`allowed_types`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from shared.errors import ConfigError
from shared.settings import Env

# Extensions and types that browsers may execute when the object is served; refused whatever
# UPLOAD_ALLOWED_TYPES says (stored XSS, security.md §2.8).
ACTIVE_EXTENSIONS = frozenset(
    [
        "html",
        "htm",
        "xhtml",
        "shtml",
        "xht",
        "svg",
        "svgz",
        "xml",
        "xsl",
        "xslt",
        "js",
        "mjs",
        "cjs",
        "jsx",
        "ts",
        "php",
        "php3",
        "php4",
        "php5",
        "php7",
        "phtml",
        "phar",
        "jsp",
        "jspx",
        "asp",
        "aspx",
        "cer",
        "cgi",
        "pl",
        "py",
        "rb",
        "sh",
        "bash",
        "bat",
        "cmd",
        "exe",
        "dll",
        "com",
        "msi",
        "hta",
        "swf",
        "wasm",
        "vbs",
        "ps1",
        "jar",
    ]
)


ACTIVE_TYPE_MARKERS = ("html", "svg", "javascript", "ecmascript", "php", "x-sh", "wasm")


DEFAULT_ALLOWED_TYPES = (
    "png=image/png,jpg=image/jpeg,jpeg=image/jpeg,gif=image/gif,webp=image/webp,"
    "avif=image/avif,heic=image/heic,heic=image/heif,"
    "mp3=audio/mpeg,m4a=audio/mp4,m4a=audio/x-m4a,wav=audio/wav,wav=audio/x-wav,wav=audio/wave,"
    "mp4=video/mp4,mov=video/quicktime,webm=video/webm,webm=audio/webm,"
    "pdf=application/pdf,txt=text/plain,csv=text/csv,json=application/json,"
    "zip=application/zip,zip=application/x-zip-compressed,bin=application/octet-stream"
)


_EXT = re.compile(r"[a-z0-9]{1,16}")
NO_EXTENSION = "bin"  # how an object name without an extension is judged


_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def is_active_type(mime: str) -> bool:
    """security.md §2.8: a media type browsers may run or render as a document (HTML, SVG, XML, JS)."""
    essence = mime.split(";", 1)[0].strip().lower()
    subtype = essence.partition("/")[2]
    if subtype == "xml" or subtype.endswith("+xml"):
        return True  # not `…openxmlformats…` (docx, xlsx): those are downloads, not documents
    return any(marker in essence for marker in ACTIVE_TYPE_MARKERS)


def is_active_content(ext: str, mime: str | None = None) -> bool:
    """True for types a browser may execute when served (HTML, SVG, XML, scripts…)."""
    if ext.lower() in ACTIVE_EXTENSIONS:
        return True
    return mime is not None and is_active_type(mime)


def is_active_name(key: str) -> bool:
    """security.md §2.8: an object name with an active extension anywhere (`x.html`, `x.svg.png`)."""
    name = key.rsplit("/", 1)[-1]
    return any(is_active_content(part.strip().lower()) for part in name.split(".")[1:])


def key_extension(key: str) -> str | None:
    """The lower-case extension of an object key's last segment (None without one)."""
    name = key.rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or not _EXT.fullmatch(ext.lower()):
        return None
    return ext.lower()


def stored_type_problem(key: str, mime: str, table: Mapping[str, tuple[str, ...]]) -> str | None:
    """Why an object stored under `key` with type `mime` may not be recorded, or None if it may.

    `mime` is the object's stored Content-Type as OSS reports it (the callback's `mimeType`, a
    HeadObject's Content-Type). It must be one strictly spelled `type/subtype` of the allow-list
    for the key's extension; comparison ignores case only (media types are case-insensitive).
    """
    if is_active_name(key):
        return "the object name carries an extension that is never allowed"
    # The legacy client keeps a file's name as it is: a name without an extension is judged as
    # `.bin` (application/octet-stream by default), which browsers download and never sniff.
    ext = key_extension(key) or NO_EXTENSION
    allowed = table.get(ext)
    if not allowed:
        return f"files of type .{ext} may not be uploaded"
    if not _MIME.fullmatch(mime.lower()):
        # Lists, parameters, spaces, wildcards and empty values all end up here.
        return f"the stored type {mime[:64]!r} is not a single type/subtype"
    if is_active_type(mime) or mime.lower() not in allowed:
        return f"the stored type {mime[:64]!r} is not allowed for .{ext}"
    return None


INLINE_MEDIA = ("image/", "audio/", "video/")  # shown by a media viewer, never run as a page


def is_inline_media(mime: str) -> bool:
    """Whether a download may be shown inline: images, audio and video (not SVG, a document).

    Everything else a browser would open as a document (text, PDF, JSON, anything unknown) is
    served as an attachment, so that nothing uploaded becomes a page of the site serving it.
    """
    essence = mime.lower()
    media = _MIME.fullmatch(essence) is not None and essence.startswith(INLINE_MEDIA)
    return media and not is_active_type(essence)


def default_allowed_types() -> Mapping[str, tuple[str, ...]]:
    """The allow-list when UPLOAD_ALLOWED_TYPES is unset."""
    return allowed_types(Env({}))


def allowed_types(env: Env) -> Mapping[str, tuple[str, ...]]:
    name = "UPLOAD_ALLOWED_TYPES"
    entries = env.items(name) or tuple(DEFAULT_ALLOWED_TYPES.split(","))
    table: dict[str, list[str]] = {}
    for entry in entries:
        ext, sep, mime = (part.strip().lower() for part in entry.partition("="))
        ext = ext.lstrip(".")
        if not sep or not _EXT.fullmatch(ext) or not _MIME.fullmatch(mime):
            raise ConfigError(name, f"entry {entry!r} must look like 'png=image/png'")
        if is_active_content(ext, mime):
            continue  # never served as an upload type, whatever the setting says
        table.setdefault(ext, [])
        if mime not in table[ext]:
            table[ext].append(mime)
    # A list of only active content leaves exact-key mode nothing to grant: each such request
    # is a 400 (DESIGN: refused "whatever the setting says"), not a start-up failure.
    return MappingProxyType({ext: tuple(mimes) for ext, mimes in table.items()})
