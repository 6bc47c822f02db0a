"""Decode every issued policy and assert each condition (security.md §8.2, P1–P10).

Each answer comes through the real path: create_app → auth → issue → policy signing.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from shared import keys
from shared.http import Core, serve
from shared.sign import policy
from tests.support.sign import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    GRANT_SECRET,
    JWT_SECRET,
    NOW,
    assert_error,
    body,
    call,
    conditions,
    decode_callback,
    decode_policy,
    grant_of,
    key_conditions,
    request,
    simple,
    token,
)

EXACT = {"path": "avatars/", "filename": "me.png", "size": "1000", "type": "image/png"}
ID = re.compile(r"[0-9a-hjkmnp-tv-z]{26}")
STS_ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "STS.role-key-id",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "role-key-secret",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "role-security-token",
}


def issued(
    app: Core, query: dict[str, str] | None = None, user: str = "alice", now: float = NOW
) -> dict[str, Any]:
    response = call(app, query if query is not None else {"path": "avatars/"}, user=user, now=now)
    assert response.status == 200, response.body
    return body(response)


# --- P1, P2, P4: size range, key condition, bucket ----------------------------------------------


def test_exact_key_without_type_has_no_type_condition(sign_app: Core) -> None:
    answer = issued(sign_app, {"path": "", "filename": "notes.txt", "size": "5"})
    assert answer["key"].startswith("uploads/alice/")
    assert answer["key"].count("/") == 2
    assert "Content-Type" not in answer["fields"]
    assert not [c for c in conditions(answer) if isinstance(c, list) and c[0] == "in"]


# --- P5: expiration in real UTC --------------------------------------------------------------


def test_expiration_is_utc_now_plus_ttl(make_sign_app: Callable[..., Core]) -> None:
    app = make_sign_app(POLICY_TTL_SECONDS="600")
    answer = issued(app)
    assert answer["expire"] == int(NOW) + 600
    assert decode_policy(answer["policy"])["expiration"] == "2023-12-16T16:30:57.000Z"
    assert grant_of(answer).expires_at == answer["expire"]


@pytest.fixture
def shanghai() -> Iterator[None]:
    """Run with the process in UTC+8, as a misconfigured server would; restore afterwards."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Shanghai"
    time.tzset()
    try:
        assert time.localtime(0).tm_hour == 8  # the zone really is in force
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.usefixtures("shanghai")
def test_expiration_is_utc_under_asia_shanghai(sign_app: Core) -> None:
    answer = issued(sign_app)
    assert decode_policy(answer["policy"])["expiration"] == "2023-12-16T16:25:57.000Z"
    assert answer["fields"]["x-oss-date"] == "20231216T162057Z"
    assert answer["expire"] == int(NOW) + 300


def test_fractional_clock_rounds_down_and_all_times_agree(
    make_sign_app: Callable[..., Core],
) -> None:
    answer = issued(make_sign_app(now=NOW + 0.999))
    assert answer["expire"] == int(NOW) + 300
    assert decode_policy(answer["policy"])["expiration"] == "2023-12-16T16:25:57.000Z"
    assert answer["fields"]["x-oss-date"] == "20231216T162057Z"


def test_v4_date_crosses_midnight_with_the_clock(make_sign_app: Callable[..., Core]) -> None:
    midnight = 1702771200.0  # 2023-12-17T00:00:00Z
    before = issued(make_sign_app(now=midnight - 1), now=midnight)["fields"]
    after = issued(make_sign_app(now=midnight), now=midnight)["fields"]
    assert before["x-oss-date"] == "20231216T235959Z"
    assert "/20231216/" in before["x-oss-credential"]
    assert after["x-oss-date"] == "20231217T000000Z"
    assert "/20231217/" in after["x-oss-credential"]


# --- P6: content type ---------------------------------------------------------------------------


def test_declared_type_is_the_only_allowed_type(sign_app: Core) -> None:
    answer = issued(sign_app, {**EXACT, "filename": "a.jpg", "type": "IMAGE/JPEG"})
    assert ["in", "$content-type", ["image/jpeg"]] in conditions(answer)
    assert answer["fields"]["Content-Type"] == "image/jpeg"


# --- P7: hostile user ids ----------------------------------------------------------------------

HOSTILE = [
    'a"b',
    'x"],["starts-with","$key",""],["eq","$bucket","other',
    "evil]\n[",
    "line\nbreak",
    "tab\there",
    "{user}",
    "../../root",
    "12/../123",
    "名字",
    " 12",
    ".",
    "..",
]


