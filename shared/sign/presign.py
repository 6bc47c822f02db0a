"""Query-string presigned OSS URLs (V4 and V1), named after the steps of OSS's spec.

next-capabilities.md §1.4 (V4: `x-oss-*` query parameters; canonical request of method, URI
`/<bucket>/<key>`, sorted RFC 3986 query, signed headers, `UNSIGNED-PAYLOAD`; string to sign;
the same derived key as a V4 policy) and §1.5 (V1: `OSSAccessKeyId`, absolute `Expires`,
base64 HMAC-SHA1 over verb, Content-MD5, Content-Type, Expires, `x-oss-*` headers and the
resource with its sub-resources). Used for multipart part uploads and private downloads: the
URL binds the method, bucket, key, every query parameter and the headers returned with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from shared.credentials import Credentials
from shared.settings import OssSettings
from shared.sign.policy import V4_ALGORITHM, credential_scope, signing_key, x_oss_date

MAX_V4_EXPIRES = 604_800  # seven days: OSS's limit for `x-oss-expires`
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# Query parameters we presign. Each is an OSS sub-resource, so V1 signs it too (oss2's
# `_subresource_key_set`); anything else is a programming error, not a silent unsigned value.
SUB_RESOURCES = frozenset(
    {
        "uploads",
        "uploadId",
        "partNumber",
        "x-oss-process",
        "response-content-disposition",
        "response-content-type",
        "callback",  # a PutObject's upload callback (callback §1.3: signed in the URL)
    }
)
# Headers V4 signs when present (besides every x-oss-*); V1 puts them on their own lines.
DEFAULT_SIGNED_HEADERS = ("content-type", "content-md5")


@dataclass(frozen=True)
class Presigned:
    """A URL and the headers the client must send with it exactly (they are signed)."""

    method: str
    url: str
    expires_at: int  # Unix seconds
    headers: dict[str, str] = field(default_factory=dict)


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
# ASCII text is encoded by one str.translate (C speed); anything else goes through quote().
_QUERY_TABLE = {code: f"%{code:02X}" for code in range(128) if chr(code) not in _UNRESERVED}
_PATH_TABLE = {code: text for code, text in _QUERY_TABLE.items() if code != ord("/")}


def uri_encode(text: str, *, keep_slash: bool) -> str:
    """RFC 3986: every byte but `A-Z a-z 0-9 - _ . ~` as upper-case `%XX` (`/` kept in paths)."""
    if text.isascii():
        return text.translate(_PATH_TABLE if keep_slash else _QUERY_TABLE)
    return quote(text.encode("utf-8"), safe="/~" if keep_slash else "~")


# --- V4 -------------------------------------------------------------------------------------


def canonical_uri(bucket: str, key: str) -> str:
    """§1.4: `/<bucket>/<key>` encoded with `/` kept (the bucket even for virtual-hosted URLs)."""
    return uri_encode(f"/{bucket}/{key}", keep_slash=True)


def canonical_query(query: Mapping[str, str]) -> str:
    """§1.4: names and values encoded, sorted by encoded name; a bare name when the value is empty."""
    return _joined_query(_encoded_pairs(query))


def _encoded_pairs(query: Mapping[str, str]) -> list[tuple[str, str]]:
    return [
        (uri_encode(name, keep_slash=False), uri_encode(value, keep_slash=False))
        for name, value in query.items()
    ]


def _joined_query(encoded: list[tuple[str, str]]) -> str:
    return _url_query(sorted(encoded))


def _url_query(encoded: list[tuple[str, str]]) -> str:
    """Pairs as given: the URL lists the request's parameters first, then the signature's, as
    the official SDK does (the signature covers the sorted canonical query, not this order)."""
    return "&".join(f"{name}={value}" if value else name for name, value in encoded)


def canonical_headers(headers: Mapping[str, str]) -> str:
    """§1.4: `name:value\\n` for content-type, content-md5 and every x-oss-*, sorted by name."""
    signed = sorted(
        (name.lower(), value.strip())
        for name, value in headers.items()
        if name.lower() in DEFAULT_SIGNED_HEADERS or name.lower().startswith("x-oss-")
    )
    return "".join(f"{name}:{value}\n" for name, value in signed)


def canonical_request(
    method: str, bucket: str, key: str, query: Mapping[str, str], headers: Mapping[str, str]
) -> str:
    """§1.4: six LF-joined parts; no additional headers, so that line is empty."""
    return _request_text(method, canonical_uri(bucket, key), canonical_query(query), headers)


def _request_text(method: str, uri: str, query: str, headers: Mapping[str, str]) -> str:
    return "\n".join([method, uri, query, canonical_headers(headers), "", UNSIGNED_PAYLOAD])


def string_to_sign(date_time: str, region: str, request: str) -> str:
    """§1.4: algorithm, `x-oss-date`, scope, hex SHA-256 of the canonical request."""
    return _string_to_sign_head(date_time, region) + _digest(request)


def _string_to_sign_head(date_time: str, region: str) -> str:
    return f"{V4_ALGORITHM}\n{date_time}\n{credential_scope(date_time[:8], region)}\n"


def _digest(request: str) -> str:
    return hashlib.sha256(request.encode("utf-8")).hexdigest()


def presign_v4(
    method: str,
    *,
    endpoint: str,
    bucket: str,
    key: str,
    region: str,
    credentials: Credentials,
    now: float,
    expires: int,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Presigned:
    """A V4 presigned URL valid for `expires` seconds from `now`."""
    signer = V4Presigner(
        endpoint=endpoint,
        bucket=bucket,
        region=region,
        credentials=credentials,
        now=now,
        expires=expires,
    )
    return signer.presign(method, key, query, headers)


class V4Presigner:
    """V4 presigning for many URLs of one moment and key: what they share (the `x-oss-*`
    parameters, encoded; the derived signing key; the string-to-sign's head) is made once. A page
    of records needs two URLs each, so this is the cost that scales (bench: download URLs)."""

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        region: str,
        credentials: Credentials,
        now: float,
        expires: int,
    ) -> None:
        if not 1 <= expires <= MAX_V4_EXPIRES:
            raise ValueError(f"x-oss-expires must be 1..{MAX_V4_EXPIRES} seconds")
        date_time = x_oss_date(now)
        scope = credential_scope(date_time[:8], region)
        fixed = {  # in the official SDK's URL order (the canonical query sorts them)
            "x-oss-signature-version": V4_ALGORITHM,
            "x-oss-date": date_time,
            "x-oss-expires": str(expires),
            "x-oss-credential": f"{credentials.access_key_id}/{scope}",
        }
        if credentials.security_token:
            fixed["x-oss-security-token"] = credentials.security_token
        self._fixed = _encoded_pairs(fixed)
        self._bucket_uri = uri_encode(f"/{bucket}/", keep_slash=True)
        self._base = endpoint.rstrip("/")
        self._key = signing_key(credentials.access_key_secret.value, date_time[:8], region)
        self._to_sign_head = _string_to_sign_head(date_time, region)
        self._expires_at = int(now) + expires
        # Encoded texts, reused: the parts of one upload share their key and `uploadId`, a page
        # of records its parameters' names and the thumbnail process.
        self._query_text: dict[str, str] = {}
        self._path_text: dict[str, str] = {}

    def presign(
        self,
        method: str,
        key: str,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Presigned:
        """§1.4, as `canonical_request` and `string_to_sign` spell it, with the shared parts reused."""
        pairs = [(self._encoded(n), self._encoded(v)) for n, v in _checked(query).items()]
        pairs += self._fixed
        encoded_key = self._path_text.get(key)
        if encoded_key is None:
            encoded_key = self._path_text[key] = uri_encode(key, keep_slash=True)
        signed_headers = dict(headers or {})
        request = _request_text(
            method, self._bucket_uri + encoded_key, _joined_query(pairs), signed_headers
        )
        to_sign = (self._to_sign_head + _digest(request)).encode("utf-8")
        signature = hmac.digest(self._key, to_sign, "sha256").hex()
        url = f"{self._base}/{encoded_key}?{_url_query(pairs)}&x-oss-signature={signature}"
        return Presigned(method, url, self._expires_at, signed_headers)

    def _encoded(self, text: str) -> str:
        encoded = self._query_text.get(text)
        if encoded is None:
            encoded = self._query_text[text] = uri_encode(text, keep_slash=False)
        return encoded


# --- V1 -------------------------------------------------------------------------------------


def canonical_resource_v1(bucket: str, key: str, query: Mapping[str, str]) -> str:
    """§1.5: `/<bucket>/<key>` + `?` + sorted sub-resources, values not encoded."""
    subresources = sorted(query.items())
    if not subresources:
        return f"/{bucket}/{key}"
    joined = "&".join(f"{name}={value}" if value else name for name, value in subresources)
    return f"/{bucket}/{key}?{joined}"


def string_to_sign_v1(
    method: str, expires_at: int, headers: Mapping[str, str], resource: str
) -> str:
    """§1.5: verb, Content-MD5, Content-Type, Expires, then `x-oss-*` header lines and the resource."""
    lower = {name.lower(): value.strip() for name, value in headers.items()}
    oss_headers = "".join(
        f"{name}:{value}\n" for name, value in sorted(lower.items()) if name.startswith("x-oss-")
    )
    return "\n".join(
        [
            method,
            lower.get("content-md5", ""),
            lower.get("content-type", ""),
            str(expires_at),
            oss_headers + resource,
        ]
    )


def presign_v1(
    method: str,
    *,
    endpoint: str,
    bucket: str,
    key: str,
    credentials: Credentials,
    now: float,
    expires: int,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Presigned:
    """A V1 presigned URL valid until `now + expires` (Unix seconds)."""
    params = _checked(query)
    signed = dict(params)
    if credentials.security_token:
        signed["security-token"] = credentials.security_token  # a signed sub-resource in V1
    expires_at = int(now) + expires
    signed_headers = dict(headers or {})
    to_sign = string_to_sign_v1(
        method, expires_at, signed_headers, canonical_resource_v1(bucket, key, signed)
    )
    # SHA-1 is OSS's choice for V1, not ours.
    digest = hmac.new(
        credentials.access_key_secret.value.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha1
    ).digest()
    # The official SDK's URL order: the request's parameters, then the signature's.
    params["OSSAccessKeyId"] = credentials.access_key_id
    params["Expires"] = str(expires_at)
    if credentials.security_token:
        params["security-token"] = credentials.security_token
    params["Signature"] = base64.b64encode(digest).decode("ascii")
    return Presigned(
        method,
        f"{_object_url(endpoint, key)}?{_url_query(_encoded_pairs(params))}",
        expires_at,
        signed_headers,
    )


def _checked(query: Mapping[str, str] | None) -> dict[str, str]:
    params = dict(query or {})
    unknown = sorted(set(params) - SUB_RESOURCES)
    if unknown:
        raise ValueError(f"not a sub-resource we presign: {unknown[0]!r}")
    return params


def _object_url(endpoint: str, key: str) -> str:
    """The object's URL on OSS_ENDPOINT (virtual-hosted, or the emulator's bucket at the root)."""
    return f"{endpoint.rstrip('/')}/{uri_encode(key, keep_slash=True)}"


# (method, key, query, headers) → a presigned URL of one moment and expiry
Presign = Callable[[str, str, "Mapping[str, str] | None", "Mapping[str, str] | None"], Presigned]


def presigner(oss: OssSettings, credentials: Credentials, now: float, expires: int) -> Presign:
    """URLs of one moment with the configured signature version (OSS_SIGNATURE_VERSION): V4,
    whose shared parts are made once, or V1."""
    if oss.signature_version == "v1":

        def v1(
            method: str,
            key: str,
            query: Mapping[str, str] | None = None,
            headers: Mapping[str, str] | None = None,
        ) -> Presigned:
            return presign_v1(
                method,
                endpoint=oss.endpoint,
                bucket=oss.bucket,
                key=key,
                credentials=credentials,
                now=now,
                expires=expires,
                query=query,
                headers=headers,
            )

        return v1
    return V4Presigner(
        endpoint=oss.endpoint,
        bucket=oss.bucket,
        region=oss.region,
        credentials=credentials,
        now=now,
        expires=expires,
    ).presign
