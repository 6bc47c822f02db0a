"""`shared.sniff`: first bytes against the extension and declared type; OSS's image facts."""

from __future__ import annotations

import pytest

from shared.content import default_allowed_types
from shared.sniff import BY_EXTENSION, SNIFF_BYTES, content_problem, image_problem, sniff
from tests.samples import IMPOSTORS, SAMPLES, jpeg, png, random_bytes, webp, zip_archive


def test_every_default_extension_has_a_rule() -> None:
    """Each extension of the default allow-list is judged by signature, as text, or as any."""
    assert set(default_allowed_types()) <= set(BY_EXTENSION)


@pytest.mark.parametrize(
    ("ext", "mime", "data", "refused"),
    [
        # tests/samples.py: files that lie about their content, and real files of each kind
        *(pytest.param(ext, mime, data, True, id=name) for name, ext, mime, data in IMPOSTORS),
        *(pytest.param(ext, *SAMPLES[ext], False, id=f"real .{ext}") for ext in sorted(SAMPLES)),
        # A `.png` declared image/jpeg: holding a JPEG the name disagrees, a PNG the type does.
        ("png", "image/jpeg", jpeg(), True),
        ("png", "image/jpeg", png(), True),
        ("zip", "application/x-zip-compressed", zip_archive(), False),  # office files are ZIPs
        # Markup a browser would render is not text; angle brackets alone are.
        *(
            ("csv", "text/csv", start, True)
            for start in (
                b"<!DOCTYPE html>",
                b"<ScRiPt>alert(1)</script>",
                b"\xef\xbb\xbf\r\n  <svg/>",
                b"<?xml version='1.0'?>",
                b"<!-- x -->",
                b"<p>hi",
                b"a,b\n<iframe src=//x>",
            )
        ),
        *(
            ("txt", "text/plain", text, False)
            for text in (b"a < b, c > d\n", b"x,<y\n", b'{"html": "<b"}', b"<pre-tag")
        ),
        ("bin", "application/octet-stream", random_bytes(), False),  # takes any bytes
        # An operator-allowed `.rtf` (no signature rule here): judged only for markup.
        ("rtf", "application/rtf", b"{\\rtf1 hello}", False),
        ("rtf", "application/rtf", b"<html>", True),
    ],
)
def test_content_against_name_and_type(ext: str, mime: str, data: bytes, refused: bool) -> None:
    assert len(data) <= SNIFF_BYTES  # the whole file is in the window
    assert (content_problem(ext, mime, data, complete=True) is not None) == refused


def test_zip_archives_are_sniffed_as_zip() -> None:
    assert sniff(zip_archive()) == "application/zip"


def test_a_character_cut_at_the_window_is_fine_unless_the_file_ends_there() -> None:
    text = ("é" * 3000).encode()[: SNIFF_BYTES - 1]  # the window ends inside a character
    assert content_problem("txt", "text/plain", text, complete=False) is None
    assert content_problem("txt", "text/plain", text, complete=True) == "the text is not UTF-8"


@pytest.mark.parametrize(
    ("head", "fmt", "size", "why"),
    [
        (png(), "png", (3, 2), None),
        (jpeg(), "jpeg", (16, 8), None),  # OSS says jpg; jpeg is the same
        (webp(), "webp", (1, 1), None),
        (png(), "jpg", (3, 2), "the bytes are png"),
        (png(), "", (None, None), "could not read"),
        (png(), "png", (None, None), "no image dimensions"),
        (random_bytes(), "png", (3, 2), "no image"),
        (random_bytes(), "", (None, None), None),  # not an image, and OSS agrees
    ],
)
def test_oss_image_facts_must_agree_with_the_bytes(
    head: bytes, fmt: str, size: tuple[int | None, int | None], why: str | None
) -> None:
    problem = image_problem(head, fmt, *size)
    if why is None:
        assert problem is None
    else:
        assert why in (problem or ""), problem
