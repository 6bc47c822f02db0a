"""Objects on disk under the data directory, keyed so that no object key can name a path.

Each object is `objects/<sha256(key)>` plus a JSON sidecar `<sha256(key)>.json` holding the key
and its metadata. The key never becomes part of a path, so `../`, absolute paths, NUL bytes or
any other spelling cannot leave the directory. Writes go to a temporary file and are renamed
into place; one lock makes check-then-write (`x-oss-forbid-overwrite`) atomic.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from local.oss_emulator.errors import OssError


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

    def put(self, obj: StoredObject, source: Path, *, forbid_overwrite: bool) -> None:
        """Move the spooled file into place; 409 FileAlreadyExists when overwriting is forbidden."""
        data_path, meta_path = self._paths(obj.key)
        with self._lock:
            if forbid_overwrite and meta_path.exists():
                raise file_already_exists()
            os.replace(source, data_path)
            tmp = meta_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(asdict(obj), ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, meta_path)

    def delete(self, key: str) -> None:
        """Remove the object and its metadata; nothing to do when it is not there."""
        data_path, meta_path = self._paths(key)
        with self._lock:
            meta_path.unlink(missing_ok=True)
            data_path.unlink(missing_ok=True)

    def get(self, key: str) -> StoredObject | None:
        _, meta_path = self._paths(key)
        try:
            data = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        obj = StoredObject(**data)
        return obj if obj.key == key else None

    def all_objects(self) -> Iterator[StoredObject]:
        """Every object's sidecar (`<sha256>.json`); temporary `.json.tmp` files are not objects."""
        for path in self.objects.glob("*.json"):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # replaced or being written this instant: the next listing sees it
            yield StoredObject(**data)

    def data_path(self, key: str) -> Path:
        return self._paths(key)[0]
