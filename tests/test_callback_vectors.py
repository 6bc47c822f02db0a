"""Real OSS callback signatures (tests/data/oss.json "callbacks") through the real verifier.

C1 (OSS Callback API doc, 2021) and C3 (a captured callback, 2019) must verify with the pinned
v1 key and zero network calls (F3); the negative controls must fail. Each vector is checked stage
by stage: the string to verify we rebuild from the request, the key, then the signature.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.callback.pubkeys import OSS_V1_KEY_PEM, PINNED_KEY_PEMS, PublicKeys
from shared.callback.signature import string_to_verify, verify_signature
from shared.errors import SignatureInvalid
from shared.http import Request
from tests.support.callbacks import b64, no_network
from tests.support.data import VECTORS

CALLBACKS: list[dict[str, Any]] = VECTORS["callbacks"]


def as_request(vector: dict[str, Any]) -> Request:
    return Request(
        method="POST",
        path=vector["path"],
        signed_path=vector["path"].encode(),
        query_string=vector["query"],
        headers={
            "authorization": vector["authorization"],
            "x-oss-pub-key-url": vector["pub_key_url_b64"],
            "content-type": vector["content_type"],
        },
        body=vector["body"].encode(),
    )


@pytest.mark.parametrize("vector", CALLBACKS, ids=[v["id"] for v in CALLBACKS])
def test_vector_through_the_real_verifier(vector: dict[str, Any]) -> None:
    request = as_request(vector)
    # Stage 1: the string to verify is exactly path [+ '?' + query] + LF + body.
    message = string_to_verify(request)
    expected = vector["path"] + (f"?{vector['query']}" if vector["query"] else "")
    assert message == (expected + "\n" + vector["body"]).encode()
    # Stage 2: the key comes from the pinned table, also for the http:// URL of older docs; the
    # key shipped with the code is byte for byte the one the vectors were verified with.
    vector_key = VECTORS["oss_callback_public_key"]
    assert PINNED_KEY_PEMS[vector_key["url"]] == vector_key["pem"].encode() == OSS_V1_KEY_PEM
    keys = PublicKeys(fetch=no_network)
    public_key = keys.for_header(request.header("x-oss-pub-key-url"))
    assert public_key.key_size == 512
    for scheme in ("http", "https"):
        pinned = keys.for_header(b64(f"{scheme}://gosspublic.alicdn.com/callback_pub_key_v1.pem"))
        assert pinned.public_numbers() == public_key.public_numbers()
    # Stage 3: the signature.
    if not vector["valid"]:
        with pytest.raises(SignatureInvalid):
            verify_signature(message, vector["authorization"], public_key)
        return
    assert verify_signature(message, vector["authorization"], public_key) == message
    # §6.6: any single changed bit of path, query or body fails, and so does a '?' with no query.
    changed = [
        message[:i] + bytes([message[i] ^ 0x01]) + message[i + 1 :] for i in range(len(message))
    ]
    if not vector["query"]:
        changed.append(message.replace(b"\n", b"?\n", 1))
    for mutated in changed:
        with pytest.raises(SignatureInvalid):
            verify_signature(mutated, vector["authorization"], public_key)
