"""`${imageInfo.*}`: dimensions and format read from an image's header, as OSS reports them.

Only the header is read (PNG IHDR, GIF logical screen, JPEG SOFn, WebP VP8/VP8L/VP8X); anything
else is not an image and its image fields stay empty (protocol §5.3).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# JPEG start-of-frame markers: C0–CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE_MARKERS = frozenset(range(0xD0, 0xD8)) | {0x01}


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str  # "png", "jpg", "gif", "webp": the names OSS uses


def image_info(head: bytes) -> ImageInfo | None:
    """Read an image's size from the first bytes of the object; None when it is not an image."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(head)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return _gif(head)
    if head.startswith(b"\xff\xd8"):
        return _jpeg(head)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head)
    return None


def _png(head: bytes) -> ImageInfo | None:
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return _checked(width, height, "png")


def _gif(head: bytes) -> ImageInfo | None:
    if len(head) < 10:
        return None
    width, height = struct.unpack("<HH", head[6:10])
    return _checked(width, height, "gif")


def _jpeg(head: bytes) -> ImageInfo | None:
    pos = 2
    while pos + 4 <= len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE_MARKERS:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", head[pos + 2 : pos + 4])
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if pos + 9 > len(head):
                return None
            height, width = struct.unpack(">HH", head[pos + 5 : pos + 9])
            return _checked(width, height, "jpg")
        pos += 2 + length
    return None


def _webp(head: bytes) -> ImageInfo | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return _checked(width & 0x3FFF, height & 0x3FFF, "webp")
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        b0, b1, b2, b3 = head[21:25]
        width = 1 + (b0 | ((b1 & 0x3F) << 8))
        height = 1 + ((b1 >> 6) | (b2 << 2) | ((b3 & 0x0F) << 10))
        return _checked(width, height, "webp")
    if chunk == b"VP8X" and len(head) >= 30:
        width = 1 + int.from_bytes(head[24:27], "little")
        height = 1 + int.from_bytes(head[27:30], "little")
        return _checked(width, height, "webp")
    return None


def _checked(width: int, height: int, fmt: str) -> ImageInfo | None:
    return ImageInfo(width, height, fmt) if width > 0 and height > 0 else None
