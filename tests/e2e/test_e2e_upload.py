"""Grant → form POST → callback → record → GET /uploads over real sockets, every way; the forms
OSS refuses; replayed callbacks; DELETE through the stack."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
import requests

from tests.samples import png
from tests.support.emulator import code_of, message_of
from tests.support.livestack import STS_KEY, LiveStack, StartStack

pytestmark = pytest.mark.e2e


def replace_field(name: str, value: str) -> Any:
    def change(fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
        assert any(n == name for n, _ in fields), f"the grant has no {name} field"
        return [(n, value if n == name else v) for n, v in fields]

    return change


def etag_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()  # noqa: S324 - OSS's ETag


DENIED = (403, "AccessDenied", '"$key"')


# --- the happy path, every way ------------------------------------------------------------


@pytest.mark.parametrize("version", ["v4", "v1"])
@pytest.mark.parametrize("mode", ["exact", "prefix"])
@pytest.mark.parametrize("sts", [False, True], ids=["permanent-key", "sts-token"])
def test_upload_end_to_end(start_stack: StartStack, version: str, mode: str, sts: bool) -> None:
    live = start_stack(sts=sts, OSS_SIGNATURE_VERSION=version)
    token = live.token("alice")
    data = png(40, 30)
    if mode == "exact":
        grant = live.grant(
            token, path="photos", filename="me.png", size=str(len(data)), type="image/png"
        )
        key = grant["key"]
        assert key.startswith("uploads/alice/photos/")
        assert key.endswith(".png")
    else:
        grant = live.grant(token, path="photos/")
        assert "key" not in grant
        key = grant["dir"] + "holiday.png"
    assert grant["version"] == version
    fields = dict(grant["fields"])
    assert ("x-oss-security-token" in fields) is sts
    if sts:
        assert fields["x-oss-security-token"] == STS_KEY[2]
    if version == "v1":
        assert fields["OSSAccessKeyId"] == (STS_KEY[0] if sts else "dev-sign-access-key-id")

    response = live.upload(grant, data, key=key, filename="me.png", content_type="image/png")

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    answer = response.json()
    assert answer["Status"] == "OK"
    assert (answer["key"], answer["size"], answer["etag"]) == (key, len(data), etag_of(data))
    assert answer["mimeType"] == "image/png"
    assert answer["owner"] == "alice"
    assert answer["imageInfo"] == {"width": 40, "height": 30, "format": "png"}
    assert response.headers["ETag"] == f'"{etag_of(data)}"'
    (record,) = live.uploads(token)
    facts = (record["key"], record["size"], record["etag"], record["owner"])
    assert facts == (key, len(data), etag_of(data), "alice")
    assert record["reqId"] == response.headers["x-oss-request-id"]
    # The bucket is private; the record's URL, presigned by the sign role, reads the object.
    assert live.http.get(f"{live.oss_url}/{key}", timeout=10).status_code == 403
    stored = live.http.get(record["url"], timeout=10)
    assert (stored.status_code, stored.content) == (200, data)
    thumbnail = live.http.get(record["thumbnailUrl"], timeout=10)
    assert (thumbnail.status_code, thumbnail.headers["Content-Type"]) == (200, "image/png")
    assert live.uploads(live.token("bob")) == []  # another user sees none of it


# --- refusals by OSS (the emulator) ---------------------------------------------------------


@pytest.fixture
def token(live: LiveStack) -> str:
    return live.token("alice")


def tamper_policy(grant: dict[str, Any]) -> Any:
    document = json.loads(base64.b64decode(grant["fields"]["policy"]))
    for condition in document["conditions"]:
        if isinstance(condition, list) and condition[0] == "content-length-range":
            condition[2] = 10**9
    return replace_field("policy", base64.b64encode(json.dumps(document).encode()).decode())


def swap_callback(grant: dict[str, Any]) -> Any:
    config = json.loads(base64.b64decode(grant["callback"]))
    config["callbackUrl"] = "http://127.0.0.1:9/attacker"
    return replace_field("callback", base64.b64encode(json.dumps(config).encode()).decode())


def forge_token(grant: dict[str, Any]) -> Any:
    return replace_field("x-oss-security-token", "forged")


# A prefix grant for docs/ or an exact one for a/x.txt (3 bytes, text/plain); the key sent
# ({dir}: the grant's folder) or a change to the form; the file → OSS's status, code and a part
# of its message.
REFUSALS = {
    "over-size": ("docs/", "{dir}big.bin", b"x" * 1025, (400, "EntityTooLarge", "")),
    "another-users-folder": ("docs/", "uploads/bob/docs/x.txt", b"abc", DENIED),
    "beside-the-folder": ("docs/", "uploads/alice/docsx.txt", b"abc", DENIED),
    "above-the-folder": ("docs/", "uploads/alice/x.txt", b"abc", DENIED),
    "at-the-root": ("docs/", "x.txt", b"abc", DENIED),
    "another-exact-key": ("a", "{dir}chosen-by-client.txt", b"abc", DENIED),
    "tampered-policy": ("a", tamper_policy, b"abcd", (403, "SignatureDoesNotMatch", "")),
    "swapped-callback": ("a", swap_callback, b"abc", (403, "AccessDenied", '"$callback"')),
    "forged-sts-token": ("a", forge_token, b"abc", (403, "InvalidSecurityToken", "")),
}


@pytest.mark.parametrize(("path", "form", "data", "refused"), REFUSALS.values(), ids=REFUSALS)
def test_oss_refuses_a_form_the_grant_does_not_allow(
    start_stack: StartStack, path: str, form: Any, data: bytes, refused: tuple[int, str, str]
) -> None:
    live = start_stack(sts=True, UPLOAD_MAX_BYTES="1024")
    token = live.token("alice")
    exact = {} if path.endswith("/") else {"filename": "x.txt", "size": "3", "type": "text/plain"}
    grant = live.grant(token, path=path, **exact)
    if isinstance(form, str):
        key, change = form.format(dir=grant["dir"]), None
    else:
        key, change = grant["key"], form(grant)
    response = live.upload(grant, data, key=key, change=change)
    assert (response.status_code, code_of(response)) == refused[:2]
    assert refused[2] in message_of(response)
    assert live.uploads(token) == []
    assert live.get_object(key).status_code == 404
    assert live.journal.sent == []


def test_dot_segments_pass_oss_but_not_the_callback(live: LiveStack, token: str) -> None:
    # OSS keys are opaque, so `starts-with` admits this key; the callback refuses to record it.
    grant = live.grant(token, path="docs/")
    key = grant["dir"] + "../../bob/x.txt"
    response = live.upload(grant, b"abc", key=key)
    assert (response.status_code, code_of(response)) == (203, "CallbackFailed")
    assert message_of(response) == "Error status : 403."
    assert live.uploads(token) == []


# --- the callback side ----------------------------------------------------------------------


def test_a_replayed_callback_is_the_same_record_until_the_key_is_overwritten(
    live: LiveStack, token: str
) -> None:
    """A replay of the journaled callback answers the same record (no duplicate), a forged body is
    401; the owner of a prefix grant may overwrite the key, after which the old callback replayed
    is 409 and the record stays the newer object's."""
    grant = live.grant(token, path="notes/")
    key = grant["dir"] + "today.txt"
    first = live.upload(grant, b"first", key=key)
    assert first.status_code == 200
    (sent,) = live.journal.sent
    headers = {k: v for k, v in sent.headers if k.lower() not in ("host", "content-length")}
    replay = live.http.post(sent.url, data=sent.body, headers=headers, timeout=10)
    assert replay.status_code == 200, replay.text
    assert {k: replay.json()[k] for k in ("key", "etag", "createdAt")} == {
        k: first.json()[k] for k in ("key", "etag", "createdAt")
    }
    forged_body = sent.body.replace(b"size=5", b"size=6")
    assert forged_body != sent.body
    forged = live.http.post(sent.url, data=forged_body, headers=headers, timeout=10)
    assert (forged.status_code, forged.json()["code"]) == (401, "SignatureInvalid")
    assert len(live.uploads(token)) == 1
    second = live.upload(grant, b"second", key=key)
    assert second.status_code == 200, second.text
    answer = live.journal(sent, 10.0)
    assert answer.status == 409, answer.body
    (record,) = live.uploads(token)
    assert record["etag"] == etag_of(b"second")
    assert live.get_object(key).content == b"second"


def test_delete_through_the_stack(live: LiveStack, token: str) -> None:
    """DELETE /uploads/{key} with the sign role's own RAM policy."""
    data = png(8, 8)
    grant = live.grant(token, path="trash", filename="bye.png", size=str(len(data)))
    assert live.upload(grant, data, content_type="image/png").status_code == 200
    key = grant["key"]
    (record,) = live.uploads(token)
    path = f"{live.app_url}/uploads/{key}"

    def call(method: str, who: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {live.token(who)}"}
        return live.http.request(method, path, headers=headers, timeout=10)

    for method in ("GET", "DELETE"):
        refused = call(method, "bob")
        assert (refused.status_code, refused.json()["code"]) == (404, "NotFound")
    assert live.get_object(key).status_code == 200
    assert call("GET", "alice").json()["fileName"] == "bye.png"
    deleted = call("DELETE", "alice")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert live.get_object(key).status_code == 404
    assert live.uploads(token) == []
    assert live.http.get(record["url"], timeout=10).status_code in (403, 404)
    assert call("GET", "alice").status_code == 404
    assert call("DELETE", "alice").status_code == 204  # a retry finds the tombstone: done