@pytest.mark.parametrize("user", HOSTILE)
def test_hostile_user_ids_yield_one_well_formed_policy(sign_app: Core, user: str) -> None:
    baseline = conditions(issued(sign_app, {"path": "p"}, user="plain"))
    answer = issued(sign_app, {"path": "p"}, user=user)
    found = conditions(answer)
    assert len(found) == len(baseline)
    assert [type(c) for c in found] == [type(c) for c in baseline]
    (prefix,) = [c[2] for c in key_conditions(answer)]
    segment = keys.user_segment(user)
    assert prefix == f"uploads/{segment}/p/"
    assert re.fullmatch(r"_[0-9a-f]{40}", segment), "unsafe ids are replaced by a digest"
    assert keys.is_valid_key(prefix + "x")
    assert grant_of(answer).user == user  # the record owner stays the real id


# --- P8: signatures ---------------------------------------------------------------------------


def test_v4_fields_and_signature(sign_app: Core) -> None:
    answer = issued(sign_app, EXACT)
    fields = answer["fields"]
    assert answer["version"] == "v4"
    assert "accessid" not in answer
    assert "signature" not in answer
    assert fields["x-oss-signature-version"] == "OSS4-HMAC-SHA256"
    assert fields["x-oss-credential"] == (
        f"{ACCESS_KEY_ID}/20231216/cn-hangzhou/oss/aliyun_v4_request"
    )
    assert fields["x-oss-date"] == "20231216T162057Z"
    expected = policy.sign_policy_v4(answer["policy"], ACCESS_KEY_SECRET, "20231216", "cn-hangzhou")
    assert fields["x-oss-signature"] == expected
    pinned = simple(answer)
    for name in ("x-oss-signature-version", "x-oss-credential", "x-oss-date"):
        assert pinned[name] == fields[name]
    assert "x-oss-security-token" not in fields
    assert "x-oss-security-token" not in pinned


def test_v1_legacy_fields_and_signature(make_sign_app: Callable[..., Core]) -> None:
    answer = issued(make_sign_app(OSS_SIGNATURE_VERSION="v1"))
    fields = answer["fields"]
    assert answer["version"] == "v1"
    assert answer["accessid"] == fields["OSSAccessKeyId"] == ACCESS_KEY_ID
    expected = policy.sign_policy_v1(answer["policy"], ACCESS_KEY_SECRET)
    assert answer["signature"] == fields["Signature"] == expected
    assert answer["policy"] == fields["policy"]
    assert answer["callback"] == fields["callback"]
    pinned = simple(answer)
    assert not {"x-oss-signature-version", "x-oss-credential", "x-oss-date"} & set(pinned)
    assert not any(name.startswith("x-oss-") for name in fields)


def test_response_shape_and_field_order(make_sign_app: Callable[..., Core]) -> None:
    v4 = issued(make_sign_app(), EXACT)
    assert list(v4) == ["host", "dir", "key", "policy", "expire", "callback", "fields", "version"]
    assert list(v4["fields"]) == [
        "policy",
        "x-oss-signature-version",
        "x-oss-credential",
        "x-oss-date",
        "x-oss-signature",
        "success_action_status",
        "callback",
        "Content-Type",
        "x-oss-content-type",
        "x-oss-storage-class",
        "x-oss-forbid-overwrite",
    ]
    v1 = issued(make_sign_app(OSS_SIGNATURE_VERSION="v1"))
    assert list(v1) == [
        "host",
        "dir",
        "policy",
        "expire",
        "callback",
        "fields",
        "version",
        "accessid",
        "signature",
    ]
    assert list(v1["fields"]) == [
        "policy",
        "OSSAccessKeyId",
        "Signature",
        "success_action_status",
        "callback",
    ]
    assert v4["host"] == v1["host"] == "https://example-bucket.oss-cn-hangzhou.aliyuncs.com"
    assert isinstance(v4["expire"], int)


@pytest.mark.parametrize("version", ["v4", "v1"])
@pytest.mark.parametrize("query", [EXACT, {"path": "avatars/"}], ids=["exact", "prefix"])
def test_every_non_signature_field_is_pinned(
    make_sign_app: Callable[..., Core], version: str, query: dict[str, str]
) -> None:
    """Fields the browser could alter are fixed by a condition; only the signature (and V1's
    access key id, which the signature names) is not. One size range ≥ 1, our bucket."""
    answer = issued(make_sign_app(OSS_SIGNATURE_VERSION=version), query)
    pinned = simple(answer)
    for name, value in answer["fields"].items():
        if name in ("policy", "x-oss-signature", "Signature", "OSSAccessKeyId"):
            continue
        if name == "Content-Type":
            assert ["in", "$content-type", [value]] in conditions(answer)
        else:
            assert pinned[name] == value, name
    assert pinned["success_action_status"] == "200"
    assert pinned["bucket"] == "example-bucket"
    assert pinned["callback"] == answer["callback"]
    ranges = [
        c for c in conditions(answer) if isinstance(c, list) and c[0] == "content-length-range"
    ]
    assert [r[1] for r in ranges] == [1]
    assert ("x-oss-forbid-overwrite" in pinned) == ("filename" in query)


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_endpoint_setting_is_the_host(make_sign_app: Callable[..., Core], version: str) -> None:
    app = make_sign_app(OSS_ENDPOINT="http://127.0.0.1:9000/", OSS_SIGNATURE_VERSION=version)
    assert issued(app)["host"] == "http://127.0.0.1:9000"


