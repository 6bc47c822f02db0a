"""The callback's OSS calls: reading the object it verifies, removing an upload it refused.

Reading (`oss_reader`): `shared.verify.OssReader` over the function role's client, one per
credential set (role credentials rotate), so that connections are reused between invocations.

Removing (DESIGN "Verification": a rejected upload is deleted).

The callback deletes only the object its (verified, grant-bound) callback describes: HeadObject
first, and DeleteObject only while the stored object still has the callback's etag. A newer object
under the same key (a prefix grant's owner overwrote it) or one already gone is left alone. Any
failure is `Unavailable`: the callback then answers 503, OSS reports CallbackFailed, and nothing is
recorded. The official `oss2` SDK does the calls (`shared.oss.bucket_client`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal, Protocol

from shared.credentials import Credentials
from shared.errors import Unavailable
from shared.oss import bucket_client
from shared.settings import OssSettings
from shared.verify import ObjectReader, OssReader

TIMEOUT_SECONDS = 1.5  # connect and each read: the callback answers OSS within 5 s

Removal = Literal["deleted", "gone", "replaced"]


class Remover(Protocol):
    def remove(self, key: str, etag: str) -> Removal:
        """Delete `key` if it still holds the object with `etag`; raise Unavailable on failure."""


RemoverFactory = Callable[[Credentials], Remover]
ReaderFactory = Callable[[Credentials], ObjectReader]


class OssRemover:
    """`Remover` over oss2: HeadObject, then DeleteObject (both need the callback role's rights)."""

    def __init__(
        self, settings: OssSettings, credentials: Credentials, *, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        self.bucket = bucket_client(settings, credentials, timeout=timeout)

    def remove(self, key: str, etag: str) -> Removal:
        import oss2  # noqa: PLC0415 - loaded with the client, on first use

        try:
            head = self.bucket.head_object(key)
            if _etag(head.etag) != _etag(etag):
                return "replaced"
            self.bucket.delete_object(key)
        except oss2.exceptions.NotFound:
            return "gone"
        except oss2.exceptions.OssError as exc:
            raise Unavailable(f"OSS answered {exc.status} {exc.code or ''}".strip()) from exc
        except (oss2.exceptions.RequestError, ValueError, RuntimeError) as exc:
            raise Unavailable(f"OSS could not be reached: {type(exc).__name__}") from exc
        return "deleted"


def oss_remover(settings: OssSettings) -> RemoverFactory:
    def factory(credentials: Credentials) -> Remover:
        return OssRemover(settings, credentials)

    return factory


def oss_reader(settings: OssSettings) -> ReaderFactory:
    """Readers for the verification reads, rebuilt only when the credentials change."""
    cache: list[tuple[object, ObjectReader]] = []
    lock = threading.Lock()

    def factory(credentials: Credentials) -> ObjectReader:
        with lock:
            if cache and cache[0][0] == credentials.identity:
                return cache[0][1]
            reader = OssReader(bucket_client(settings, credentials, timeout=TIMEOUT_SECONDS))
            cache[:] = [(credentials.identity, reader)]
            return reader

    return factory


def _etag(value: Any) -> str:
    return str(value or "").strip('"').upper()
