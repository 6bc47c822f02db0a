"""The public key an OSS callback names in `x-oss-pub-key-url`: trusted, pinned, fetched, cached.

The header is attacker-controlled, so the URL decides nothing until it passes an exact allow-list
(security.md §3.3): `http(s)://gosspublic.alicdn.com/callback_pub_key_v<N>.pem` component by
component with N from 1 to 9, or a URL listed verbatim in CALLBACK_TRUSTED_KEY_URLS. The decision
is made before any network I/O. OSS's known v1 key ships with the code, so the hot path makes no
network call; other allowed URLs are fetched once (no redirects, ≤ 2 s, ≤ 16 KiB, an RSA public key
of ≥ 1024 bits) and cached, failures briefly.

Why N ≤ 9: OSS has only ever published v1 (the documented key; no other version appears in OSS's
documentation or SDKs). Forged callbacks cost nothing to send, so every allowed URL is a fetch an
attacker can trigger: a bounded set (eight unpinned URLs; `http://` and `https://` share one fetch
and one cache entry) caps them at eight per FAILURE_TTL_SECONDS whatever the flood, while a key
rotation to v2…v9 still works without a release.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from shared.callback.headers import canonical_base64_header
from shared.deadline import DeadlinePool
from shared.errors import AppError, KeyUrlUntrusted, SignatureInvalid, Unavailable

if TYPE_CHECKING:  # requests loads on the first key fetch: OSS's own keys are pinned (no fetch)
    import requests

OSS_KEY_HOST = "gosspublic.alicdn.com"
_OSS_KEY_PATH = re.compile(r"/callback_pub_key_v[1-9]\.pem")
MAX_HEADER_CHARS = 2048
MAX_KEY_BYTES = 16 * 1024  # a PEM public key is well under 1 KiB
FETCH_TIMEOUT_SECONDS = 2.0  # connect + read, leaving OSS's 5 s for the rest
MIN_FETCHED_KEY_BITS = 1024
KEY_TTL_SECONDS = 24 * 3600.0  # OSS: "the key content does not change; cache it"
FAILURE_TTL_SECONDS = 30.0  # a flood of bad callbacks must not become a flood of fetches
MAX_CACHED_URLS = 256

# https://gosspublic.alicdn.com/callback_pub_key_v1.pem (oss-protocol.md §6.3): 512-bit RSA,
# verified against every real OSS signature in tests/data/oss.json.
OSS_V1_KEY_PEM = b"""-----BEGIN PUBLIC KEY-----
MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKs/JBGzwUB2aVht4crBx3oIPBLNsjGs
C0fTXv+nvlmklvkcolvpvXLTjaxUHR3W9LXxQ2EHXAJfCB+6H2YF1k8CAwEAAQ==
-----END PUBLIC KEY-----
"""
PINNED_KEY_PEMS: dict[str, bytes] = {
    f"https://{OSS_KEY_HOST}/callback_pub_key_v1.pem": OSS_V1_KEY_PEM,
    f"http://{OSS_KEY_HOST}/callback_pub_key_v1.pem": OSS_V1_KEY_PEM,
}

Fetch = Callable[[str], bytes]
_FETCHERS = DeadlinePool("key-fetch", workers=4)


def decode_key_url(header: str | None) -> str:
    """`x-oss-pub-key-url` is base64 of the key URL; anything but canonical base64 is refused."""
    raw = canonical_base64_header(
        header, name="x-oss-pub-key-url", max_chars=MAX_HEADER_CHARS, error=KeyUrlUntrusted
    )
    try:
        url = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise KeyUrlUntrusted("the x-oss-pub-key-url header is not base64 of a URL") from exc
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise KeyUrlUntrusted("the public key URL contains spaces or control characters")
    return url


def is_oss_key_url(url: str) -> bool:
    """OSS's own key host, compared component by component: exact host, no port/userinfo/query."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and parts.netloc == OSS_KEY_HOST  # exact and case-sensitive: no userinfo, no port
        and _OSS_KEY_PATH.fullmatch(parts.path) is not None
        and url == f"{parts.scheme}://{OSS_KEY_HOST}{parts.path}"  # no '?', '#', odd spelling
    )


def trusted_key_url(header: str | None, trusted: Collection[str]) -> str:
    """Decode the header and allow only OSS's key URLs or one listed verbatim; no network I/O."""
    url = decode_key_url(header)
    if url in trusted or is_oss_key_url(url):
        return url
    raise KeyUrlUntrusted("the public key URL is not an OSS key URL we trust")


def fetch_url(url: str) -> str:
    """security.md §3.3.2: OSS's documented `http://` key URL is fetched over https, never in clear."""
    if url.startswith("http://") and is_oss_key_url(url):
        return "https://" + url[len("http://") :]
    return url


def load_rsa_public_key(pem: bytes, *, min_bits: int = MIN_FETCHED_KEY_BITS) -> RSAPublicKey:
    """The content must load as an RSA public key of at least `min_bits` (no private, EC, junk)."""
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureInvalid("the key URL did not serve a PEM public key") from exc
    if not isinstance(key, RSAPublicKey):
        raise SignatureInvalid("the key URL served a key that is not RSA")
    if key.key_size < min_bits:
        raise SignatureInvalid(f"the key URL served an RSA key shorter than {min_bits} bits")
    return key


