"""Multipart uploads from web/oss-upload.js in Chromium (DESIGN.md "Multipart uploads"): first
against routed fakes of the sign function and OSS (any answer on demand), then against the real
stack with 5 MiB parts (a 64 MiB file through random part failures, and a resume after a reload)."""

from __future__ import annotations

import base64
import datetime
import json
import random
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local.oss_emulator.crc64 import crc64
from tests.browser.conftest import StackFactory
from tests.browser.support import HARNESS_ORIGIN, Stack, json_route, sign_in, throttle
from tests.support.devstack import free_port

pytestmark = pytest.mark.browser

KiB = 1024
MiB = 1024 * KiB


def file_bytes(size: int, seed: int = 14) -> bytes:
    """Deterministic bytes in 1 MiB blocks, each block starting with its index: parts differ."""
    block = random.Random(seed).randbytes(MiB)  # noqa: S311 - test data, not secrets
    whole = b"".join(i.to_bytes(4, "big") + block[4:] for i in range(-(-size // MiB)))
    return whole[:size]


# The file of file_bytes(size), built in the page from its 1 MiB block.
MAKE_FILE = """([b64, size, name]) => {
  const block = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const blocks = [];
  for (let i = 0; i * block.length < size; i += 1) {
    const copy = block.slice(0, Math.min(block.length, size - i * block.length));
    new DataView(copy.buffer).setUint32(0, i);  // big-endian, as file_bytes
    blocks.push(copy);
  }
  return new File(blocks, name, { type: 'application/octet-stream', lastModified: 1700000000000 });
}"""


# --- routed: a fake sign function and OSS ------------------------------------------------------


@dataclass
class FakeMultipart:
    """/multipart on the routed origin and part PUTs to /oss; every request is kept."""

    part_size: int = 256 * KiB
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    puts: list[int] = field(default_factory=list)
    put_failures: dict[int, list[int]] = field(default_factory=dict)  # part → statuses to answer
    wrong_crc: set[int] = field(default_factory=set)  # parts whose first answer has a wrong CRC
    stall: set[int] = field(default_factory=set)  # parts whose first PUT is never answered
    lose_answer: set[int] = field(default_factory=set)  # parts stored, then the connection cut
    complete_answer: dict[str, Any] | None = None
    lose_complete_answer: bool = False  # complete, then cut the connection
    held: list[Any] = field(default_factory=list)
    hold_from: int | None = None  # hold PUTs of this part number and above
    put_types: list[str | None] = field(default_factory=list)
    tokens: set[str | None] = field(default_factory=set)

    def install(self, page: Any) -> None:
        page.route(re.compile(re.escape(HARNESS_ORIGIN) + r"/multipart(/.*)?$"), self.sign)
        page.route(f"{HARNESS_ORIGIN}/oss/**", self.oss)

    def sign(self, route: Any) -> None:
        request = route.request
        path = urllib.parse.urlsplit(request.url).path
        payload: Any = json.loads(request.post_data) if request.post_data else None
        self.calls.append((request.method, path, payload))
        self.tokens.add(request.headers.get("authorization"))
        upload_id, *action = path.split("/")[2:] or [None]  # after /multipart
        call = (request.method, *action)
        if upload_id is None:  # POST /multipart
            upload_id = f"UPLOAD{len(self.calls):04d}"
            key, size = f"uploads/alice/{upload_id}.bin", payload["size"]
            self.uploads[upload_id] = {"key": key, "size": size, "parts": {}}
            expire = int(datetime.datetime.now().timestamp()) + 3600
            layout = {"partSize": self.part_size, "partCount": -(-size // self.part_size)}
            json_route(200, {"uploadId": upload_id, "key": key, **layout, "expire": expire})(route)
            return
        upload = self.uploads.get(upload_id)
        if upload and "record" in upload:  # completed: only a Complete again answers (its record)
            found = call == ("POST", "complete")
            json_route(*((200, upload["record"]) if found else (404, {"code": "NotFound"})))(route)
        elif not upload:
            json_route(404, {"Status": "Error", "code": "NotFound", "message": "no"})(route)
        elif call == ("POST", "parts"):
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            query = f"uploadId={upload_id}&x-oss-date={now}&x-oss-expires=900"
            signed = [
                {
                    "partNumber": n,
                    "url": f"{HARNESS_ORIGIN}/oss/{upload['key']}?partNumber={n}&{query}"
                    f"&x-oss-signature={len(self.calls)}",
                    "headers": {},
                }
                for n in payload["partNumbers"]
            ]
            json_route(200, {"parts": signed, "expire": 0})(route)
        elif call == ("GET",):
            listed = [
                {"partNumber": n, "etag": '"E"', "size": len(data)}
                for n, data in sorted(upload["parts"].items())
            ]
            count = -(-upload["size"] // self.part_size)
            body = {"uploadId": upload_id, "key": upload["key"], "size": upload["size"]}
            body.update(partSize=self.part_size, partCount=count, parts=listed)
            json_route(200, body)(route)
        elif call == ("POST", "complete"):
            data = b"".join(data for _, data in sorted(upload["parts"].items()))
            upload["record"] = {"Status": "OK", "key": upload["key"], "size": len(data)}
            upload["record"]["crc64"] = str(crc64(data))
            if self.lose_complete_answer:
                route.abort("connectionreset")
            else:
                json_route(200, self.complete_answer or upload["record"])(route)
        elif call == ("DELETE",):
            del self.uploads[upload_id]
            route.fulfill(status=204, body="")
        else:
            json_route(400, {"Status": "Error", "code": "BadRequest", "message": path})(route)

    def oss(self, route: Any) -> None:
        request = route.request
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(request.url).query))
        n = int(query["partNumber"])
        self.puts.append(n)
        self.put_types.append(request.headers.get("content-type"))
        if (self.hold_from is not None and n >= self.hold_from) or n in self.stall:
            self.stall.discard(n)
            self.held.append(route)
            return
        self.serve(route)

    def serve(self, route: Any) -> None:
        request = route.request
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(request.url).query))
        n = int(query["partNumber"])
        failures = self.put_failures.get(n)
        if failures:
            status = failures.pop(0)
            body = f"<Error><Code>E{status}</Code><Message>try again</Message></Error>"
            route.fulfill(status=status, content_type="application/xml", body=body)
            return
        upload = self.uploads[query["uploadId"]]
        data = request.post_data_buffer or b""
        upload["parts"][n] = data
        if n in self.lose_answer:
            self.lose_answer.discard(n)
            route.abort("connectionreset")
            return
        stored_crc = crc64(data)
        if n in self.wrong_crc:  # as if the bytes had changed on the way
            self.wrong_crc.discard(n)
            stored_crc ^= 1
        headers = {"ETag": '"E"', "x-oss-hash-crc64ecma": str(stored_crc)}
        route.fulfill(status=200, headers=headers, body="")

    def release(self) -> None:
        """Answer the held PUTs and stop holding."""
        self.hold_from = None
        while self.held:
            self.serve(self.held.pop(0))


# Counts the PUTs the page has on the wire at once.
COUNT_IN_FLIGHT = """() => {
  const send = XMLHttpRequest.prototype.send;
  window.inFlight = 0;
  window.mostInFlight = 0;
  XMLHttpRequest.prototype.send = function (body) {
    window.inFlight += 1;
    window.mostInFlight = Math.max(window.mostInFlight, window.inFlight);
    // readystatechange (DONE) comes before load, whose handler may already send the next part
    this.addEventListener('readystatechange', () => { if (this.readyState === 4) window.inFlight -= 1; });
    return send.call(this, body);
  };
}"""

START = """async ([size, options, uploadOptions]) => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 1) bytes[i] = (i * 31 + (i >> 12)) & 0xff;
  window.file = new File([bytes], 'big.bin', { lastModified: 1700000000000 });
  window.uploader = window.oss.createUploader({
    signatureUrl: '/signature', getToken: () => 'token-of-alice', multipartThreshold: 0,
    retryDelayMs: 1, ...options });
  window.progress = [];
  window.resumed = [];
  window.controller = new AbortController();
  window.start('mp', window.uploader.upload(window.file, {
    onProgress: (p) => window.progress.push(p), onResume: (r) => window.resumed.push(r),
    signal: window.controller.signal, ...uploadOptions }));
}"""


def routed_bytes(size: int) -> bytes:
    return bytes((i * 31 + (i >> 12)) & 0xFF for i in range(size))


def start(page: Any, size: int, options: dict[str, Any] | None = None, **upload: Any) -> None:
    page.evaluate(START, [size, options or {}, upload])


def again(page: Any) -> None:
    """The same file again, by the same uploader (a resume, when the upload is still open)."""
    page.evaluate(
        """() => window.start('mp', window.uploader.upload(window.file, {
             onResume: (r) => window.resumed.push(r) }))"""
    )


def outcome(page: Any) -> dict[str, Any]:
    page.wait_for_function("window.results.mp.state !== 'pending'")
    return dict(page.evaluate("window.results.mp"))


def test_crc64_is_the_one_oss_computes(harness: Any) -> None:
    """The check value, the empty string, a Blob read in several slices, pieces combined."""
    size = 4 * MiB + 5  # blobCrc64 reads 4 MiB at a time
    script = """async (args) => {
      const { Crc64, crc64, combine } = await import('/crc64.js');
      const file = (MAKE_FILE)(args);
      const bytes = new Uint8Array(await file.arrayBuffer());
      const check = crc64(new TextEncoder().encode('123456789'));
      const whole = await window.oss.blobCrc64(file);
      const cut = 3 * 1024 * 1024 + 3;
      const joined = combine(crc64(bytes.subarray(0, cut)), crc64(bytes.subarray(cut)),
                             bytes.length - cut);
      const running = new Crc64().update(bytes.subarray(0, 7)).update(bytes.subarray(7)).value;
      return { check, empty: crc64(new Uint8Array()), whole, joined, running };
    }"""
    block = base64.b64encode(file_bytes(MiB)).decode()
    got = harness.evaluate(script.replace("MAKE_FILE", MAKE_FILE), [block, size, "a.bin"])
    expected = str(crc64(file_bytes(size)))
    assert got == {
        "check": str(0x995DC9BBDF1939FA),
        "empty": "0",
        "whole": expected,
        "joined": expected,
        "running": expected,
    }


def test_threshold_chooses_multipart_and_options_are_checked(harness: Any) -> None:
    chosen = harness.evaluate(
        """() => [[100, 100], [101, 100], [0, 0], [1, 0], [5 * 2 ** 30 + 1, Infinity],
                  [5 * 2 ** 30, Infinity], [200 * 2 ** 20, undefined]].map(
          ([size, threshold]) => window.oss.usesMultipart(size, threshold))"""
    )
    assert chosen == [False, True, False, True, True, False, True]
    refused = harness.evaluate(
        """async () => {
          const out = [];
          for (const options of [{ signatureUrl: undefined }, { concurrency: 0 },
              { partConcurrency: 0 }, { partRetries: -1 }, { multipartThreshold: -1 }]) {
            try { window.oss.createUploader({ signatureUrl: '/s', ...options }); out.push('accepted'); }
            catch (error) { out.push(`${error.constructor.name}: ${error.message}`); }
          }
          const uploader = window.oss.createUploader({ signatureUrl: '/s' });
          try { await uploader.upload('not a file'); } catch (error) { out.push(error.constructor.name); }
          return out;
        }"""
    )
    assert refused == [
        "TypeError: createUploader: signatureUrl is required",
        "TypeError: createUploader: concurrency must be an integer ≥ 1",
        "TypeError: createUploader: partConcurrency must be an integer ≥ 1",
        "TypeError: createUploader: partRetries must be an integer ≥ 0",
        "TypeError: createUploader: multipartThreshold must be a number ≥ 0",
        "TypeError",
    ]


def test_parts_in_flight_batches_progress_and_record(harness: Any) -> None:
    fake = FakeMultipart(hold_from=1)
    fake.install(harness)
    harness.evaluate(COUNT_IN_FLIGHT)
    size = 10 * fake.part_size + 1000  # 11 parts, the last one short
    start(harness, size, {"partConcurrency": 3}, path="big")
    harness.wait_for_function("window.inFlight === 3")  # three parts on the wire, all held
    fake.release()
    result = outcome(harness)
    assert result["state"] == "fulfilled", result
    [upload] = fake.uploads.values()
    stored = b"".join(data for _, data in sorted(upload["parts"].items()))
    assert stored == routed_bytes(size)
    assert result["value"]["key"] == upload["key"]
    assert fake.calls[0] == (
        "POST",
        "/multipart",
        {"path": "big", "filename": "big.bin", "size": size},
    )
    batches = [
        payload["partNumbers"] for method, path, payload in fake.calls if path.endswith("/parts")
    ]
    assert sorted(n for batch in batches for n in batch) == list(range(1, 12))  # each signed once
    assert all(len(batch) <= 16 for batch in batches)
    assert fake.calls[-1][:2] == ("POST", f"/multipart/{next(iter(fake.uploads))}/complete")
    assert sorted(fake.puts) == list(range(1, 12))
    assert harness.evaluate("window.mostInFlight") == 3
    assert set(fake.put_types) == {None}  # a Blob slice without a type: no Content-Type
    assert fake.tokens == {"Bearer token-of-alice"}
    progress = harness.evaluate("window.progress")
    done = {"loaded": size, "total": size, "fraction": 1, "partsDone": 11, "partCount": 11}
    assert progress[-1] == done
    assert [p["partsDone"] for p in progress] == sorted(p["partsDone"] for p in progress)
    # A finished upload leaves nothing to resume.
    assert harness.evaluate("Object.keys(localStorage)") == []


@pytest.mark.parametrize(
    ("fake", "parts", "options", "sent"),
    [
        (
            FakeMultipart(put_failures={2: [403], 3: [500, 503]}),
            4,
            {},
            ([1, 2, 2, 3, 3, 3, 4], [[2]]),
        ),
        (FakeMultipart(wrong_crc={2}), 3, {}, ([1, 2, 2, 3], [])),
        (FakeMultipart(stall={1}), 2, {"stallTimeoutMs": 300}, ([1, 1, 2], [])),
    ],
    ids=["refused-url-and-server-errors", "stored-with-another-crc64", "stalled"],
)
def test_a_part_refused_failed_stored_wrong_or_stalled_is_sent_again(
    harness: Any,
    fake: FakeMultipart,
    parts: int,
    options: dict[str, Any],
    sent: tuple[list[int], list[list[int]]],
) -> None:
    """Every failed part is retried until it lands (`sent`: the PUTs, then the parts signed
    again after the first batch: only a refused URL, 403, is)."""
    fake.install(harness)
    start(harness, parts * fake.part_size, options)
    assert outcome(harness)["state"] == "fulfilled"
    batches = [payload["partNumbers"] for _, path, payload in fake.calls if path.endswith("/parts")]
    assert (sorted(fake.puts), batches[1:]) == sent


@pytest.mark.parametrize(
    ("fake", "parts", "options", "failed"),
    [
        (
            FakeMultipart(put_failures={3: [500] * 3}),
            4,
            {"partRetries": 2},
            {"partNumber": 3, "attempts": 3, "status": 500, "code": "E500"},
        ),
        # OSS lists part 2, but its answer never arrived: a resume does not trust it.
        (FakeMultipart(lose_answer={2}), 3, {"partRetries": 0}, {"partNumber": 2}),
    ],
    ids=["a-part-keeps-failing", "a-parts-answer-is-lost"],
)
def test_a_part_that_fails_for_good_gives_up_and_the_file_resumes(
    harness: Any,
    fake: FakeMultipart,
    parts: int,
    options: dict[str, Any],
    failed: dict[str, Any],
) -> None:
    fake.install(harness)
    start(harness, parts * fake.part_size, {**options, "partConcurrency": 1})
    error = outcome(harness)["error"]
    assert (error["kind"], error["cls"]) == ("part-failed", "PartUploadError")
    assert {name: error.get(name) for name in failed} == failed
    [upload_id] = fake.uploads  # not aborted: it can resume
    assert sorted(fake.uploads[upload_id]["parts"]) == [1, 2]
    fake.puts.clear()
    # The same file again (same name, size, lastModified, user): only the parts OSS lacks or
    # the page never saw acknowledged are sent.
    again(harness)
    assert outcome(harness)["state"] == "fulfilled"
    done = failed["partNumber"] - 1
    assert fake.puts == list(range(done + 1, parts + 1))
    resumed = {"uploadId": upload_id, "key": error["key"], "partsDone": done}
    resumed.update(partCount=parts, bytesDone=done * fake.part_size)
    assert harness.evaluate("window.resumed") == [resumed]
    assert [c[:2] for c in fake.calls].count(("POST", "/multipart")) == 1


def test_an_upload_gone_from_the_server_starts_afresh(harness: Any) -> None:
    fake = FakeMultipart(put_failures={2: [500]})
    fake.install(harness)
    start(harness, 2 * fake.part_size, {"partRetries": 0})
    assert outcome(harness)["error"]["kind"] == "part-failed"
    fake.uploads.clear()  # aborted by the sweeper meanwhile
    again(harness)
    assert outcome(harness)["state"] == "fulfilled"
    methods = [c[:2] for c in fake.calls]
    assert methods.count(("POST", "/multipart")) == 2
    assert ("GET", "/multipart/UPLOAD0001") in methods


def test_a_complete_whose_answer_was_lost_is_not_uploaded_twice(harness: Any) -> None:
    fake = FakeMultipart(lose_complete_answer=True)
    fake.install(harness)
    start(harness, 2 * fake.part_size)
    error = outcome(harness)["error"]
    assert (error["kind"], error["stage"]) == ("network", "upload")
    fake.puts.clear()
    again(harness)
    result = outcome(harness)
    [upload] = fake.uploads.values()
    assert result["value"] == upload["record"]  # the earlier upload's record
    assert fake.puts == []
    assert [c[:2] for c in fake.calls].count(("POST", "/multipart")) == 1
    assert harness.evaluate("Object.keys(localStorage)") == []


def test_abort_stops_the_parts_and_aborts_on_the_server(harness: Any) -> None:
    fake = FakeMultipart(hold_from=3)
    fake.install(harness)
    start(harness, 6 * fake.part_size, {"partConcurrency": 2})
    harness.wait_for_function("window.progress.some((p) => p.partsDone === 2)")
    [upload_id] = fake.uploads
    harness.evaluate("window.controller.abort()")
    error = outcome(harness)["error"]
    assert (error["kind"], error["name"]) == ("aborted", "AbortError")
    assert fake.uploads == {}
    assert ("DELETE", f"/multipart/{upload_id}") in [c[:2] for c in fake.calls]
    assert harness.evaluate("Object.keys(localStorage)") == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            {"Status": "Rejected", "code": "ContentRejected", "message": "not a zip"},
            {"kind": "refused", "cls": "UploadRefusedError", "code": "ContentRejected"},
        ),
        (
            {"Status": "Rejected", "code": "QuotaExceeded", "message": "full"},
            {"kind": "quota", "cls": "QuotaExceededError", "stage": "upload"},
        ),
        (
            {"Status": "OK", "key": "uploads/alice/x.bin", "size": 1, "crc64": "12345"},
            {"kind": "integrity", "cls": "IntegrityError", "actual": "12345"},
        ),
    ],
    ids=["content-rejected", "quota", "crc64-differs"],
)
def test_complete_answers_become_the_postobject_error_kinds(
    harness: Any, answer: dict[str, Any], expected: dict[str, Any]
) -> None:
    fake = FakeMultipart(complete_answer=answer)
    fake.install(harness)
    start(harness, 2 * fake.part_size)
    error = outcome(harness)["error"]
    assert {name: error.get(name) for name in expected} == expected
    if expected["kind"] == "integrity":
        assert error["expected"] == str(crc64(routed_bytes(2 * fake.part_size)))


