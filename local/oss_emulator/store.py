"""Objects on disk under the data directory, keyed so that no object key can name a path.

Each object is `objects/<sha256(key)>` plus a JSON sidecar `<sha256(key)>.json` holding the key
and its metadata; an object completed from parts keeps them as `<sha256(key)>-<i>` files read in
order (no 1 GiB copy at CompleteMultipartUpload). The key never becomes part of a path, so
`../`, absolute paths, NUL bytes or any other spelling cannot leave the directory. Writes go to
a temporary file and are renamed into place; one lock makes check-then-write
(`x-oss-forbid-overwrite`) atomic.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from local.oss_emulator.errors import OssError
from shared.digits import whole_number


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    etag: str  # uppercase hex MD5, unquoted (headers add the quotes)
    content_type: str
    crc64: str  # unsigned decimal, as x-oss-hash-crc64ecma
    content_md5: str  # base64 MD5
    last_modified: float
    headers: dict[str, str] = field(default_factory=dict)  # Cache-Control, x-oss-meta-*, …
    acl: str = "default"  # x-oss-object-acl; "default" follows the bucket's ACL
    storage_class: str = "Standard"  # OSS's spelling: Standard, IA, Archive, ColdArchive, …
    encryption: str = ""  # x-oss-server-side-encryption (AES256, KMS, SM4) or none
    object_type: str = "Normal"  # x-oss-object-type: "Multipart" after CompleteMultipartUpload
    parts: tuple[int, ...] = ()  # sizes of the part files the bytes are, in order; () = one file


def file_already_exists() -> OssError:
    """409: `x-oss-forbid-overwrite: true` and the key exists (PutObject reference)."""
    return OssError(
        409,
        "FileAlreadyExists",
        "The object you specified already exists and can not be overwritten.",
        ec="0026-00000001",
    )


class ObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.spool = root / "spool"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.spool.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _paths(self, key: str) -> tuple[Path, Path]:
        name = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return self.objects / name, self.objects / f"{name}.json"

    def put(
        self, obj: StoredObject, source: Path | Sequence[Path], *, forbid_overwrite: bool
    ) -> None:
        """Move the spooled file (or the part files, `obj.parts`) into place; 409
        FileAlreadyExists when overwriting is forbidden."""
        data_path, meta_path = self._paths(obj.key)
        sources = [source] if isinstance(source, Path) else list(source)
        with self._lock:
            if forbid_overwrite and meta_path.exists():
                raise file_already_exists()
            if obj.parts:
                for index, part in enumerate(sources):
                    os.replace(part, _segment(data_path, index))
            else:
                os.replace(sources[0], data_path)
            tmp = meta_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(asdict(obj), ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, meta_path)
            _remove_stale(data_path, parts=len(obj.parts))

    def delete(self, key: str) -> None:
        """Remove the object and its metadata; nothing to do when it is not there."""
        data_path, meta_path = self._paths(key)
        with self._lock:
            meta_path.unlink(missing_ok=True)
            data_path.unlink(missing_ok=True)
            _remove_stale(data_path, parts=0)

    def get(self, key: str) -> StoredObject | None:
        _, meta_path = self._paths(key)
        try:
            data = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        obj = _loaded(data)
        return obj if obj.key == key else None

    def all_objects(self) -> Iterator[StoredObject]:
        """Every object's sidecar (`<sha256>.json`); temporary `.json.tmp` files are not objects."""
        for path in self.objects.glob("*.json"):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # replaced or being written this instant: the next listing sees it
            yield _loaded(data)

    def chunks(self, obj: StoredObject, offset: int, length: int) -> Iterator[bytes]:
        """`length` bytes of the object from `offset`, across its part files when it has them;
        each file is opened when reached and closed after."""
        data_path, _ = self._paths(obj.key)
        files = [(_segment(data_path, i), size) for i, size in enumerate(obj.parts)]
        for path, size in files or [(data_path, obj.size)]:
            if length <= 0:
                return
            if offset >= size:
                offset -= size
                continue
            take = min(length, size - offset)
            yield from _file_slice(path, offset, take)
            length -= take
            offset = 0

    def read_bytes(self, obj: StoredObject) -> bytes:
        return b"".join(self.chunks(obj, 0, obj.size))


def _loaded(data: Any) -> StoredObject:
    obj = StoredObject(**data)
    return replace(obj, parts=tuple(obj.parts))


def _segment(data_path: Path, index: int) -> Path:
    return data_path.with_name(f"{data_path.name}-{index}")


def _remove_stale(data_path: Path, *, parts: int) -> None:
    """After a write of an object made of `parts` part files (0: of one file), or a delete
    (0): the files it does not use."""
    if parts:
        data_path.unlink(missing_ok=True)
    for path in data_path.parent.glob(f"{data_path.name}-*"):
        index = path.name.rsplit("-", 1)[1]
        number = whole_number(index)
        if number is not None and number >= parts:
            path.unlink(missing_ok=True)


def _file_slice(path: Path, offset: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(offset)
        while length > 0:
            chunk = handle.read(min(length, 64 * 1024))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
