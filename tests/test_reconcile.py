"""Reconciliation (shared/reconcile/): backfill exactly one record per stored object.

Unit level: tests/support's in-memory bucket (`FakeObjects`, with grants) over a real SQLite
store, with a frozen clock. Through the real SDK: `OssObjects` (oss2) against the OSS emulator on
loopback, the CLI, and the timer function's module in an isolated interpreter. Failures through
the whole stack are in tests/reliability/.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.template import load_template
from local import reconcile as local_reconcile
from local.dev import Stack
from shared.credentials import Credentials
from shared.errors import BadRequest, ConfigError, Forbidden, Unavailable
from shared.keys import ANONYMOUS_USER, is_valid_key, new_object_id, upload_dir, user_segment
from shared.objects import OssObjects
from shared.reconcile.app import TIMER_BUDGET_SECONDS
from shared.reconcile.report import Progress
from shared.reconcile.scan import listing_prefix, owner_of, reconcile
from shared.reconcile.settings import ReconcileSettings
from shared.reconcile.watermark import WATERMARK_KEY, WATERMARK_OWNER, Watermark
from shared.records.base import PutOutcome, Record, RecordStore
from shared.records.grants import EXACT, LedgerGrant
from shared.records.sqlite import SqliteStore
from shared.settings import Limits, Secret
from shared.sign import auth
from tests import samples
from tests.support.callbacks import FakeBucket
from tests.support.devstack import StackClient, free_port, stack_settings, unanswered_callback_url
from tools.reconcile import main, parse_since

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_800_000_000
BUCKET = "dev-bucket"
TEMPLATE = "uploads/{user}/"
OLD = NOW - 3600
PNG = samples.png()


def etag(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()  # noqa: S324 - OSS's ETag


class FakeObjects(FakeBucket):
    """tests/support's in-memory bucket whose `add` also writes, with a ledger, the exact grant
    the object was uploaded under (owner: the key's second segment unless given), as the sign
    function would have; `granted=False` makes an object no grant of ours covered."""

    def __init__(self, ledger: Any = None) -> None:
        super().__init__()
        self.ledger = ledger

    def add(
        self,
        key: str,
        data: bytes = b"data",
        *,
        at: int = OLD,
        mime: str = "text/plain",
        owner: str | None = None,
        granted: bool = True,
    ) -> str:
        self.put(key, data, crc64="12345", at=at, mime=mime)
        if self.ledger is not None and granted:
            parts = key.split("/")
            grant = LedgerGrant(
                owner=owner or (parts[1] if len(parts) > 2 else ANONYMOUS_USER),
                grant_id=new_object_id(),
                mode=EXACT,
                target=key,
                bucket=BUCKET,
                max_bytes=max(1, len(data)),
                expires_at=at + 300,
                created_at=(at - 5) * 1000,
            )
            self.ledger.open_grant(grant, Limits(), at - 5)
        return key


class FlakyStore:
    """A real store whose `put` fails (Unavailable) for chosen keys, or runs a hook first."""

    def __init__(self, inner: RecordStore, failing: set[str] | None = None) -> None:
        self.inner = inner
        self.failing = failing or set()
        self.before_put: Any = None

    def put(self, record: Record, *, replace: bool) -> PutOutcome:
        if record.key in self.failing:
            raise Unavailable("the record store is down")
        if self.before_put is not None:
            self.before_put(record)
        return self.inner.put(record, replace=replace)

    def __getattr__(self, name: str) -> Any:  # reads and the grant ledger, unchanged
        return getattr(self.inner, name)


def run(objects: FakeObjects, store: RecordStore, *, at: float = NOW, **options: Any) -> Any:
    options.setdefault("template", TEMPLATE)
    return reconcile(objects, store, bucket=BUCKET, now=lambda: at, **options)


def callback_record(key: str, data: bytes, owner: str = "alice") -> Record:
    return Record(owner, BUCKET, key, len(data), etag(data), "text/plain", OLD * 1000 + 5)


# --- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "key", "owner"),
    [
        ("uploads/{user}/", "uploads/alice/a.txt", "alice"),
        ("uploads/{user}/", "uploads/alice/photos/b.png", "alice"),
        ("uploads/{user}/", "uploads/_" + "a" * 40 + "/c.png", "_" + "a" * 40),
        ("uploads/{user}/", "uploads/alice/", None),
        ("uploads/{user}/", "uploads/alice", None),
        ("uploads/{user}/", "uploads//x.txt", None),
        ("uploads/{user}/", "other/alice/x.txt", None),
        ("t/{user}/files/", "t/bob/files/x.txt", "bob"),
        ("t/{user}/files/", "t/bob/other/x.txt", None),
        ("t/{user}/files/", "t/bob/files/", None),
        ("{user}/", "carol/x.txt", "carol"),
        ("legacy/", "legacy/a.txt", ANONYMOUS_USER),
        ("legacy/", "legacy/", None),
        ("legacy/", "elsewhere/a.txt", None),
        ("", "avatars/x.png", ANONYMOUS_USER),
    ],
)
def test_owner_is_the_user_segment_of_the_key(template: str, key: str, owner: str | None) -> None:
    assert owner_of(key, template) == owner


def test_listing_prefix_is_the_static_part_of_the_template() -> None:
    assert listing_prefix("uploads/{user}/") == "uploads/"
    assert listing_prefix("{user}/") == ""
    assert listing_prefix("a/b/{user}/c/") == "a/b/"
    assert listing_prefix("legacy/") == "legacy/"


@settings(max_examples=200, deadline=None)
@given(
    template=st.sampled_from(["uploads/{user}/", "{user}/", "a/b/{user}/c/"]),
    user=st.text(min_size=1, max_size=80),
    path=st.sampled_from(["", "photos", "photos/", "a/b.c/d_e-f"]),
)
def test_every_issued_key_inverts_to_its_owner_folder(template: str, user: str, path: str) -> None:
    key = upload_dir(template, user, path) + new_object_id() + ".png"
    assert is_valid_key(key)
    assert owner_of(key, template) == user_segment(user)
    assert key.startswith(listing_prefix(template))


# --- runs -------------------------------------------------------------------------------------


def test_backfills_every_object_without_a_record_once(store: SqliteStore) -> None:
    """Only what a ledger grant covered, owned by that grant's user (never the folder name)."""
    objects = FakeObjects(store)
    a = objects.add("uploads/alice/a.txt", b"aaa")
    b = objects.add("uploads/bob/p/b.png", PNG, mime="image/png", owner="bob@example.com")
    c = objects.add("uploads/alice/c.txt", b"c")
    stray = objects.add("uploads/mallory/d.txt", b"d", granted=False)  # another application's
    store.put(callback_record(a, b"aaa"), replace=False)

    report = run(objects, store)

    assert sorted(report.recorded) == sorted([b, c])
    assert report.uncovered == [stray]
    assert (report.present, report.count("recorded"), report.listed) == (1, 2, 4)
    assert sorted(objects.heads) == sorted([b, c])
    record = store.get(BUCKET, b)
    assert record is not None
    assert (record.owner, record.size, record.etag, record.mime_type) == (
        "bob@example.com",
        len(PNG),
        etag(PNG),
        "image/png",
    )
    assert record.reconciled
    md5 = base64.b64encode(hashlib.md5(PNG).digest()).decode()  # noqa: S324 - HeadObject's
    assert (record.crc64, record.content_md5, record.created_at) == ("12345", md5, OLD * 1000)
    assert not store.get(BUCKET, a).reconciled  # type: ignore[union-attr] - the callback's record
    assert store.get(BUCKET, stray) is None
    assert report.ok
    assert report.watermark_after == NOW - 60
    assert Watermark(store, BUCKET).read() == NOW - 60

    again = run(objects, store, at=NOW + 1)
    assert again.count("recorded") == 0
    assert again.skipped_old == 4  # older than the watermark: not even looked up
    assert len(store.list_by_owner("alice").items) == 2
    assert len(store.list_by_owner("bob@example.com").items) == 1


def test_the_watermark_keeps_runs_incremental(store: SqliteStore) -> None:
    objects = FakeObjects(store)
    objects.add("uploads/alice/first.txt")
    run(objects, store)
    late_old = objects.add("uploads/alice/restored.txt", at=OLD - 10)  # older than the watermark
    new = objects.add("uploads/alice/new.txt", at=NOW)
    objects.heads.clear()

    report = run(objects, store, at=NOW + 120)

    assert report.recorded == [new]
    assert objects.heads == [new]
    assert store.get(BUCKET, late_old) is None
    full = run(objects, store, at=NOW + 121, since=0)  # --since ignores the watermark
    assert full.recorded == [late_old]
    assert Watermark(store, BUCKET).read() == NOW + 121 - 60


def test_the_watermark_never_moves_backwards_and_is_nobodys_upload(store: SqliteStore) -> None:
    mark = Watermark(store, BUCKET)
    assert mark.read() is None
    mark.advance(NOW)
    mark.advance(NOW - 100)  # a slower run finishing late
    assert mark.read() == NOW
    mark.advance(NOW + 5)
    assert mark.read() == NOW + 5
    assert len(WATERMARK_OWNER) > auth.MAX_SUBJECT_CHARS  # no signed-in user can own it
    assert not is_valid_key(WATERMARK_KEY)  # no OSS key starts with '/'
    assert store.list_by_owner("alice").items == []
    assert store.list_by_owner(ANONYMOUS_USER).items == []


def test_young_objects_wait_for_their_callback(store: SqliteStore) -> None:
    objects = FakeObjects(store)
    young = objects.add("uploads/alice/just-now.txt", at=NOW - 10)
    report = run(objects, store)
    assert (report.young, report.recorded) == (1, [])
    assert report.watermark_after == NOW - 60 < NOW - 10
    later = run(objects, store, at=NOW + 120)
    assert later.recorded == [young]


def test_keys_we_never_issue_and_active_content_are_reported_not_recorded(
    store: SqliteStore,
) -> None:
    """The callback refuses HTML/SVG/scripts (by key or stored type); so does reconciliation."""
    objects = FakeObjects(store)
    bad = [
        objects.add("uploads/alice/../bob/x.txt"),
        objects.add("uploads/alice/a b.txt"),
        objects.add("uploads/alice//x.txt"),
        objects.add("uploads/alice"),
        objects.add("uploads/alice/page.html"),
        objects.add("uploads/alice/x.svg.png", mime="image/png"),
        objects.add("uploads/alice/photo.png", mime="image/svg+xml"),
    ]
    outside = objects.add("t/bob/other/x.txt")
    good = objects.add("t/bob/files/x.txt")
    png = objects.add("uploads/alice/photo2.png", PNG, mime="image/png")

    report = run(objects, store, template="t/{user}/files/")
    assert report.recorded == [good]
    assert report.invalid == [outside]  # listed under t/, outside the files/ folder
    legacy = run(objects, store, at=NOW + 1, since=0)
    assert sorted(legacy.invalid) == sorted(bad)
    assert legacy.recorded == [png]
    assert all(store.get(BUCKET, key) is None for key in [*bad, outside])


def test_a_dry_run_writes_nothing(store: SqliteStore) -> None:
    objects = FakeObjects(store)
    key = objects.add("uploads/alice/a.txt")
    report = run(objects, store, dry_run=True)
    assert report.recorded == [key]
    assert report.dry_run
    assert objects.heads == []
    assert store.get(BUCKET, key) is None
    assert Watermark(store, BUCKET).read() is None
    assert report.watermark_after is None


def test_work_left_undone_holds_the_watermark_back_to_its_oldest_object(
    store: SqliteStore,
) -> None:
    """A spent budget defers objects; a store failure fails one: either way the next run starts
    just before the oldest of them (not the first listed), and repairs it."""
    objects = FakeObjects(store)
    objects.add("uploads/alice/a.txt", at=OLD + 60)
    failing = objects.add("uploads/alice/b.txt", at=OLD + 30)
    objects.add("uploads/alice/c.txt", at=OLD)

    deferred = run(objects, store, budget=0.0)
    assert (deferred.deferred, deferred.recorded, deferred.ok) == (3, [], False)
    assert deferred.watermark_after == OLD - 1
    report = run(objects, FlakyStore(store, failing={failing}))
    assert (report.failed, report.ok) == ([failing], False)
    assert report.watermark_after == OLD + 30 - 1
    assert store.get(BUCKET, failing) is None
    repaired = run(objects, store, at=NOW + 60)
    assert (repaired.recorded, repaired.ok) == ([failing], True)


def test_a_vanished_object_is_skipped_and_a_stale_record_never_overwritten(
    store: SqliteStore,
) -> None:
    objects = FakeObjects(store)
    gone = objects.add("uploads/alice/gone.txt")
    objects.gone.add(gone)
    key = objects.add("uploads/alice/a.txt", b"new bytes")
    store.put(callback_record(key, b"old bytes"), replace=False)
    report = run(objects, store)
    assert (report.vanished, report.stale) == ([gone], [key])
    assert store.get(BUCKET, gone) is None
    assert store.get(BUCKET, key).etag == etag(b"old bytes")  # type: ignore[union-attr]


def test_a_callback_landing_during_the_run_leaves_one_record(store: SqliteStore) -> None:
    objects = FakeObjects(store)
    key = objects.add("uploads/alice/a.txt", b"abc")
    flaky = FlakyStore(store)
    # The late callback writes its record between our lookup and our write.
    flaky.before_put = lambda record: store.put(callback_record(key, b"abc"), replace=True)

    report = run(objects, flaky)

    assert (report.recorded, report.present) == ([], 1)
    (record,) = store.list_by_owner("alice").items
    assert not record.reconciled  # the callback's record stands


def test_prefix_narrows_the_run_and_leaves_the_watermark(store: SqliteStore) -> None:
    objects = FakeObjects(store)
    mine = objects.add("uploads/alice/a.txt")
    objects.add("uploads/bob/b.txt")
    report = run(objects, store, prefix="uploads/alice/")
    assert (report.recorded, report.listed) == ([mine], 1)
    assert Watermark(store, BUCKET).read() is None
    with pytest.raises(BadRequest, match="inside the upload prefix"):
        run(objects, store, prefix="other/")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("1700000000", 1_700_000_000),
        ("2024-01-02", 1_704_153_600),
        ("2024-01-02T03:04:05Z", 1_704_153_600 + 3 * 3600 + 4 * 60 + 5),
    ],
)
def test_since_accepts_seconds_dates_and_times(text: str, seconds: int) -> None:
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "yesterday", "-5", "2024-13-01", "1e9", "2024-01-02 03:04"])
def test_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_since(text)