# --- the real stack: sign function, OSS emulator and callback, 5 MiB parts ---------------------

PART = 5 * MiB
BIG = 64 * MiB  # 13 parts: 12 of 5 MiB and one of 4 MiB
PARTS = -(-BIG // PART)


@pytest.fixture(scope="module")
def stack(stack_factory: StackFactory) -> Stack:
    return stack_factory(MULTIPART_PART_BYTES=str(PART), UPLOAD_MAX_BYTES=str(2 * BIG))


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The 64 MiB file on disk (Chromium reads it as a user's file) and its CRC-64."""
    data = file_bytes(BIG)
    path = tmp_path_factory.mktemp("big") / "film.bin"
    path.write_bytes(data)
    return path, str(crc64(data))


def sign_in_for_parts(page: Any, stack: Stack, user: str) -> None:
    """The demo page, signed in, sending files above 16 MiB in parts."""
    sign_in(page, stack, user)
    page.get_by_label("Send in parts (resumable) above").fill("16")


def part_puts(page: Any, stack: Stack) -> list[int]:
    """The part number of every UploadPart the page sends to the emulator, as it sends it."""
    sent: list[int] = []

    def on_request(request: Any) -> None:
        if request.method == "PUT" and request.url.startswith(stack.oss_url):
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(request.url).query))
            sent.append(int(query["partNumber"]))

    page.on("request", on_request)
    return sent


