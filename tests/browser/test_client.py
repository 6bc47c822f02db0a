"""web/oss-upload.js in Chromium; Playwright routes play the sign function and OSS (no sockets),
so the form the browser sends is read back and any OSS answer (protocol §7) can be produced."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.browser.support import (
    HARNESS_ORIGIN,
    FakeSign,
    json_route,
    multipart_fields,
    oss_error_route,
    oss_error_xml,
    record_for,
    sign_error,
)
from tests.samples import png

pytestmark = pytest.mark.browser


class FakeOss:
    """OSS PostObject at /oss: the queued route handlers answer, then the callback's record."""

    def __init__(self, *answers: Any, hold: bool = False) -> None:
        self.answers = list(answers)
        self.forms: list[list[tuple[str, bytes, str | None]]] = []
        self.hold = hold
        self.held: list[Any] = []

    def __call__(self, route: Any) -> None:
        request = route.request
        parts = multipart_fields(request.headers["content-type"], request.post_data_buffer or b"")
        self.forms.append(parts)
        answer = self.answers.pop(0) if self.answers else json_route(200, record_for(parts))
        if self.hold:
            self.held.append((route, answer))
        else:
            answer(route)

    def release(self) -> None:
        route, answer = self.held.pop(0)
        answer(route)


def install(page: Any, sign: FakeSign, oss: FakeOss | None = None) -> tuple[FakeSign, FakeOss]:
    """Route the sign function and OSS PostObject (by default answering the callback's record)."""
    oss = oss or FakeOss()
    page.route(f"{HARNESS_ORIGIN}/signature*", sign)
    page.route(f"{HARNESS_ORIGIN}/oss", oss)
    return sign, oss


def start_uploads(page: Any, uploads: list[dict[str, Any]], options: dict[str, Any]) -> None:
    """Create one uploader with `options` and start each upload (name, size, type, path, abort)."""
    page.evaluate(
        """([uploads, options]) => {
          const uploader = window.oss.createUploader({
            signatureUrl: '/signature', getToken: () => 'token-of-alice', ...options });
          window.controllers = {};
          for (const u of uploads) {
            const file = new File([new Uint8Array(u.size).fill(7)], u.name, { type: u.type || '' });
            const controller = new AbortController();
            window.controllers[u.id] = controller;
            if (u.abortFirst) controller.abort();
            window.start(u.id, uploader.upload(file, { path: u.path || '', signal: controller.signal }));
          }
        }""",
        [uploads, options],
    )


def outcome(page: Any, name: str) -> dict[str, Any]:
    page.wait_for_function("(name) => window.results[name].state !== 'pending'", arg=name)
    return dict(page.evaluate("(name) => window.results[name]", name))


def upload_one(page: Any, options: dict[str, Any] | None = None, **file: Any) -> dict[str, Any]:
    spec = {"id": "one", "name": "photo.png", "size": 10, "type": "image/png", **file}
    start_uploads(page, [spec], options or {})
    return outcome(page, "one")


def test_form_is_key_then_fields_in_order_then_file(harness: Any) -> None:
    sign, oss = install(harness, FakeSign())
    result = harness.evaluate(
        """async (png) => {
          const uploader = window.oss.createUploader({
            signatureUrl: '/signature', getToken: async () => 'token-of-alice' });
          const file = new File([new Uint8Array(png)], 'Holiday.PNG', { type: 'image/png' });
          return uploader.upload(file, { path: 'avatars/' });
        }""",
        list(png()),
    )
    [parts] = oss.forms
    names = [name for name, _, _ in parts]
    assert names == ["key", *sign.fields().keys(), "file"]
    values = {name: value for name, value, _ in parts}
    for name, value in sign.fields().items():
        if name != "policy":
            assert values[name].decode() == value
    key = values["key"].decode()
    assert key.startswith(sign.dir)
    assert key.endswith(".png")
    assert len(key) == len(sign.dir) + 36 + len(".png")  # dir + UUID + extension
    assert values["file"] == png()
    assert parts[-1][2] == "Holiday.PNG"
    assert result == record_for(parts)  # resolves to the callback's JSON, as OSS passed it
    assert sign.requests == [{"path": "avatars/"}]
    assert sign.headers[0]["authorization"] == "Bearer token-of-alice"