def test_progress_redraws_one_line() -> None:
    stream = io.StringIO()
    ticks = iter([0.0, 0.05, 0.2, 0.3])
    bar = Progress(stream, clock=lambda: next(ticks))
    bar.show("checked 1/4", 1, 4)
    bar.show("checked 2/4", 2, 4)  # within 0.1 s: not redrawn
    bar.show("checked 4/4", 4, 4)
    bar.close()
    text = stream.getvalue()
    assert "2/4" not in text
    assert text.count("\r") == 2
    assert "[" + "#" * 30 + "] checked 4/4" in text
    assert text.endswith("\n")


# --- settings and the command -------------------------------------------------------------------


def command_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        "OSS_BUCKET": BUCKET,
        "OSS_REGION": "cn-hangzhou",
        "OSS_ACCESS_KEY_ID": "dev-access-key-id",
        "OSS_ACCESS_KEY_SECRET": "dev-access-key-secret",
        "RECORDS_BACKEND": "sqlite",
        "SQLITE_PATH": str(tmp_path / "records.sqlite3"),
    }
    env.update(overrides)
    return env


def test_settings_name_what_is_wrong(tmp_path: Path) -> None:
    loaded = ReconcileSettings.from_env(command_env(tmp_path))
    assert (loaded.key_prefix, loaded.oss.bucket) == ("uploads/{user}/", BUCKET)
    with pytest.raises(ConfigError, match="UPLOAD_KEY_PREFIX"):
        ReconcileSettings.from_env(command_env(tmp_path, UPLOAD_KEY_PREFIX=""))
    legacy = ReconcileSettings.from_env(
        command_env(tmp_path, UPLOAD_KEY_PREFIX="", AUTH_MODE="none")
    )
    assert legacy.key_prefix == ""