def choose(page: Any, path: Path) -> Any:
    page.get_by_label("Choose files, or drop them here").set_input_files(str(path))
    return page.locator(f"#queue li[data-name='{path.name}']").last


# In the page: about three part PUTs in ten (a seeded choice) go to a port nothing listens on,
# so they fail on the network as a dropped connection does, before reaching the emulator.
# (Playwright's routing would do the same, but once a page is routed Chromium copies every
# upload body through the driver: seconds per 64 MiB on two shared cores.)
CUT_SOME_PUTS = """(deadUrl) => {
  let x = 1414;
  const chance = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) / 2 ** 32; };
  window.cut = [];
  window.partCrcs = [];  // what the page may read of each stored part's CRC-64 (bucket CORS)
  const open = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    if (method === 'PUT' && /[?&]partNumber=/.test(url) && chance() < 0.3) {
      window.cut.push(Number(new URL(url).searchParams.get('partNumber')));
      return open.call(this, method, deadUrl, ...rest);
    }
    if (method === 'PUT') {
      this.addEventListener('load', () =>
        window.partCrcs.push(this.getResponseHeader('x-oss-hash-crc64ecma')));
    }
    return open.call(this, method, url, ...rest);
  };
}"""


@pytest.mark.e2e
def test_a_64_mib_file_with_random_part_failures_gives_one_record_byte_for_byte(
    page: Any, stack: Stack, big_file: tuple[Path, str]
) -> None:
    """Parts fail at random; each is retried until it lands (short delays here: the client's
    default starts at a second) and the upload ends with one record of the right bytes."""
    _, expected_crc = big_file
    token = stack.token("mp-flaky")
    page.goto(stack.app_url + "/")
    page.evaluate(CUT_SOME_PUTS, f"http://127.0.0.1:{free_port()}/cut")
    puts = part_puts(page, stack)
    block = base64.b64encode(file_bytes(MiB)).decode()
    upload = """async ([args, token]) => {
      const { createUploader } = await import('/oss-upload.js');
      const file = (MAKE_FILE)(args);
      const uploader = createUploader({ signatureUrl: '/signature', getToken: () => token,
        multipartThreshold: 16 * 1024 * 1024, retryDelayMs: 20, partRetries: 8 });
      return uploader.upload(file, { path: 'flaky' });
    }"""
    record = page.evaluate(
        upload.replace("MAKE_FILE", MAKE_FILE), [[block, BIG, "film.bin"], token]
    )
    cut = page.evaluate("window.cut")
    assert cut  # some parts did fail, at least once
    assert sorted(puts) == list(range(1, PARTS + 1))  # each reached the emulator once
    crcs = page.evaluate("window.partCrcs")
    assert len(crcs) == PARTS
    assert all(crcs)  # exposed: the client compared every part's CRC-64 with its own
    [stored] = stack.uploads(token)
    assert (stored["key"], stored["fileName"]) == (record["key"], "film.bin")
    assert re.fullmatch(r"uploads/mp-flaky/flaky/[^/]+\.bin", record["key"])
    assert (stored["size"], stored["crc64"], record["crc64"]) == (BIG, expected_crc, expected_crc)
    # The object's CRC-64 (the emulator's) is the file's, as the record says and the page checked.
    head = stack.owner_bucket().head_object(record["key"])
    assert (head.headers["x-oss-hash-crc64ecma"], head.content_length) == (expected_crc, BIG)
    assert stack.open_uploads("uploads/mp-flaky/") == []


