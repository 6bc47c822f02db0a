"""RAM policies in the emulator: each function's key may do what deploy/ram/ grants it, no more.

The emulator used to accept any known key for anything, so a permission the deployed roles lack
(or a form field that needs an extra one) passed here and failed — or worse, succeeded wrongly —
on OSS. With `DEV_OSS_RAM_POLICIES=1` (the e2e suite runs that way) each function signs with its
own key, bound to its `deploy/ram/*.json` policy.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import oss2
import pytest

from local import reconcile as local_reconcile
from local.dev import Stack
from local.dev_config import ROLE_KEYS
from local.oss_emulator import OssEmulator
from local.oss_emulator.ram import PolicyDocumentError, RamPolicy
from shared.credentials import Credentials
from shared.settings import Secret
from shared.sign.presign import presign_v4
from tests.oss_sdk import auth, bucket
from tests.support.devstack import (
    http_session,
    sign_in_and_grant,
    stack_settings,
    unanswered_callback_url,
)
from tests.support.emulator import multipart, refusal, seed, v4_form

DENIED = (403, "AccessDenied")


# --- evaluating a policy --------------------------------------------------------------------


def parse(*statements: dict[str, Any]) -> RamPolicy:
    return RamPolicy.parse({"Version": "1", "Statement": list(statements)})


def test_deny_wins_wildcards_match_conditions_hold_and_unknown_operators_are_refused() -> None:
    policy = parse(
        {"Effect": "Allow", "Action": "oss:Get*", "Resource": "acs:oss:*:*:b/*"},
        {"Effect": "Deny", "Action": ["oss:GetObject"], "Resource": ["acs:oss:*:*:b/s?"]},
    )
    assert policy.allows("OSS:GetObject", "acs:oss:cn-hangzhou:1:b/x", {})
    assert not policy.allows("oss:GetObject", "acs:oss:cn-hangzhou:1:b/s1", {})
    assert policy.allows("oss:GetObject", "acs:oss:cn-hangzhou:1:b/s12", {})
    assert not policy.allows("oss:PutObject", "acs:oss:cn-hangzhou:1:b/x", {})
    uploads = {"Condition": {"StringLike": {"oss:Prefix": ["uploads/*"]}}}
    lister = parse({"Effect": "Allow", "Action": "oss:ListObjects", "Resource": "*", **uploads})
    assert lister.allows("oss:ListObjects", "acs:oss:*:1:b", {"oss:Prefix": "uploads/a/"})
    assert not lister.allows("oss:ListObjects", "acs:oss:*:1:b", {"oss:Prefix": ""})
    assert not lister.allows("oss:ListObjects", "acs:oss:*:1:b", {})  # no prefix: fails
    by_address = {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}
    with pytest.raises(PolicyDocumentError):
        parse({"Effect": "Allow", "Action": "oss:*", "Resource": "*", "Condition": by_address})


# --- the roles through the stack ------------------------------------------------------------


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """RAM policies on; a callback URL nobody answers, so uploads are kept without a record."""
    settings = stack_settings(
        tmp_path / "stack", DEV_OSS_RAM_POLICIES="1", CALLBACK_URL=unanswered_callback_url()
    )
    with Stack(settings) as live:
        yield live


@pytest.fixture
def emulator(stack: Stack) -> OssEmulator:
    """The stack's emulator holding one object outside uploads/ and two inside."""
    assert stack.emulator is not None
    for name in ("backups/db.zip", "uploads/alice/a.txt", "uploads/alice/b.txt"):
        seed(stack.emulator, name)
    return stack.emulator


def post(stack: Stack, extra: dict[str, str] | None = None) -> tuple[Any, str]:
    """The sign function's grant, posted as a browser would (plus `extra` form fields)."""
    http = http_session()
    grant = sign_in_and_grant(http, stack.url("app"), "alice", path="docs/")
    key = grant["dir"] + "note.txt"
    parts: list[tuple[str, Any]] = [("key", (None, key))]
    parts += [(name, (None, value)) for name, value in {**grant["fields"], **(extra or {})}.items()]
    parts.append(("file", ("note.txt", b"hello", "text/plain")))
    return http.post(grant["host"], files=parts, timeout=10), key


def role(stack: Stack, function: str) -> oss2.Bucket:
    key = ROLE_KEYS[function]
    return bucket(stack.url("oss"), auth("v4", key.key_id, key.secret))


