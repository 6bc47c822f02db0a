"""The legacy frontend client (../shared/legacy-client.ts), reproduced field for field in Python,
uploads end to end with OSS_SIGNATURE_VERSION=v1, AUTH_MODE=none and UPLOAD_KEY_PREFIX empty."""

from __future__ import annotations

import mimetypes
import time
import uuid
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LiveStack, StartStack
from tests.samples import jpeg, png

AVATAR = png(8, 8)  # a real PNG: the callback reads the first bytes (UPLOAD_VERIFY=content)

pytestmark = pytest.mark.e2e


def normalize_path(path: str) -> str:
    """The client's helper: strip a leading "/" and ensure one trailing "/"."""
    path = path.lstrip("/")
    return path if path.endswith("/") else path + "/"


def get_ext(name: str) -> str:
    """The client's helper: the extension without the dot, "" when none."""
    return name.rsplit(".", 1)[1] if "." in name else ""


def file_type(name: str) -> str:
    """The part type a browser gives `formData.append('file', file)`: the File's type, which it
    derives from the name (application/octet-stream when it knows none)."""
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class LegacyUploadService:
    """`getSignature` and `upload` as the TypeScript client writes them."""

    def __init__(self, base_path: str, http: requests.Session) -> None:
        self.base_path = base_path
        self.http = http
        self.cache: dict[str, tuple[dict[str, Any], float]] = {}  # UploadService.cache

    def request(self, url: str, *, method: str, body: Any) -> Any:
        """fetch wrapper: for GET the body becomes the query string; the answer is parsed as JSON."""
        if method == "GET":
            response = self.http.get(url, params=body, timeout=10)
        else:
            response = self.http.post(url, files=body, timeout=15)
        return response.json()

    def get_signature(self, path: str) -> dict[str, Any]:
        cached = self.cache.get(path)
        if cached and cached[1] > time.time() * 1000:
            return cached[0]
        signature = self.request(f"{self.base_path}/signature", method="GET", body={"path": path})
        expired = int(signature["expire"]) * 1000
        self.cache[path] = (signature, expired)
        return dict(signature)

    def upload(self, name: str, data: bytes, path: str) -> str:
        path = normalize_path(path)
        ext = get_ext(name)
        signature = self.get_signature(path)
        key = path + str(uuid.uuid4()) + ("." if ext else "") + ext
        form_data = [
            ("key", (None, key)),
            ("policy", (None, signature["policy"])),
            ("OSSAccessKeyId", (None, signature["accessid"])),
            ("success_action_status", (None, "200")),
            ("signature", (None, signature["signature"])),
            ("callback", (None, signature["callback"])),
            ("file", (name, data, file_type(name))),
        ]
        answer = self.request(signature["host"], method="POST", body=form_data)
        if answer.get("Status") != "OK":
            raise RuntimeError(answer.get("message"))
        return key


@pytest.fixture
def legacy_stack(start_stack: StartStack) -> LiveStack:
    return start_stack(OSS_SIGNATURE_VERSION="v1", AUTH_MODE="none", UPLOAD_KEY_PREFIX="")


def test_legacy_client_uploads(legacy_stack: LiveStack) -> None:
    client = LegacyUploadService(legacy_stack.app_url, legacy_stack.http)
    first = client.upload("avatar.png", AVATAR, "/avatars")
    second = client.upload("notes", b"no extension", "avatars/")  # cached grant, no extension
    assert first.startswith("avatars/")
    assert first.endswith(".png")
    assert second.startswith("avatars/")
    assert "." not in second
    assert len(client.cache) == 1
    records = {record["key"]: record for record in legacy_stack.uploads(None)}
    assert set(records) == {first, second}
    assert {record["owner"] for record in records.values()} == {"anonymous"}
    assert legacy_stack.get_object(first).content == AVATAR


def test_legacy_client_sees_status_ok(legacy_stack: LiveStack) -> None:
    signature = legacy_stack.grant(None, path="avatars/")
    assert signature["dir"] == "avatars/"
    assert signature["version"] == "v1"
    assert signature["accessid"] == "dev-sign-access-key-id"  # the sign role's own key
    response = legacy_stack.http.post(
        signature["host"],
        files=[
            ("key", (None, "avatars/" + str(uuid.uuid4()) + ".jpg")),
            ("policy", (None, signature["policy"])),
            ("OSSAccessKeyId", (None, signature["accessid"])),
            ("success_action_status", (None, "200")),
            ("signature", (None, signature["signature"])),
            ("callback", (None, signature["callback"])),
            ("file", ("a.jpg", jpeg(), "image/jpeg")),
        ],
        timeout=15,
    )
    assert response.status_code == 200
    assert response.json()["Status"] == "OK"


def test_legacy_client_cannot_leave_its_path(legacy_stack: LiveStack) -> None:
    client = LegacyUploadService(legacy_stack.app_url, legacy_stack.http)
    signature = client.get_signature("avatars/")
    response = legacy_stack.http.post(
        signature["host"],
        files=[
            ("key", (None, "other/" + str(uuid.uuid4()) + ".png")),
            ("policy", (None, signature["policy"])),
            ("OSSAccessKeyId", (None, signature["accessid"])),
            ("success_action_status", (None, "200")),
            ("signature", (None, signature["signature"])),
            ("callback", (None, signature["callback"])),
            ("file", ("a.png", b"x", "image/png")),
        ],
        timeout=15,
    )
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text
    assert legacy_stack.uploads(None) == []
