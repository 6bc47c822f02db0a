"""FC 3.0 HTTP trigger events (platform.md §1.11) into the sign app as functions/sign/index.py
wires it: comma-joined values, any event, and an answer FC 3.0 hands back as it is."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.callback.app import MAX_BODY
from shared.errors import ConfigError
from shared.http import Core
from shared.http.fc3 import event_adapter
from shared.records.sqlite import SqliteStore
from shared.sign import app as sign_app
from tests.support import fc
from tests.support.callbacks import CallbackBuilder, fc3_event
from tests.support.sign import NOW, ORIGIN, sign_settings, token


def sign_handler(**overrides: str) -> Any:
    app = sign_app.create_app(sign_settings(**overrides), environ={}, now=lambda: NOW)
    return event_adapter(app, function="sign", max_body=sign_app.MAX_BODY)


SIGN = sign_handler()


def bearer() -> str:
    return f"Bearer {token()}"


def event(method: str = "GET", raw_path: str = "/signature", **options: Any) -> bytes:
    """An FC 3.0 HTTP trigger event as the runtime passes it: JSON bytes."""
    return json.dumps(fc.event(method, raw_path, **options)).encode()


def assert_fc3_response(answer: dict[str, Any]) -> dict[str, Any]:
    """The structure FC 3.0 returns verbatim; FC owns Content-Length."""
    assert set(answer) == {"statusCode", "headers", "isBase64Encoded", "body"}
    assert isinstance(answer["statusCode"], int)
    assert isinstance(answer["body"], str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in answer["headers"].items())
    assert "content-length" not in {k.lower() for k in answer["headers"]}
    payload: dict[str, Any] = json.loads(answer["body"]) if answer["body"] else {}
    return payload


def test_an_exact_key_grant_and_a_preflight_over_fc3_events() -> None:
    query = {"path": "docs", "filename": "report.pdf", "size": "2048", "type": "application/pdf"}
    headers = {"authorization": bearer(), "origin": ORIGIN}
    answer = SIGN(event(headers=headers, query=query), None)
    payload = assert_fc3_response(answer)
    assert (answer["statusCode"], answer["isBase64Encoded"]) == (200, False)
    assert answer["headers"]["Content-Type"] == "application/json"
    assert answer["headers"]["Access-Control-Allow-Origin"] == ORIGIN
    assert payload["dir"] == "uploads/alice/docs/"
    assert payload["key"].startswith("uploads/alice/docs/")
    assert payload["key"].endswith(".pdf")
    asked = {
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization",
    }
    preflight = SIGN(event("OPTIONS", headers={"origin": ORIGIN, **asked}), None)
    assert assert_fc3_response(preflight) == {}  # no body
    assert preflight["statusCode"] == 204
    assert preflight["headers"]["Access-Control-Allow-Origin"] == ORIGIN
    assert "GET" in preflight["headers"]["Access-Control-Allow-Methods"]


def test_comma_joined_values_are_never_read_as_one_of_them() -> None:
    """FC 3.0 joins ?path=a&path=b into "a,b" (not a path character: no grant), and repeated
    headers with "," (not an origin we list)."""
    refused = SIGN(event(headers={"authorization": bearer()}, query={"path": "a,b"}), None)
    assert (refused["statusCode"], assert_fc3_response(refused)["code"]) == (400, "BadRequest")
    headers = {"authorization": bearer(), "origin": f"{ORIGIN},https://evil.example"}
    answer = SIGN(event(headers=headers, query={"path": ""}), None)
    assert assert_fc3_response(answer)["dir"] == "uploads/alice/"
    assert "Access-Control-Allow-Origin" not in answer["headers"]


@pytest.mark.parametrize("form", [bytes, str, dict])
@pytest.mark.parametrize("name", ["authorization", "Authorization"])
def test_an_event_as_bytes_str_or_parsed_dict_with_any_header_case(form: type, name: str) -> None:
    raw = event(headers={name: bearer()}, query={"path": "x"})
    sent = {bytes: raw, str: raw.decode(), dict: json.loads(raw)}[form]
    assert SIGN(sent, None)["statusCode"] == 200


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "OPTIONS", "DELETE", "HEAD", "PUT"]),
    raw_path=st.text(max_size=40).map(lambda p: "/" + quote(p)),
    query=st.dictionaries(
        st.sampled_from(["path", "filename", "size", "type", "limit", "cursor", "x"]),
        st.text(max_size=30),
        max_size=4,
    ),
    headers=st.dictionaries(
        st.sampled_from(["authorization", "origin", "content-type", "x-any"]),
        st.text(max_size=60),
        max_size=3,
    ),
    body=st.binary(max_size=64),
    base64_body=st.booleans(),
)
def test_any_fc3_event_gets_a_structured_answer_never_a_500(
    *,
    method: str,
    raw_path: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    base64_body: bool,
) -> None:
    if not base64_body:
        body = body.decode("utf-8", "replace").encode()
    raw = event(method, raw_path, headers=headers, query=query, body=body, base64_body=base64_body)
    answer = SIGN(raw, None)
    assert_fc3_response(answer)
    assert answer["statusCode"] in (200, 204, 400, 401, 403, 404, 405, 413)


def test_a_callback_url_with_a_query_cannot_work_on_fc3_so_the_sign_function_refuses_it(
    make_callback_app: Callable[..., Core], build: CallbackBuilder, store: SqliteStore
) -> None:
    """OSS signs `path?query` byte for byte; an FC 3.0 event carries the query only as a dict,
    which re-encodes differently (`%20` comes back as `+`): the check could only fail. So a
    CALLBACK_URL with a query stops the sign function at start-up, on FC 2.0 and 3.0 alike."""
    handler = event_adapter(make_callback_app(), function="callback", max_body=MAX_BODY)
    sent = json.loads(fc3_event(build.request(query="note=a%20b")))  # as OSS would sign it
    sent["queryParameters"] = {"note": "a b"}  # what FC 3.0 hands over instead of the raw query
    sent.pop("rawQueryString", None)
    answer = handler(json.dumps(sent).encode(), None)
    assert (answer["statusCode"], json.loads(answer["body"])["code"]) == (401, "SignatureInvalid")
    assert store.get(build.grant.bucket, build.grant.key or "") is None
    with pytest.raises(ConfigError, match="CALLBACK_URL: must not carry a query string"):
        sign_handler(CALLBACK_URL="https://cb.fcapp.run/oss-callback?note=a%20b")
