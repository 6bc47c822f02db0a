"""`shared.sniff`: first bytes against the extension and declared type; OSS's image facts."""

from __future__ import annotations

import pytest

from shared.sniff import BY_EXTENSION, SNIFF_BYTES, content_problem, image_problem, sniff
from tests.samples import IMPOSTORS, SAMPLES, jpeg, png, random_bytes, webp, zip_archive


@pytest.mark.parametrize(("name", "ext", "mime", "data"), IMPOSTORS, ids=[i[0] for i in IMPOSTORS])
def test_impostors_are_refused(name: str, ext: str, mime: str, data: bytes) -> None:
    assert content_problem(ext, mime, data[:SNIFF_BYTES], complete=True) is not None


@pytest.mark.parametrize("ext", sorted(SAMPLES))
def test_real_files_pass(ext: str) -> None:
    mime, data = SAMPLES[ext]
    head = data[:SNIFF_BYTES]
    assert content_problem(ext, mime, head, complete=len(data) <= SNIFF_BYTES) is None


def test_every_default_extension_has_a_rule() -> None:
    """Each extension of the default allow-list is judged by signature, as text, or as any."""
    from shared.content import default_allowed_types

    assert set(default_allowed_types()) <= set(BY_EXTENSION)


def test_the_name_and_the_declared_type_must_both_agree() -> None:
    """A `.png` declared image/jpeg holding a JPEG: the name disagrees; a PNG: the type does."""
    assert content_problem("png", "image/jpeg", jpeg(), complete=True) is not None
    assert content_problem("png", "image/jpeg", png(), complete=True) is not None


def test_zip_based_office_files_pass_as_zip() -> None:
    assert sniff(zip_archive()) == "application/zip"
    assert (
        content_problem("zip", "application/x-zip-compressed", zip_archive(), complete=True) is None
    )


def test_a_character_cut_at_the_window_is_fine_unless_the_file_ends_there() -> None:
    text = ("é" * 3000).encode()[: SNIFF_BYTES - 1]  # the window ends inside a character
    assert content_problem("txt", "text/plain", text, complete=False) is None
    assert content_problem("txt", "text/plain", text, complete=True) == "the text is not UTF-8"


@pytest.mark.parametrize(
    "start",
    [
        b"<!DOCTYPE html>",
        b"<ScRiPt>alert(1)</script>",
        b"\xef\xbb\xbf\r\n  <svg/>",
        b"<?xml version='1.0'?>",
        b"<!-- x -->",
        b"<p>hi",
        b"a,b\n<iframe src=//x>",
    ],
)
def test_markup_a_browser_would_render_is_not_text(start: bytes) -> None:
    assert content_problem("csv", "text/csv", start, complete=True) is not None


@pytest.mark.parametrize("text", [b"a < b, c > d\n", b"x,<y\n", b'{"html": "<b"}', b"<pre-tag"])
def test_angle_brackets_alone_are_still_text(text: bytes) -> None:
    assert content_problem("txt", "text/plain", text, complete=True) is None


def test_octet_stream_takes_any_bytes() -> None:
    assert content_problem("bin", "application/octet-stream", random_bytes(), complete=True) is None


def test_a_type_we_know_no_signature_for_must_not_be_markup() -> None:
    """An operator-allowed `.rtf` (no signature rule here): judged only for markup."""
    assert content_problem("rtf", "application/rtf", b"{\\rtf1 hello}", complete=True) is None
    assert content_problem("rtf", "application/rtf", b"<html>", complete=True) is not None


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
    assert (problem is None) == (why is None), problem
    if why is not None:
        assert problem is not None
        assert why in problem
