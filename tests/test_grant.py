"""Grant tokens: what binds an OSS callback to a grant we issued (DESIGN.md Principles)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jwt
import pytest

from shared.errors import GrantInvalid
from shared.grant import AUDIENCE, EXPIRY_GRACE_SECONDS, Grant, issue_token, verify_token
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
def test_round_trip(grant: Grant) -> None:
    assert verify_token(issue_token(grant, SECRET), [SECRET], now=NOW) == grant


def test_token_is_url_safe_for_the_callback_body() -> None:
    text = issue_token(KEY_GRANT, SECRET)
    assert all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in text)


def test_first_secret_signs_all_verify() -> None:
    old_token = issue_token(KEY_GRANT, OLD)
    assert verify_token(old_token, [SECRET, OLD], now=NOW) == KEY_GRANT
    with pytest.raises(GrantInvalid, match="not ours"):
        verify_token(old_token, [SECRET], now=NOW)


def test_expiry_grace_boundary() -> None:
    token = issue_token(KEY_GRANT, SECRET)
    assert verify_token(token, [SECRET], now=EXPIRES + EXPIRY_GRACE_SECONDS) == KEY_GRANT
    with pytest.raises(GrantInvalid, match="expired"):
        verify_token(token, [SECRET], now=EXPIRES + EXPIRY_GRACE_SECONDS + 1)


def forge(claims: dict[str, Any], secret: str = GRANT_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=alg)


def claims(**changes: Any) -> dict[str, Any]:
    return overridden(KEY_GRANT.claims(), changes)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "x" * 5000,
        "not.a.token",
        forge(claims(aud="somebody-else")),
        forge(claims(aud=None)),
        forge(claims(jti=None)),
        forge(claims(sub=None)),
        forge(claims(bkt=None)),
        forge(claims(max=None)),
        forge(claims(exp=None)),
        forge(claims(max=0)),
        forge(claims(max="1000")),
        forge(claims(max=True)),
        forge(claims(exp=1.5)),
        forge(claims(sub=7)),
        forge(claims(key=None)),  # neither key nor prefix
        forge({**claims(), "pfx": "uploads/alice/"}),  # both
        forge(claims(key=["a"])),
        forge(claims(), secret="", alg="none"),
        forge({"sub": "alice", "exp": EXPIRES}, secret=JWT_SECRET),  # a sign-in token
    ],
    ids=[
        "empty",
        "huge",
        "garbage",
        "wrong-aud",
        "no-aud",
        "no-jti",
        "no-sub",
        "no-bkt",
        "no-max",
        "no-exp",
        "zero-max",
        "string-max",
        "bool-max",
        "float-exp",
        "int-sub",
        "no-key-or-prefix",
        "key-and-prefix",
        "list-key",
        "alg-none",
        "sign-in-token",
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
    assert replace(PREFIX_GRANT).claims()["pfx"] == "uploads/12/"
