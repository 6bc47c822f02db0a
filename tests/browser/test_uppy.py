"""Uppy 6 (Dashboard, @uppy/aws-s3) with web/oss-uppy.js in Chromium against the local stack.

Uppy comes from node_modules, bundled by esbuild (never a CDN); the page has its own loopback
origin, so every request to the sign function and the emulator crosses CORS as in production.
Beside the browser: what a presigned PUT's signature covers, and what it cannot cap."""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import StackFactory
from tests.browser.support import ROOT, WEB, Stack
from tests.samples import png
from tests.support.tools import unavailable

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PART_BYTES = 5 * 1024 * 1024  # MULTIPART_PART_BYTES of this stack; Uppy's smallest part
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
UPPY_ENTRY = """
export { default as Uppy } from '@uppy/core';
export { default as Dashboard } from '@uppy/dashboard';
export { default as AwsS3 } from '@uppy/aws-s3';
"""
STYLES = (
    "node_modules/@uppy/core/dist/style.min.css",
    "node_modules/@uppy/dashboard/dist/style.min.css",
)
PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>uppy</title>
{styles}
<div id="dashboard"></div>
<script type="module">
import {{ Uppy, Dashboard, AwsS3 }} from '/uppy.js';
import {{ checkRecords, createOssUppyOptions }} from '/web/oss-uppy.js';
window.events = [];
window.startUppy = (signEndpoint, token, partSize, smallFiles = 'put') => {{
  const sign = {{ signEndpoint, getAuthorization: () => token }};
  const uppy = new Uppy({{ id: 'uppy' }});
  uppy.use(Dashboard, {{ inline: true, target: '#dashboard', height: 420 }});
  uppy.use(AwsS3, createOssUppyOptions({{ ...sign, path: 'uppy', partSize, smallFiles }}));
  checkRecords(uppy, sign);
  uppy.on('upload-success', (file, response) => window.events.push(
    {{ type: 'success', name: file.name, key: response.body.key, url: response.uploadURL }}));
  uppy.on('upload-error', (file, error) => window.events.push(
    {{ type: 'error', name: file?.name, message: String(error?.message) }}));
  uppy.on('s3-multipart:part-uploaded', (file, part) => {{
    window.events.push({{ type: 'part', name: file.name, part: part.PartNumber }});
    if (window.pauseAfterPart === part.PartNumber) uppy.pauseAll();  // before the next part
    if (window.cancelAfterPart === part.PartNumber) uppy.cancelAll();
  }});
  uppy.on('complete', (result) => {{
    window.done = result.successful.map((f) => ({{
      name: f.name, key: f.response.body.key, record: f.response.body.record }}));
    window.failed = result.failed.map((f) => f.name);
  }});
  window.uppy = uppy;
  document.title = 'started';
}};
document.title = 'ready';
</script>"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A site of its own on a loopback port: the page, @uppy/core, @uppy/dashboard and
    @uppy/aws-s3 from node_modules bundled as one ES module, web/ and Uppy's styles."""
    if not ESBUILD.exists():
        unavailable("node_modules is missing: run `npm ci` (Uppy and esbuild are dev dependencies)")
    site = tmp_path_factory.mktemp("uppy")
    subprocess.run(  # noqa: S603 - our pinned dev dependency, fixed arguments
        [str(ESBUILD), "--bundle", "--format=esm", f"--outfile={site / 'uppy.js'}"],
        input=UPPY_ENTRY.encode(),
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    styles = "".join(f'<link rel="stylesheet" href="/{s}">' for s in STYLES)
    (site / "index.html").write_text(PAGE.format(styles=styles))
    (site / "web").symlink_to(WEB)
    (site / "node_modules").symlink_to(ROOT / "node_modules")
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(stack_factory: StackFactory, page_origin: str) -> Stack:
    """The dev stack with 5 MiB parts, accepting the page's origin (sign function and bucket);
    each function signs with its own key, bound to its deploy/ram policy as OSS would bind it."""
    return stack_factory(
        CORS_ALLOWED_ORIGINS=page_origin,
        MULTIPART_PART_BYTES=str(PART_BYTES),
        DEV_OSS_RAM_POLICIES="1",
    )


def counted_since(stack: Stack, before: dict[str, int]) -> dict[str, int]:
    """The OSS operations the emulator answered since `before` (its earlier stats)."""
    after = stack.emulator_stats()
    return {op: after.get(op, 0) - before.get(op, 0) for op in after}


def start(page: Any, stack: Stack, page_origin: str, user: str, small_files: str = "put") -> str:
    token = stack.token(user)
    page.goto(page_origin + "/")
    page.wait_for_function("document.title === 'ready'")
    page.evaluate(
        "([s, t, p, f]) => window.startUppy(s, t, p, f)",
        [stack.app_url, token, PART_BYTES, small_files],
    )
    return token


def add_files(page: Any, files: list[tuple[str, str, bytes]]) -> None:
    page.locator("input.uppy-Dashboard-input").first.set_input_files(
        [{"name": name, "mimeType": kind, "buffer": data} for name, kind, data in files]
    )


@pytest.mark.parametrize(
    ("small_files", "single"),
    [("put", "PutObject"), ("form", "PostObject")],
    ids=["small-as-a-put", "small-as-a-postobject-form"],
)
def test_dashboard_uploads_a_small_file_in_one_request_and_a_large_one_in_parts(
    page: Any, stack: Stack, page_origin: str, small_files: str, single: str
) -> None:
    """smallFiles 'put': a presigned PUT; 'form': /signature's exact-key form (its policy caps
    the size before OSS stores anything). Each file ends with one record, under the server's key."""
    user = f"uppy-{small_files}"
    small = png(4, 3)
    large = os.urandom(2 * PART_BYTES + 123_457)  # three parts: 5 MiB, 5 MiB, the rest
    before = stack.emulator_stats()
    token = start(page, stack, page_origin, user, small_files)
    add_files(
        page, [("dot.png", "image/png", small), ("big.bin", "application/octet-stream", large)]
    )
    page.get_by_role("button", name="Upload 2 files").click()
    page.wait_for_function("window.done !== undefined", timeout=120_000)
    assert page.evaluate("window.failed") == [], page.evaluate("window.events")
    done = {item["name"]: item for item in page.evaluate("window.done")}
    assert set(done) == {"dot.png", "big.bin"}

    # The server chose each key (our folder, a fresh id, the extension), not Uppy's proposal.
    for name, ext in (("dot.png", ".png"), ("big.bin", ".bin")):
        key = done[name]["key"]
        assert re.fullmatch(rf"uploads/{user}/uppy/[^/]+\{ext}", key)
        assert done[name]["record"]["key"] == key  # checkRecords found the record

    # Exactly one record each, with the bytes that were sent.
    records = {r["key"]: r for r in stack.uploads(token)}
    assert set(records) == {item["key"] for item in done.values()}
    assert records[done["dot.png"]["key"]]["size"] == len(small)
    assert records[done["big.bin"]["key"]]["size"] == len(large)
    assert records[done["dot.png"]["key"]]["mimeType"] == "image/png"

    # One single request, three parts, one Complete: the emulator counted what the browser sent.
    counted = counted_since(stack, before)
    other = "PostObject" if single == "PutObject" else "PutObject"
    assert (counted.get(single), counted.get(other, 0)) == (1, 0), counted
    assert counted.get("UploadPart") == 3, counted
    assert counted.get("CompleteMultipartUpload") == 1, counted


def test_rejected_uploads_fail_in_the_dashboard_and_leave_no_record(
    page: Any, stack: Stack, page_origin: str
) -> None:
    """A "PNG" that is not one: the callback rejects and deletes it (UPLOAD_VERIFY=content).
    Multipart: our Complete answers S3 XML 422 ContentRejected. Single PUT: OSS answers the
    callback's 200 Rejected, which the plugin counts as success — checkRecords finds no record."""
    token = start(page, stack, page_origin, "uppy-rejected")
    fake_small = b"not an image at all" * 10
    fake_large = os.urandom(PART_BYTES + 1)
    add_files(
        page, [("small.png", "image/png", fake_small), ("large.png", "image/png", fake_large)]
    )
    page.get_by_role("button", name="Upload 2 files").click()
    page.wait_for_function("window.done !== undefined", timeout=120_000)
    assert sorted(page.evaluate("window.failed")) == ["large.png", "small.png"]
    errors = {
        e["name"]: e["message"] for e in page.evaluate("window.events") if e["type"] == "error"
    }
    assert "422" in errors["large.png"]
    assert "ContentRejected" in errors["large.png"]
    assert "not recorded" in errors["small.png"]
    assert stack.uploads(token) == []


def test_cancelling_a_multipart_upload_aborts_it_on_oss(
    page: Any, stack: Stack, page_origin: str
) -> None:
    """Uppy's cancel → the plugin's abort → DELETE on a capability URL → AbortMultipartUpload;
    the grant's reservation is released and nothing is recorded."""
    token = start(page, stack, page_origin, "uppy-cancel")
    add_files(page, [("huge.bin", "application/octet-stream", os.urandom(PART_BYTES + 1000))])
    before = stack.emulator_stats()
    page.evaluate("window.cancelAfterPart = 1")  # in the page, before part 2 starts
    with page.expect_request_finished(lambda r: r.method == "DELETE", timeout=60_000):
        page.get_by_role("button", name="Upload 1 file").click()
    counted = counted_since(stack, before)
    assert counted.get("InitiateMultipartUpload") == 1, counted
    assert counted.get("AbortMultipartUpload") == 1, counted
    assert counted.get("UploadPart") == 1, counted
    assert counted.get("CompleteMultipartUpload", 0) == 0, counted
    assert stack.open_uploads() == []
    assert stack.uploads(token) == []
    quota = stack.http.get(
        f"{stack.app_url}/quota", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert quota.json()["bytes"]["reserved"] == 0


def test_pause_and_resume_picks_up_from_the_parts_oss_lists(
    page: Any, stack: Stack, page_origin: str
) -> None:
    """Resuming: the plugin asks ListParts (our list capability, S3 XML) and uploads only the
    parts OSS does not hold; the upload completes with one record of the right size."""
    token = start(page, stack, page_origin, "uppy-resume")
    data = os.urandom(2 * PART_BYTES + 1000)  # three parts
    add_files(page, [("long.bin", "application/octet-stream", data)])
    before = stack.emulator_stats()
    page.evaluate("window.pauseAfterPart = 1")
    page.get_by_role("button", name="Upload 1 file").click()
    page.wait_for_function("window.events.some((e) => e.type === 'part')", timeout=60_000)
    page.wait_for_function("window.uppy.getFiles()[0].isPaused === true")
    assert page.evaluate("window.done") is None
    page.evaluate("window.uppy.resumeAll()")
    page.wait_for_function("window.done !== undefined", timeout=120_000)
    assert page.evaluate("window.failed") == [], page.evaluate("window.events")
    (done,) = page.evaluate("window.done")
    assert done["record"]["size"] == len(data)
    assert [r["key"] for r in stack.uploads(token)] == [done["key"]]
    counted = counted_since(stack, before)
    # Paused right after part 1: the resume asked OSS what it holds (ListParts through our list
    # capability; the other ListParts is Complete's own check) and sent parts 2 and 3 only.
    assert counted.get("ListParts", 0) == 2, counted
    assert counted.get("UploadPart", 0) == 3, counted
    parts = [e["part"] for e in page.evaluate("window.events") if e["type"] == "part"]
    assert parts == [1, 2, 3]


# --- the presigned PUT's signature, beside the browser -----------------------------------------


def signed_put(stack: Stack, token: str, size: int) -> dict[str, Any]:
    request = {"method": "PUT", "key": "k", "filename": "a.png", "size": size, "type": "image/png"}
    answer = stack.http.post(
        stack.app_url + "/s3/sign",
        json=request,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def put(stack: Stack, signed: dict[str, Any], body: bytes, headers: dict[str, str]) -> Any:
    return stack.http.put(signed["url"], data=body, headers=headers, timeout=30)


@pytest.mark.parametrize(
    "change",
    [
        {"Content-Type": "text/html"},
        {"Content-Type": None},
        {"x-oss-forbid-overwrite": None},
        {"x-oss-storage-class": "Archive"},
        {"x-oss-object-acl": "public-read"},
    ],
    ids=["other-type", "no-type", "no-forbid-overwrite", "archive", "extra-acl"],
)
def test_a_presigned_put_refuses_any_header_it_did_not_sign(
    stack: Stack, change: dict[str, str | None]
) -> None:
    token = stack.token("uppy-headers")
    body = png(2, 2)
    signed = signed_put(stack, token, len(body))
    headers = {k: v for k, v in {**signed["headers"], **change}.items() if v is not None}
    answer = put(stack, signed, body, headers)
    assert answer.status_code == 403, answer.text
    assert "<Code>SignatureDoesNotMatch</Code>" in answer.text
    assert stack.object_status(signed["key"]) == 404
    assert stack.uploads(token) == []


def test_a_put_larger_than_declared_is_deleted_and_never_recorded(stack: Stack) -> None:
    """What a presigned PUT cannot cap: OSS stores the body; the callback refuses it (size over
    the grant) and deletes it, so OSS answers 203 CallbackFailed, nothing is recorded and
    nothing stays in the bucket outside the quota."""
    token = stack.token("uppy-oversize")
    body = png(2, 2)
    signed = signed_put(stack, token, len(body))
    answer = put(stack, signed, body + b"\0" * 4096, signed["headers"])
    assert answer.status_code == 203, answer.text
    assert "CallbackFailed" in answer.text
    assert stack.uploads(token) == []
    assert stack.object_status(signed["key"]) == 404
    # The right body under a fresh grant is recorded once, with the server's key.
    signed = signed_put(stack, token, len(body))
    answer = put(stack, signed, body, signed["headers"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["key"] == signed["key"]
    assert [r["key"] for r in stack.uploads(token)] == [signed["key"]]


def test_a_v1_presigned_put_carries_the_callback_too(stack_factory: StackFactory) -> None:
    """OSS_SIGNATURE_VERSION=v1: `callback` is a signed sub-resource, the headers are signed."""
    v1 = stack_factory(OSS_SIGNATURE_VERSION="v1")
    token = v1.token("uppy-v1")
    body = png(3, 3)
    signed = signed_put(v1, token, len(body))
    assert "Signature=" in signed["url"]
    assert "callback=" in signed["url"]
    refused = put(v1, signed, body, {**signed["headers"], "Content-Type": "image/gif"})
    assert refused.status_code == 403, refused.text
    answer = put(v1, signed, body, signed["headers"])
    assert answer.status_code == 200, answer.text
    assert [r["key"] for r in v1.uploads(token)] == [signed["key"]]
