"""Quotas and the rate limit through the real sign and callback cores (DESIGN.md, The grant ledger).

The ledger arithmetic and its concurrency (fifty racing grants or charges) are proven per
backend in test_ledger_contract.py; here: what a caller sees (403 QuotaExceeded, 429 with
Retry-After, 503 with nothing issued, GET /quota), what the callback does with an upload that
would pass the quota (deleted, no record, 200 Rejected), and that a grant id names only its own
user's ledger rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from local.dev import Stack
from shared.callback.settings import CallbackSettings
from shared.errors import ConfigError, Unavailable
from shared.http import Core
from shared.records.grants import EXPIRED, OPEN, USED
from shared.records.sqlite import SqliteStore
from shared.settings import Limits
from shared.sign.issue import ledger_entry
from shared.sign.settings import SignSettings
from tests.support.callbacks import CallbackBuilder, Removals, settings_env
from tests.support.devstack import StackClient, stack_settings
from tests.support.sign import NOW, assert_error, call, grant_of, ok, sign_env

QUOTA_ENV = {
    "OSS_REGION": "cn-hangzhou",
    "OSS_ENDPOINT": "http://127.0.0.1:9",
    "OSS_ACCESS_KEY_ID": "ak",
    "OSS_ACCESS_KEY_SECRET": "sk",
}
PREFIX_KEY = "uploads/alice/photos/big.png"


@pytest.fixture
def sign(make_sign_app: Callable[..., Core], store: SqliteStore) -> Callable[..., Core]:
    """The sign core over conftest's store, the ledger the callback core shares."""

    def build(**env: str) -> Core:
        return make_sign_app(store_factory=lambda credentials: store, **env)

    return build


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["QUOTA_BYTES_PER_USER", "QUOTA_FILES_PER_USER", "RATE_LIMIT_GRANTS_PER_MINUTE"]
)
@pytest.mark.parametrize("value", ["-1", "ten", "1.5", "1e6", "0x10", "99999999999999999999"])
def test_a_negative_or_non_number_limit_is_a_start_up_error_naming_it(
    name: str, value: str
) -> None:
    with pytest.raises(ConfigError) as error:
        SignSettings.from_env(sign_env(**{name: value}))
    assert error.value.variable == name
    if name.startswith("QUOTA_"):  # the callback reads the quotas, not the grant rate
        with pytest.raises(ConfigError) as error:
            CallbackSettings.from_env(settings_env(None, **QUOTA_ENV, **{name: value}))
        assert error.value.variable == name


def test_unset_or_zero_means_no_limit_and_the_rate_defaults_to_120() -> None:
    env = sign_env(RATE_LIMIT_GRANTS_PER_MINUTE=None)
    assert SignSettings.from_env(env).limits == Limits(None, None, 120)
    zeros = sign_env(
        QUOTA_BYTES_PER_USER="0", QUOTA_FILES_PER_USER="0", RATE_LIMIT_GRANTS_PER_MINUTE="0"
    )
    assert SignSettings.from_env(zeros).limits == Limits()


def test_every_grant_is_in_the_ledger_before_it_is_returned(sign: Any, store: Any) -> None:
    app = sign()
    exact = ok(app, "path=a&filename=x.png&size=100")
    stored = store.get_grant("alice", grant_of(exact).grant_id)
    assert (stored.mode, stored.target, stored.max_bytes, stored.state) == (
        "exact",
        exact["key"],
        100,
        OPEN,
    )
    assert stored.expires_at == exact["expire"]
    prefix = ok(app, "path=a")
    assert store.get_grant("alice", grant_of(prefix).grant_id).mode == "prefix"


def test_a_store_that_is_down_issues_nothing(make_sign_app: Callable[..., Core]) -> None:
    class Down:
        def open_grant(self, *args: Any) -> None:
            raise Unavailable("the record store is unavailable; try again")

    app = make_sign_app(store_factory=lambda credentials: Down())
    assert_error(call(app, "path=a&filename=x.png&size=100"), 503, "Unavailable")