def test_prefix_grant_is_cached_per_path_and_shared_by_parallel_uploads(harness: Any) -> None:
    sign, _ = install(harness, FakeSign())
    uploads = [
        {"id": "a", "name": "a.txt", "size": 3, "path": "docs"},
        {"id": "b", "name": "b.txt", "size": 3, "path": "docs/"},
        {"id": "c", "name": "c.txt", "size": 3, "path": "other"},
    ]
    start_uploads(harness, uploads, {"concurrency": 3})
    assert all(outcome(harness, u["id"])["state"] == "fulfilled" for u in uploads)
    # 'docs' and 'docs/' are one folder: one grant for both; 'other' needs its own.
    assert sorted(r["path"] for r in sign.requests) == ["docs", "other"]
    start_uploads(harness, [{"id": "d", "name": "d.txt", "size": 3, "path": "docs"}], {})
    assert outcome(harness, "d")["state"] == "fulfilled"
    assert len(sign.requests) == 3  # a new uploader has its own cache


@pytest.mark.parametrize(
    ("ttl", "elapsed"),
    [
        pytest.param(300, (0, 260, 275), id="renewed-30-s-before-expiry"),
        pytest.param(20, (0, 9, 11), id="short-lived-kept-half-its-life"),
    ],
)
def test_cached_grant_is_renewed_shortly_before_it_expires(
    harness: Any, ttl: int, elapsed: tuple[int, ...]
) -> None:
    """Reused while more than min(30 s, half its life) remain, then renewed."""
    sign, _ = install(harness, FakeSign(ttl=ttl))
    harness.evaluate(
        """() => {
          window.clock = Date.now();
          window.uploader = window.oss.createUploader({
            signatureUrl: '/signature', now: () => window.clock });
          window.send = () => window.uploader.upload(new File(['abc'], 'a.txt'));
        }"""
    )
    grants_after = []
    for seconds in elapsed:  # seconds after the grant was issued
        harness.evaluate(
            f"async () => {{ window.clock += {seconds} * 1000; await window.send(); }}"
        )
        grants_after.append(len(sign.requests))
        harness.evaluate(f"() => {{ window.clock -= {seconds} * 1000; }}")
    assert grants_after == [1, 1, 2]


def test_exact_keys_ask_a_grant_per_file(harness: Any) -> None:
    sign, oss = install(harness, FakeSign())
    uploads = [
        {"id": "a", "name": "scan.pdf", "size": 1234, "type": "application/pdf", "path": "in"},
        {"id": "b", "name": "notes", "size": 5, "path": "in"},
    ]
    start_uploads(harness, uploads, {"exactKeys": True, "concurrency": 1})
    records = [outcome(harness, u["id"])["value"] for u in uploads]
    assert sign.requests == [
        {"path": "in", "filename": "scan.pdf", "size": "1234", "type": "application/pdf"},
        {"path": "in", "filename": "notes", "size": "5"},
    ]
    assert [r["key"] for r in records] == ["uploads/alice/0001.pdf", "uploads/alice/0002.notes"]
    first = dict((name, value) for name, value, _ in oss.forms[0])
    assert first["key"] == b"uploads/alice/0001.pdf"
    assert first["Content-Type"] == b"application/pdf"


EXPIRED = oss_error_route(403, "AccessDenied", "Invalid according to Policy: Policy expired.")


def test_policy_expired_refreshes_the_grant_once(harness: Any) -> None:
    sign, oss = install(harness, FakeSign(), FakeOss(EXPIRED))
    result = upload_one(harness)
    assert result["state"] == "fulfilled"
    assert len(sign.requests) == 2
    assert len(oss.forms) == 2
    policies = [dict((n, v) for n, v, _ in form)["policy"] for form in oss.forms]
    assert policies[0] != policies[1]  # the retry carries the fresh grant


