"""The demo page, the client and the legacy client in Chromium against the real local stack.

Every request goes over real sockets on 127.0.0.1: the page and the sign function
(DEV_APP_PORT), the OSS emulator (DEV_OSS_PORT) and the callback (DEV_CALLBACK_PORT).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests import samples
from tests.browser.conftest import StackFactory
from tests.browser.support import Stack, multipart_fields, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture(scope="module")
def stack(stack_factory: StackFactory) -> Stack:
    """The dev defaults: V4, JWT auth, exact keys under uploads/{user}/."""
    return stack_factory()


def test_two_files_upload_with_progress_list_and_thumbnail(page: Any, stack: Stack) -> None:
    sign_in(page, stack, "browser-two")
    text = b"hello from the browser\n" * 500
    page.get_by_label("Choose files, or drop them here").set_input_files(
        [
            {"name": "pixel.png", "mimeType": "image/png", "buffer": samples.png(3, 2)},
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": text},
        ]
    )
    page.wait_for_function(
        "document.querySelectorAll('#queue li[data-state=\"done\"]').length === 2", timeout=20_000
    )
    rows = page.eval_on_selector_all(
        "#queue li",
        "rows => rows.map(r => ({name: r.dataset.name, key: r.dataset.key,"
        " progress: r.querySelector('progress').value, state: r.dataset.state}))",
    )
    assert sorted(r["name"] for r in rows) == ["notes.txt", "pixel.png"]
    assert all(r["progress"] == 100 for r in rows), rows  # set by real upload progress events
    keys = {r["name"]: r["key"] for r in rows}
    assert keys["pixel.png"].startswith("uploads/browser-two/demo/")
    assert keys["pixel.png"].endswith(".png")

    # Both appear in "My uploads", fetched from GET /uploads.
    page.wait_for_function("document.querySelectorAll('#uploads li').length === 2")
    listed = page.eval_on_selector_all("#uploads li", "items => items.map(i => i.dataset.key)")
    assert sorted(listed) == sorted(keys.values())
    # The image thumbnail is loaded from the emulator (its presigned thumbnailUrl), decoded.
    thumb = f"#uploads li[data-key='{keys['pixel.png']}'] img"
    page.wait_for_function(
        "(sel) => { const img = document.querySelector(sel);"
        " return img && img.complete && img.naturalWidth > 0; }",
        arg=thumb,
    )
    assert page.eval_on_selector(thumb, "img => [img.naturalWidth, img.naturalHeight]") == [3, 2]
    assert page.eval_on_selector(thumb, "img => img.src").startswith(stack.oss_url + "/")
    # The records agree with what was sent.
    token = stack.token("browser-two")
    records = {r["key"]: r for r in stack.uploads(token)}
    assert records[keys["notes.txt"]]["size"] == len(text)
    assert records[keys["pixel.png"]]["mimeType"] == "image/png"
    expect(page.get_by_role("status")).to_have_text("2 of 2 uploaded.")


def test_abort_midway_leaves_no_object_and_no_record(page: Any, stack: Stack) -> None:
    sign_in(page, stack, "browser-abort")
    grants: list[dict[str, Any]] = []
    page.on(
        "response",
        lambda r: grants.append(r.json()) if "/signature?" in r.url and r.ok else None,
    )
    # Slow the uplink so the upload is still on the wire when Cancel is pressed.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 256 * 1024},
    )
    size = 8 * 1024 * 1024
    page.get_by_label("Choose files, or drop them here").set_input_files(
        [{"name": "big.bin", "mimeType": "application/octet-stream", "buffer": b"\0" * size}]
    )
    page.wait_for_function("document.querySelector('#queue li progress').value > 0")
    page.get_by_role("button", name="Cancel upload of big.bin").click()
    row = page.locator("#queue li[data-name='big.bin']")
    row.locator("xpath=self::*[@data-state='cancelled']").wait_for()
    assert "Cancelled — nothing was stored." in row.inner_text()
    progress = row.locator("progress").evaluate("p => p.value")
    assert 0 < progress < 100
    [grant] = grants
    # Give a late callback every chance to happen, then check both ends.
    time.sleep(1.5)
    assert stack.object_status(grant["key"]) == 404
    assert stack.uploads(stack.token("browser-abort")) == []
    page.get_by_role("button", name="Refresh list").click()
    page.wait_for_selector("#empty:not([hidden])")


def test_expired_grant_is_refreshed_transparently(page: Any, stack_factory: StackFactory) -> None:
    """A cached prefix grant OSS calls expired (client clock 60 s slow): one refresh, success."""
    short = stack_factory(POLICY_TTL_SECONDS="3")
    token = short.token("browser-expiry")
    posts: list[int] = []
    grant_requests: list[str] = []
    page.on("request", lambda r: grant_requests.append(r.url) if "/signature?" in r.url else None)
    page.on(
        "response",
        lambda r: (
            posts.append(r.status)
            if r.request.method == "POST" and r.url.startswith(short.oss_url)
            else None
        ),
    )
    page.goto(short.app_url + "/")
    records = page.evaluate(
        """async (token) => {
          const { createUploader } = await import('/oss-upload.js');
          const uploader = createUploader({
            signatureUrl: '/signature', getToken: () => token, now: () => Date.now() - 60000 });
          const first = await uploader.upload(new File(['first'], 'first.txt', { type: 'text/plain' }));
          await new Promise((resolve) => setTimeout(resolve, 4500));  // the cached policy expires
          const second = await uploader.upload(new File(['second'], 'second.txt', { type: 'text/plain' }));
          return [first, second];
        }""",
        token,
    )
    assert [r["Status"] for r in records] == ["OK", "OK"]
    assert posts == [200, 403, 200]  # the second upload: Policy expired, then the fresh grant
    assert len(grant_requests) == 2
    stored = {r["key"] for r in short.uploads(token)}
    assert stored == {r["key"] for r in records}


def test_legacy_client_uploads_against_a_v1_stack(page: Any, stack_factory: StackFactory) -> None:
    legacy = stack_factory(OSS_SIGNATURE_VERSION="v1", AUTH_MODE="none", UPLOAD_KEY_PREFIX="")
    forms: list[list[str]] = []

    def read_form(route: Any) -> None:
        request = route.request
        body = request.post_data_buffer or b""
        forms.append([n for n, _, _ in multipart_fields(request.headers["content-type"], body)])
        route.continue_()

    page.route(legacy.oss_url + "/", read_form)
    page.goto(legacy.app_url + "/legacy/")
    page.wait_for_selector("html[data-ready='true']", state="attached")
    page.get_by_label("Folder").fill("avatars/")
    page.get_by_label("File").set_input_files(
        {"name": "me.png", "mimeType": "image/png", "buffer": samples.png(4, 4)}
    )
    page.get_by_role("button", name="Upload").click()
    result = page.get_by_role("status")
    page.wait_for_selector("#result[data-state='done'], #result[data-state='failed']")
    assert result.inner_text().startswith("Status OK — stored as avatars/"), result.inner_text()
    key = page.eval_on_selector("#result", "r => r.dataset.key")
    assert key.endswith(".png")
    # The exact legacy form reached the emulator: V1 fields only, in the legacy order.
    assert forms == [
        [
            "key",
            "policy",
            "OSSAccessKeyId",
            "success_action_status",
            "signature",
            "callback",
            "file",
        ]
    ]
    anonymous = legacy.uploads(None)
    assert [r["key"] for r in anonymous] == [key]
    assert anonymous[0]["owner"] == "anonymous"
    assert legacy.object_status(key) == 200


# --- issue 17.1: active content behind an innocent key -----------------------------------------

ACTIVE_BODIES = {
    "html": "<html><body><script>document.title = 'pwned'</script></body></html>",
    "xml": (
        '<?xml version="1.0"?><r><x:script xmlns:x="http://www.w3.org/1999/xhtml">'
        "document.title = 'pwned'</x:script></r>"
    ),
}


@pytest.mark.parametrize(
    ("body", "part_type"),
    [("html", "unknown/unknown"), ("html", "application/unknown"), ("xml", "image/png,text/xml")],
)
def test_chromium_cannot_plant_a_page_behind_a_png_key(
    page: Any, stack: Stack, body: str, part_type: str
) -> None:
    """The attack of issue 17 from Chromium itself: a prefix grant, key q.png, a page as the
    file, a part type Chromium would sniff (or a list it reads as XML). OSS relays our Rejected
    answer, the object is deleted, nothing is listed, and opening the URL runs no script."""
    token = stack.token("browser-mallory")
    page.goto(stack.app_url + "/")
    answer = page.evaluate(
        """async ({ token, body, partType }) => {
          const grant = await (await fetch('/signature?path=x', {
            headers: { Authorization: 'Bearer ' + token } })).json();
          const key = grant.dir + 'q.png';
          const form = new FormData();
          form.append('key', key);
          for (const [name, value] of Object.entries(grant.fields)) form.append(name, value);
          form.append('file', new File([body], 'q.png', { type: partType }));
          const reply = await fetch(grant.host, { method: 'POST', body: form });
          return { status: reply.status, json: await reply.json(), key };
        }""",
        {"token": token, "body": ACTIVE_BODIES[body], "partType": part_type},
    )
    assert answer["status"] == 200, answer
    assert answer["json"]["Status"] == "Rejected", answer
    assert answer["json"]["code"] == "ContentRejected"
    assert stack.object_status(answer["key"]) == 404
    assert stack.uploads(token) == []
    opened = page.goto(stack.oss_url + "/" + answer["key"])
    assert opened is not None
    assert opened.status == 403  # the bucket is private (and the object gone: 404 above)
    assert page.title() != "pwned"


def test_the_page_shows_why_the_server_refused_a_file(page: Any, stack: Stack) -> None:
    """UPLOAD_VERIFY=content from Chromium: a real PNG is recorded; random bytes named .png and
    an HTML page named .jpg are refused, deleted, and the server's reason is shown next to each."""
    sign_in(page, stack, "browser-verify")
    page.get_by_label("Choose files, or drop them here").set_input_files(
        [
            {"name": "real.png", "mimeType": "image/png", "buffer": samples.png(4, 3)},
            {"name": "noise.png", "mimeType": "image/png", "buffer": samples.random_bytes()},
            {"name": "page.jpg", "mimeType": "image/jpeg", "buffer": samples.html_page()},
        ]
    )
    page.wait_for_function(
        "[...document.querySelectorAll('#queue li')]"
        ".filter(r => ['done', 'failed'].includes(r.dataset.state)).length === 3",
        timeout=20_000,
    )
    rows = page.eval_on_selector_all(
        "#queue li",
        "rows => Object.fromEntries(rows.map(r => [r.dataset.name,"
        " [r.dataset.state, r.querySelector('.state').textContent]]))",
    )
    assert rows["real.png"][0] == "done", rows
    for name in ("noise.png", "page.jpg"):
        state, text = rows[name]
        assert state == "failed", rows
        assert text.startswith("Refused and deleted: the content is not a ."), text
        assert text.endswith("(no known signature) (ContentRejected)."), text
    token = stack.token("browser-verify")
    (record,) = stack.uploads(token)
    assert record["key"].endswith(".png")