def test_a_grant_past_the_quota_is_403_quota_exceeded(sign: Any) -> None:
    app = sign(QUOTA_BYTES_PER_USER="1000")
    ok(app, "path=a&filename=x.png&size=600")
    refused = assert_error(call(app, "path=a&filename=x.png&size=401"), 403, "QuotaExceeded")
    assert "1000 bytes" in refused["message"]
    ok(app, "path=a&filename=x.png&size=400")
    ok(app, "path=a&filename=x.png&size=1", user="bob")


def test_the_rate_limit_is_429_with_retry_after(sign: Any) -> None:
    app = sign(RATE_LIMIT_GRANTS_PER_MINUTE="2")
    ok(app, "path=a")
    ok(app, "path=a")
    response = call(app, "path=a")
    assert_error(response, 429, "TooManyRequests")
    assert int(dict(response.headers)["Retry-After"]) == 60 - int(NOW) % 60
    ok(app, "path=a", user="bob")


def test_get_quota_tells_used_reserved_and_limit(sign: Any, store: Any) -> None:
    app = sign(QUOTA_BYTES_PER_USER="5000")
    ok(app, "path=a&filename=x.png&size=300")
    store.charge("alice", 120, 1, Limits())
    assert ok(app, path="/quota") == {
        "bytes": {"used": 120, "reserved": 300, "limit": 5000},
        "files": {"used": 1, "reserved": 1, "limit": None},
    }
    assert ok(app, path="/quota", user="bob")["bytes"] == {"used": 0, "reserved": 0, "limit": 5000}
    assert call(app, "x=1", path="/quota").status == 400
    assert call(app, path="/quota", user=None).status == 401


# --- callback -------------------------------------------------------------------------------------


@pytest.fixture
def callback(make_callback_app: Callable[..., Core]) -> Callable[..., Core]:
    return lambda **env: make_callback_app(**QUOTA_ENV, **env)


def answer(app: Core, req: Any) -> tuple[int, dict[str, Any]]:
    response = app(req)
    return response.status, json.loads(response.body)


@pytest.mark.parametrize(("before", "after"), [(OPEN, USED), (EXPIRED, EXPIRED)])
def test_an_exact_upload_is_charged_once_whether_or_not_the_sweeper_expired_its_grant(
    callback: Any, build: CallbackBuilder, store: Any, before: str, after: str
) -> None:
    """Open, its reservation becomes usage; expired by the sweeper, the callback that still
    arrives charges it."""
    store.open_grant(ledger_entry(build.grant, NOW), Limits(bytes=2_000_000), NOW)
    if before == EXPIRED:
        store.settle("alice", build.grant.grant_id, EXPIRED)
    app = callback(QUOTA_BYTES_PER_USER="2000000")
    for _ in range(2):  # the second is OSS retrying or a replay: counted once
        assert answer(app, build.request())[1]["Status"] == "OK"
    assert store.get_grant("alice", build.grant.grant_id).state == after
    usage = store.usage("alice")
    assert (usage.used_bytes, usage.used_files) == (5120, 1)
    assert (usage.reserved_bytes, usage.reserved_files) == (0, 0)


def test_an_exact_upload_over_its_declared_size_is_deleted_and_gives_its_room_back(
    callback: Any, build: CallbackBuilder, store: Any, removals: Removals
) -> None:
    """A presigned PUT stores any size: past the grant's it is deleted, never counted, and the
    reservation is released at once (not left for the sweeper)."""
    store.open_grant(ledger_entry(build.grant, NOW), Limits(bytes=2_000_000), NOW)
    app = callback(QUOTA_BYTES_PER_USER="2000000")
    status, body = answer(app, build.request(values={"size": str(build.grant.max_bytes + 1)}))
    assert (status, body["code"]) == (403, "GrantInvalid"), body
    assert [key for key, _ in removals.calls] == [build.grant.key]
    assert store.get_grant("alice", build.grant.grant_id).state != OPEN
    usage = store.usage("alice")
    assert (usage.used_bytes, usage.reserved_bytes, usage.reserved_files) == (0, 0, 0)


