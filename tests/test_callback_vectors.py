"""Real OSS callback signatures (tests/data/oss.json "callbacks") through the real verifier.

C1 (OSS Callback API doc, 2021) and C3 (a captured callback, 2019) must verify with the pinned
v1 key and zero network calls; the negative controls must fail. Each vector is also checked stage
by stage: the string to verify we rebuild from the request, then the signature.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from shared.callback.pubkeys import OSS_V1_KEY_PEM, PINNED_KEY_PEMS, PublicKeys
from shared.callback.signature import string_to_verify, verify_signature
from shared.errors import SignatureInvalid
from shared.http import Request
from tests.support.callbacks import no_network
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


def test_pinned_key_is_the_vectors_key() -> None:
    """The key shipped with the code is byte for byte the one the vectors were verified with."""
    vector_key = VECTORS["oss_callback_public_key"]
    assert PINNED_KEY_PEMS[vector_key["url"]] == vector_key["pem"].encode()
    assert vector_key["pem"].encode() == OSS_V1_KEY_PEM


@pytest.mark.parametrize("vector", CALLBACKS, ids=[v["id"] for v in CALLBACKS])
def test_vector_through_the_real_verifier(vector: dict[str, Any]) -> None:
    request = as_request(vector)
    # Stage 1: the string to verify is exactly path [+ '?' + query] + LF + body.
    expected = vector["path"] + (f"?{vector['query']}" if vector["query"] else "")
    assert string_to_verify(request) == (expected + "\n" + vector["body"]).encode()
    # Stage 2: the key comes from the pinned table; a fetch would raise.
    keys = PublicKeys(fetch=no_network)
    public_key = keys.for_header(request.header("x-oss-pub-key-url"))
    assert public_key.key_size == 512
    # Stage 3: the signature.
    if vector["valid"]:
        assert verify_signature(string_to_verify(request), vector["authorization"], public_key)
    else:
        with pytest.raises(SignatureInvalid):
            verify_signature(string_to_verify(request), vector["authorization"], public_key)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_both_documented_key_urls_are_pinned(scheme: str) -> None:
    """Older docs send the http:// form of the v1 URL: same key, still no network."""
    url = f"{scheme}://gosspublic.alicdn.com/callback_pub_key_v1.pem"
    header = base64.b64encode(url.encode()).decode()
    c1 = next(v for v in CALLBACKS if v["id"] == "C1")
    key = PublicKeys(fetch=no_network).for_header(header)
    verify_signature(string_to_verify(as_request(c1)), c1["authorization"], key)


def test_c3_with_a_trailing_question_mark_fails() -> None:
    """oss-protocol.md §6.6 negative control: a '?' with no query is not what OSS signed."""
    c3 = next(v for v in CALLBACKS if v["id"] == "C3")
    key = PublicKeys(fetch=no_network).for_header(c3["pub_key_url_b64"])
    message = f"{c3['path']}?\n{c3['body']}".encode()
    with pytest.raises(SignatureInvalid):
        verify_signature(message, c3["authorization"], key)


@pytest.mark.parametrize("vector_id", ["C1", "C3"])
def test_any_single_changed_byte_fails(vector_id: str) -> None:
    """§6.6: any single changed byte of path, query or body fails (every position, one bit)."""
    vector = next(v for v in CALLBACKS if v["id"] == vector_id)
    key = PublicKeys(fetch=no_network).for_header(vector["pub_key_url_b64"])
    message = string_to_verify(as_request(vector))
    for index in range(len(message)):
        mutated = bytearray(message)
        mutated[index] ^= 0x01
        with pytest.raises(SignatureInvalid):
            verify_signature(bytes(mutated), vector["authorization"], key)