def fetch_pem(
    url: str,
    *,
    session: requests.Session | None = None,
    timeout: float = FETCH_TIMEOUT_SECONDS,
    limit: int = MAX_KEY_BYTES,
) -> bytes:
    """GET a key: no redirects, status 200 only, at most `limit` bytes, `timeout` in all."""
    import requests  # noqa: PLC0415 - off the cold start: pinned keys never fetch

    started = time.monotonic()
    http = session or _plain_session()
    try:
        with http.get(
            url,
            allow_redirects=False,
            timeout=(timeout / 2, timeout / 2),
            stream=True,
            headers={"Accept-Encoding": "identity"},
        ) as response:
            if response.status_code >= 500 or response.status_code == 429:
                raise Unavailable(f"the key URL answered HTTP {response.status_code}")
            if response.status_code != 200:  # redirects included: never followed
                raise SignatureInvalid(f"the key URL answered HTTP {response.status_code}")
            return _read_capped(response.raw, started + timeout, limit)
    except requests.RequestException as exc:
        raise Unavailable(f"the key URL could not be fetched: {type(exc).__name__}") from exc


def _read_capped(raw: Any, deadline: float, limit: int) -> bytes:
    """Read what arrives, chunk by chunk, so a drip-fed body still meets the deadline."""
    read_some = getattr(raw, "read1", None)  # urllib3 ≥ 2.3: returns as soon as bytes arrive
    body = bytearray()
    while True:
        if read_some is not None:
            chunk = read_some(1024, decode_content=False)
        else:
            chunk = raw.read(64, decode_content=False)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > limit:
            raise SignatureInvalid(f"the key URL served more than {limit} bytes")
        if time.monotonic() > deadline:
            raise Unavailable("the key URL is too slow")


def _plain_session() -> requests.Session:
    import requests  # noqa: PLC0415 - see fetch_pem

    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc credentials from the environment
    return session


@dataclass(frozen=True)
class _Cached:
    expires: float
    key: RSAPublicKey | None
    error: AppError | None


class PublicKeys:
    """Thread-safe key lookup: pinned keys first, then a per-URL cache in front of `fetch`."""

    def __init__(
        self,
        trusted_urls: Collection[str] = (),
        *,
        fetch: Fetch | None = None,
        clock: Callable[[], float] = time.monotonic,
        deadline: float = FETCH_TIMEOUT_SECONDS,
        ttl: float = KEY_TTL_SECONDS,
        failure_ttl: float = FAILURE_TTL_SECONDS,
    ) -> None:
        self._trusted = frozenset(trusted_urls)
        self._fetch = fetch or fetch_pem
        self._clock = clock
        self._deadline = deadline
        self._ttl = ttl
        self._failure_ttl = failure_ttl
        self._lock = threading.Lock()
        self._url_locks: dict[str, threading.Lock] = {}
        self._cache: dict[str, _Cached] = {}

    def for_header(self, header: str | None) -> RSAPublicKey:
        """The key for an `x-oss-pub-key-url` value; KeyUrlUntrusted before any network I/O."""
        return self.for_url(trusted_key_url(header, self._trusted))

    def for_url(self, url: str) -> RSAPublicKey:
        pinned = _PINNED_KEYS.get(url)
        if pinned is not None:
            return pinned
        url = fetch_url(url)  # one fetch and one cache entry for the http:// and https:// spelling
        with self._lock:
            url_lock = self._url_locks.setdefault(url, threading.Lock())
        with url_lock:  # one fetch per URL at a time; the others wait for its verdict
            cached = self._cached(url)
            if cached is None:
                cached = self._load(url)
            if cached.error is not None:
                raise type(cached.error)(cached.error.message)
            assert cached.key is not None
            return cached.key

    def _cached(self, url: str) -> _Cached | None:
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None and cached.expires > self._clock():
            return cached
        return None

    def _load(self, url: str) -> _Cached:
        try:
            pem = _FETCHERS.call(lambda: self._fetch(url), self._deadline, what="the key URL")
            cached = _Cached(self._clock() + self._ttl, load_rsa_public_key(pem), None)
        except AppError as error:
            cached = _Cached(self._clock() + self._failure_ttl, None, error)
        except Exception as exc:  # an injected fetch's own failure: the key is unavailable
            failure = Unavailable(f"the key URL could not be fetched: {type(exc).__name__}")
            cached = _Cached(self._clock() + self._failure_ttl, None, failure)
        with self._lock:
            if len(self._cache) >= MAX_CACHED_URLS:
                now = self._clock()
                self._cache = {u: c for u, c in self._cache.items() if c.expires > now}
                if len(self._cache) >= MAX_CACHED_URLS:
                    self._cache.pop(next(iter(self._cache)))
            self._cache[url] = cached
        return cached


def _load_pinned(pem: bytes) -> RSAPublicKey:
    key = load_pem_public_key(pem)
    assert isinstance(key, RSAPublicKey)
    return key


_PINNED_KEYS: dict[str, RSAPublicKey] = {
    url: _load_pinned(pem) for url, pem in PINNED_KEY_PEMS.items()
}
