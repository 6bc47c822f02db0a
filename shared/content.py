"""Which content we accept: the allow-list of extensions and types, and active content we never do.

Active content is what a browser may run or render as a document when the object is served
(HTML, SVG, XML, scripts: stored XSS, security.md §2.8). It is refused whatever
`UPLOAD_ALLOWED_TYPES` says, at sign time, in the callback and in reconciliation.
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
