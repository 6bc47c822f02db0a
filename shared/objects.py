"""The bucket as our functions see it: list keys under a prefix, HEAD or read one object, abort a
multipart upload left open (the sweeper), and remove one upload — refused by the callback, or deleted by its owner through the sign function
(official `oss2`).

The client is `shared.oss.bucket_client` (the function role's credentials, V4 or V1); oss2 is
imported on first use, so a callback that never refuses an upload never loads it. SDK failures
become our domain errors: unreachable or 5xx → Unavailable, refused → Forbidden. A removal deletes
only the object a verified callback (or HeadObject) described: HeadObject first, and DeleteObject
only while the stored etag is still that one — a newer object under the same key is left alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shared.credentials import Credentials
from shared.errors import AppError, BadRequest, Forbidden, Unavailable
from shared.oss import bucket_client
from shared.settings import OssSettings

if TYPE_CHECKING:  # shared.verify loads the sniffer: only the functions that verify import it
    from shared.verify import ObjectReader, Stored

Removal = Literal["deleted", "gone", "replaced"]
TIMEOUT_SECONDS = 10.0  # connect and each read; a listing page is one short request
REMOVE_TIMEOUT_SECONDS = 1.5  # a removal answers a caller that waits (OSS gives a callback 5 s)
PAGE_SIZE = 1000  # ListObjectsV2's maximum


@dataclass(frozen=True)
class Listed:
    """One ListObjectsV2 entry."""

    key: str
    etag: str  # unquoted, as oss2 returns it
    size: int
    last_modified: int  # Unix seconds (OSS lists them with 1 s resolution)


@dataclass(frozen=True)
class Head:
    """What HeadObject says about a stored object: everything a record needs."""

    key: str
    size: int
    etag: str
    mime_type: str
    crc64: str
    content_md5: str
    last_modified: int


class Objects(Protocol):
    def list(self, prefix: str) -> Iterator[Listed]:
        """Every object under `prefix`, in key order; raise Unavailable/Forbidden."""

    def head(self, key: str) -> Head | None:
        """The object's metadata, or None when it is gone."""

    def remove(self, key: str, etag: str) -> Removal:
        """Delete `key` if it still holds the object with `etag`; raise Unavailable/Forbidden."""

    def stored(self, key: str, etag: str, first_bytes: int) -> Stored:
        """`shared.verify.ObjectReader`: the object if it still has `etag`, and its first bytes."""

    def abort_upload(self, key: str, upload_id: str) -> bool:
        """AbortMultipartUpload; False when OSS has no such upload (completed or aborted)."""


class Remover(Protocol):
    def remove(self, key: str, etag: str) -> Removal:
        """As `Objects.remove`."""


RemoverFactory = Callable[[Credentials], Remover]
ReaderFactory = Callable[[Credentials], "ObjectReader"]


def oss_remover(
    settings: OssSettings, *, timeout: float = REMOVE_TIMEOUT_SECONDS
) -> RemoverFactory:
    """Removers for the callback (an upload it refused) and the sign function (a DELETE)."""

    def factory(credentials: Credentials) -> Remover:
        return OssObjects(settings, credentials, timeout=timeout)

    return factory


def oss_reader(settings: OssSettings, *, timeout: float) -> ReaderFactory:
    """Readers for the callback's verification reads (`shared.verify`), one per credential set:
    rebuilt only when role credentials rotate, so connections are reused between invocations."""
    cache: list[tuple[object, ObjectReader]] = []
    lock = threading.Lock()

    def factory(credentials: Credentials) -> ObjectReader:
        with lock:
            if cache and cache[0][0] == credentials.identity:
                return cache[0][1]
            from shared.verify import OssReader  # noqa: PLC0415 - see the imports

            reader = OssReader(bucket_client(settings, credentials, timeout=timeout))
            cache[:] = [(credentials.identity, reader)]
            return reader

    return factory


class OssObjects:
    """`Objects` over oss2: ListObjectsV2 pages of 1000 and HeadObject."""

    def __init__(
        self,
        settings: OssSettings,
        credentials: Credentials,
        *,
        timeout: float = TIMEOUT_SECONDS,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.page_size = page_size
        self.bucket = bucket_client(settings, credentials, timeout=timeout)

    def list(self, prefix: str) -> Iterator[Listed]:
        """ListObjectsV2 under `prefix`, following continuation tokens."""
        token = ""
        while True:
            page = _call(
                self.bucket.list_objects_v2,
                prefix=prefix,
                continuation_token=token,
                max_keys=self.page_size,
            )
            for info in page.object_list:
                yield Listed(info.key, info.etag, int(info.size), int(info.last_modified))
            if not page.is_truncated:
                return
            token = page.next_continuation_token

    def stored(self, key: str, etag: str, first_bytes: int) -> Stored:
        from shared.verify import OssReader  # noqa: PLC0415 - see the imports

        return OssReader(self.bucket).stored(key, etag, first_bytes)

    def abort_upload(self, key: str, upload_id: str) -> bool:
        from shared import multipart  # noqa: PLC0415 - the sweeper's multipart path only

        return multipart.abort(self.bucket, key, upload_id)

    def head(self, key: str) -> Head | None:
        """HeadObject; a 404 means the object was deleted after it was listed."""
        try:
            result = _call(self.bucket.head_object, key)
        except _Gone:
            return None
        headers = result.headers
        return Head(
            key=key,
            size=int(result.content_length or 0),
            etag=result.etag,
            mime_type=result.content_type or "application/octet-stream",
            crc64=headers.get("x-oss-hash-crc64ecma", ""),
            content_md5=headers.get("Content-MD5", ""),
            last_modified=int(result.last_modified),
        )

    def remove(self, key: str, etag: str) -> Removal:
        """HeadObject, then DeleteObject only while the stored etag is `etag` (OSS answers 204
        whether or not the object still exists)."""
        head = self.head(key)
        if head is None:
            return "gone"
        if _bare(head.etag) != _bare(etag):
            return "replaced"
        _call(self.bucket.delete_object, key)
        return "deleted"


def _bare(etag: str) -> str:
    return str(etag or "").strip().strip('"').upper()


class _Gone(Exception):
    """HeadObject answered 404."""


def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
    """One SDK call; its exceptions become domain errors (401/403 → Forbidden, else Unavailable)."""
    import oss2  # noqa: PLC0415 - already loaded with the client; here for its exceptions

    try:
        return method(*args, **kwargs)
    except oss2.exceptions.NotFound as exc:
        if getattr(method, "__name__", "") == "head_object":
            raise _Gone from exc
        raise Unavailable(f"OSS answered 404 {exc.code or ''}".strip()) from exc
    except oss2.exceptions.RequestError as exc:
        raise Unavailable("OSS could not be reached") from exc
    except oss2.exceptions.OssError as exc:
        raise _domain_error(exc) from exc
    except (ValueError, RuntimeError) as exc:  # the SDK's own XML parsing of a bad reply
        raise Unavailable(f"OSS answered something the SDK could not read: {exc}") from exc


def _domain_error(exc: Any) -> AppError:
    text = f"OSS answered {exc.status} {exc.code or ''}".strip()
    if exc.status in (401, 403):
        return Forbidden(f"{text}: check the function role's oss:ListObjects/GetObject rights")
    if exc.status == 400:
        return BadRequest(text)
    return Unavailable(text)
