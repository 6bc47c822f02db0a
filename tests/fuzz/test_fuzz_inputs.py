"""Fuzzing what the attacker controls (security.md §7), seeded from tests/data/corpus/: file
names and paths, grant tokens, the emulator's policy evaluator and listing parameters, the sign
function end to end (the callback's parsers: tests/test_callback_fuzz.py). Only our domain errors
(or the emulator's OssError) come out; nothing answers 500.
"""

from __future__ import annotations

import base64
import json
import string
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from local.oss_emulator.errors import OssError
from local.oss_emulator.listing import parse_query
from local.oss_emulator.policy import check_conditions, check_expiration, check_size, decode_policy
from shared.content import ACTIVE_EXTENSIONS
from shared.errors import BadRequest, GrantInvalid
from shared.grant import AUDIENCE, Grant, issue_token, verify_token
from shared.http import Core
from shared.keys import filename_extension, is_valid_key, requested_dir
from shared.settings import Secret
from tests.support.data import seeded
from tests.support.sign import GRANT_SECRET, NOW, call

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SECRETS = [Secret(GRANT_SECRET)]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


# --- paths and file names -------------------------------------------------------------------------


@FUZZ
@seeded("path", "path")
@given(path=st.text(max_size=300))
def test_paths_are_clean_folders_or_bad_requests(path: str) -> None:
    try:
        folder = requested_dir(path)
    except BadRequest:
        return
    assert folder == "" or (folder.endswith("/") and is_valid_key(folder + "x"))


@FUZZ
@seeded("filename", "filename")
@given(filename=st.text(max_size=300))
def test_file_names_give_a_safe_extension_or_a_bad_request(filename: str) -> None:
    try:
        ext = filename_extension(filename)
    except BadRequest:
        return
    assert ext
    assert set(ext) <= set(string.ascii_lowercase + string.digits)  # lower case, nothing else
    assert ext not in ACTIVE_EXTENSIONS
    assert not any(part.lower() in ACTIVE_EXTENSIONS for part in filename.split(".")[1:])


# --- grant tokens ---------------------------------------------------------------------------------


@FUZZ
@seeded("grant_token", "token")
@given(
    token=st.text(max_size=300)
    | st.from_regex(
        r"[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,80}\.[A-Za-z0-9_-]{0,60}", fullmatch=True
    )
)
def test_forged_or_malformed_grant_tokens_raise_only_grant_invalid(token: str) -> None:
    with pytest.raises(GrantInvalid):
        verify_token(token, SECRETS, now=NOW)


@FUZZ
@given(
    claims=st.dictionaries(
        st.sampled_from(["aud", "jti", "sub", "bkt", "max", "exp", "key", "pfx", "x"]),
        JSON,
        max_size=9,
    )
)
def test_correctly_signed_junk_claims_raise_only_grant_invalid(claims: dict[str, Any]) -> None:
    claims.setdefault("aud", AUDIENCE)
    token = jwt.encode(claims, GRANT_SECRET, algorithm="HS256")
    try:
        grant = verify_token(token, SECRETS, now=NOW)
    except GrantInvalid:
        return
    assert isinstance(grant.user, str)
    assert isinstance(grant.bucket, str)
    assert (grant.key is None) != (grant.prefix is None)
    assert type(grant.max_bytes) is int
    assert grant.max_bytes >= 1


@FUZZ
@given(
    user=st.text(min_size=1, max_size=50),
    key=st.text(min_size=1, max_size=50),
    expires=st.integers(0, 2**40),
)
def test_issued_tokens_round_trip(user: str, key: str, expires: int) -> None:
    grant = Grant("g1", user, "b", key, None, 10, expires)
    assert verify_token(issue_token(grant, SECRETS[0]), SECRETS, now=expires) == grant


# --- the emulator's policy evaluator ----------------------------------------------------------------


conditions = st.lists(
    st.one_of(
        JSON,
        st.dictionaries(st.text(max_size=10), st.text(max_size=10), min_size=1, max_size=2),
        st.tuples(
            st.sampled_from(
                ["eq", "starts-with", "in", "not-in", "content-length-range", "EQ", "x"]
            ),
            st.one_of(st.sampled_from(["$key", "$bucket", "$Content-Type", "key", "$"]), JSON),
            JSON,
        ).map(list),
    ),
    max_size=5,
)


@FUZZ
@seeded("policy", "text", fields={"key": "uploads/a"}, size=5)
@given(
    text=st.builds(
        lambda exp, conds: json.dumps({"expiration": exp, "conditions": conds}),
        st.one_of(st.just("2030-01-01T00:00:00Z"), st.text(max_size=30), JSON),
        conditions,
    ),
    fields=st.dictionaries(
        st.sampled_from(["key", "content-type", "bucket", "x-oss-meta-a", "success_action_status"]),
        st.text(max_size=20),
    ),
    size=st.integers(0, 2**40),
)
def test_policy_evaluation_raises_only_oss_errors(
    text: str, fields: dict[str, str], size: int
) -> None:
    now = datetime(2029, 1, 1, tzinfo=timezone.utc)
    refused: OssError | None = None
    try:
        policy = decode_policy(base64.b64encode(text.encode()).decode())
        check_expiration(policy, now)
        check_conditions(policy, fields, bucket="dev-bucket", version="v1")
        check_size(policy, size)
    except OssError as error:
        refused = error
    if refused is not None:
        assert 400 <= refused.status < 500
        assert refused.code


@FUZZ
@given(
    args=st.dictionaries(
        st.sampled_from(
            [
                "list-type",
                "prefix",
                "delimiter",
                "marker",
                "start-after",
                "continuation-token",
                "max-keys",
                "encoding-type",
                "fetch-owner",
            ]
        ),
        st.text(max_size=20),
    )
)
def test_listing_parameters_raise_only_invalid_argument(args: dict[str, str]) -> None:
    refused: OssError | None = None
    try:
        query = parse_query(MultiDict(args))
    except OssError as error:
        refused = error
    if refused is not None:
        assert (refused.status, refused.code) == (400, "InvalidArgument")
    else:
        assert 1 <= query.max_keys <= 1000


# --- the sign function end to end ---------------------------------------------------------------------


@FUZZ
@seeded("sign_query", "query")
@given(
    query=st.lists(
        st.tuples(
            st.sampled_from(["path", "filename", "size", "type", "limit", "cursor", "x"]),
            st.text(max_size=40),
        ),
        max_size=5,
    ).map(urlencode)
)
def test_the_sign_function_never_answers_500(sign_app: Core, query: str) -> None:
    for path in ("/signature", "/uploads"):
        response = call(sign_app, query, path=path)
        assert response.status in (200, 400, 404, 413), (path, query, response.body)
        if response.status != 200:
            assert json.loads(response.body)["Status"] == "Error"
        elif path == "/signature" and "path" in dict(parse_qsl(query)):
            assert json.loads(response.body)["dir"].startswith("uploads/alice/")
