"""Decode every issued policy and assert each condition (security.md §8.2, P1–P10), through the
real path: create_app → auth → issue → policy signing. Every field of a V4 exact-key grant and a
V1 prefix grant, checked against signatures written out independently: test_contracts.py."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

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
    call,
    conditions,
    decode_callback,
    decode_policy,
    grant_of,
    key_conditions,
    ok,
    request,
    simple,
    token,
)

EXACT = {"path": "avatars/", "filename": "me.png", "size": "1000", "type": "image/png"}
PREFIX = {"path": "avatars/"}
STS_ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "STS.role-key-id",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "role-key-secret",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "role-security-token",
}


# --- P5: expiration in real UTC --------------------------------------------------------------


@pytest.fixture
def shanghai(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process in UTC+8, as a misconfigured server would run it."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    assert time.localtime(0).tm_hour == 8  # the zone really is in force
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("shanghai")
def test_expiration_is_now_plus_ttl_rounded_down_and_every_time_is_utc(
    make_sign_app: Callable[..., Core],
) -> None:
    answer = ok(make_sign_app(now=NOW + 0.999, POLICY_TTL_SECONDS="600"), PREFIX)
    assert answer["expire"] == grant_of(answer).expires_at == int(NOW) + 600
    assert decode_policy(answer["policy"])["expiration"] == "2023-12-16T16:30:57.000Z"
    assert answer["fields"]["x-oss-date"] == "20231216T162057Z"


def test_v4_date_crosses_midnight_with_the_clock(make_sign_app: Callable[..., Core]) -> None:
    midnight = 1702771200.0  # 2023-12-17T00:00:00Z
    before = ok(make_sign_app(now=midnight - 1), PREFIX, now=midnight)["fields"]
    after = ok(make_sign_app(now=midnight), PREFIX, now=midnight)["fields"]
    assert before["x-oss-date"] == "20231216T235959Z"
    assert "/20231216/" in before["x-oss-credential"]
    assert after["x-oss-date"] == "20231217T000000Z"
    assert "/20231217/" in after["x-oss-credential"]


# --- P6: content type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "pinned"),
    [
        ("path=&filename=a.jpg&size=5&type=IMAGE/JPEG", "image/jpeg"),  # the only type allowed
        ("path=&filename=notes.txt&size=5", None),
        ("path=&filename=a.png&size=5&type=", None),
    ],
)
def test_a_declared_type_is_the_only_allowed_type_and_none_sets_no_condition(
    sign_app: Core, query: str, pinned: str | None
) -> None:
    answer = ok(sign_app, query)
    assert answer["key"].startswith("uploads/alice/")
    assert answer["key"].count("/") == 2
    assert answer["fields"].get("Content-Type") == pinned
    typed = [c for c in conditions(answer) if isinstance(c, list) and c[0] == "in"]
    assert typed == ([["in", "$content-type", [pinned]]] if pinned else [])


# --- P7: hostile user ids ----------------------------------------------------------------------

INJECTIONS = ['a"b', 'x"],["starts-with","$key",""],["eq","$bucket","other', "evil]\n[", "{user}"]
PATH_TRICKS = ["../../root", "12/../123", ".", ".."]
ODD_CHARACTERS = ["line\nbreak", "tab\there", "名字", " 12"]


@pytest.mark.parametrize("user", INJECTIONS + PATH_TRICKS + ODD_CHARACTERS)
def test_hostile_user_ids_yield_one_well_formed_policy(sign_app: Core, user: str) -> None:
    baseline = conditions(ok(sign_app, {"path": "p"}, user="plain"))
    answer = ok(sign_app, {"path": "p"}, user=user)
    found = conditions(answer)
    assert [type(c) for c in found] == [type(c) for c in baseline]
    (prefix,) = [c[2] for c in key_conditions(answer)]
    segment = keys.user_segment(user)
    assert prefix == f"uploads/{segment}/p/"
    assert re.fullmatch(r"_[0-9a-f]{40}", segment), "unsafe ids are replaced by a digest"
    assert keys.is_valid_key(prefix + "x")
    assert grant_of(answer).user == user  # the record owner stays the real id


# --- P8: signatures and pinned fields -----------------------------------------------------------


V4_FIELDS = [
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


def test_v4_answer_and_form_fields_in_order(make_sign_app: Callable[..., Core]) -> None:
    """DESIGN.md: `fields` is every form field to send, in order, between `key` and `file`
    (the legacy client appends them as they come). V1's order: the test below."""
    answer = ok(make_sign_app(), EXACT)
    assert list(answer) == [
        "host",
        "dir",
        "key",
        "policy",
        "expire",
        "callback",
        "fields",
        "version",
    ]
    assert list(answer["fields"]) == V4_FIELDS
    v1 = ok(make_sign_app(OSS_SIGNATURE_VERSION="v1"), PREFIX)
    assert list(v1["fields"]) == [
        "policy",
        "OSSAccessKeyId",
        "Signature",
        "success_action_status",
        "callback",
    ]


