"""The demo page in Chromium with routed backends, each answer chosen to check how the page
handles it (the flows over real sockets: test_stack.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.support import (
    HARNESS_ORIGIN,
    FakeSign,
    json_route,
    multipart_fields,
    oss_error_route,
    record_for,
    sign_error,
)
from tests.samples import png

pytestmark = pytest.mark.browser


class Backend:
    """/dev/token, /signature, /oss and /uploads on the routed origin, with one queued OSS answer."""

    def __init__(self, page: Any) -> None:
        self.sign = FakeSign()
        self.records: list[dict[str, Any]] = []
        page.route(f"{HARNESS_ORIGIN}/dev/token*", json_route(200, {"token": "t0k3n"}))
        page.route(f"{HARNESS_ORIGIN}/signature*", self.sign)
        page.route(f"{HARNESS_ORIGIN}/uploads*", self.uploads)
        page.route(f"{HARNESS_ORIGIN}/uploads/**", self.one_upload)
        page.route(f"{HARNESS_ORIGIN}/oss", self.post)
        page.route(f"{HARNESS_ORIGIN}/oss/**", self.get_object)
        page.route(f"{HARNESS_ORIGIN}/quota*", self.quota)

    def quota(self, route: Any) -> None:
        assert route.request.headers["authorization"] == "Bearer t0k3n"
        used = sum(record["size"] for record in self.records)
        body = {
            "bytes": {"used": used, "reserved": 0, "limit": 1_048_576},
            "files": {"used": len(self.records), "reserved": 0, "limit": None},
        }
        json_route(200, body)(route)

    def uploads(self, route: Any) -> None:
        assert route.request.headers["authorization"] == "Bearer t0k3n"
        json_route(200, {"items": self.records[::-1], "next": None})(route)

    def one_upload(self, route: Any) -> None:
        """GET /uploads/{key}: the record with its download URLs, as the sign function answers."""
        assert route.request.headers["authorization"] == "Bearer t0k3n"
        key = route.request.url.split("/uploads/", 1)[1]
        found = [r for r in self.records if r["key"] == key]
        json_route(*((200, found[0]) if found else (404, {"code": "NotFound"})))(route)

    def post(self, route: Any) -> None:
        request = route.request
        parts = multipart_fields(request.headers["content-type"], request.post_data_buffer or b"")
        record = record_for(parts)
        url = f"{HARNESS_ORIGIN}/oss/{record['key']}"
        self.records.append(
            {**record, "url": url, "thumbnailUrl": url + "?x-oss-process=image%2Fresize"}
        )
        json_route(200, record)(route)

    def get_object(self, route: Any) -> None:
        route.fulfill(status=200, content_type="image/png", body=png(5, 4))


@pytest.fixture
def backend(harness: Any) -> Backend:
    """The demo page open on the routed origin, its backends routed."""
    backend = Backend(harness)
    harness.goto(f"{HARNESS_ORIGIN}/index.html")
    harness.wait_for_selector("html[data-ready='true']", state="attached")
    return backend


def sign_in(page: Any) -> None:
    page.get_by_role("button", name="Get dev token").click()
    page.wait_for_function("!document.getElementById('files').disabled")


def choose(page: Any, name: str, data: bytes) -> None:
    page.get_by_label("Choose files, or drop them here").set_input_files(
        {"name": name, "mimeType": "text/plain", "buffer": data}
    )


@pytest.mark.usefixtures("backend")
def test_signing_in_with_the_keyboard_enables_files_and_shows_the_quota(harness: Any) -> None:
    files = harness.get_by_label("Choose files, or drop them here")
    assert files.is_disabled()
    harness.get_by_label("User name").focus()
    harness.keyboard.press("Enter")  # submits the sign-in form
    harness.wait_for_function("!document.getElementById('files').disabled")
    # The status, the (empty) list and the quota follow the sign-in asynchronously: wait for them.
    expect(harness.get_by_role("status")).to_have_text("Signed in as alice.")
    expect(harness.locator("#empty")).to_be_visible()
    expect(harness.locator("#quota")).to_have_text("Quota: 0 B of 1.0 MB · 0 files, no limit")
    choose(harness, "x.txt", b"abc")  # the quota follows the uploads
    expect(harness.locator("#quota")).to_have_text("Quota: 3 B of 1.0 MB · 1 file, no limit")


def test_dropped_files_upload_and_show_a_thumbnail(harness: Any, backend: Backend) -> None:
    sign_in(harness)
    harness.evaluate(
        """(png) => {
          const data = new DataTransfer();
          data.items.add(new File([new Uint8Array(png)], 'drop.png', { type: 'image/png' }));
          data.items.add(new File(['abc'], 'drop.txt', { type: 'text/plain' }));
          const zone = document.getElementById('dropzone');
          zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, cancelable: true }));
          zone.dispatchEvent(new DragEvent('drop', { dataTransfer: data, cancelable: true }));
        }""",
        list(png()),
    )
    harness.wait_for_function("document.querySelectorAll('#uploads li').length === 2")
    assert len(backend.records) == 2
    img = "#queue li[data-name='drop.png'] img"
    harness.wait_for_function(
        "(sel) => { const i = document.querySelector(sel); return i && i.naturalWidth === 5; }",
        arg=img,
    )
    assert harness.eval_on_selector(img, "i => i.alt").startswith("Preview of uploads/alice/")
    expect(harness.get_by_role("status")).to_have_text("2 of 2 uploaded.")


# Who refuses and how (a route answering first) → the row's kind and the message shown.
FAILURES = {
    "access-denied": (
        (
            "/oss",
            oss_error_route(403, "AccessDenied", 'Invalid according to Policy: ["eq", "$key"]'),
        ),
        "rejected",
        'Storage refused the file: Invalid according to Policy: ["eq", "$key"] (AccessDenied).',
    ),
    "callback-failed": (
        ("/oss", oss_error_route(203, "CallbackFailed", "Error status : 503.")),
        "not-recorded",
        "Stored but not recorded (CallbackFailed: Error status : 503.); it will be reconciled later.",
    ),
    "grant-refused": (
        ("/signature*", sign_error(401, "Unauthorized", "expired")),
        "grant",
        "Not signed in, or the token expired: get a new dev token.",
    ),
    "over-the-quota": (
        ("/signature*", sign_error(403, "QuotaExceeded", "quota of 1048576 bytes")),
        "quota",
        "Over your storage quota: quota of 1048576 bytes. "
        "Delete files or wait for unused grants to expire.",
    ),
    "rate-limited": (  # the time to try again at is the page's clock: only its start is fixed
        ("/signature*", sign_error(429, "TooManyRequests", "slow", **{"Retry-After": "42"})),
        "rate-limited",
        re.compile(r"^Too many uploads in a minute: try again in 42 s \(at "),
    ),
}


@pytest.mark.parametrize(("refusal", "kind", "message"), FAILURES.values(), ids=FAILURES)
@pytest.mark.usefixtures("backend")
def test_failures_are_explained_per_file(
    harness: Any, refusal: Any, kind: str, message: str | re.Pattern[str]
) -> None:
    path, answer = refusal
    harness.route(HARNESS_ORIGIN + path, answer)  # routed after the backend's: it answers first
    sign_in(harness)
    choose(harness, "x.txt", b"x")
    row = harness.locator("#queue li[data-state='failed']")
    expect(row.locator(".state")).to_have_text(message)
    assert row.get_attribute("data-kind") == kind
    expect(harness.get_by_role("status")).to_have_text("0 of 1 uploaded.")
