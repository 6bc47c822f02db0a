"""Grant tokens: what binds an OSS callback to a grant we issued (DESIGN.md Principles)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jwt
import pytest

from shared.errors import GrantInvalid
from shared.grant import AUDIENCE, Grant, issue_token, verify_token
from shared.settings import Secret
from tests.support.sign import GRANT_SECRET, JWT_SECRET, NOW, overridden

SECRET = Secret(GRANT_SECRET)
OLD = Secret("old-grant-secret-0123456789abcdef-0001")
EXPIRES = int(NOW) + 300
KEY_GRANT = Grant(
    "01hhspwjh8", "alice", "example-bucket", "uploads/alice/x.png", None, 1000, EXPIRES
)
PREFIX_GRANT = Grant("01hhspwjh9", "12", "example-bucket", None, "uploads/12/", 5000, EXPIRES)


@pytest.mark.parametrize("grant", [KEY_GRANT, PREFIX_GRANT], ids=["key", "prefix"])
def test_round_trip_in_a_token_url_safe_for_the_callback_body(grant: Grant) -> None:
    text = issue_token(grant, SECRET)
    assert all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in text)
    assert verify_token(text, [SECRET], now=NOW) == grant


def test_first_secret_signs_all_verify() -> None:
    old_token = issue_token(KEY_GRANT, OLD)
    assert verify_token(old_token, [SECRET, OLD], now=NOW) == KEY_GRANT
    with pytest.raises(GrantInvalid, match="not ours"):
        verify_token(old_token, [SECRET], now=NOW)


def test_expiry_grace_boundary() -> None:
    """DESIGN.md: policy expiry + 120 s grace for clock skew (the literal, not the constant)."""
    token = issue_token(KEY_GRANT, SECRET)
    assert verify_token(token, [SECRET], now=EXPIRES + 120) == KEY_GRANT
    with pytest.raises(GrantInvalid, match="expired"):
        verify_token(token, [SECRET], now=EXPIRES + 121)


def forge(claims: dict[str, Any], secret: str = GRANT_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=alg)


def claims(**changes: Any) -> dict[str, Any]:
    return overridden(KEY_GRANT.claims(), changes)


REQUIRED_CLAIMS = ["aud", "jti", "sub", "bkt", "max", "exp"]
BAD_VALUES = [("max", 0), ("max", "1000"), ("max", True), ("exp", 1.5), ("sub", 7), ("key", ["a"])]


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("x" * 5000, id="huge"),
        pytest.param("not.a.token", id="garbage"),
        pytest.param(forge(claims(aud="somebody-else")), id="wrong-aud"),
        *(pytest.param(forge(claims(**{c: None})), id=f"no-{c}") for c in REQUIRED_CLAIMS),
        *(pytest.param(forge(claims(**{c: v})), id=f"{c}={v!r}") for c, v in BAD_VALUES),
        pytest.param(forge(claims(key=None)), id="no-key-or-prefix"),
        pytest.param(forge({**claims(), "pfx": "uploads/alice/"}), id="key-and-prefix"),
        pytest.param(forge(claims(), secret="", alg="none"), id="alg-none"),
        pytest.param(forge({"sub": "alice", "exp": EXPIRES}, secret=JWT_SECRET), id="sign-in"),
    ],
)
def test_malformed_or_foreign_tokens_are_refused(token: str) -> None:
    with pytest.raises(GrantInvalid):
        verify_token(token, [SECRET], now=NOW)


def test_any_changed_character_is_refused() -> None:
    token = issue_token(KEY_GRANT, SECRET)
    header, payload, signature = token.split(".")
    for index in range(0, len(signature) - 1, 7):
        flipped = "A" if signature[index] != "A" else "B"
        tampered = f"{header}.{payload}.{signature[:index]}{flipped}{signature[index + 1 :]}"
        with pytest.raises(GrantInvalid):
            verify_token(tampered, [SECRET], now=NOW)


def test_the_file_name_travels_in_exact_key_grants_only() -> None:
    named = replace(KEY_GRANT, file_name="名前.png")
    assert verify_token(issue_token(named, SECRET), [SECRET], now=NOW).file_name == "名前.png"
    prefix = replace(PREFIX_GRANT, file_name="名前.png")
    assert verify_token(issue_token(prefix, SECRET), [SECRET], now=NOW).file_name == ""


def test_admits_key() -> None:
    assert KEY_GRANT.admits_key("uploads/alice/x.png")
    assert not KEY_GRANT.admits_key("uploads/alice/y.png")
    assert PREFIX_GRANT.admits_key("uploads/12/a.png")
    assert not PREFIX_GRANT.admits_key("uploads/12/")
    assert not PREFIX_GRANT.admits_key("uploads/123/a.png")
    assert PREFIX_GRANT.mode == "prefix"
    assert KEY_GRANT.mode == "key"


def test_claims_carry_every_binding_field() -> None:
    """…and nothing else: the token is signed, not encrypted, so its claims are public."""
    data = jwt.decode(issue_token(KEY_GRANT, SECRET), options={"verify_signature": False})
    assert data == KEY_GRANT.claims()
    assert data == {
        "aud": AUDIENCE,
        "jti": "01hhspwjh8",
        "sub": "alice",
        "bkt": "example-bucket",
        "max": 1000,
        "exp": EXPIRES,
        "key": "uploads/alice/x.png",
    }
    assert PREFIX_GRANT.claims()["pfx"] == "uploads/12/"
