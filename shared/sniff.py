"""What an object's first bytes say it is, and whether that is what its name and type claim.

DESIGN "Verification" (`UPLOAD_VERIFY=content`): a PNG must start like a PNG, and active content
never passes. Binary formats are recognised by their signatures with `filetype` (pure Python, no
dependencies, needs only the first 261 bytes; chosen over `puremagic`, whose 2.x needs Python
3.12 and whose 1.x scores a JSON database of guesses, slower and keyed on file names). Text types
(txt, csv, json) are checked as text: UTF-8, no NUL, and nothing a browser would render as a
document (the WHATWG MIME-sniffing HTML/XML patterns after a BOM and whitespace, and script-like
tags anywhere in the first bytes, where older sniffers looked).

`content_problem` answers for one object; `image_problem` compares OSS's `imageInfo` with it.
"""

from __future__ import annotations

import codecs
import re
from types import MappingProxyType

import filetype

SNIFF_BYTES = 4096  # one ranged GET; covers every signature here (filetype needs 261)

TEXT = "text"  # a text kind: checked as text, not by signature
ANY = "any"  # application/octet-stream: downloaded, never rendered; any bytes are fine

ZIP_KINDS = frozenset(
    [
        "application/zip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "application/epub+zip",
    ]
)
_MP4_KINDS = frozenset(["video/mp4", "audio/mp4", "video/x-m4v", "video/quicktime", "video/3gpp"])


def _kinds(*names: str) -> frozenset[str]:
    return frozenset(names)


# What the first bytes may be sniffed as, by extension and by declared type (one home for both).
# An object passes when its sniffed kind is in both sets that are known (DESIGN: "checks them
# against the extension and declared type").
BY_EXTENSION = MappingProxyType(
    {
        "png": _kinds("image/png", "image/apng"),
        "jpg": _kinds("image/jpeg"),
        "jpeg": _kinds("image/jpeg"),
        "gif": _kinds("image/gif"),
        "webp": _kinds("image/webp"),
        "avif": _kinds("image/avif"),
        "heic": _kinds("image/heic", "image/avif"),
        "heif": _kinds("image/heic", "image/avif"),
        "mp3": _kinds("audio/mpeg"),
        "m4a": _kinds("audio/mp4", "video/mp4"),
        "mp4": _MP4_KINDS,
        "m4v": _MP4_KINDS,
        "mov": _kinds("video/quicktime", "video/mp4"),
        "webm": _kinds("video/webm"),
        "wav": _kinds("audio/x-wav"),
        "pdf": _kinds("application/pdf"),
        "zip": ZIP_KINDS,
        "docx": ZIP_KINDS,
        "xlsx": ZIP_KINDS,
        "pptx": ZIP_KINDS,
        "odt": ZIP_KINDS,
        "ods": ZIP_KINDS,
        "odp": ZIP_KINDS,
        "epub": ZIP_KINDS,
        "txt": _kinds(TEXT),
        "csv": _kinds(TEXT),
        "json": _kinds(TEXT),
        "md": _kinds(TEXT),
        "bin": _kinds(ANY),
    }
)
BY_TYPE = MappingProxyType(
    {
        "image/png": BY_EXTENSION["png"],
        "image/jpeg": BY_EXTENSION["jpg"],
        "image/gif": BY_EXTENSION["gif"],
        "image/webp": BY_EXTENSION["webp"],
        "image/avif": BY_EXTENSION["avif"],
        "image/heic": BY_EXTENSION["heic"],
        "image/heif": BY_EXTENSION["heic"],
        "audio/mpeg": BY_EXTENSION["mp3"],
        "audio/mp4": BY_EXTENSION["m4a"],
        "audio/x-m4a": BY_EXTENSION["m4a"],
        "video/mp4": _MP4_KINDS,
        "video/quicktime": BY_EXTENSION["mov"],
        "video/webm": BY_EXTENSION["webm"],
        "audio/webm": BY_EXTENSION["webm"],
        "audio/wav": BY_EXTENSION["wav"],
        "audio/x-wav": BY_EXTENSION["wav"],
        "audio/wave": BY_EXTENSION["wav"],
        "application/pdf": BY_EXTENSION["pdf"],
        "application/zip": ZIP_KINDS,
        "application/x-zip-compressed": ZIP_KINDS,
        "text/plain": _kinds(TEXT),
        "text/csv": _kinds(TEXT),
        "text/markdown": _kinds(TEXT),
        "application/json": _kinds(TEXT),
        "application/octet-stream": _kinds(ANY),
    }
)

