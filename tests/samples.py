"""Small valid files of each format the content check knows, each written from its format's spec
(no downloads, no imaging library); `SAMPLES` by extension with their declared type."""

from __future__ import annotations

import base64
import io
import random
import struct
import wave
import zipfile
import zlib


def png(width: int = 3, height: int = 2) -> bytes:
    """An RGB PNG: signature, IHDR, one IDAT of filter-0 rows, IEND (PNG spec §5, §11)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + bytes([200, 30, 30]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def jpeg(width: int = 16, height: int = 8) -> bytes:
    """A baseline greyscale JPEG (ITU T.81): every block is DC 0 with an immediate end-of-block.

    Both Huffman tables hold one 1-bit code ('0') for symbol 0, so each 8×8 block is the two
    bits '00'; the scan is padded with 1-bits.
    """

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload

    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    bits = "00" * blocks
    bits += "1" * (-len(bits) % 8)
    scan = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
    one_code = b"\x01" + b"\x00" * 15 + b"\x00"  # 16 code-length counts, then the symbol
    return (
        b"\xff\xd8"
        + segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + segment(0xDB, b"\x00" + b"\x01" * 64)
        + segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
        + segment(0xC4, b"\x00" + one_code)
        + segment(0xC4, b"\x10" + one_code)
        + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        + scan
        + b"\xff\xd9"
    )


def gif() -> bytes:
    """A 1×1 GIF89a: a two-colour global table, one image, LZW data, trailer."""
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
        b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )


def webp() -> bytes:
    """A 1×1 lossless WebP (RIFF, VP8L), the image browsers' feature tests decode."""
    return base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")


def mp4() -> bytes:
    """ISO-BMFF: an `ftyp` box (isom, compatible mp41) and an empty `mdat`."""
    ftyp = b"isom" + struct.pack(">I", 0x200) + b"isommp41"
    return struct.pack(">I", 8 + len(ftyp)) + b"ftyp" + ftyp + struct.pack(">I", 8) + b"mdat"


def pdf() -> bytes:
    """A one-page PDF with its cross-reference table (ISO 32000 §7.5)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (4, xref))
    return out.getvalue()


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", "hello\n")
    return out.getvalue()


def wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\x00\x00" * 80)
    return out.getvalue()


def mp3() -> bytes:
    """An ID3v2.4 tag with no frames, then one silent MPEG-1 Layer III frame (128 kbit/s)."""
    frame = b"\xff\xfb\x90\x64" + b"\x00" * 413
    return b"ID3\x04\x00\x00\x00\x00\x00\x00" + frame


def random_bytes(size: int = 2048, seed: int = 15) -> bytes:
    return random.Random(seed).randbytes(size)  # noqa: S311 - test data, not a secret


def html_page() -> bytes:
    return b"<!DOCTYPE html><html><body><script>alert(document.domain)</script></body></html>\n"


# extension → (declared type, bytes): each must be recorded under UPLOAD_VERIFY=content.
SAMPLES: dict[str, tuple[str, bytes]] = {
    "png": ("image/png", png()),
    "jpg": ("image/jpeg", jpeg()),
    "gif": ("image/gif", gif()),
    "webp": ("image/webp", webp()),
    "pdf": ("application/pdf", pdf()),
    "mp4": ("video/mp4", mp4()),
    "zip": ("application/zip", zip_archive()),
    "wav": ("audio/wav", wav()),
    "mp3": ("audio/mpeg", mp3()),
    "txt": ("text/plain", "plain text, ünïcode\n".encode()),
    "csv": ("text/csv", b"name,size\ncat.png,5120\n"),
    "json": ("application/json", b'{"ok": true}\n'),
    "bin": ("application/octet-stream", random_bytes(64)),
}

# (name, extension, declared type, bytes): each must be rejected under UPLOAD_VERIFY=content.
IMPOSTORS: list[tuple[str, str, str, bytes]] = [
    ("random bytes named .png", "png", "image/png", random_bytes()),
    ("an HTML page named .jpg", "jpg", "image/jpeg", html_page()),
    ("a PDF declared image/png", "png", "image/png", pdf()),
    ("a JPEG named .png", "png", "image/png", jpeg()),
    (
        "SVG named .txt",
        "txt",
        "text/plain",
        b'\xef\xbb\xbf  <svg xmlns="http://www.w3.org/2000/svg"/>',
    ),
    ("HTML named .csv", "csv", "text/csv", b"\n\t<HTML><body>hi</body></HTML>"),
    ("XML named .json", "json", "application/json", b'<?xml version="1.0"?><a/>'),
    (
        "a script tag inside text",
        "txt",
        "text/plain",
        b"notes\n<script src=//x.test/a.js></script>",
    ),
    ("NUL bytes named .txt", "txt", "text/plain", b"abc\x00def"),
    ("Latin-1 named .csv", "csv", "text/csv", b"caf\xe9,1\n"),
    ("a ZIP named .pdf", "pdf", "application/pdf", zip_archive()),
]