def test_sign_and_reconcile_roles_are_enough_for_their_flows(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    response, key = post(stack)
    assert response.status_code == 203, response.text  # stored; the callback is unreachable
    environ = {
        "DEV_OSS_PORT": str(stack.servers["oss"].server_port),
        "DEV_DATA_DIR": str(tmp_path / "stack"),
        "DEV_OSS_RAM_POLICIES": "1",
    }
    assert local_reconcile.main(["--full", "--settle", "0"], environ) == 0
    assert f"recorded {key}" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("field", "value", "needs"),
    [
        ("x-oss-object-acl", "public-read-write", "oss:PutObjectAcl"),
        ("x-oss-server-side-encryption", "KMS", "kms:GenerateDataKey"),
    ],
)
def test_the_sign_role_cannot_add_what_it_lacks_the_right_to(
    stack: Stack, emulator: OssEmulator, field: str, value: str, needs: str
) -> None:
    """Issue 17.2: a field the policy does not mention needs a permission the sign role lacks."""
    response, key = post(stack, {field: value})
    assert response.status_code == 403, response.text
    assert "<Code>AccessDenied</Code>" in response.text
    assert needs in response.text
    assert emulator.store.get(key) is None


def test_the_reconcile_role_reads_only_uploads_and_cannot_write(
    stack: Stack, emulator: OssEmulator
) -> None:
    reconciler = role(stack, "reconcile")
    listed = reconciler.list_objects_v2(prefix="uploads/").object_list
    assert [o.key for o in listed] == ["uploads/alice/a.txt", "uploads/alice/b.txt"]
    assert reconciler.head_object("uploads/alice/a.txt").content_length == 1
    assert refusal(lambda: reconciler.list_objects_v2(prefix="")) == DENIED
    head = refusal(lambda: reconciler.head_object("backups/db.zip"))
    assert head == (403, "")  # HEAD: status only
    key = ROLE_KEYS["reconcile"]
    now = datetime.now(timezone.utc)
    form = v4_form(key="uploads/alice/new.txt", access_key=key, signed_at=now)
    body, content_type = multipart(form, ("new.txt", b"hello", "text/plain"))
    answer = http_session().post(
        stack.url("oss"), data=body, headers={"Content-Type": content_type}, timeout=10
    )
    assert answer.status_code == 403, answer.text
    assert "oss:PutObject" in answer.text
    callback = role(stack, "callback")
    assert refusal(lambda: callback.list_objects_v2(prefix="uploads/")) == DENIED
    # The callback reads (HEAD) and deletes refused uploads under uploads/ only.
    assert callback.head_object("uploads/alice/a.txt").content_length == 1
    assert refusal(lambda: callback.get_object("backups/db.zip")) == DENIED
    assert refusal(lambda: callback.delete_object("backups/db.zip")) == DENIED


def test_the_sign_role_reads_and_deletes_uploads_only(stack: Stack, emulator: OssEmulator) -> None:
    """Download URLs and DELETE /uploads/{key} need GetObject and DeleteObject under uploads/;
    nothing outside it, and still no listing (the role is enough and no more)."""
    key = ROLE_KEYS["sign"]
    credentials = Credentials(key.key_id, Secret(key.secret))

    def url(name: str) -> str:
        where = {"endpoint": stack.url("oss"), "bucket": "dev-bucket", "region": "cn-hangzhou"}
        return presign_v4(
            "GET", **where, key=name, credentials=credentials, now=time.time(), expires=60
        ).url

    http = http_session()
    assert http.get(url("uploads/alice/a.txt"), timeout=10).content == b"x"
    denied = http.get(url("backups/db.zip"), timeout=10)
    assert denied.status_code == 403
    assert "<Code>AccessDenied</Code>" in denied.text
    signer = role(stack, "sign")
    signer.delete_object("uploads/alice/b.txt")
    assert emulator.store.get("uploads/alice/b.txt") is None
    assert refusal(lambda: signer.delete_object("backups/db.zip")) == DENIED
    assert refusal(lambda: signer.list_objects_v2(prefix="uploads/")) == DENIED


def test_an_sts_key_stands_for_the_sign_role(tmp_path: Path) -> None:
    sts = {
        "DEV_OSS_STS_ACCESS_KEY_ID": "STS.sign-role",
        "DEV_OSS_STS_ACCESS_KEY_SECRET": "sts-secret",
        "DEV_OSS_STS_TOKEN": "sts-token",
    }
    with Stack(stack_settings(tmp_path / "stack", DEV_OSS_RAM_POLICIES="1", **sts)) as live:
        assert live.emulator is not None
        policies = live.emulator.config.policies
        assert policies["STS.sign-role"] is policies[ROLE_KEYS["sign"].key_id]
        sdk = bucket(live.url("oss"), auth("v4", "STS.sign-role", "sts-secret", "sts-token"))
        assert refusal(lambda: sdk.list_objects_v2(prefix="uploads/")) == DENIED
