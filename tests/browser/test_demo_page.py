"""The demo page's behaviour in Chromium with routed backends: drag and drop, keyboard, messages.

The full flow over real sockets is in test_stack.py; here each backend answer is chosen so the
page's handling of it can be checked in isolation.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.support import (
    HARNESS_ORIGIN,
    FakeSign,
    multipart_fields,
    oss_error_xml,
    png_bytes,
    record_for,
)

pytestmark = pytest.mark.browser


class Backend:
    """/dev/token, /signature, /oss and /uploads on the routed origin, with one queued OSS answer."""

    def __init__(self, page: Any, oss_answer: tuple[int, str] | None = None) -> None:
        self.sign = FakeSign()
        self.records: list[dict[str, Any]] = []
        self.oss_answer = oss_answer
        page.route(f"{HARNESS_ORIGIN}/dev/token*", self.token)
        page.route(f"{HARNESS_ORIGIN}/signature*", self.sign)
        page.route(f"{HARNESS_ORIGIN}/uploads*", self.uploads)
        page.route(f"{HARNESS_ORIGIN}/uploads/**", self.one_upload)
        page.route(f"{HARNESS_ORIGIN}/oss", self.post)
        page.route(f"{HARNESS_ORIGIN}/oss/**", self.get_object)
        page.route(f"{HARNESS_ORIGIN}/quota*", self.quota)
        self.limits: dict[str, int | None] = {"bytes": 1_048_576, "files": None}

    def quota(self, route: Any) -> None:
        assert route.request.headers["authorization"] == "Bearer t0k3n"
        used = sum(record["size"] for record in self.records)
        body = {
            "bytes": {"used": used, "reserved": 0, "limit": self.limits["bytes"]},
            "files": {"used": len(self.records), "reserved": 0, "limit": self.limits["files"]},
        }
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    def token(self, route: Any) -> None:
        route.fulfill(status=200, content_type="application/json", body='{"token": "t0k3n"}')

    def uploads(self, route: Any) -> None:
        assert route.request.headers["authorization"] == "Bearer t0k3n"
        body = {"items": self.records[::-1], "next": None}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    def one_upload(self, route: Any) -> None:
        """GET /uploads/{key}: the record with its download URLs, as the sign function answers."""
        assert route.request.headers["authorization"] == "Bearer t0k3n"
        key = route.request.url.split("/uploads/", 1)[1]
        found = [r for r in self.records if r["key"] == key]
        if not found:
            route.fulfill(status=404, content_type="application/json", body='{"code":"NotFound"}')
            return
        route.fulfill(status=200, content_type="application/json", body=json.dumps(found[0]))

    def post(self, route: Any) -> None:
        request = route.request
        parts = multipart_fields(request.headers["content-type"], request.post_data_buffer or b"")
        if self.oss_answer is not None:
            status, xml = self.oss_answer
            route.fulfill(status=status, content_type="application/xml", body=xml)
            return
        record = record_for(parts)
        url = f"{HARNESS_ORIGIN}/oss/{record['key']}"
        self.records.append(
            {**record, "url": url, "thumbnailUrl": url + "?x-oss-process=image%2Fresize"}
        )
        route.fulfill(status=200, content_type="application/json", body=json.dumps(record))

    def get_object(self, route: Any) -> None:
        route.fulfill(status=200, content_type="image/png", body=png_bytes(5, 4))


def open_page(page: Any) -> None:
    page.goto(f"{HARNESS_ORIGIN}/index.html")
    page.wait_for_selector("html[data-ready='true']", state="attached")


def test_files_are_disabled_until_signed_in_with_the_keyboard(harness: Any) -> None:
    Backend(harness)
    open_page(harness)
    files = harness.get_by_label("Choose files, or drop them here")
    assert files.is_disabled()
    harness.get_by_label("User name").focus()
    harness.keyboard.press("Enter")  # submits the sign-in form
    harness.wait_for_function("!document.getElementById('files').disabled")
    # The status and the (empty) list follow the sign-in asynchronously: wait for them.
    expect(harness.get_by_role("status")).to_have_text("Signed in as alice.")
    expect(harness.locator("#empty")).to_be_visible()


def test_dropped_files_upload_and_show_a_thumbnail(harness: Any) -> None:
    backend = Backend(harness)
    open_page(harness)
    harness.get_by_role("button", name="Get dev token").click()
    harness.wait_for_function("!document.getElementById('files').disabled")
    harness.evaluate(
        """(png) => {
          const data = new DataTransfer();
          data.items.add(new File([new Uint8Array(png)], 'drop.png', { type: 'image/png' }));
          data.items.add(new File(['abc'], 'drop.txt', { type: 'text/plain' }));
          const zone = document.getElementById('dropzone');
          zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, cancelable: true }));
          zone.dispatchEvent(new DragEvent('drop', { dataTransfer: data, cancelable: true }));
        }""",
        list(png_bytes()),
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


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            (403, oss_error_xml("AccessDenied", 'Invalid according to Policy: ["eq", "$key"]')),
            'Storage refused the file: Invalid according to Policy: ["eq", "$key"] (AccessDenied).',
        ),
        (
            (203, oss_error_xml("CallbackFailed", "Error status : 503.")),
            "Stored but not recorded (CallbackFailed: Error status : 503.); it will be reconciled later.",
        ),
    ],
)
def test_failures_are_explained_per_file(
    harness: Any, answer: tuple[int, str], message: str
) -> None:
    Backend(harness, oss_answer=answer)
    open_page(harness)
    harness.get_by_role("button", name="Get dev token").click()
    harness.wait_for_function("!document.getElementById('files').disabled")
    harness.get_by_label("Choose files, or drop them here").set_input_files(
        {"name": "x.txt", "mimeType": "text/plain", "buffer": b"x"}
    )
    harness.wait_for_selector("#queue li[data-state='failed']")
    expect(harness.locator("#queue li .state")).to_have_text(message)
    expect(harness.get_by_role("status")).to_have_text("0 of 1 uploaded.")


def test_refused_grant_tells_the_user_to_sign_in_again(harness: Any) -> None:
    backend = Backend(harness)
    backend.sign.failure = (401, {"Status": "Error", "code": "Unauthorized", "message": "expired"})
    open_page(harness)
    harness.get_by_role("button", name="Get dev token").click()
    harness.wait_for_function("!document.getElementById('files').disabled")
    harness.get_by_label("Choose files, or drop them here").set_input_files(
        {"name": "x.txt", "mimeType": "text/plain", "buffer": b"x"}
    )
    harness.wait_for_selector("#queue li[data-state='failed']")
    assert (
        harness.locator("#queue li .state").inner_text()
        == "Not signed in, or the token expired: get a new dev token."
    )


def test_the_quota_is_shown_and_follows_the_uploads(harness: Any) -> None:
    Backend(harness)
    open_page(harness)
    harness.get_by_role("button", name="Get dev token").click()
    expect(harness.locator("#quota")).to_have_text("Quota: 0 B of 1.0 MB · 0 files, no limit")
    harness.get_by_label("Choose files, or drop them here").set_input_files(
        {"name": "x.txt", "mimeType": "text/plain", "buffer": b"abc"}
    )
    expect(harness.locator("#quota")).to_have_text("Quota: 3 B of 1.0 MB · 1 file, no limit")


def test_over_quota_and_rate_limited_are_explained_with_the_retry_time(harness: Any) -> None:
    backend = Backend(harness)
    open_page(harness)
    harness.get_by_role("button", name="Get dev token").click()
    harness.wait_for_function("!document.getElementById('files').disabled")
    files = harness.get_by_label("Choose files, or drop them here")
    backend.sign.failure = (
        403,
        {"Status": "Error", "code": "QuotaExceeded", "message": "quota of 1048576 bytes"},
    )
    files.set_input_files({"name": "q.txt", "mimeType": "text/plain", "buffer": b"q"})
    expect(harness.locator("#queue li[data-name='q.txt'] .state")).to_have_text(
        "Over your storage quota: quota of 1048576 bytes. "
        "Delete files or wait for unused grants to expire."
    )
    assert harness.get_attribute("#queue li[data-name='q.txt']", "data-kind") == "quota"

    def limited(route: Any) -> None:
        route.fulfill(
            status=429,
            content_type="application/json",
            headers={"Retry-After": "42"},
            body=json.dumps({"Status": "Error", "code": "TooManyRequests", "message": "slow"}),
        )

    harness.unroute(f"{HARNESS_ORIGIN}/signature*")
    harness.route(f"{HARNESS_ORIGIN}/signature*", limited)
    files.set_input_files({"name": "r.txt", "mimeType": "text/plain", "buffer": b"r"})
    state = harness.locator("#queue li[data-name='r.txt'] .state")
    expect(state).to_contain_text("Too many uploads in a minute: try again in 42 s (at ")
    assert harness.get_attribute("#queue li[data-name='r.txt']", "data-kind") == "rate-limited"
