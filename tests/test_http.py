"""The two Function Compute adapters over one core: what reaches the core, what goes back."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest

from shared import errors
from shared.callback.headers import canonical_base64_header
from shared.http import Request, Response, json_response
from shared.http.fc2 import request_from_environ, wsgi_adapter
from shared.http.fc3 import event_adapter, request_from_event
from tests.support import fc


def environ(
    path: str = "/x", query: str = "", body: bytes = b"", method: str = "POST", **extra: Any
) -> dict[str, Any]:
    """PATH_INFO given as the latin-1 text WSGI hands over (tests/support/fc.py builds it)."""
    return fc.environ(method, path.encode("latin-1"), query, body, remote_addr="127.0.0.1", **extra)


def echo(request: Request) -> Response:
    """What reached the core: the path decoded and as signed, raw query and body, a header."""
    signed, sent = request.signed_path.decode("latin-1"), request.body.decode("latin-1")
    seen = {"path": request.path, "signed": signed, "query": request.query_string, "body": sent}
    return json_response(200, {**seen, "auth": request.header("Authorization")})


def test_wsgi_passes_raw_path_query_and_body() -> None:
    # WSGI hands the decoded path as latin-1 text: "/é" arrives as "/\xc3\xa9".
    env = environ("/caf\xc3\xa9", "a=1&b=%2F", b"x=1", HTTP_AUTHORIZATION="abc")
    answer = fc.call(wsgi_adapter(echo, function="t", max_body=100), env)
    assert answer.status == 200
    assert answer.json() == {
        "path": "/café",
        "signed": "/caf\xc3\xa9",
        "query": "a=1&b=%2F",
        "body": "x=1",
        "auth": "abc",
    }
    assert answer.headers["content-length"] == str(len(answer.body))
    assert answer.headers["content-type"] == "application/json"


PREFIXED = "/2016-08-15/proxy/svc/fn/oss-callback"
NOT_A_PREFIX = [None, "", "/other/path", "http://[bad", "/oss-callback"]


@pytest.mark.parametrize(
    ("request_uri", "signed"),
    [(PREFIXED + "?x=1", PREFIXED), *((uri, "/oss-callback") for uri in NOT_A_PREFIX)],
)
def test_request_uri_only_restores_a_stripped_prefix(request_uri: str | None, signed: str) -> None:
    """FC 2.0 strips /2016-08-15/proxy/… from PATH_INFO: restored for signing, never routed."""
    extra = {} if request_uri is None else {"fc.request_uri": request_uri}
    request = request_from_environ(environ("/oss-callback", **extra), max_body=100)
    assert request.signed_path == signed.encode()
    assert request.route() == "/oss-callback"


@pytest.mark.parametrize(
    ("sent", "length", "status", "code"),
    [
        (b"x" * 11, "11", 413, "TooLarge"),
        (b"y" * 50, None, 413, "TooLarge"),  # no Content-Length: still capped
        (b"abc", "abc", 400, "BadRequest"),
        (b"abc", "-1", 400, "BadRequest"),
    ],
)
def test_a_body_over_the_limit_or_a_bad_length_is_refused_before_the_core_runs(
    sent: bytes, length: str | None, status: int, code: str
) -> None:
    called = []

    def core(request: Request) -> Response:
        called.append(request)
        return json_response(200, {})

    env = environ(body=sent, **{"wsgi.input_terminated": length is None})
    if length is None:
        del env["CONTENT_LENGTH"]
    else:
        env["CONTENT_LENGTH"] = length
    fc.call(wsgi_adapter(core, function="t", max_body=10), env).error(status, code)
    assert called == []


def test_body_without_content_length_is_empty_unless_the_server_terminates_it() -> None:
    class Blocking(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("read past the request: this would block under wsgiref")

    env = environ(body=b"")
    del env["CONTENT_LENGTH"]
    env["wsgi.input"] = Blocking()
    assert request_from_environ(env, max_body=10).body == b""


def test_domain_errors_become_json_and_bugs_become_bare_500() -> None:
    def conflict(_: Request) -> Response:
        raise errors.Conflict("already recorded")

    def bug(_: Request) -> Response:
        raise KeyError("secret-detail")

    answer = fc.call(wsgi_adapter(conflict, function="t", max_body=10), environ())
    assert answer.error(409, "Conflict")["message"] == "already recorded"
    answer = fc.call(wsgi_adapter(bug, function="t", max_body=10), environ())
    answer.error(500, "InternalError")
    assert b"secret-detail" not in answer.body


def test_one_json_log_line_per_request(capsys: pytest.CaptureFixture[str]) -> None:
    fc.call(
        wsgi_adapter(echo, function="cb", max_body=100),
        environ("/p", HTTP_AUTHORIZATION="very-secret-signature"),
    )
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    access = [(a["function"], a["status"], a["outcome"]) for a in lines if a["event"] == "request"]
    assert access == [("cb", 200, "OK")]
    assert "very-secret-signature" not in json.dumps(lines)


def fc3_event(**overrides: Any) -> dict[str, Any]:
    event = fc.event(
        "POST",
        "/caf%C3%A9",
        headers={"Authorization": "abc", "X-Multi": "a,b"},
        query={"a": "1"},
        body="x=1",
        source_ip="10.0.0.1",
    )
    event.update(overrides)
    return event


def test_fc3_event_reaches_the_core_like_a_wsgi_request_its_body_decoded() -> None:
    result = event_adapter(echo, function="t", max_body=100)(json.dumps(fc3_event()).encode(), None)
    assert (result["statusCode"], result["isBase64Encoded"]) == (200, False)
    assert json.loads(result["body"]) == {
        "path": "/café",
        "signed": "/caf\xc3\xa9",
        "query": "a=1",
        "body": "x=1",
        "auth": "abc",
    }
    raw = b"bucket=b&object=a%2Fb"  # a base64 body is decoded before the core sees it
    event = fc3_event(body=base64.b64encode(raw).decode(), isBase64Encoded=True)
    request = request_from_event(json.dumps(event), None, max_body=100)
    assert (request.body, request.request_id, request.client_ip) == (raw, "fc3-req-1", "10.0.0.1")


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        (b"not json", 400, "BadRequest"),
        (b"[1, 2]", 400, "BadRequest"),
        (json.dumps(fc3_event(body="!!", isBase64Encoded=True)).encode(), 400, "BadRequest"),
        (json.dumps(fc3_event(body=12)).encode(), 400, "BadRequest"),
        (json.dumps(fc3_event(body="z" * 101)).encode(), 413, "TooLarge"),
    ],
)
def test_fc3_bad_events_are_domain_errors(event: bytes, status: int, code: str) -> None:
    result = event_adapter(echo, function="t", max_body=100)(event, None)
    assert (result["statusCode"], json.loads(result["body"])["code"]) == (status, code)
    assert "Content-Length" not in result["headers"]  # reserved by FC 3.0


def test_a_request_refuses_repeated_query_names_and_routes_without_the_proxy_prefix() -> None:
    with pytest.raises(errors.BadRequest):
        Request("GET", "/", b"/", "a=1&a=2", {}, b"").query()
    request = Request("GET", "/2016-08-15/proxy/svc/fn/signature/", b"", "", {}, b"")
    assert request.route() == "/signature"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        (" \t", "missing"),
        ("a" * 65, "too long"),
        ("not base64!", "not base64"),
        ("YWJj\nZA==", "not base64"),
        ("YWJjZA", "not base64"),  # missing padding
        ("YWJjZB==", "not canonical"),  # non-zero pad bits decode to the same bytes
    ],
)
def test_canonical_base64_headers_refuse_every_other_spelling(
    header: str | None, reason: str
) -> None:
    with pytest.raises(errors.SignatureInvalid, match=reason):
        canonical_base64_header(header, name="X-Test", max_chars=64, error=errors.SignatureInvalid)


def test_canonical_base64_header_tolerates_surrounding_blanks_only() -> None:
    decode = canonical_base64_header
    assert decode(" YWJjZA==\t", name="X", max_chars=64, error=errors.BadRequest) == b"abcd"