CONDITION = 'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "u/"]'
REQUEST_ID = {"requestId": "5C3D8A1E0000000000000001"}


def callback_rejects(code: str) -> Any:
    return json_route(200, {"Status": "Rejected", "code": code, "message": "not kept"})


def answer_status(status: int, body: str = "") -> Any:
    return lambda route: route.fulfill(status=status, body=body)


REJECTED = ("rejected", "UploadRejectedError")
NOT_RECORDED = ("not-recorded", "NotRecordedError")
# OSS's answer (to every POST) → the error's kind, class, code and status; other fields.
OSS_ANSWERS = {
    "policy-expired-twice-is-refreshed-once": (EXPIRED, (*REJECTED, "AccessDenied", 403), {}),
    "other-access-denied-is-not-retried": (
        oss_error_route(403, "AccessDenied", CONDITION),
        (*REJECTED, "AccessDenied", 403),
        {"serverMessage": CONDITION, **REQUEST_ID},  # XML entities decoded, text intact
    ),
    "203-callback-failed": (
        oss_error_route(203, "CallbackFailed", "Error status : 503."),
        (*NOT_RECORDED, "CallbackFailed", 203),
        REQUEST_ID,
    ),
    "400-entity-too-large": (
        oss_error_route(400, "EntityTooLarge"),
        (*REJECTED, "EntityTooLarge", 400),
        {},
    ),
    "403-signature": (
        oss_error_route(403, "SignatureDoesNotMatch"),
        (*REJECTED, "SignatureDoesNotMatch", 403),
        {},
    ),
    "204-no-callback-answer": (answer_status(204), (*NOT_RECORDED, "HTTP204", 204), {}),
    "502-not-xml": (answer_status(502, "<html>bad</html>"), (*REJECTED, "HTTP502", 502), {}),
    "connection-reset": (
        lambda route: route.abort("connectionreset"),
        ("network", "NetworkError", None, None),
        {"stage": "upload"},
    ),
    "callback-over-the-quota": (
        callback_rejects("QuotaExceeded"),
        ("quota", "QuotaExceededError", "QuotaExceeded", 200),
        {"stage": "upload"},
    ),
    "callback-refused-the-content": (
        callback_rejects("ContentRejected"),
        ("refused", "UploadRefusedError", "ContentRejected", 200),
        {},
    ),
}


@pytest.mark.parametrize(("answer", "expected", "details"), OSS_ANSWERS.values(), ids=OSS_ANSWERS)
def test_oss_answers_become_distinct_errors(
    harness: Any,
    answer: Any,
    expected: tuple[str, str, str | None, int | None],
    details: dict[str, str],
) -> None:
    _, oss = install(harness, FakeSign(), FakeOss(answer, answer))
    result = upload_one(harness)
    assert result["state"] == "rejected"
    error = result["error"]
    assert (error["kind"], error["cls"], error.get("code"), error.get("status")) == expected
    assert {name: error.get(name) for name in details} == details
    assert error["isUploadError"]
    assert len(oss.forms) == (2 if answer is EXPIRED else 1)  # only an expired policy is retried
    says = "not kept" if error["kind"] in ("quota", "refused") else error.get("code")
    if says is not None:
        assert says in error["message"]
    if error["kind"] == "not-recorded":
        assert error["key"].startswith("uploads/alice/")  # the object is stored under this key


