"""Removing one object, and only the one a record or callback describes (one home for both uses).

The callback deletes an upload it refused (DESIGN "Verification"); the sign function deletes an
upload its owner asked to delete (DESIGN "Private files"). Both name the object by key and etag:
HeadObject first, and DeleteObject only while the stored object still has that etag. A newer
object under the same key (a prefix grant's owner overwrote it) or one already gone is left alone.
Any failure is `Unavailable` (503): the callback's OSS reports CallbackFailed and nothing is
recorded; a DELETE is retried by its caller. The official `oss2` SDK does the calls
(`shared.oss.bucket_client`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from shared.credentials import Credentials
from shared.errors import Unavailable
from shared.oss import bucket_client
from shared.settings import OssSettings

TIMEOUT_SECONDS = 1.5  # connect and each read: the callback answers OSS within 5 s

Removal = Literal["deleted", "gone", "replaced"]


class Remover(Protocol):
    def remove(self, key: str, etag: str) -> Removal:
        """Delete `key` if it still holds the object with `etag`; raise Unavailable on failure."""


RemoverFactory = Callable[[Credentials], Remover]


class OssRemover:
    """`Remover` over oss2: HeadObject, then DeleteObject (the calling role needs both rights)."""

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


def _etag(value: Any) -> str:
    return str(value or "").strip('"').upper()
