"""The emulator's own callback signing key: RSA-2048, kept in the data directory.

Real OSS signs with a key only it holds; the emulator signs with its own and serves the public
half at a URL the callback function is told to trust. Keeping the key on disk means a restarted
stack still verifies against the key a running callback function may have cached.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_FILE = "callback_private_key.pem"
KEY_PATH = "/.well-known/oss-emulator/callback_pub_key.pem"  # where the public half is served
RESERVED_KEY_PREFIX = KEY_PATH[1:].rsplit("/", 1)[0] + "/"  # no object key can shadow it


def load_or_create_key(directory: Path) -> rsa.RSAPrivateKey:
    """Read the key from `directory`, or generate one there (mode 0600) on first start."""
    path = directory / KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
            return key
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.replace(tmp, path)
    return key


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
