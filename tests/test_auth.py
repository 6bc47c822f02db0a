"""Sign-in tokens: HS256 with AUTH_JWT_SECRET, RS256/ES256 from AUTH_JWKS_URL (served over
loopback HTTP, or an injected key source), AUTH_MODE=none; time checks on a frozen clock."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared import grant
from shared.errors import ConfigError, Unauthorized, Unavailable
from shared.http import Core, serve
from shared.keys import ANONYMOUS_USER
from shared.settings import Env
from shared.sign.auth import LEEWAY_SECONDS, Authenticator, bearer_token
from shared.sign.settings import AuthSettings
from tests.support.keyhost import KeyHost, key_host
from tests.support.sign import JWT_SECRET, NOW, call, request, token

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_SECRET = "another-secret-that-is-long-enough-00000001"
TIME_STRINGS = [("exp", "tomorrow"), ("nbf", "now")]


def auth_settings(**values: str) -> AuthSettings:
    return AuthSettings.load(Env({"AUTH_JWT_SECRET": JWT_SECRET, **values}))


def authenticator(**values: str) -> Authenticator:
    return Authenticator(auth_settings(**values), now=lambda: NOW)


def header(value: str) -> str:
    return f"Bearer {value}"


# --- HS256 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "required"),
        ("", "required"),
        ("Token abc", "Bearer"),
        ("Bearer", "Bearer"),
        ("Bearer a b", "malformed"),
        ("Bearer tökén", "malformed"),
        ("Bearer " + "a" * 8193, "malformed"),
    ],
)
def test_bearer_header_shape(value: str | None, reason: str) -> None:
    with pytest.raises(Unauthorized, match=reason):
        bearer_token(value)


def test_a_valid_hs256_token_names_the_user_and_the_scheme_is_case_insensitive() -> None:
    assert authenticator().user(header(token("alice"))) == "alice"
    assert bearer_token("bearer  abc.def.ghi ") == "abc.def.ghi"


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(token("alice", secret=OTHER_SECRET), id="wrong-secret"),
        *(pytest.param(token("alice", algorithm=alg), id=alg) for alg in ("HS384", "HS512")),
        pytest.param(token("alice", algorithm="none", secret=""), id="alg-none"),
        *(
            pytest.param(token("alice", drop=(claim,)), id=f"no-{claim}")
            for claim in ("exp", "sub")
        ),
        *(pytest.param(token(sub), id=f"sub={sub!r:.8}") for sub in ("", 12, "x" * 257)),
        *(pytest.param(token("alice", **{c: v}), id=f"{c}={v}") for c, v in TIME_STRINGS),
        pytest.param(token("alice", aud="someone-else"), id="audience-when-none-configured"),
        pytest.param(
            jwt.encode({"sub": "alice", "exp": int(NOW) + 60}, RSA_KEY, algorithm="RS256"),
            id="rs256-without-jwks",
        ),
        pytest.param("a.b.c", id="garbage"),
        pytest.param("e30.e30.", id="empty-json"),
    ],
)
def test_bad_tokens_are_unauthorized(bad: str) -> None:
    with pytest.raises(Unauthorized):
        authenticator().user(header(bad))


def test_expiry_not_before_and_issued_at_with_leeway_on_a_frozen_clock() -> None:
    """README: 30 s leeway, written out so that a change to the constant is a change to a test."""
    auth = authenticator()
    issued = token("alice", now=NOW - 3600, ttl=3600 - 30)  # exp = NOW - leeway
    assert auth.user(header(issued)) == "alice"
    late = token("alice", now=NOW - 3600, ttl=3600 - 30 - 1)
    with pytest.raises(Unauthorized, match="expired"):
        auth.user(header(late))
    assert auth.user(header(token("alice", nbf=int(NOW) + 30))) == "alice"
    with pytest.raises(Unauthorized, match="not valid yet"):
        auth.user(header(token("alice", nbf=int(NOW) + 30 + 1)))
    with pytest.raises(Unauthorized, match="future"):
        auth.user(header(token("alice", now=NOW + 30 + 1)))


def test_audience_and_issuer_when_configured() -> None:
    auth = authenticator(AUTH_JWT_AUDIENCE="uploads", AUTH_JWT_ISSUER="https://id.example.com")
    good = token("alice", aud="uploads", iss="https://id.example.com")
    assert auth.user(header(good)) == "alice"
    for bad in (
        token("alice", aud="other", iss="https://id.example.com"),
        token("alice", iss="https://id.example.com"),
        token("alice", aud="uploads", iss="https://evil.example.com"),
        token("alice", aud="uploads"),
    ):
        with pytest.raises(Unauthorized):
            auth.user(header(bad))


@pytest.mark.parametrize("configured_audience", [None, grant.AUDIENCE])
def test_a_grant_token_is_never_a_sign_in_token(configured_audience: str | None) -> None:
    """Even when an operator reuses one secret for both, a grant token cannot sign in."""
    values = {"AUTH_JWT_AUDIENCE": configured_audience} if configured_audience else {}
    auth = authenticator(**values)
    issued = grant.Grant("g1", "alice", "b", None, "uploads/alice/", 10, int(NOW) + 60)
    grant_token = jwt.encode(issued.claims(), JWT_SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized):
        auth.user(header(grant_token))


def test_auth_mode_none_is_anonymous_whatever_is_sent() -> None:
    auth = Authenticator(AuthSettings.load(Env({"AUTH_MODE": "none"})))
    assert auth.user(None) == ANONYMOUS_USER
    assert auth.user("Bearer junk") == ANONYMOUS_USER


def test_the_token_never_reaches_logs_or_answers(
    sign_app: Core, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = [token("alice", ttl=-3600), token("alice", secret=OTHER_SECRET)]
    for value in refused:
        sent = request(query={"path": "a"}, headers={"Authorization": header(value)})
        response = serve(sign_app, sent, function="sign")
        assert response.status == 401
        assert value.split(".")[2].encode() not in response.body  # nor, then, the whole token
    logged = capsys.readouterr().err
    assert '"outcome": "Unauthorized"' in logged
    for value in refused:
        assert value.split(".")[1] not in logged
        assert value.split(".")[2] not in logged


# --- JWKS: a real key set over loopback HTTP ---------------------------------------------------


def jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(alg)
    data: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    data.update(kid=kid, alg=alg, use="sig")
    return data


JWKS = "/.well-known/jwks.json"


@pytest.fixture
def jwks() -> Iterator[KeyHost]:
    keys = [jwk(RSA_KEY, "rsa-1", "RS256"), jwk(EC_KEY, "ec-1", "ES256")]
    with key_host({JWKS: json.dumps({"keys": keys}).encode()}) as host:
        yield host


def jwks_auth(url: str) -> Authenticator:
    settings = AuthSettings.load(Env({"AUTH_JWKS_URL": url}))
    return Authenticator(settings, now=lambda: NOW)


def signed(key: Any, alg: str, kid: str, **claims: Any) -> str:
    payload = {"sub": "alice", "exp": int(NOW) + 600, **claims}
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def test_jwks_rs256_and_es256_tokens(jwks: KeyHost) -> None:
    auth = jwks_auth(jwks.url(JWKS))
    assert auth.user(header(signed(RSA_KEY, "RS256", "rsa-1"))) == "alice"
    assert auth.user(header(signed(EC_KEY, "ES256", "ec-1", sub="bob"))) == "bob"
    assert len(jwks.hits) == 1  # the key set is cached


JWKS_BAD = [
    pytest.param(signed(OTHER_RSA_KEY, "RS256", "rsa-1"), id="right-kid-wrong-key"),
    pytest.param(signed(RSA_KEY, "RS256", "unknown-kid"), id="unknown-kid"),
    pytest.param(signed(RSA_KEY, "RS256", "ec-1"), id="kid-of-another-key-type"),
    pytest.param(signed(RSA_KEY, "RS512", "rsa-1"), id="rs512-not-allowed"),
    pytest.param(token("alice"), id="hs256"),
    pytest.param(signed(RSA_KEY, "RS256", "rsa-1", exp=int(NOW) - 3600), id="expired"),
]


@pytest.mark.parametrize("bad", JWKS_BAD)
def test_jwks_bad_tokens_are_unauthorized(jwks: KeyHost, bad: str) -> None:
    with pytest.raises(Unauthorized):
        jwks_auth(jwks.url(JWKS)).user(header(bad))


def test_jwks_endpoint_down_is_unavailable(jwks: KeyHost) -> None:
    jwks.routes[JWKS] = (500, b"{}")
    with pytest.raises(Unavailable):
        jwks_auth(jwks.url(JWKS)).user(header(signed(RSA_KEY, "RS256", "rsa-1")))


def test_jwks_through_the_sign_app_fetched_or_injected(
    jwks: KeyHost, make_sign_app: Callable[..., Core]
) -> None:
    app = make_sign_app(AUTH_JWT_SECRET=None, AUTH_JWKS_URL=jwks.url(JWKS))
    for kid, status in (("rsa-1", 200), ("nope", 401)):
        sent = {"Authorization": header(signed(RSA_KEY, "RS256", kid))}
        assert call(app, {"path": "a"}, user=None, headers=sent).status == status
    asked: list[str] = []

    def key_for(value: str) -> jwt.PyJWK:
        asked.append(value)
        return jwt.PyJWK(jwk(RSA_KEY, "rsa-1", "RS256"))

    keys = SimpleNamespace(get_signing_key_from_jwt=key_for)
    app = make_sign_app(
        AUTH_JWT_SECRET=None, AUTH_JWKS_URL="https://id.example.com/jwks", jwks_client=keys
    )
    sent = {"Authorization": header(signed(RSA_KEY, "RS256", "rsa-1"))}
    assert call(app, {"path": "a"}, user=None, headers=sent).status == 200
    assert len(asked) == 1  # the injected source, not the URL


def test_only_verified_tokens_are_cached_and_still_checked_against_the_clock(
    mocker: Any,
) -> None:
    clock = [NOW]
    auth = Authenticator(auth_settings(), now=lambda: clock[0])
    decode = mocker.spy(auth, "_verify_signed_claims")
    good = token("alice")
    forged = jwt.encode({"sub": "mallory", "exp": int(NOW) + 60}, "x" * 40, algorithm="HS256")
    for _ in range(3):
        assert auth.user(header(good)) == "alice"
        with pytest.raises(Unauthorized):
            auth.user(header(forged))
    # one verification for the good token, one per attempt for the forged one
    assert decode.call_count == 1 + 3
    clock[0] = NOW + 3600 + LEEWAY_SECONDS + 1
    with pytest.raises(Unauthorized, match="expired"):
        auth.user(header(good))


def test_jwks_without_cryptography_refuses_to_start(mocker: Any) -> None:
    """A sign package built without AUTH_JWKS_URL ships no cryptography: say so at start-up."""
    real = importlib.util.find_spec
    mocker.patch(
        "importlib.util.find_spec",
        side_effect=lambda name, *a: None if name == "cryptography" else real(name, *a),
    )
    settings = AuthSettings.load(Env({"AUTH_JWKS_URL": "https://idp.example/jwks.json"}))
    with pytest.raises(ConfigError) as caught:
        Authenticator(settings)
    assert caught.value.variable == "AUTH_JWKS_URL"