# --- STS token, credentials order, P9 secrets ---------------------------------------------------


def test_v4_with_security_token_pins_it(make_sign_app: Callable[..., Core]) -> None:
    answer = issued(make_sign_app(environ=STS_ENV))
    fields = answer["fields"]
    assert fields["x-oss-security-token"] == "role-security-token"
    assert simple(answer)["x-oss-security-token"] == "role-security-token"
    assert fields["x-oss-credential"].startswith("STS.role-key-id/20231216/")
    assert list(fields).index("x-oss-security-token") == list(fields).index("x-oss-signature") + 1
    assert fields["x-oss-signature"] == policy.sign_policy_v4(
        answer["policy"], "role-key-secret", "20231216", "cn-hangzhou"
    )


def test_v1_with_security_token_sends_it_unpinned(make_sign_app: Callable[..., Core]) -> None:
    answer = issued(make_sign_app(environ=STS_ENV, OSS_SIGNATURE_VERSION="v1"))
    fields = answer["fields"]
    assert fields["x-oss-security-token"] == "role-security-token"
    assert "x-oss-security-token" not in simple(answer)  # protocol §10: V1 samples never pin it
    assert answer["accessid"] == fields["OSSAccessKeyId"] == "STS.role-key-id"
    assert answer["signature"] == policy.sign_policy_v1(answer["policy"], "role-key-secret")
    assert list(fields).index("x-oss-security-token") == list(fields).index("Signature") + 1


def test_fc_context_credentials_come_first(make_sign_app: Callable[..., Core]) -> None:
    context = SimpleNamespace(
        credentials=SimpleNamespace(
            access_key_id="STS.context-id",
            access_key_secret="context-secret",
            security_token="context-token",
        ),
        request_id="fc-req",
    )
    app = make_sign_app(environ=STS_ENV)
    response = call(app, {"path": ""}, context=context)
    fields = body(response)["fields"]
    assert fields["x-oss-credential"].startswith("STS.context-id/")
    assert fields["x-oss-security-token"] == "context-token"


def test_no_credentials_at_all_is_unavailable(make_sign_app: Callable[..., Core]) -> None:
    app = make_sign_app(OSS_ACCESS_KEY_ID=None, OSS_ACCESS_KEY_SECRET=None)
    assert_error(call(app, {"path": ""}), 503, "Unavailable")


def test_secrets_never_leave_in_answers_or_logs(
    make_sign_app: Callable[..., Core], capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_sign_app(environ=STS_ENV)
    sign_in = token("alice")
    response = serve(
        app,
        request(query={"path": "a"}, headers={"Authorization": f"Bearer {sign_in}"}),
        function="sign",
    )
    assert response.status == 200
    failed = serve(
        app,
        request(query={"path": "../a"}, headers={"Authorization": f"Bearer {sign_in}"}),
        function="sign",
    )
    assert failed.status == 400
    logged = capsys.readouterr().err
    assert '"user": "alice"' in logged
    assert '"dir": "uploads/alice/a/"' in logged
    for secret in ("role-key-secret", ACCESS_KEY_SECRET, GRANT_SECRET, JWT_SECRET, sign_in):
        assert secret not in logged
        assert secret.encode() not in response.body
        assert secret.encode() not in failed.body
    assert "role-security-token" not in logged  # the STS token goes to the browser only


# --- P10: callback parameter -------------------------------------------------------------------


def test_prefix_grant_token_names_the_prefix(sign_app: Core) -> None:
    grant = grant_of(issued(sign_app))
    assert (grant.key, grant.prefix, grant.max_bytes) == (None, "uploads/alice/avatars/", 10485760)


def test_http_callback_url_has_no_sni_flag(make_sign_app: Callable[..., Core]) -> None:
    app = make_sign_app(CALLBACK_URL="http://127.0.0.1:8001/oss-callback")
    config = decode_callback(issued(app)["callback"])
    assert "callbackSNI" not in config
    assert config["callbackUrl"] == "http://127.0.0.1:8001/oss-callback"
