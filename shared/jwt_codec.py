"""One PyJWT instance for our tokens, whose HS256 key check runs once per key, not per token.

PyJWT refuses PEM/DER keys as HMAC secrets (a key-confusion guard) and re-checks the key on
every encode and decode (PEM, SSH and DER public key / X.509 parses): about 10 µs of a 25–35 µs
HS256 call, twice per grant. Our HMAC secrets are fixed at start-up, so the guard still runs —
once per key, with its verdict memoized.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm
from jwt.utils import force_bytes


@lru_cache(maxsize=32)
def _prepared_hmac_key(key: bytes) -> bytes:
    return HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(key)


class _HS256OncePerKey(HMACAlgorithm):
    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)

    def prepare_key(self, key: str | bytes) -> bytes:
        return _prepared_hmac_key(force_bytes(key))


def _codec() -> jwt.PyJWT:
    codec = jwt.PyJWT()
    # PyJWT offers no public hook on PyJWT for algorithms; its PyJWS does (register_algorithm).
    jws: Any = codec._jws  # pinned PyJWT; tests/test_jwt_codec.py guards this
    jws.unregister_algorithm("HS256")
    jws.register_algorithm("HS256", _HS256OncePerKey())
    return codec


codec = _codec()
encode = codec.encode
decode = codec.decode
