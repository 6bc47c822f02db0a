"""The demo page, the client and the legacy client in Chromium against the real local stack, every
request over real sockets on 127.0.0.1 (app and sign function, OSS emulator, callback)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests import samples
from tests.browser.conftest import StackFactory
from tests.browser.support import Stack, multipart_fields, sign_in, throttle

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture(scope="module")
def stack(stack_factory: StackFactory) -> Stack:
    """The dev defaults: V4, JWT auth, exact keys under uploads/{user}/."""
    return stack_factory()


def test_abort_midway_leaves_no_object_and_no_record(page: Any, stack: Stack) -> None:
    sign_in(page, stack, "browser-abort")
    grants: list[dict[str, Any]] = []
    page.on(
        "response",
        lambda r: grants.append(r.json()) if "/signature?" in r.url and r.ok else None,
    )
    # Slow the uplink so the upload is still on the wire when Cancel is pressed.
    throttle(page, 256 * 1024)
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
    # One POST, the exact legacy form: V1 fields only, in the legacy order.
    [form] = forms
    assert form[:4] == ["key", "policy", "OSSAccessKeyId", "success_action_status"]
    assert form[4:] == ["signature", "callback", "file"]
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


def loaded_image(page: Any, selector: str) -> list[int]:
    """[naturalWidth, naturalHeight] of the image at `selector`, once it has loaded."""
    page.wait_for_function(
        "(sel) => { const img = document.querySelector(sel);"
        " return img && img.complete && img.naturalWidth > 0; }",
        arg=selector,
        timeout=20_000,
    )
    return list(page.eval_on_selector(selector, "img => [img.naturalWidth, img.naturalHeight]"))


def test_files_upload_list_open_and_delete_and_refused_ones_say_why(
    page: Any, stack: Stack
) -> None:
    """The demo page: an image and a text file are recorded (progress from real upload events,
    listed, the image with a signed thumbnail ≤ 256 px wide that opens inline, then deleted with
    the keyboard); under UPLOAD_VERIFY=content random bytes named .png and an HTML page named
    .jpg are refused and deleted, and the server's reason is shown next to each."""
    sign_in(page, stack, "browser-files")
    text = b"hello from the browser\n" * 500
    page.get_by_label("Choose files, or drop them here").set_input_files(
        [
            {"name": "Große Katze.png", "mimeType": "image/png", "buffer": samples.png(640, 400)},
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": text},
            {"name": "noise.png", "mimeType": "image/png", "buffer": samples.random_bytes()},
            {"name": "page.jpg", "mimeType": "image/jpeg", "buffer": samples.html_page()},
        ]
    )
    page.wait_for_function(
        "[...document.querySelectorAll('#queue li')]"
        ".filter(r => ['done', 'failed'].includes(r.dataset.state)).length === 4",
        timeout=20_000,
    )
    rows = page.eval_on_selector_all(
        "#queue li",
        "rows => Object.fromEntries(rows.map(r => [r.dataset.name, {state: r.dataset.state,"
        " key: r.dataset.key, progress: r.querySelector('progress').value,"
        " text: r.querySelector('.state').textContent}]))",
    )
    image, notes = rows["Große Katze.png"], rows["notes.txt"]
    assert (image["state"], notes["state"]) == ("done", "done"), rows
    assert (image["progress"], notes["progress"]) == (100, 100)  # from real upload progress events
    assert re.fullmatch(r"uploads/browser-files/demo/[^/]+\.png", image["key"])
    for name in ("noise.png", "page.jpg"):
        assert rows[name]["state"] == "failed", rows
        assert rows[name]["text"].startswith("Refused and deleted: the content is not a ."), rows
        assert rows[name]["text"].endswith("(no known signature) (ContentRejected)."), rows
    expect(page.get_by_role("status")).to_have_text("2 of 4 uploaded.")
    token = stack.token("browser-files")
    records = {r["key"]: r for r in stack.uploads(token)}
    assert set(records) == {image["key"], notes["key"]}
    assert records[notes["key"]]["size"] == len(text)
    assert records[image["key"]]["mimeType"] == "image/png"

    # Both listed by GET /uploads; the thumbnail a signed, resized image from the emulator.
    page.wait_for_function("document.querySelectorAll('#uploads li').length === 2")
    listed = page.eval_on_selector_all("#uploads li", "items => items.map(i => i.dataset.key)")
    assert sorted(listed) == sorted(records)
    thumb = f"#uploads li[data-key='{image['key']}'] img"
    assert loaded_image(page, thumb) == [256, 160]  # image/resize,m_lfit,w_256,h_256 of 640×400
    src = page.eval_on_selector(thumb, "img => img.src")
    assert src.startswith(stack.oss_url + "/")
    assert "x-oss-signature=" in src
    assert "x-oss-process=image%2Fresize" in src

    # Open: a new tab with the signed URL, the original bytes, shown inline under its name.
    with page.context.expect_page() as opened_info:
        page.get_by_role("link", name="Open Große Katze.png").click()
    opened = opened_info.value
    opened.wait_for_load_state()
    assert loaded_image(opened, "img") == [640, 400]
    file_url = opened.url
    assert "response-content-disposition=inline" in file_url
    opened.close()

    # Delete with the keyboard: focus the button, press Enter.
    page.get_by_role("button", name="Delete Große Katze.png").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Deleted Große Katze.png.")
    assert page.request.get(file_url).status in (403, 404)
    assert page.request.get(src).status in (403, 404)
    assert stack.object_status(image["key"]) == 404
    assert [r["key"] for r in stack.uploads(token)] == [notes["key"]]
    page.get_by_role("button", name="Refresh list").click()
    page.wait_for_function("document.querySelectorAll('#uploads li').length === 1")
    assert page.eval_on_selector("#uploads li", "i => i.dataset.key") == notes["key"]
