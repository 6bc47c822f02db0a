"""The emulator's policy evaluator (protocol §4): shape errors, every condition form, field-name
case, absent fields, the bucket, expiration under a frozen clock, and the size window."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local.oss_emulator.errors import OssError
from local.oss_emulator.policy import (
    MAX_OBJECT_BYTES,
    Policy,
    check_conditions,
    check_expiration,
    check_size,
    decode_policy,
)

EXPIRES = "2030-05-01T12:05:00.000Z"
DEADLINE = datetime(2030, 5, 1, 12, 5, tzinfo=timezone.utc)


def encode(document: Any) -> str:
    text = document if isinstance(document, str) else json.dumps(document)
    return base64.b64encode(text.encode()).decode()


def conditions(value: Any) -> str:
    """A policy document with these conditions and a valid expiration."""
    return encode({"expiration": EXPIRES, "conditions": value})


def policy(*conditions: Any, expiration: str = EXPIRES) -> Policy:
    return decode_policy(encode({"expiration": expiration, "conditions": list(conditions)}))


def refusal(call: Any, *args: Any, **kwargs: Any) -> OssError:
    with pytest.raises(OssError) as caught:
        call(*args, **kwargs)
    return caught.value


def judge(
    p: Policy, fields: dict[str, str], bucket: str = "dev-bucket", version: str = "v1"
) -> None:
    check_conditions(p, fields, bucket=bucket, version=version)


@pytest.mark.parametrize(
    ("text", "ec"),
    [
        ("%%% not base64", "0006-00000201"),
        (base64.b64encode(b"\xff\xfe").decode(), "0006-00000201"),
        (encode("{not json"), None),
        (encode([1, 2]), None),
        (encode({}), "0006-00000209"),
        (encode({"expiration": EXPIRES}), "0006-00000207"),
        (encode({"conditions": [{"bucket": "b"}]}), "0006-00000208"),
        (encode({"expiration": 123, "conditions": [{"bucket": "b"}]}), "0006-00000210"),
        (encode({"expiration": "", "conditions": [{"bucket": "b"}]}), "0006-00000211"),
        (encode({"expiration": "2030-05-01 12:00:00", "conditions": [{"bucket": "b"}]}), None),
        (
            encode({"expiration": "2030-05-01T12:00:00+08:00", "conditions": [{"bucket": "b"}]}),
            None,
        ),
        (encode({"expiration": "2030-02-30T12:00:00Z", "conditions": [{"bucket": "b"}]}), None),
        (conditions([]), None),
        (conditions({"bucket": "b"}), None),
        (conditions(["bucket"]), "0006-00000222"),
        (conditions([{"a": "1", "b": "2"}]), None),
        (conditions([{"a": 1}]), None),
        (conditions([["$key"]]), "0006-00000216"),
        (conditions([["like", "$key", "a"]]), "0006-00000217"),
        (conditions([["starts-with", "$key", "a", "b"]]), "0006-00000218"),
        (conditions([["eq", "key", "a"]]), "0006-00000224"),
        (conditions([["eq", "$key", 5]]), "0006-00000224"),
        (conditions([["in", "$key", "a"]]), "0006-00000224"),
        (conditions([["content-length-range", 1.5, 10]]), "0006-00000221"),
        (conditions([["content-length-range", "1", 10]]), "0006-00000221"),
        (conditions([["content-length-range", 10, 1]]), "0006-00000219"),
        (conditions([["content-length-range", -1, 1]]), "0006-00000219"),
    ],
)
def test_malformed_policies(text: str, ec: str | None) -> None:
    error = refusal(decode_policy, text)
    assert (error.status, error.code) == (400, "InvalidPolicyDocument")
    if ec:
        assert error.ec == ec


@given(st.text(max_size=200))
def test_decoding_raises_only_oss_errors(text: str) -> None:
    for candidate in (text, encode(text), encode({"expiration": text, "conditions": [text]})):
        codes = set()
        try:
            decode_policy(candidate)
        except OssError as error:
            codes.add(error.code)
        assert codes <= {"InvalidPolicyDocument"}


def test_escaped_dollar_is_accepted() -> None:
    # `\$` is OSS's escape (not JSON); `\\$` is the Java SDK's spelling of the same intent.
    conditions = r'[["eq","$key","a/\${filename}"],["eq","$x-oss-meta-a","\\$1"]]'
    text = '{"expiration":"' + EXPIRES + '","conditions":' + conditions + "}"
    p = decode_policy(encode(text))
    assert [c.value for c in p.conditions] == ["a/${filename}", "$1"]


def test_expiration_forms_and_boundary() -> None:
    assert policy({"bucket": "b"}, expiration="2030-05-01T12:05:00Z").expiration == DEADLINE
    precise = policy({"bucket": "b"}, expiration="2030-05-01T12:05:00.123456789Z")
    assert precise.expiration == DEADLINE.replace(microsecond=123456)
    p = policy({"bucket": "b"})
    check_expiration(p, DEADLINE)
    error = refusal(check_expiration, p, DEADLINE + timedelta(milliseconds=1))
    assert (error.status, error.code, error.message) == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    )


@pytest.mark.parametrize(
    ("condition", "good", "bad"),
    [
        ({"key": "a/b.png"}, "a/b.png", "a/b.PNG"),
        (["eq", "$key", "a/b.png"], "a/b.png", "a/b.png "),
        (["starts-with", "$key", "a/"], "a/b.png", "b/a/"),
        (["starts-with", "$key", ""], "anything", None),
        (["in", "$key", ["x", "y"]], "y", "z"),
        (["not-in", "$key", ["x", "y"]], "z", "x"),
    ],
)
def test_condition_forms(condition: Any, good: str, bad: str | None) -> None:
    p = policy(condition)
    judge(p, {"key": good})
    if bad is not None:
        error = refusal(judge, p, {"key": bad})
        assert (error.status, error.code) == (403, "AccessDenied")
        echo = ["eq", "$key", condition["key"]] if isinstance(condition, dict) else condition
        failed = "Invalid according to Policy: Policy Condition failed: "
        assert error.message == failed + json.dumps(echo)  # a {name: value} echoed as "eq"


def test_field_names_are_case_insensitive_values_are_not_and_others_are_free() -> None:
    p = policy(["in", "$Content-Type", ["image/png"]], {"X-OSS-Meta-Tag": "v"})
    judge(p, {"content-type": "image/png", "x-oss-meta-tag": "v"})
    refusal(judge, p, {"content-type": "IMAGE/PNG", "x-oss-meta-tag": "v"})
    refusal(judge, p, {"content-type": "image/png", "x-oss-meta-tag": "V"})
    # fields no condition mentions are free
    judge(policy(["starts-with", "$key", "a/"]), {"key": "a/b", "x:anything": "1", "callback": "c"})


@pytest.mark.parametrize(
    "condition",
    [
        {"callback": "x"},
        ["eq", "$callback", ""],
        ["starts-with", "$x-oss-meta-a", ""],
        ["in", "$content-type", ["a"]],
        ["not-in", "$content-type", ["a"]],
    ],
)
def test_condition_on_an_absent_field_fails(condition: Any) -> None:
    refusal(judge, policy(condition), {"key": "k"})


def test_bucket_is_the_emulated_bucket() -> None:
    p = policy({"bucket": "dev-bucket"})
    judge(p, {}, bucket="dev-bucket")
    judge(p, {"bucket": "other"}, bucket="dev-bucket")  # a form field cannot change the bucket
    error = refusal(judge, p, {"bucket": "dev-bucket"}, bucket="prod-bucket")
    assert error.message.endswith('["eq", "$bucket", "dev-bucket"]')
    refusal(judge, policy(["eq", "$bucket", "dev-bucket"]), {}, bucket="prod-bucket")


def test_v4_policies_must_pin_version_credential_and_date() -> None:
    pinned = [
        {"x-oss-signature-version": "OSS4-HMAC-SHA256"},
        {"x-oss-credential": "c"},
        ["eq", "$x-oss-date", "d"],
    ]
    fields = {"x-oss-signature-version": "OSS4-HMAC-SHA256", "x-oss-credential": "c"}
    fields["x-oss-date"] = "d"
    judge(policy(*pinned), fields, version="v4")
    for index in range(3):
        partial = policy(*(c for i, c in enumerate(pinned) if i != index), {"bucket": "dev-bucket"})
        refusal(judge, partial, fields, version="v4")
        judge(partial, fields, version="v1")
        check_conditions(partial, fields, bucket="dev-bucket", version="v4", strict_v4=False)


def test_size_window() -> None:
    p = policy(["content-length-range", 10, 100], ["content-length-range", 20, 200])
    assert p.length_range() == (20, 100)
    check_size(p, 20)
    check_size(p, 100)
    too_big = refusal(check_size, p, 101)
    assert (too_big.status, too_big.code, too_big.extra) == (
        400,
        "EntityTooLarge",
        (("ProposedSize", "101"), ("MaxSizeAllowed", "100")),
    )
    too_small = refusal(check_size, p, 19)
    assert (too_small.status, too_small.code) == (400, "EntityTooSmall")
    unbounded = policy({"bucket": "b"})  # no range: OSS's own limit
    check_size(unbounded, 0)
    check_size(unbounded, MAX_OBJECT_BYTES)
    assert refusal(check_size, unbounded, MAX_OBJECT_BYTES + 1).code == "EntityTooLarge"


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 2 * 10**6))
def test_size_is_inclusive(low: int, span: int, size: int) -> None:
    p = policy(["content-length-range", low, low + span])
    if low <= size <= low + span:
        check_size(p, size)
    else:
        assert refusal(check_size, p, size).code in ("EntityTooLarge", "EntityTooSmall")


@given(st.text(max_size=30), st.text(max_size=30))
def test_starts_with_is_a_prefix_test(prefix: str, value: str) -> None:
    p = policy(["starts-with", "$key", prefix])
    if value.startswith(prefix.replace("\\$", "$")):
        judge(p, {"key": value})
    else:
        refusal(judge, p, {"key": value})
