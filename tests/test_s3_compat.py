"""The sign function's S3-compatible routes for Uppy (shared/sign/s3_*.py, put_object.py):
capability URLs refused before anything runs, and a PutObject URL whose signature covers the
callback, the type and forbid-overwrite. End to end (Uppy, the emulator): tests/browser/."""

from __future__ import annotations

import base64
import hmac
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from shared.grant import Grant, issue_token
from shared.http import Core, Response, serve
from shared.records.grants import OPEN
from shared.records.sqlite import SqliteStore
from shared.settings import Secret
from shared.sign import s3_capability, s3_compat
from shared.sign.policy import signing_key
from shared.sign.presign import canonical_request, string_to_sign
from tests.support.sign import (
    ACCESS_KEY_SECRET,
    GRANT_SECRET,
    NOW,
    assert_error,
    body,
    call,
    decode_callback,
    decode_policy,
    grant_of,
    open_multipart,
    query_of,
    request,
)

UPLOAD_ID = "0004B999EF5A239BB9138C6227D69F95"
OTHER_SECRET = "another-grant-secret-0123456789abcdef"
FORM = {"method": "PUT", "key": "k", "filename": "a.png", "size": 10}
LIST, ABORT, OP_ROUTE = s3_capability.LIST, s3_capability.ABORT, s3_compat.OP_ROUTE
KEY = "uploads/alice/01hk0000000000000000000000.bin"


def sign(app: Core, payload: dict[str, Any], *, user: str | None = "alice") -> Response:
    sent = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    return call(app, method="POST", path="/s3/sign", headers=headers, user=user, body=sent)


def op(app: Core, url: str, method: str, body: bytes = b"") -> Response:
    """A capability URL, used as Uppy uses it: no sign-in, the capability is the authority."""
    path, _, query = url.partition("?")
    return call(app, query, user=None, method=method, path=path, body=body)


def xml_error(response: Response) -> tuple[int, str, str]:
    """(status, Code, Message) of an S3 XML error, as the plugin reads it."""
    assert response.header("Content-Type") == "application/xml"
    root = ET.fromstring(response.body)  # noqa: S314 - our own sign function's reply
    return response.status, root.findtext("Code") or "", root.findtext("Message") or ""


def capability_path(**fields: Any) -> str:
    values = {
        "user": "alice",
        "op": s3_capability.COMPLETE,
        "upload_id": UPLOAD_ID,
        "key": KEY,
        "expires_at": int(NOW) + 60,
    }
    values.update(fields)
    secret = Secret(values.pop("secret", GRANT_SECRET))
    token = s3_capability.mint_capability(s3_capability.Capability(**values), secret)
    return f"{s3_compat.OP_ROUTE}?capability={token}"


def altered() -> str:
    """Bob's capability with its user changed to Alice: the MAC no longer matches."""
    header, claims, mac = capability_path(user="bob").partition("=")[2].split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**decoded, "sub": "alice"}).encode())
    return f"{OP_ROUTE}?capability={header}.{forged.rstrip(b'=').decode()}.{mac}"


def grant_token() -> str:
    """A grant token: capabilities have their own key (derived from GRANT_SECRET) and audience."""
    grant = Grant("g1", "alice", "example-bucket", KEY, None, 10, int(NOW) + 60)
    return f"{OP_ROUTE}?capability={issue_token(grant, Secret(GRANT_SECRET))}"


def session_state(ledger: SqliteStore, owner: str = "alice") -> str:
    grant = ledger.get_grant(owner, UPLOAD_ID)
    assert grant is not None
    return grant.state


# --- capabilities: refused before anything runs ----------------------------------------------


def test_a_capability_verifies_for_its_own_method() -> None:
    token = capability_path(op=LIST).partition("=")[2]
    verified = s3_capability.verify_capability(
        token, (Secret(GRANT_SECRET),), method="GET", now=NOW
    )
    assert (verified.user, verified.op, verified.upload_id) == ("alice", "list", UPLOAD_ID)