@pytest.mark.parametrize(
    ("quota", "refused", "at_the_limit"),
    [
        ({"QUOTA_BYTES_PER_USER": "10000"}, "quota of 10000 bytes", "OK"),  # 5120 + 4880
        ({"QUOTA_FILES_PER_USER": "1"}, "quota of 1 files", "Rejected"),
    ],
    ids=["bytes", "files"],
)
def test_a_prefix_upload_that_would_pass_the_quota_is_deleted_and_rejected(
    *,
    callback: Any,
    build: CallbackBuilder,
    store: Any,
    removals: Removals,
    quota: dict[str, str],
    refused: str,
    at_the_limit: str,
) -> None:
    grant = build.prefix_grant()
    app = callback(**quota)
    for _ in range(2):  # cat.png (5120 bytes), then again: neither a second file nor more bytes
        assert answer(app, build.request(grant=grant))[1]["Status"] == "OK"
    status, body = answer(app, build.request(grant=grant, values={"object": PREFIX_KEY}))
    assert (status, body["Status"], body["code"]) == (200, "Rejected", "QuotaExceeded"), body
    assert refused in body["message"]
    assert [key for key, _ in removals.calls] == [PREFIX_KEY]
    assert store.get(build.grant.bucket, PREFIX_KEY) is None
    assert (store.usage("alice").used_bytes, store.usage("alice").used_files) == (5120, 1)
    small = build.request(grant=grant, values={"object": PREFIX_KEY, "size": "4880"})
    assert answer(app, small)[1]["Status"] == at_the_limit
    assert store.usage("alice").used_bytes == (10_000 if at_the_limit == "OK" else 5120)


def test_a_store_failure_after_the_charge_takes_the_charge_back(
    callback: Any, build: CallbackBuilder, store: Any, mocker: Any
) -> None:
    app = callback(QUOTA_BYTES_PER_USER="10000")
    mocker.patch.object(store, "put", side_effect=Unavailable("down"))
    status, body = answer(app, build.request(grant=build.prefix_grant()))
    assert (status, body["code"]) == (503, "Unavailable")
    assert store.usage("alice").used_bytes == 0


def test_a_foreign_grant_id_never_touches_another_users_ledger_rows(
    callback: Any, build: CallbackBuilder, store: Any
) -> None:
    """mallory's token (as if its id were forged to alice's) settles nothing of alice's."""
    store.open_grant(ledger_entry(build.grant, NOW), Limits(), NOW)
    before = store.usage("alice")
    mallory = replace(
        build.grant, user="mallory", key="uploads/mallory/x.png", grant_id=build.grant.grant_id
    )
    app = callback()
    assert answer(app, build.request(grant=mallory))[1]["Status"] == "OK"
    assert store.get_grant("alice", build.grant.grant_id).state == OPEN
    assert store.usage("alice") == before
    assert store.usage("mallory").used_files == 1


# --- through the dev stack: the real oss2 DeleteObject against the emulator ----------------------


def test_an_upload_over_the_quota_is_deleted_from_the_bucket_through_the_stack(
    tmp_path: Path,
) -> None:
    stack = Stack(stack_settings(tmp_path / "stack", QUOTA_BYTES_PER_USER="8"))
    stack.start()
    try:
        client = StackClient(stack.url("app"), stack.url("oss"))
        token = client.token("alice")
        grant = client.grant(token, path="docs")
        assert "key" not in grant  # a prefix grant: its uploads are charged one by one
        one, two = (grant["dir"] + name for name in ("one.txt", "two.txt"))
        post = partial(client.upload, grant, b"12345", content_type="text/plain")
        assert post(key=one).json()["Status"] == "OK"
        over = post(key=two)
        assert over.status_code == 200
        assert (over.json()["Status"], over.json()["code"]) == ("Rejected", "QuotaExceeded")
        # The bucket is private (DOWNLOAD_MODE=signed): ask the emulator's own store.
        assert stack.emulator is not None
        assert stack.emulator.store.get(two) is None
        assert stack.emulator.store.get(one) is not None
        assert [item["key"] for item in client.uploads(token)] == [one]
        quota = client.http.get(
            f"{stack.url('app')}/quota", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert quota.json()["bytes"] == {"used": 5, "reserved": 0, "limit": 8}
    finally:
        stack.stop()