def test_command_backfills_and_reports(tmp_path: Path, store: SqliteStore) -> None:
    objects = FakeObjects(store)  # conftest's store is the file SQLITE_PATH names
    key = objects.add("uploads/alice/a.txt", at=int(time.time()) - 3600)
    out, err = io.StringIO(), io.StringIO()
    env = command_env(tmp_path)

    assert main(["--full", "--dry-run"], env, objects=objects, stdout=out, stderr=err) == 0
    assert f"recorded {key}" in " ".join(out.getvalue().split())
    assert "would record 1" in out.getvalue()
    assert err.getvalue() == ""  # no TTY, no --progress: no bar
    out = io.StringIO()
    assert main(["--full", "--progress"], env, objects=objects, stdout=out, stderr=err) == 0
    assert "recorded 1" in out.getvalue()
    assert "reconcile [" in err.getvalue()
    assert store.get(BUCKET, key) is not None


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--full", "--since", "soon"], {}, "--since 'soon'"),
        (["--full", "--prefix", "elsewhere/"], {}, "inside the upload prefix"),
        (["--prefix", "uploads/"], {}, "go with --full"),
        ([], {"OSS_REGION": "nowhere"}, "OSS_REGION"),
        ([], {"OSS_ACCESS_KEY_ID": "", "OSS_ACCESS_KEY_SECRET": ""}, "no credentials"),
    ],
)
def test_command_refuses_bad_usage_with_exit_2_or_1(
    tmp_path: Path, argv: list[str], env: dict[str, str], message: str
) -> None:
    err = io.StringIO()
    code = main(
        argv, command_env(tmp_path, **env), objects=FakeObjects(), stdout=io.StringIO(), stderr=err
    )
    assert code == (1 if message == "no credentials" else 2)
    assert message in err.getvalue()