def test_v1_legacy_fields_and_signature(make_sign_app: Callable[..., Core]) -> None:
    answer = ok(make_sign_app(OSS_SIGNATURE_VERSION="v1"), PREFIX)
    fields = answer["fields"]
    assert list(answer) == [
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
    assert answer["version"] == "v1"
    assert answer["host"] == "https://example-bucket.oss-cn-hangzhou.aliyuncs.com"
    assert answer["accessid"] == fields["OSSAccessKeyId"] == ACCESS_KEY_ID
    expected = policy.sign_policy_v1(answer["policy"], ACCESS_KEY_SECRET)
    assert answer["signature"] == fields["Signature"] == expected
    assert (answer["policy"], answer["callback"]) == (fields["policy"], fields["callback"])
    assert not any(name.startswith("x-oss-") for name in [*fields, *simple(answer)])


@pytest.mark.parametrize("version", ["v4", "v1"])
@pytest.mark.parametrize("query", [EXACT, PREFIX], ids=["exact", "prefix"])
def test_every_non_signature_field_is_pinned(
    make_sign_app: Callable[..., Core], version: str, query: dict[str, str]
) -> None:
    """Fields the browser could alter are fixed by a condition, and nothing else is; only the
    signature (and V1's access key id, which the signature names) is not. One size range ≥ 1."""
    answer = ok(make_sign_app(OSS_SIGNATURE_VERSION=version), query)
    fields = dict(answer["fields"])
    for name in ("policy", "x-oss-signature", "Signature", "OSSAccessKeyId"):
        fields.pop(name, None)
    if "Content-Type" in fields:
        assert ["in", "$content-type", [fields.pop("Content-Type")]] in conditions(answer)
    assert simple(answer) == {**fields, "bucket": "example-bucket"}
    assert (fields["success_action_status"], fields["callback"]) == ("200", answer["callback"])
    ranges = [
        c for c in conditions(answer) if isinstance(c, list) and c[0] == "content-length-range"
    ]
    assert [r[1] for r in ranges] == [1]
    assert ("x-oss-forbid-overwrite" in fields) == ("filename" in query)


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_endpoint_setting_is_the_host(make_sign_app: Callable[..., Core], version: str) -> None:
    app = make_sign_app(OSS_ENDPOINT="http://127.0.0.1:9000/", OSS_SIGNATURE_VERSION=version)
    assert ok(app, PREFIX)["host"] == "http://127.0.0.1:9000"


# --- STS token, credentials order, P9 secrets ---------------------------------------------------


def test_v4_with_security_token_pins_it(make_sign_app: Callable[..., Core]) -> None:
    answer = ok(make_sign_app(environ=STS_ENV), PREFIX)
    fields = answer["fields"]
    assert fields["x-oss-security-token"] == "role-security-token"
    assert simple(answer)["x-oss-security-token"] == "role-security-token"
    assert (
        fields["x-oss-credential"] == "STS.role-key-id/20231216/cn-hangzhou/oss/aliyun_v4_request"
    )
    assert fields["x-oss-signature-version"] == "OSS4-HMAC-SHA256"
    assert list(fields).index("x-oss-security-token") == list(fields).index("x-oss-signature") + 1
    assert fields["x-oss-signature"] == policy.sign_policy_v4(
        answer["policy"], "role-key-secret", "20231216", "cn-hangzhou"
    )


def test_v1_with_security_token_sends_it_unpinned(make_sign_app: Callable[..., Core]) -> None:
    answer = ok(make_sign_app(environ=STS_ENV, OSS_SIGNATURE_VERSION="v1"), PREFIX)
    fields = answer["fields"]
    assert fields["x-oss-security-token"] == "role-security-token"
    assert "x-oss-security-token" not in simple(answer)  # protocol §10: V1 samples never pin it
    assert answer["accessid"] == fields["OSSAccessKeyId"] == "STS.role-key-id"
    assert answer["signature"] == policy.sign_policy_v1(answer["policy"], "role-key-secret")
    assert list(fields).index("x-oss-security-token") == list(fields).index("Signature") + 1


def test_fc_context_credentials_come_first_and_none_at_all_is_unavailable(
    make_sign_app: Callable[..., Core],
) -> None:
    credentials = SimpleNamespace(
        access_key_id="STS.context-id",
        access_key_secret="context-secret",
        security_token="context-token",
    )
    context = SimpleNamespace(credentials=credentials, request_id="fc-req")
    fields = ok(make_sign_app(environ=STS_ENV), {"path": ""}, context=context)["fields"]
    assert fields["x-oss-credential"].startswith("STS.context-id/")
    assert fields["x-oss-security-token"] == "context-token"
    app = make_sign_app(OSS_ACCESS_KEY_ID=None, OSS_ACCESS_KEY_SECRET=None)
    assert_error(call(app, {"path": ""}), 503, "Unavailable")


def test_secrets_never_leave_in_answers_or_logs(
    make_sign_app: Callable[..., Core], capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_sign_app(environ=STS_ENV)
    sign_in = token("alice")
    answers = []
    for path, status in (("a", 200), ("../a", 400)):
        sent = request(query={"path": path}, headers={"Authorization": f"Bearer {sign_in}"})
        answers.append(serve(app, sent, function="sign"))
        assert answers[-1].status == status
    logged = capsys.readouterr().err
    assert '"user": "alice"' in logged
    assert '"dir": "uploads/alice/a/"' in logged
    for secret in ("role-key-secret", ACCESS_KEY_SECRET, GRANT_SECRET, JWT_SECRET, sign_in):
        assert secret not in logged
        assert all(secret.encode() not in answer.body for answer in answers)
    assert "role-security-token" not in logged  # the STS token goes to the browser only


# --- P10: callback parameter -------------------------------------------------------------------


def test_a_prefix_grant_token_names_the_prefix_and_an_http_callback_has_no_sni_flag(
    make_sign_app: Callable[..., Core],
) -> None:
    grant = grant_of(ok(make_sign_app(), PREFIX))
    assert (grant.key, grant.prefix, grant.max_bytes) == (None, "uploads/alice/avatars/", 10485760)
    app = make_sign_app(CALLBACK_URL="http://127.0.0.1:8001/oss-callback")
    config = decode_callback(ok(app, PREFIX)["callback"])
    assert "callbackSNI" not in config
    assert config["callbackUrl"] == "http://127.0.0.1:8001/oss-callback"