# The sign function's answer → the error's kind, class, code and status; other fields; message.
GRANT_ANSWERS = {
    "refused": (
        sign_error(401, "Unauthorized", "token expired"),
        ("grant", "GrantError", "Unauthorized", 401),
        {},
        "token expired",
    ),
    "network": (
        lambda route: route.abort("connectionrefused"),
        ("network", "NetworkError", None, None),
        {"stage": "grant"},
        "permission",
    ),
    "malformed": (
        json_route(200, '{"host": 1}'),
        ("grant", "GrantError", "MalformedGrant", 200),
        {},
        "lacks host",
    ),
    "over-the-quota": (
        sign_error(403, "QuotaExceeded", "quota of 1000 bytes"),
        ("quota", "QuotaExceededError", "QuotaExceeded", 403),
        {"stage": "grant"},
        "quota of 1000 bytes",
    ),
    "rate-limited": (
        sign_error(429, "TooManyRequests", "slow down", **{"Retry-After": "17"}),
        ("rate-limited", "TooManyRequestsError", "TooManyRequests", 429),
        {"retryAfter": 17},
        "try again in 17 s",
    ),
}


@pytest.mark.parametrize(
    ("answer", "expected", "details", "says"), GRANT_ANSWERS.values(), ids=GRANT_ANSWERS
)
def test_grant_failures_become_distinct_errors(
    harness: Any,
    answer: Any,
    expected: tuple[str, str, str | None, int | None],
    details: dict[str, Any],
    says: str,
) -> None:
    sign, oss = install(harness, FakeSign(failure=answer))
    # Two uploads, one after the other, by one uploader: a failed grant is not cached.
    start_uploads(
        harness, [{"id": n, "name": "a.png", "size": 10} for n in "12"], {"concurrency": 1}
    )
    error = outcome(harness, "1")["error"]
    assert (error["kind"], error["cls"], error.get("code"), error.get("status")) == expected
    assert {name: error.get(name) for name in details} == details
    assert error["isUploadError"]
    assert says in error["message"]
    if error["kind"] == "rate-limited":
        now_ms = harness.evaluate("Date.now()")
        assert now_ms < error["retryAt"] <= now_ms + 17_000
    assert outcome(harness, "2")["state"] == "rejected"
    assert oss.forms == []
    assert len(sign.requests) == 2  # the second upload asked again


def test_concurrency_limit_holds(harness: Any) -> None:
    _, oss = install(harness, FakeSign(), FakeOss(hold=True))
    uploads = [{"id": f"u{i}", "name": f"{i}.txt", "size": 4} for i in range(5)]
    start_uploads(harness, uploads, {"concurrency": 2})
    harness.wait_for_timeout(300)
    assert len(oss.held) == 2  # two in flight, three waiting
    oss.release()
    harness.wait_for_timeout(300)
    assert len(oss.held) == 2  # one finished, one more started
    while oss.held:
        oss.release()
        harness.wait_for_timeout(100)
    assert [outcome(harness, u["id"])["state"] for u in uploads] == ["fulfilled"] * 5
    assert len(oss.forms) == 5


def test_abort_before_start_while_queued_and_in_flight(harness: Any) -> None:
    _, oss = install(harness, FakeSign(), FakeOss(hold=True))
    uploads = [
        {"id": "early", "name": "e.txt", "size": 4, "abortFirst": True},
        {"id": "flying", "name": "f.txt", "size": 4},
        {"id": "queued", "name": "q.txt", "size": 4},
    ]
    start_uploads(harness, uploads, {"concurrency": 1})
    assert outcome(harness, "early")["error"]["kind"] == "aborted"
    harness.wait_for_timeout(300)
    assert len(oss.held) == 1  # "flying" is on the wire, "queued" waits
    harness.evaluate("window.controllers.queued.abort()")
    queued = outcome(harness, "queued")["error"]
    assert (queued["kind"], queued["name"]) == ("aborted", "AbortError")
    harness.evaluate("window.controllers.flying.abort()")
    assert outcome(harness, "flying")["error"]["kind"] == "aborted"
    assert len(oss.forms) == 1  # the aborted ones never reached OSS