# --- the real SDK against the emulator, on loopback ----------------------------------------------


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """The dev stack with a callback URL nobody answers: every upload is kept without a record."""
    live = Stack(stack_settings(tmp_path / "stack", CALLBACK_URL=unanswered_callback_url()))
    live.start()
    yield live
    live.stop()


def upload(stack: Stack, user: str, names: list[str], data: bytes = b"hello") -> list[str]:
    """Grant → PostObject through the emulator (the callback fails: 203, object kept)."""
    client = StackClient(stack.url("app"), stack.url("oss"))
    grant = client.grant(client.token(user), path="docs/")
    keys = [grant["dir"] + name for name in names]
    for key in keys:
        response = client.upload(grant, data, key=key, content_type="text/plain")
        assert response.status_code == 203, response.text
    return keys


def credentials(key_id: str = "dev-access-key-id") -> Credentials:
    return Credentials(key_id, Secret("dev-access-key-secret"))


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_oss2_lists_pages_and_heads_through_the_emulator(stack: Stack, version: str) -> None:
    keys = upload(stack, "alice", [f"f{i}.txt" for i in range(5)])
    settings_ = ReconcileSettings.from_env({**stack.values, "OSS_SIGNATURE_VERSION": version})
    objects = OssObjects(settings_.oss, credentials(), page_size=2)  # three pages
    listed = list(objects.list("uploads/"))
    assert [item.key for item in listed] == sorted(keys)
    assert {item.etag for item in listed} == {etag(b"hello")}
    assert all(item.size == 5 and abs(item.last_modified - time.time()) < 60 for item in listed)
    head = objects.head(keys[0])
    assert head is not None
    assert (head.size, head.etag, head.mime_type) == (5, etag(b"hello"), "text/plain")
    assert head.crc64.isdigit()
    assert head.content_md5
    assert objects.head("uploads/alice/docs/nothing.txt") is None
    assert list(objects.list("uploads/bob/")) == []
    # The SDK's errors become domain errors.
    with pytest.raises(Forbidden):
        list(OssObjects(settings_.oss, credentials("someone-else")).list("uploads/"))
    closed = replace(settings_.oss, endpoint=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(Unavailable):
        list(OssObjects(closed, credentials(), timeout=2).list("uploads/"))


def test_reconciliation_repairs_failed_callbacks_through_the_sdk(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make reconcile` finds the dev stack from DEV_* alone; a second run finds nothing to do."""
    keys = upload(stack, "alice", ["a.txt", "b.txt"]) + upload(stack, "bob", ["c.txt"])
    dev = {"DEV_OSS_PORT": str(stack.servers["oss"].server_port)}
    assert (
        local_reconcile.main(
            ["--full", "--settle", "0"], {**dev, "DEV_DATA_DIR": str(tmp_path / "stack")}
        )
        == 0
    )
    assert f"recorded {keys[0]}" in " ".join(capsys.readouterr().out.split())
    env = {**stack.values}
    store = SqliteStore(env["SQLITE_PATH"])
    try:
        records = {key: store.get(BUCKET, key) for key in keys}
        assert all(record is not None and record.reconciled for record in records.values())
        assert [r.owner for r in records.values()] == ["alice", "alice", "bob"]  # type: ignore[union-attr]
    finally:
        store.close()
    again = io.StringIO()
    argv = ["--full", "--settle", "0", "--since", "0"]
    assert main(argv, env, stdout=again, stderr=io.StringIO()) == 0
    assert "already recorded 3, recorded 0" in again.getvalue()


def test_the_timer_function_runs_in_an_isolated_interpreter(tmp_path: Path) -> None:
    # Credentials as FC gives a function with a role; no OSS request is made with no grant ended.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT / "functions" / "reconcile") + os.pathsep + str(ROOT),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "dev-access-key-id",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "dev-access-key-secret",
        **command_env(tmp_path, OSS_ACCESS_KEY_ID="", OSS_ACCESS_KEY_SECRET=""),
    }
    script = (
        "import json, index\n"
        "event = json.dumps({'triggerTime': '2026-01-01T00:00:00Z', 'triggerName': 'timer'})\n"
        "print(index.handler(event.encode(), None))\n"
        "assert index.event_handler is index.handler\n"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter, our script
        [sys.executable, "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["mode"] == "sweep"
    assert (summary["ended"], summary["recorded"], summary["failed"]) == (0, 0, 0)


@pytest.mark.parametrize("path", ["template.yml", "template.fc3.yml"])
def test_both_templates_schedule_the_reconcile_function(path: str) -> None:
    template = load_template(ROOT / path)
    function = template.functions["reconcile"]
    (trigger,) = function.triggers
    assert (trigger.type, trigger.methods) == ("timer", ())
    assert function.timeout > TIMER_BUDGET_SECONDS + 60  # stops starting work well before


@pytest.mark.parametrize(("name", "ext", "mime", "data"), samples.IMPOSTORS[:3])
def test_content_that_is_not_what_it_claims_is_never_backfilled(
    store: SqliteStore, name: str, ext: str, mime: str, data: bytes
) -> None:
    """The callback's content check (shared.verify.upload_problem) runs before a backfill too,
    and what it refuses under an exact grant is deleted, as the callback deletes it; with
    UPLOAD_VERIFY=off only the stored type is judged."""
    objects = FakeObjects(store)  # under a ledger grant of ours: only the content is in question
    key = objects.add(f"uploads/alice/x.{ext}", data, mime=mime)
    report = run(objects, store)
    assert (report.invalid, report.recorded) == ([key], [])
    assert store.get(BUCKET, key) is None
    assert objects.deleted == [key]
    objects.add(key, data, mime=mime)  # uploaded again, under a new grant
    assert run(objects, store, verify="off", since=0).recorded == [key]
