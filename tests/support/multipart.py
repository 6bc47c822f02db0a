"""A browser's side of DESIGN "Multipart uploads" against a live stack (tests/support/livestack.py):
sign in, create, sign parts, PUT them to the emulator, complete; the bucket owner's view of the
uploads left open (ListMultipartUploads)."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

import requests

from shared.credentials import Credentials
from shared.oss import bucket_client
from shared.settings import Env, OssSettings, Secret

if TYPE_CHECKING:
    from tests.support.livestack import LiveStack

PART = 100 * 1024  # MULTIPART_PART_BYTES for these stacks: OSS's smallest part
SIZE = 2 * PART + 1000  # three parts, the last 1000 bytes


def data(size: int = SIZE, seed: int = 7) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def md5_b64(chunk: bytes) -> str:
    return base64.b64encode(hashlib.md5(chunk).digest()).decode()  # noqa: S324 - OSS's Content-MD5


class Client:
    """The browser's side of DESIGN "Multipart uploads", against a live stack."""

    def __init__(self, live: LiveStack, user: str) -> None:
        self.live = live
        self.auth = {"Authorization": f"Bearer {live.token(user)}"}

    def call(self, method: str, path: str, payload: Any = None) -> requests.Response:
        return self.live.http.request(
            method, f"{self.live.app_url}{path}", json=payload, headers=self.auth, timeout=60
        )

    def create(self, size: int = SIZE, filename: str = "film.bin", **extra: Any) -> dict[str, Any]:
        answer = self.call("POST", "/multipart", {"filename": filename, "size": size, **extra})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def urls(self, upload_id: str, numbers: list[int], md5: dict[str, str] | None = None) -> Any:
        payload: dict[str, Any] = {"partNumbers": numbers}
        if md5:
            payload["contentMd5"] = md5
        answer = self.call("POST", f"/multipart/{upload_id}/parts", payload)
        assert answer.status_code == 200, answer.text
        return answer.json()["parts"]

    def put(self, upload_id: str, number: int, chunk: bytes, *, md5: bool = True) -> str:
        digests = {str(number): md5_b64(chunk)} if md5 else None
        (part,) = self.urls(upload_id, [number], digests)
        sent = self.live.http.put(part["url"], data=chunk, headers=part["headers"], timeout=30)
        assert sent.status_code == 200, sent.text
        return str(sent.headers["ETag"])

    def complete(self, upload_id: str) -> requests.Response:
        return self.call("POST", f"/multipart/{upload_id}/complete")


def slices(content: bytes, part_size: int = PART) -> list[bytes]:
    return [content[i : i + part_size] for i in range(0, len(content), part_size)]


def open_uploads(live: LiveStack) -> list[tuple[str, str]]:
    """ListMultipartUploads as the bucket owner: (key, upload id) of every upload left open."""
    values = live.stack.values
    owner = Credentials(values["OSS_ACCESS_KEY_ID"], Secret(values["OSS_ACCESS_KEY_SECRET"]))
    bucket = bucket_client(OssSettings.load(Env(values)), owner, timeout=10)
    listed = bucket.list_multipart_uploads()
    return [(upload.key, upload.upload_id) for upload in listed.upload_list]