# --- issue 16: private files -------------------------------------------------------------------


def test_private_image_thumbnail_open_and_delete(page: Any, stack: Stack, tmp_path: Path) -> None:
    """Upload an image, see its thumbnail from a signed URL (≤ 256 px wide), open the file, delete
    it with the keyboard; then its URL answers 403/404 and GET /uploads no longer lists it.
    Screenshots of each step land in the test's folder."""
    shots = tmp_path / "screenshots"
    shots.mkdir()
    sign_in(page, stack, "browser-private")
    page.get_by_label("Choose files, or drop them here").set_input_files(
        [{"name": "Große Katze.png", "mimeType": "image/png", "buffer": samples.png(640, 400)}]
    )
    page.wait_for_function("document.querySelectorAll('#uploads li').length === 1", timeout=20_000)
    key = page.eval_on_selector("#uploads li", "item => item.dataset.key")
    thumb = f"#uploads li[data-key='{key}'] img"
    page.wait_for_function(
        "(sel) => { const img = document.querySelector(sel);"
        " return img && img.complete && img.naturalWidth > 0; }",
        arg=thumb,
        timeout=20_000,
    )
    width, height = page.eval_on_selector(thumb, "img => [img.naturalWidth, img.naturalHeight]")
    assert (width, height) == (256, 160)  # image/resize,m_lfit,w_256,h_256 of 640×400
    src = page.eval_on_selector(thumb, "img => img.src")
    assert src.startswith(stack.oss_url + "/")
    assert "x-oss-signature=" in src
    assert "x-oss-process=image%2Fresize" in src
    page.screenshot(path=str(shots / "1-thumbnail.png"), full_page=True)

    # Open: a new tab with the signed URL, the original bytes, shown inline under its name.
    with page.context.expect_page() as opened_info:
        page.get_by_role("link", name="Open Große Katze.png").click()
    opened = opened_info.value
    opened.wait_for_load_state()
    shown = opened.evaluate(
        "() => { const img = document.querySelector('img');"
        " return img ? [img.naturalWidth, img.naturalHeight] : null; }"
    )
    assert shown == [640, 400]
    file_url = opened.url
    assert "response-content-disposition=inline" in file_url
    opened.screenshot(path=str(shots / "2-opened.png"))
    opened.close()

    # Delete with the keyboard: focus the button, press Enter.
    delete = page.get_by_role("button", name="Delete Große Katze.png")
    delete.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Deleted Große Katze.png.")
    expect(page.locator("#empty")).to_be_visible()
    page.screenshot(path=str(shots / "3-deleted.png"), full_page=True)

    assert page.request.get(file_url).status in (403, 404)
    assert page.request.get(src).status in (403, 404)
    assert stack.object_status(key) == 404
    token = stack.token("browser-private")
    assert stack.uploads(token) == []
    page.get_by_role("button", name="Refresh list").click()
    page.wait_for_selector("#empty:not([hidden])")
    assert sorted(p.name for p in shots.iterdir()) == [
        "1-thumbnail.png",
        "2-opened.png",
        "3-deleted.png",
    ]