# OSS's imageInfo.format names for the image kinds OSS can read (image processing: JPG, PNG,
# BMP, GIF, WebP, TIFF, HEIC). AVIF is not among them: its imageInfo may be empty.
OSS_IMAGE_FORMATS = MappingProxyType(
    {
        "image/png": "png",
        "image/apng": "png",
        "image/jpeg": "jpg",
        "image/gif": "gif",
        "image/webp": "webp",
        "image/heic": "heic",
    }
)
_FORMAT_ALIASES = MappingProxyType({"jpeg": "jpg", "heif": "heic"})

_BOM = b"\xef\xbb\xbf"
_SPACE = b" \t\n\r\x0c"
# WHATWG MIME Sniffing §7.1, "rules for identifying an unknown MIME type": these patterns (after
# whitespace, case-insensitive, followed by a space or '>') make a browser treat bytes as HTML;
# `<?xml` as XML. `<svg` renders as a document too.
_DOCUMENT_START = re.compile(
    rb"<(?:!doctype html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p|!--"
    rb"|svg)(?=[ >\t\n\r\x0c/])|<\?xml",
    re.IGNORECASE,
)
# Tags that run script when a sniffer decides on HTML anywhere in the first bytes (old IE
# looked at the first 256 bytes for these).
_SCRIPT_TAG = re.compile(
    rb"<(?:script|html|svg|iframe|object|embed|body|meta)(?=[ >\t\n\r\x0c/])|<\?xml",
    re.IGNORECASE,
)


def sniff(head: bytes) -> str | None:
    """The binary format the first bytes have, as a media type (filetype's names); None if none."""
    kind = filetype.guess(head)
    return None if kind is None else str(kind.mime)


def content_problem(ext: str, mime: str, head: bytes, *, complete: bool) -> str | None:
    """Why bytes starting with `head` may not be stored as `.ext` of type `mime`, or None.

    `complete` says `head` is the whole object (a small file): text must then end cleanly.
    The caller has already checked that `mime` is allow-listed for `ext` (shared.content).
    """
    expected = _expected(ext, mime)
    if expected is None:
        # An operator allowed a type we have no signature for: it must at least not be a page.
        return _markup_problem(head)
    if ANY in expected:
        return None
    if TEXT in expected:
        return text_problem(head, complete=complete)
    found = sniff(head)
    if found is None:
        return f"the content is not a {_describe(ext, mime)} file (no known signature)"
    if found not in expected:
        return f"the content is {found}, not a {_describe(ext, mime)} file"
    return None


def text_problem(head: bytes, *, complete: bool) -> str | None:
    """Text: UTF-8 (a multi-byte character cut at the window's end is fine), no NUL, no markup."""
    if b"\x00" in head:
        return "the text contains NUL bytes"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=complete)
    except UnicodeDecodeError:
        return "the text is not UTF-8"
    return _markup_problem(head)


def image_problem(
    head: bytes, image_format: str, width: int | None, height: int | None
) -> str | None:
    """OSS's imageInfo (format, width, height) must agree with what the bytes are.

    For the formats OSS reads, an empty imageInfo means OSS could not read the image; a format
    that differs from the sniffed one means the bytes and OSS disagree. Either way: not recorded.
    """
    found = sniff(head)
    expected = OSS_IMAGE_FORMATS.get(found or "")
    reported = image_format.strip().lower()
    reported = _FORMAT_ALIASES.get(reported, reported)
    if expected is None:  # not an image OSS reads (AVIF, or no image at all)
        if reported and not (found or "").startswith("image/"):
            return f"OSS reads the object as {reported[:16]}, the bytes are {found or 'no image'}"
        return None
    if not reported:
        return f"OSS could not read the {expected} image"
    if reported != expected:
        return f"OSS reads the object as {reported[:16]}, but the bytes are {expected}"
    if not width or not height:
        return "OSS reports no image dimensions"
    return None


def _expected(ext: str, mime: str) -> frozenset[str] | None:
    by_ext = BY_EXTENSION.get(ext.lower())
    by_type = BY_TYPE.get(mime.lower())
    if by_ext is not None and by_type is not None:
        return by_ext & by_type or frozenset(["nothing"])
    return by_ext if by_ext is not None else by_type


def _markup_problem(head: bytes) -> str | None:
    start = head[len(_BOM) :] if head.startswith(_BOM) else head
    start = start.lstrip(_SPACE)
    if _DOCUMENT_START.match(start) or _SCRIPT_TAG.search(head[:512]):
        return "the content is markup a browser would render or run"
    return None


def _describe(ext: str, mime: str) -> str:
    return f".{ext} ({mime[:64]})"
