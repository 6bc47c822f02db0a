"""Multipart uploads on disk: one directory per upload id, one file per part.

`multipart/<UploadId>/upload.json` holds the key and the object fields InitiateMultipartUpload
was given; `<n>.part` and `<n>.json` hold part n and its ETag, size and CRC-64. An upload id is
32 upper-case hex digits (as OSS's look) and is checked before it names a directory, so no query
can reach outside. A part is spooled elsewhere and renamed into place (re-uploading a number
replaces it, as OSS does); Complete first claims the directory by renaming it, so a part that
arrives during a Complete, and any later request, finds no upload.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from local.oss_emulator.body import SpooledBody
from local.oss_emulator.crc64 import combine
from local.oss_emulator.errors import OssError

_UPLOAD_ID = re.compile(r"[0-9A-F]{32}")
_PART_FILE = re.compile(r"(\d{5})\.json")


@dataclass(frozen=True)
class Upload:
    upload_id: str
    key: str
    initiated: float
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)  # Cache-Control, x-oss-meta-*, …
    acl: str = "default"
    storage_class: str = "Standard"
    encryption: str = ""


@dataclass(frozen=True)
class Part:
    number: int
    etag: str  # upper-case hex MD5 of the part, unquoted
    size: int
    crc64: int
    last_modified: float


@dataclass(frozen=True)
class Assembled:
    """A completed object's bytes (a spool file) and what OSS reports about them."""

    path: Path
    size: int
    crc64: int
    head: bytes


def no_such_upload(upload_id: str) -> OssError:
    return OssError(
        404,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may "
        "have been aborted or completed.",
        extra=(("UploadId", upload_id),),
    )


class MultipartStore:
    def __init__(self, root: Path) -> None:
        self.root = root / "multipart"
        self.spool = root / "spool"  # the object store's: completed objects are renamed from it
        self.root.mkdir(parents=True, exist_ok=True)
        self.spool.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _dir(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise no_such_upload(upload_id)
        return self.root / upload_id

    def create(self, upload: Upload) -> None:
        directory = self._dir(upload.upload_id)
        directory.mkdir()
        _write_json(directory / "upload.json", asdict(upload))

    def get(self, upload_id: str, key: str) -> Upload:
        """The upload, if it exists and is for `key`; NoSuchUpload otherwise."""
        try:
            data = json.loads((self._dir(upload_id) / "upload.json").read_text("utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            raise no_such_upload(upload_id) from None
        upload = Upload(**data)
        if upload.key != key:
            raise no_such_upload(upload_id)
        return upload

    def put_part(self, upload: Upload, number: int, body: SpooledBody, now: float) -> Part:
        part = Part(number, body.etag, body.size, body.crc64, now)
        directory = self._dir(upload.upload_id)
        with self._lock:
            if not directory.is_dir():
                body.path.unlink(missing_ok=True)
                raise no_such_upload(upload.upload_id)
            os.replace(body.path, directory / f"{number:05d}.part")
            _write_json(directory / f"{number:05d}.json", asdict(part))
        return part

    def parts(self, upload_id: str) -> list[Part]:
        """Every part uploaded so far, by ascending number."""
        return _parts_in(self._dir(upload_id))

    def abort(self, upload: Upload) -> None:
        self.discard(self.claim(upload.upload_id))

    def discard(self, claimed: Path) -> None:
        """Delete a claimed upload's parts (after Complete stored the object, or Abort)."""
        shutil.rmtree(claimed, ignore_errors=True)

    def claim(self, upload_id: str) -> Path:
        """Take the upload out of view (Complete, Abort); NoSuchUpload when already gone."""
        directory = self._dir(upload_id)
        claimed = self.root / f".claimed-{upload_id}-{secrets.token_hex(4)}"
        with self._lock:
            try:
                directory.rename(claimed)
            except FileNotFoundError:
                raise no_such_upload(upload_id) from None
        return claimed

    def restore(self, claimed: Path, upload_id: str) -> None:
        """Put a claimed upload back (a Complete refused after its claim)."""
        with self._lock:
            claimed.rename(self._dir(upload_id))

    def assemble(self, claimed: Path, parts: list[Part]) -> Assembled:
        """Concatenate the parts, in order, into one spool file (copied in the kernel)."""
        handle, name = tempfile.mkstemp(prefix="complete-", suffix=".tmp", dir=self.spool)
        path = Path(name)
        crc, size = 0, 0
        try:
            with os.fdopen(handle, "wb") as out:
                for part in parts:
                    with (claimed / f"{part.number:05d}.part").open("rb") as source:
                        _copy(source.fileno(), out.fileno(), part.size)
                    crc = combine(crc, part.crc64, part.size)
                    size += part.size
            with path.open("rb") as written:
                head = written.read(256 * 1024)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Assembled(path, size, crc, head)

    def uploads(self) -> Iterator[Upload]:
        """Every upload in progress (ListMultipartUploads)."""
        for directory in self.root.iterdir():
            if not _UPLOAD_ID.fullmatch(directory.name):
                continue
            try:
                data = json.loads((directory / "upload.json").read_text("utf-8"))
            except (OSError, ValueError):
                continue  # completed or aborted this instant
            yield Upload(**data)


def claimed_parts(claimed: Path) -> list[Part]:
    return _parts_in(claimed)


def _parts_in(directory: Path) -> list[Part]:
    found = []
    for path in directory.iterdir():
        if _PART_FILE.fullmatch(path.name):
            try:
                found.append(Part(**json.loads(path.read_text("utf-8"))))
            except (OSError, ValueError):
                continue  # replaced this instant
    return sorted(found, key=lambda part: part.number)


def _copy(source: int, target: int, count: int) -> None:
    """`count` bytes from one file to the end of another, without passing through Python."""
    offset = 0
    while offset < count:
        copied = os.copy_file_range(source, target, count - offset, offset)
        if copied == 0:
            raise OSError("a part file is shorter than its recorded size")
        offset += copied


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def new_upload_id() -> str:
    return secrets.token_hex(16).upper()
