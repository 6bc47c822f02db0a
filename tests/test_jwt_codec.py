"""Our PyJWT instance: same tokens and same key-confusion guard, the guard paid once per key."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared import jwt_codec

SECRET = "s" * 40


def test_tokens_match_plain_pyjwt_both_ways() -> None:
    claims = {"sub": "u1", "exp": 2_000_000_000}
    token = jwt_codec.encode(claims, SECRET, algorithm="HS256")
    assert token == jwt.encode(claims, SECRET, algorithm="HS256")
    assert jwt_codec.decode(token, SECRET, algorithms=["HS256"]) == claims
    with pytest.raises(jwt.InvalidSignatureError):
        jwt_codec.decode(token, "t" * 40, algorithms=["HS256"])


def test_the_key_check_runs_once_per_key_and_still_refuses_asymmetric_keys(
    mocker: pytest.MockFixture,
) -> None:
    jwt_codec._prepared_hmac_key.cache_clear()
    guard = mocker.spy(jwt.algorithms.HMACAlgorithm, "_is_der_key")
    for n in range(5):
        jwt_codec.encode({"n": n}, SECRET, algorithm="HS256")
    assert guard.call_count == 1
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(jwt.InvalidKeyError):
        jwt_codec.encode({"a": 1}, pem, algorithm="HS256")
