"""OSS upload callbacks: the string OSS signed, its RSA signature, and the form body it carries.

Rules from oss-protocol.md §6.2: OSS signs `url_decode(path) + ("?" + raw query, only when there
is one) + "\\n" + raw body` with RSASSA-PKCS1-v1_5 over MD5, and sends the bare base64 signature in
`Authorization`. Every parse failure here is a domain error: 401 for anything that is not a valid
signature, 400 for an authentic body we cannot use (security.md §5: forged ≠ unusable).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from shared.callback.headers import canonical_base64_header
from shared.errors import SignatureInvalid
from shared.http import Request

MAX_AUTHORIZATION_CHARS = 1400  # base64 of an 8192-bit RSA signature is 1368 characters


def string_to_verify(request: Request) -> bytes:
    """§6.2: decoded path, `?` + raw query only when non-empty, LF, raw body bytes."""
    message = request.signed_path
    if request.query_string:
        try:
            query = request.query_string.encode("latin-1")  # WSGI: raw bytes as latin-1 text
        except UnicodeEncodeError:
            query = request.query_string.encode("utf-8")  # FC 3.0 JSON text
        message += b"?" + query
    return message + b"\n" + request.body


def decode_authorization(header: str | None) -> bytes:
    """`Authorization` is the bare, canonical base64 of the signature; nothing else is accepted."""
    return canonical_base64_header(
        header, name="Authorization", max_chars=MAX_AUTHORIZATION_CHARS, error=SignatureInvalid
    )


def verify_signature(message: bytes, authorization: str | None, public_key: RSAPublicKey) -> bytes:
    """RSA PKCS#1 v1.5 over MD5 of the string to verify; return the message or raise."""
    signature = decode_authorization(authorization)
    if len(signature) != (public_key.key_size + 7) // 8:
        raise SignatureInvalid("the signature does not match the key's length")
    try:
        # MD5 is OSS's choice, not ours: the callback signature scheme is fixed by OSS (§6.2).
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.MD5())  # noqa: S303
    except InvalidSignature as exc:
        raise SignatureInvalid("the OSS signature does not match the request") from exc
    return message