_xml_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r"),
    max_size=80,
).map(str.strip)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(code=st.from_regex(r"[A-Za-z]{1,30}", fullmatch=True), message=_xml_text)
def test_oss_error_parsing_round_trips(harness: Any, code: str, message: str) -> None:
    """Whatever OSS puts in Code/Message comes back verbatim, with DOMParser and without it."""
    xml = oss_error_xml(code, message)
    parsed = harness.evaluate(
        """(xml) => {
          const withDom = window.oss.parseOssError(xml);
          const saved = window.DOMParser;
          window.DOMParser = undefined;
          try { return [withDom, window.oss.parseOssError(xml)]; }
          finally { window.DOMParser = saved; }
        }""",
        xml,
    )
    expected = {"code": code, "message": message, "requestId": "5C3D8A1E0000000000000001"}
    assert parsed == [expected, expected]


def test_quota_is_read_beside_the_signature_with_the_token(harness: Any) -> None:
    seen: list[dict[str, str]] = []
    quota = {
        "bytes": {"used": 10, "reserved": 5, "limit": 100},
        "files": {"used": 1, "reserved": 1, "limit": None},
    }

    def answer(route: Any) -> None:
        seen.append({"url": route.request.url, **route.request.headers})
        route.fulfill(status=200, content_type="application/json", body=json.dumps(quota))

    harness.route(f"{HARNESS_ORIGIN}/api/quota*", answer)
    got = harness.evaluate(
        """() => window.oss.createUploader({
            signatureUrl: '/api/signature', getToken: () => 'token-of-alice' }).quota()"""
    )
    assert got == quota
    assert seen[0]["url"] == f"{HARNESS_ORIGIN}/api/quota"
    assert seen[0]["authorization"] == "Bearer token-of-alice"


# --- one upload: getUpload, deleteUpload, fresh URLs (issue 16) --------------------------------


def test_get_delete_and_fresh_urls(harness: Any) -> None:
    """Keys are sent segment by segment percent-encoded; errors are ApiErrors with our code; a
    record whose URL is about to expire is re-read, one that is not is kept as it is."""
    key = "uploads/alice/a b+é.png"
    calls: list[tuple[str, str]] = []
    url = f"{HARNESS_ORIGIN}/oss/x?x-oss-date=20270115T080000Z&x-oss-expires=300"  # 1.8e12 ms
    record = {"key": key, "url": url, "thumbnailUrl": url + "&x-oss-process=image"}

    def one(route: Any) -> None:
        request = route.request
        calls.append((request.method, request.url.split("/uploads/", 1)[1]))
        assert request.headers["authorization"] == "Bearer t0k"
        if "missing" in request.url:
            sign_error(404, "NotFound", "no such upload")(route)
        elif request.method == "DELETE":
            route.fulfill(status=204, body="")
        else:
            json_route(200, record)(route)

    harness.route(f"{HARNESS_ORIGIN}/uploads/**", one)
    result = harness.evaluate(
        """async (key) => {
          const clock = { now: 1_800_000_000_000 };
          const api = window.oss.createUploader({
            signatureUrl: '/signature', getToken: () => 't0k', now: () => clock.now });
          const got = await api.getUpload(key);
          const kept = await api.fresh(got);
          clock.now += 280_000;  // 20 s left: under the 30 s margin
          const renewed = await api.fresh(got);
          await api.deleteUpload(key);
          let error = null;
          try { await api.deleteUpload('uploads/alice/missing.png'); }
          catch (e) { error = { kind: e.kind, status: e.status, code: e.code, name: e.name }; }
          return { same: kept === got, renewed: renewed !== got,
                   expires: window.oss.urlExpiresAt(got.url), error };
        }""",
        key,
    )
    encoded = "uploads/alice/a%20b%2B%C3%A9.png"
    assert calls == [
        ("GET", encoded),
        ("GET", encoded),
        ("DELETE", encoded),
        ("DELETE", "uploads/alice/missing.png"),
    ]
    assert result["same"] is True
    assert result["renewed"] is True
    assert result["expires"] == 1_800_000_000_000 + 300_000
    assert result["error"] == {"kind": "api", "status": 404, "code": "NotFound", "name": "ApiError"}