@pytest.mark.parametrize(
    ("path", "method", "reason"),
    [
        pytest.param(capability_path(secret=OTHER_SECRET), "POST", "not ours", id="forged"),
        pytest.param(capability_path(expires_at=int(NOW) - 1), "POST", "expired", id="expired"),
        pytest.param(capability_path(op=LIST), "POST", "for list", id="list-as-complete"),
        pytest.param(capability_path(op=LIST), "DELETE", "for list", id="list-as-abort"),
        pytest.param(capability_path(op=LIST), "PUT", "for list", id="list-as-put"),
        pytest.param(capability_path(op=ABORT), "POST", "for abort", id="abort-as-complete"),
        pytest.param(capability_path(), "DELETE", "for complete", id="complete-as-abort"),
        pytest.param(f"{OP_ROUTE}?capability=not-a-token", "POST", "malformed", id="junk"),
        pytest.param(OP_ROUTE, "POST", "missing", id="none"),
        pytest.param(altered(), "POST", "not ours", id="altered"),
        pytest.param(grant_token(), "POST", "not ours", id="grant-token"),
    ],
)
def test_bad_capabilities_are_403_xml(
    sign_app: Core, ledger: SqliteStore, path: str, method: str, reason: str
) -> None:
    open_multipart(ledger, UPLOAD_ID, KEY)
    status, code, message = xml_error(op(sign_app, path, method))
    assert (status, code) == (403, "Forbidden")
    assert reason in message
    assert session_state(ledger) == OPEN  # nothing ran


def test_an_xml_complete_of_someone_elses_upload_is_404(
    sign_app: Core, ledger: SqliteStore
) -> None:
    """Bob may ask for a complete URL naming Alice's upload id, but it acts as Bob: 404."""
    open_multipart(ledger, UPLOAD_ID, KEY)
    answer = sign(sign_app, {"method": "POST", "key": KEY, "uploadId": UPLOAD_ID}, user="bob")
    assert answer.status == 200
    response = op(sign_app, body(answer)["path"], "POST", b"<CompleteMultipartUpload/>")
    assert xml_error(response)[:2] == (404, "NotFound")
    assert session_state(ledger, "alice") == OPEN  # Alice's upload is untouched
    abort = sign(sign_app, {"method": "DELETE", "key": KEY, "uploadId": UPLOAD_ID}, user="bob")
    aborted = op(sign_app, body(abort)["path"], "DELETE")
    assert xml_error(aborted)[:2] == (404, "NotFound")
    assert session_state(ledger, "alice") == OPEN


# --- /s3/sign: signed-in, strict ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "user", "status"),
    [
        ({"method": "PUT", "key": "k"}, None, 401),
        ({"method": "PATCH", "key": "k"}, "alice", 400),
        ({"method": "PUT"}, "alice", 400),
        ({"method": "PUT", "key": "k", "bucket": "other"}, "alice", 400),
        ({"method": "PUT", "key": "k", "uploadId": UPLOAD_ID}, "alice", 400),
        ({"method": "PUT", "key": "k", "uploadId": UPLOAD_ID, "partNumber": 0}, "alice", 400),
        ({"method": "PUT", "key": "k", "uploadId": UPLOAD_ID, "partNumber": True}, "alice", 400),
        ({"method": "GET", "key": "k", "uploadId": UPLOAD_ID, "filename": "a.png"}, "alice", 400),
        ({"method": "DELETE", "key": "k"}, "alice", 400),
        ({"method": "PUT", "key": "k", "filename": "a.png"}, "alice", 400),
        # above MULTIPART_PART_BYTES a file goes multipart, where ListParts checks the size
        ({"method": "PUT", "key": "k", "filename": "a.bin", "size": 8 * 2**20 + 1}, "alice", 413),
        # `form` is a single upload's choice, and a boolean
        ({**FORM, "form": "yes"}, "alice", 400),
        ({**FORM, "form": True, "partSize": 5 * 1024 * 1024}, "alice", 400),
        ({**FORM, "method": "POST", "filename": "a.bin", "form": True}, "alice", 400),
    ],
)
def test_s3_sign_refuses_what_it_cannot_honour(
    sign_app: Core, payload: dict[str, Any], user: str | None, status: int
) -> None:
    code = {400: "BadRequest", 401: "Unauthorized", 413: "TooLarge"}[status]
    assert_error(sign(sign_app, payload, user=user), status, code)


