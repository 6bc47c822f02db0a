"""`x-oss-pub-key-url`: the allow-list (before any network I/O), the defensive fetch (real
`requests` against a loopback server) and the thread-safe cache. security.md §8.3/§8.5: C6-C9, F1,
F2 here; F3 (pinned key, no network) in test_callback_vectors.py.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared.callback.pubkeys import (
    OSS_V1_KEY_PEM,
    PublicKeys,
    fetch_pem,
    is_oss_key_url,
    load_rsa_public_key,
    trusted_key_url,
)
from shared.errors import AppError, KeyUrlUntrusted, SignatureInvalid, Unavailable
from tests.support.callbacks import Clock, KeyServer, b64, no_network, public_pem, rsa_key
from tests.support.data import HOSTILE
from tests.support.keyhost import KeyHost, key_host

EMULATOR_KEY_URL = "http://127.0.0.1:9000/.well-known/oss-emulator/callback_pub_key.pem"


@pytest.mark.parametrize(
    "url",
    [
        "https://gosspublic.alicdn.com/callback_pub_key_v1.pem",
        "http://gosspublic.alicdn.com/callback_pub_key_v1.pem",
        "https://gosspublic.alicdn.com/callback_pub_key_v2.pem",
        "https://gosspublic.alicdn.com/callback_pub_key_v9.pem",
        EMULATOR_KEY_URL,  # listed in CALLBACK_TRUSTED_KEY_URLS
    ],
)
def test_oss_key_urls_and_listed_urls_are_allowed(url: str) -> None:
    assert is_oss_key_url(url) == (url != EMULATOR_KEY_URL)
    assert trusted_key_url(b64(url), [EMULATOR_KEY_URL]) == url


# security.md §8.3 C7 and near misses of every component of the allowed URL (before base64),
# then headers that are not base64 of a URL (other base64 spellings: test_http.py).
@pytest.mark.parametrize(
    "header",
    [
        *(b64(url) for url in HOSTILE["key_urls"]),
        None,
        "",
        "   ",
        "aHR0cHM6Ly9nb3NzcHVibGljLmFsaWNk bi5jb20vY2FsbGJhY2tfcHViX2tleV92MS5wZW0=",
        "aHR0cHM6Ly9nb3NzcHVibGljLmFsaWNkbi5jb20vY2FsbGJhY2tfcHViX2tleV92MS5wZW0=,"
        "aHR0cHM6Ly9nb3NzcHVibGljLmFsaWNkbi5jb20vY2FsbGJhY2tfcHViX2tleV92MS5wZW0=",  # C16
        base64.b64encode("https://gosspublic.alicdn.com/ü.pem".encode()).decode(),
        base64.b64encode(b"\xff\xfe").decode(),
        "QQ==" * 600,
        b64(EMULATOR_KEY_URL + "?"),  # a listed URL is matched verbatim only
        b64(EMULATOR_KEY_URL.upper()),
        b64(EMULATOR_KEY_URL.replace("9000", "9001")),
    ],
)
def test_untrusted_key_urls_are_refused_before_any_fetch(header: str | None) -> None:
    """C6/C7: refused as KeyUrlUntrusted (401) and the fetch is never called."""
    keys = PublicKeys([EMULATOR_KEY_URL], fetch=no_network)
    with pytest.raises(KeyUrlUntrusted) as caught:
        keys.for_header(header)
    assert (caught.value.status, caught.value.code) == (401, "KeyUrlUntrusted")


# --- key content ----------------------------------------------------------------------------


def private_pem() -> bytes:
    return rsa_key(2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("garbage", lambda: b"not a key at all"),
        ("empty", lambda: b""),
        ("html", lambda: b"<html><body>hello</body></html>"),
        ("private key", private_pem),
        ("EC key", lambda: public_pem(ec.generate_private_key(ec.SECP256R1()))),
        ("512-bit RSA", lambda: OSS_V1_KEY_PEM),
        ("truncated PEM", lambda: public_pem(rsa_key(2048))[:200]),
    ],
)
def test_unacceptable_key_content_is_refused(name: str, content: Any) -> None:
    """C9: only an RSA public key of at least 1024 bits is usable when fetched."""
    with pytest.raises(SignatureInvalid):
        load_rsa_public_key(content())


def test_fetched_keys_need_1024_bits() -> None:
    assert load_rsa_public_key(public_pem(rsa_key(1024))).key_size == 1024
    assert load_rsa_public_key(public_pem(rsa_key(2048))).key_size == 2048


# --- cache ----------------------------------------------------------------------------------

V2 = "https://gosspublic.alicdn.com/callback_pub_key_v2.pem"


def test_fetched_key_is_cached_per_url_for_a_long_time() -> None:
    server = KeyServer({V2: public_pem(rsa_key(2048))})
    clock = Clock(1000.0)
    keys = PublicKeys(fetch=server, clock=clock)
    first = keys.for_header(b64(V2))
    clock.now += 23 * 3600
    assert keys.for_header(b64(V2)) is first
    assert server.calls == [V2]
    clock.now += 2 * 3600  # past the TTL: fetched again
    keys.for_header(b64(V2))
    assert server.calls == [V2, V2]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (Unavailable("connection refused"), Unavailable),
        (OSError("network unreachable"), Unavailable),  # a broken fetch: not a crash
        (OSS_V1_KEY_PEM, SignatureInvalid),  # a 512-bit key is not acceptable when fetched
    ],
    ids=["unavailable", "broken", "short key"],
)
def test_failures_are_cached_briefly(answer: Exception | bytes, error: type[AppError]) -> None:
    """F1: a failing key URL is asked again only after the failure TTL."""
    calls: list[str] = []

    def fetch(url: str) -> bytes:
        calls.append(url)
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = Clock(1000.0)
    keys = PublicKeys(fetch=fetch, clock=clock)
    for _ in range(3):
        with pytest.raises(error):
            keys.for_header(b64(V2))
    assert calls == [V2]
    clock.now += 31
    with pytest.raises(error):
        keys.for_header(b64(V2))
    assert calls == [V2, V2]


def test_a_hanging_fetch_is_cut_at_the_deadline() -> None:
    """F2: the caller gets 503 at the deadline however long the fetch blocks."""
    release, returned = threading.Event(), threading.Event()

    def hangs(url: str) -> bytes:
        release.wait(30)
        returned.set()
        return b""

    with pytest.raises(Unavailable, match="did not answer within 2 s"):  # FETCH_TIMEOUT_SECONDS
        PublicKeys(fetch=hangs).for_header(b64(V2))
    assert not returned.is_set()  # the deadline answered, not the fetch
    release.set()


def test_concurrent_lookups_fetch_once() -> None:
    """Thread-safe: 16 concurrent callbacks naming a new key URL cause one fetch."""
    pem = public_pem(rsa_key(2048))
    calls: list[str] = []
    gate = threading.Event()

    def slow(url: str) -> bytes:
        calls.append(url)
        gate.wait(1)
        return pem

    keys = PublicKeys(fetch=slow)
    with ThreadPoolExecutor(16) as pool:
        lookups = [pool.submit(keys.for_header, b64(V2)) for _ in range(16)]
        time.sleep(0.1)
        gate.set()
        results = [lookup.result(5) for lookup in lookups]
    assert calls == [V2]
    assert len({id(key) for key in results}) == 1


# --- the real fetch over loopback -----------------------------------------------------------


@pytest.fixture
def host() -> Iterator[KeyHost]:
    pem = public_pem(rsa_key(2048))
    routes = {"/key.pem": pem, "/error.pem": (500, b"oops"), "/missing.pem": (404, b"no such key")}
    with key_host(routes) as server:
        yield server


def test_real_fetch_reads_a_key(host: KeyHost) -> None:
    assert fetch_pem(host.url("/key.pem")) == host.routes["/key.pem"]
    keys = PublicKeys([host.url("/key.pem")])
    assert keys.for_header(b64(host.url("/key.pem"))).key_size == 2048


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/redirect.pem", SignatureInvalid),  # C8: a 302 is a refusal, its target never asked
        ("/error.pem", Unavailable),  # F1: 5xx is an outage (503)
        ("/missing.pem", SignatureInvalid),  # 4xx: no key there (401)
    ],
)
def test_status_other_than_200_is_refused(host: KeyHost, path: str, error: type[AppError]) -> None:
    with pytest.raises(error):
        fetch_pem(host.url(path))
    assert host.hits == [path]


def test_a_huge_body_is_cut_after_16_kib(host: KeyHost) -> None:
    """C9: the read is capped; the 10 MB body is not downloaded."""
    session = requests.Session()
    session.trust_env = False
    responses: list[Any] = []
    session.hooks["response"].append(lambda response, **_: responses.append(response.raw))
    with pytest.raises(SignatureInvalid, match="more than 16384 bytes"):
        fetch_pem(host.url("/huge.pem"), session=session)
    assert responses[0].tell() <= 16384 + 1024  # bytes pulled off the socket: one chunk past


def test_a_drip_fed_body_meets_the_total_timeout(host: KeyHost) -> None:
    """F2: bytes keep arriving (no read timeout fires), the total timeout still does."""
    with pytest.raises(Unavailable, match="too slow"):  # the total deadline, not a read timeout
        fetch_pem(host.url("/drip.pem"), timeout=1.0)


def test_a_silent_host_is_cut_by_the_deadline(host: KeyHost) -> None:
    """F1/F2 end to end with the real fetch: 503 while the host is still silent."""
    keys = PublicKeys([host.url("/silent.pem")])
    with pytest.raises(Unavailable):
        keys.for_header(b64(host.url("/silent.pem")))
    assert (host.hits, host.done) == (["/silent.pem"], [])  # its handler still waits


def test_connection_refused_is_unavailable() -> None:
    """F1: nothing listens there (port 1 on loopback)."""
    with pytest.raises(Unavailable):
        fetch_pem("http://127.0.0.1:1/callback_pub_key.pem")