SOME_PARTS_DONE = (
    "/[1-9][0-9]* of 13 parts/.test(document.querySelector('#queue li .state').textContent)"
)


@pytest.mark.e2e
def test_a_reload_mid_upload_resumes_with_only_the_missing_parts(
    page: Any, stack: Stack, big_file: tuple[Path, str]
) -> None:
    path, expected_crc = big_file
    sign_in_for_parts(page, stack, "mp-resume")
    cdp = throttle(page, 16 * MiB)
    puts = part_puts(page, stack)
    choose(page, path)
    page.wait_for_function(SOME_PARTS_DONE)
    page.reload()  # parts still on the wire are cut off
    throttle(page, -1)
    cdp.detach()
    before = list(puts)
    [(key, upload_id)] = stack.open_uploads("uploads/mp-resume/")
    stored = [part.part_number for part in stack.owner_bucket().list_parts(key, upload_id).parts]
    assert 0 < len(stored) < PARTS
    sign_in_for_parts(page, stack, "mp-resume")
    row = choose(page, path)
    assert row.get_attribute("data-multipart") == "true"
    row.locator("xpath=self::*[@data-state='done' or @data-state='failed']").wait_for(
        timeout=120_000
    )
    assert row.get_attribute("data-state") == "done", row.inner_text()
    assert row.get_attribute("data-key") == key
    assert row.locator("progress").evaluate("p => p.value") == 100
    resumed = int(str(row.get_attribute("data-resumed")))
    note = f"Resuming an earlier upload ({resumed} of 13 parts already there)."
    assert note in row.inner_text()
    # The parts the page saw OSS acknowledge (a part whose answer was cut off by the reload is
    # not trusted, and is sent again).
    assert 0 < resumed <= len(stored)
    after = puts[len(before) :]
    assert len(after) == len(set(after)) == PARTS - resumed  # only the missing parts, each once
    assert set(range(1, PARTS + 1)) - set(after) <= set(stored)  # what was skipped, OSS had
    [record] = stack.uploads(stack.token("mp-resume"))
    assert (record["key"], record["size"], record["crc64"]) == (key, BIG, expected_crc)
    assert stack.open_uploads("uploads/mp-resume/") == []