def test_a_part_size_other_than_the_servers_is_refused_before_create(sign_app: Core) -> None:
    """Uppy cuts its parts itself: a cut the server would not accept is a 400 up front (no
    OSS call is made: these settings name no reachable OSS)."""
    payload = {**FORM, "method": "POST", "filename": "big.bin", "size": 20 * 2**20}
    data = assert_error(sign(sign_app, {**payload, "partSize": 5 * 2**20}), 400, "BadRequest")
    assert "8388608" in data["message"]


# --- the single PUT ------------------------------------------------------------------------------


def put_answer(app: Core, **fields: Any) -> dict[str, Any]:
    payload = {"method": "PUT", "key": "pending/1", "filename": "a.png", "size": 1234, **fields}
    response = sign(app, payload)
    assert response.status == 200, response.body
    return body(response)


def test_a_single_put_signs_the_callback_type_and_forbid_overwrite_and_opens_a_grant(
    sign_app: Core, ledger: SqliteStore
) -> None:
    answer = put_answer(sign_app, type="image/png", path="photos")
    usage = ledger.usage("alice")  # an exact grant for the declared size, in the ledger
    assert (usage.reserved_bytes, usage.reserved_files, answer["expire"]) == (
        1234,
        1,
        int(NOW) + 300,
    )
    assert answer["key"].startswith("uploads/alice/photos/")
    assert answer["key"].endswith(".png")
    assert answer["headers"] == {
        "Content-Type": "image/png",
        "x-oss-forbid-overwrite": "true",
        "x-oss-storage-class": "Standard",
    }
    query = query_of(answer["url"])
    # The callback rides in the signed query: the grant (user, key, declared size) is in it.
    callback = decode_callback(query["callback"])
    grant = grant_of({"callback": query["callback"]})
    assert (grant.user, grant.key, grant.max_bytes) == ("alice", answer["key"], 1234)
    assert callback["callbackUrl"] == "https://api.example.com/oss-callback"
    # The signature covers the callback and the headers: recompute it from the canonical request.
    signature = query.pop("x-oss-signature")
    canonical = canonical_request("PUT", "example-bucket", answer["key"], query, answer["headers"])
    assert canonical.split("\n")[2].startswith("callback=")
    assert "content-type:image/png\n" in canonical
    assert "x-oss-forbid-overwrite:true\n" in canonical
    to_sign = string_to_sign(query["x-oss-date"], "cn-hangzhou", canonical)
    key = signing_key(ACCESS_KEY_SECRET, query["x-oss-date"][:8], "cn-hangzhou")
    assert signature == hmac.digest(key, to_sign.encode(), "sha256").hex()


def test_a_capability_never_reaches_the_access_log(
    sign_app: Core, capsys: pytest.CaptureFixture[str]
) -> None:
    """A create capability answers from the token alone (no OSS call): the line FC would log."""
    url = capability_path(op=s3_capability.CREATE)
    token = url.partition("=")[2]
    path, _, query = url.partition("?")
    capsys.readouterr()
    answered = serve(sign_app, request("POST", path, query), function="sign")
    assert answered.status == 200
    assert ET.fromstring(answered.body).findtext("UploadId") == UPLOAD_ID  # noqa: S314 - ours
    logged = capsys.readouterr().err
    assert '"route": "/s3/op"' in logged
    assert token.split(".")[2] not in logged  # not even its MAC


def test_a_single_upload_as_a_form_is_signatures_exact_key_grant(sign_app: Core) -> None:
    """`form`: the PostObject way, whose policy OSS enforces (size range, key, type) itself."""
    answer = put_answer(sign_app, type="image/png", form=True)
    fields = answer["fields"]
    assert next(iter(fields)) == "key"
    assert fields["key"] == answer["key"]
    assert answer["url"] == "https://example-bucket.oss-cn-hangzhou.aliyuncs.com"
    assert ["content-length-range", 1, 1234] in decode_policy(fields["policy"])["conditions"]
    assert grant_of({"callback": fields["callback"]}).key == answer["key"]
    assert "headers" not in answer
