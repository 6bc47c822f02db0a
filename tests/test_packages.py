"""The built packages (`make build`): what they hold, reproducibly, and that each serves from its
unzipped archive in a replica of FC's python3.10 runtime (`make fc-runtime`: tablestore 5.4.1 and
oss2 2.16.0 after the code directory) — sign and callback with no site-packages at all (`-S`)."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import fixtures
from bench.naive import KEY_PATH
from deploy import build, vendor
from local.dev import Stack
from shared.callback.body import callback_body_template
from shared.records.tablestore_rows import DEFINED_COLUMNS
from tests.support import fc
from tests.support.callbacks import public_pem, rsa_key
from tests.support.devstack import StackClient, stack_settings, unanswered_callback_url
from tests.support.keyhost import key_host
from tests.support.tools import unavailable


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, build.Package]:
    """Build both packages once per session (downloads wheels for manylinux2014_x86_64)."""
    dist = tmp_path_factory.mktemp("dist")
    try:
        return {name: build.build(name, dist, environ={}) for name in build.FUNCTIONS}
    except build.BuildError as exc:
        pytest.fail(f"make build failed: {exc}")


def files_in(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


SIGN_FILES = {
    "jwt/__init__.py",  # grant tokens need PyJWT
    # The /multipart routes, their strict JSON bodies and the OSS calls (oss2: runtime).
    *("shared/sign/multipart.py", "shared/sign/jsonbody.py", "shared/sign/part_urls.py"),
    # Uppy's S3 requests: the routes, their capabilities, the /s3/sign body, the XML.
    *("shared/sign/s3_compat.py", "shared/sign/s3_capability.py"),
    *("shared/sign/s3_request.py", "shared/sign/s3_xml.py"),
}
MULTIPART_FILES = {"shared/multipart.py", "shared/multipart_limits.py"}


# function → (the rooms of shared/ it ships, files it must ship, prefixes it must not ship)
@pytest.mark.parametrize(
    ("name", "rooms", "required", "forbidden"),
    [
        # Its own room, and the callback body it pins; cryptography only for AUTH_JWKS_URL,
        # unset in this build.
        (
            "sign",
            {"sign", "callback", "http", "records"},
            SIGN_FILES | MULTIPART_FILES,
            ("cryptography/", "cffi/", "requests/"),
        ),
        (
            "callback",  # OSS's RSA signatures
            {"callback", "http", "records"},
            {"jwt/__init__.py", "cryptography/__init__.py", "requests/__init__.py"},
            (),
        ),
        # It verifies no grant or signature (no PyJWT needed); it aborts multipart sessions that
        # ended without a record.
        ("reconcile", {"reconcile", "records"}, MULTIPART_FILES, ()),
    ],
    ids=build.FUNCTIONS,
)
def test_each_package_holds_what_it_needs_reproducibly_zipped(  # noqa: PLR0917 - parametrized cases
    packages: dict[str, build.Package],
    tmp_path: Path,
    name: str,
    rooms: set[str],
    required: set[str],
    forbidden: tuple[str, ...],
) -> None:
    package = packages[name]
    files = files_in(package.directory)
    handler = build.ROOT / "functions" / name / "index.py"
    assert (package.directory / "index.py").read_bytes() == handler.read_bytes()
    assert "shared/__init__.py" in files
    shipped = {f.split("/")[1] for f in files if f.startswith("shared/") and f.count("/") > 1}
    assert shipped - {"__pycache__"} == rooms
    assert required <= files
    if name == "sign":
        assert {f for f in files if f.startswith("shared/callback/") and f.endswith(".py")} == {
            "shared/callback/__init__.py",
            "shared/callback/body.py",
        }
        assert "tablestore" in package.runtime_imports
    # The FC runtime ships tablestore and oss2; nothing of numpy/protobuf (tablestore 6.x's).
    rest = ("tools/", "tablestore", "numpy/", "google/protobuf/", "oss2/", *forbidden)
    assert [f for f in files if f.lower().startswith(rest)] == []
    # No installer noise, stubs, scripts or third-party tests.
    assert not [f for f in files if f.rsplit("/", 1)[-1] in build.NOISE_FILES]
    assert not [f for f in files if f.endswith(".pyi") or f.startswith("bin/")]
    assert not [f for f in files if "/tests/" in f and not f.startswith("shared/")]
    # Vendored versions are the pinned ones, one dist-info each.
    assert set(package.vendored) <= set(
        vendor.requirement_pins(build.ROOT / "requirements.txt").values()
    )
    for pin in package.vendored:
        project, version = pin.split("==")
        dist_info = [
            p.name
            for p in package.directory.glob("*.dist-info")
            if p.name.lower().startswith(f"{vendor.normalise(project).replace('-', '_')}-")
        ]
        assert dist_info == [f"{dist_info[0].split('-')[0]}-{version}.dist-info"]
    # The zip holds exactly the directory, reproducibly stamped, and its bytecode for 3.10.
    with zipfile.ZipFile(package.archive) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert set(names) == files
        for info in archive.infolist():
            assert info.date_time == build.ZIP_EPOCH
            assert (info.external_attr >> 16) & 0o777 in (0o644, 0o755)
        assert archive.read("index.py") == (package.directory / "index.py").read_bytes()
    # Reproducible: the bytecode and the zip built again from the sources are the same bytes.
    copy = tmp_path / name
    shutil.copytree(package.directory, copy, ignore=shutil.ignore_patterns("__pycache__"))
    build.compile_bytecode(copy)
    build.write_zip(copy, tmp_path / f"{name}.zip")
    assert (tmp_path / f"{name}.zip").read_bytes() == package.archive.read_bytes()
    if sys.version_info[:2] != build.TARGET_PYTHON:
        return  # only a 3.10 build compiles FC python3.10 bytecode (`make` uses 3.10 if present)
    for source in package.directory.rglob("*.py"):
        cached = source.parent / "__pycache__" / f"{source.stem}.cpython-310.pyc"
        assert cached.is_file(), f"{source} has no python3.10 bytecode"
        flags = int.from_bytes(cached.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{cached} is not an unchecked hash-based pyc"


@pytest.mark.parametrize(
    ("function", "files", "error"),
    [
        pytest.param(
            "sign",
            {
                "shared/sign_app.py": "def f():\n    import yaml\n",
                "functions/sign/index.py": "from shared import sign_app\n",
                "requirements.txt": "PyJWT==2.15.1\n",
            },
            "'yaml' is imported but neither pinned",
            id="unpinned-module",
        ),
        pytest.param(
            "callback",
            {"functions/callback/index.py": "import shared.nowhere\n", "requirements.txt": ""},
            r"shared\.nowhere",
            id="missing-project-module",
        ),
    ],
)
def test_a_handler_reaching_what_is_not_there_does_not_build(
    tmp_path: Path, function: str, files: dict[str, str], error: str
) -> None:
    for name, text in {"shared/__init__.py": "", **files}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    with pytest.raises(build.BuildError, match=error):
        build.build(function, tmp_path / "dist", tmp_path)


def test_the_sign_package_ships_cryptography_only_for_jwks_from_the_shell_or_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`s deploy` reads `.env` beside the template; the build must see the same setting."""
    monkeypatch.delenv("AUTH_JWKS_URL", raising=False)  # the shell's, which would win
    assert "AUTH_JWKS_URL" not in build.deploy_environment(tmp_path)
    (tmp_path / ".env").write_text("AUTH_JWKS_URL=https://idp.example/jwks.json\n")
    environ = build.deploy_environment(tmp_path)
    assert environ["AUTH_JWKS_URL"] == "https://idp.example/jwks.json"
    assert vendor.implied_imports("sign", environ) == vendor.IMPLIED_IMPORTS
    monkeypatch.setenv("AUTH_JWKS_URL", "  ")  # the shell overrides .env, as for `s`; blank: unset
    assert vendor.implied_imports("sign", build.deploy_environment(tmp_path)) == {}
    imports = vendor.third_party_imports(build.ROOT / "functions" / "sign" / "index.py", build.ROOT)
    pins = vendor.requirement_pins(build.ROOT / "requirements.txt")
    for implied, ships_cryptography in ((vendor.IMPLIED_IMPORTS, True), ({}, False)):
        chosen = vendor.select_requirements(imports, pins, implied)
        assert any(pin.startswith("cryptography==") for pin in chosen) is ships_cryptography
        assert any(pin.startswith("PyJWT==") for pin in chosen)


# --- each package in a replica of FC's python3.10 runtime ---------------------------------------

FC_PYTHON = build.ROOT / ".venv-fc" / "bin" / "python"
REPLICA_DRIVER = Path(__file__).with_name("fc_replica_driver.py")
REPLICA_REPORT = "FC-REPLICA-REPORT "
TABLESTORE_ENV = {
    "RECORDS_BACKEND": "tablestore",
    "TABLESTORE_ENDPOINT": "https://replica.cn-hangzhou.ots-internal.aliyuncs.com",
    "TABLESTORE_INSTANCE": "replica",
    "TABLESTORE_TABLE": "oss_uploads",
    # What FC hands a function whose role it assumed.
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "STS.replica-key-id",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "replica-key-secret",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "replica-security-token",
}
# The runtime's site-packages after the code directory, or (-S) none: the package alone serves.
RUNTIMES = [pytest.param(False, id="fc-runtime"), pytest.param(True, id="no-site-packages")]


def in_replica(
    package: build.Package,
    tmp_path: Path,
    checks: list[dict[str, Any]],
    env: dict[str, str],
    *,
    tablestore: str | None = None,
    isolated: bool = False,
) -> dict[str, Any]:
    """Unzip the package and run `checks` in one fresh replica interpreter; its report. Isolated:
    no site-packages (-S), warnings are errors, and nothing may come from outside the package
    and the standard library."""
    if not FC_PYTHON.is_file():  # `make fc-runtime` (and `make test`) builds it
        unavailable(f"{FC_PYTHON} is missing: run `make fc-runtime`")
    unpacked = tmp_path / f"code-{package.function}"
    unpacked.mkdir()
    with zipfile.ZipFile(package.archive) as archive:
        archive.extractall(unpacked)
    before = files_in(unpacked)
    config = {
        "package": str(unpacked),
        "repo": str(build.ROOT) if tablestore else None,
        "tablestore": tablestore,
        "checks": checks,
    }
    flags = ["-S", "-W", "error"] if isolated else []
    result = subprocess.run(  # noqa: S603 - the replica's interpreter, our driver
        [str(FC_PYTHON), "-I", *flags, str(REPLICA_DRIVER), json.dumps(config)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith(REPLICA_REPORT)]
    assert lines, result.stdout[-2000:] + result.stderr[-2000:]
    report: dict[str, Any] = json.loads(lines[-1][len(REPLICA_REPORT) :])
    shadowed = sorted(
        name
        for name, origin in report["origins"].items()
        if origin == "runtime" and any(unpacked.glob(f"{name}*"))
    )
    assert shadowed == [], "the package ships these, yet the runtime's copies were imported"
    assert report["path_order"][0] == "package"
    if isolated:
        assert report["outside"] == [], "imported from outside the package and the stdlib"
    if sys.version_info[:2] == build.TARGET_PYTHON:
        written = files_in(unpacked) - before
        assert not [f for f in written if f.endswith(".pyc")], "shipped bytecode was not used"
    return report


def wsgi(spec: dict[str, Any]) -> dict[str, Any]:
    """A check: the request as FC 2.0 hands it to `handler` (the driver adds wsgi.input)."""
    environ = fixtures.environ_from_spec(spec)
    del environ["wsgi.input"]
    return {"kind": "wsgi", "environ": environ, "body_b64": spec.get("body_b64", "")}


def event(spec: dict[str, Any]) -> dict[str, Any]:
    """A check: the same request as the FC 3.0 HTTP trigger event `event_handler` gets."""
    headers = {name[5:].replace("_", "-").lower(): v for name, v in spec["headers"].items()}
    headers.update({"content-type": spec["content_type"]} if "content_type" in spec else {})
    query = dict(p.split("=", 1) for p in spec.get("query", "").split("&") if p)
    body = base64.b64decode(spec.get("body_b64", ""))
    request = fc.event(spec["method"], spec["path"], headers=headers, query=query, body=body)
    return {"kind": "event", "event": request}


@pytest.fixture(scope="module")
def callbacks() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Our callback key served on 127.0.0.1 (its URL), and two callbacks signed with it."""
    private_key = rsa_key(2048)
    template = callback_body_template(fixtures.prefix_grant_token())
    with key_host({KEY_PATH: public_pem(private_key)}) as host:
        url = host.url(KEY_PATH)
        bodies = [fixtures.callback_body(template, fixtures.callback_values(i)) for i in (0, 1)]
        yield url, [fixtures.signed_callback(private_key, url, b).spec() for b in bodies]


@pytest.mark.parametrize("isolated", RUNTIMES)
def test_the_sign_package_issues_a_grant(
    packages: dict[str, build.Package], tmp_path: Path, isolated: bool
) -> None:
    request = fixtures.sign_request_spec(fixtures.user_token())
    checks = [wsgi(request), event(request)]
    env = fixtures.sign_env(SQLITE_PATH=str(tmp_path / "ledger.sqlite3"))
    report = in_replica(packages["sign"], tmp_path, checks, env, isolated=isolated)
    for answer in report["answers"]:
        assert answer["status"] == 200, answer["body"]
        grant = json.loads(answer["body"])
        assert grant["dir"] == "uploads/alice/avatars/"
        assert grant["version"] == "v4"
        assert grant["fields"]["callback"] == grant["callback"]
    # The runtime has tablestore and cryptography, but HS256 sign-ins need neither, nor PyJWT's
    # JWKS client.
    assert not {"tablestore", "cryptography", "jwt.jwks_client"} & set(report["modules"])


STACK_OSS = ("OSS_BUCKET", "OSS_REGION", "OSS_ENDPOINT")  # where the stack's emulator is


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The `make dev` stack in-process. Nobody answers its callback: OSS keeps each upload
    without a record, as when a callback fails."""
    data = tmp_path_factory.mktemp("stack")
    stack = Stack(stack_settings(data, CALLBACK_URL=unanswered_callback_url()))
    stack.start()
    yield stack
    stack.stop()


def test_the_sign_package_starts_a_multipart_upload_in_the_fc_runtime(
    packages: dict[str, build.Package], tmp_path: Path, stack: Stack
) -> None:
    """POST /multipart through both adapters: the runtime's oss2 calls InitiateMultipartUpload on
    the emulator, the session goes to the ledger, and the answer names the upload."""
    body = json.dumps({"filename": "film.mp4", "size": 300_000, "type": "video/mp4"})
    request = {
        **fixtures.sign_request_spec(fixtures.user_token()),
        "method": "POST",
        "path": "/multipart",
        "query": "",
        "content_type": "application/json",
        "body_b64": base64.b64encode(body.encode()).decode(),
    }
    names = (*STACK_OSS, "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET")
    env = fixtures.sign_env(
        **{name: stack.values[name] for name in names}, SQLITE_PATH=str(tmp_path / "ledger.sqlite3")
    )
    browser = StackClient(stack.url("app"), stack.url("oss"))
    opened = browser.emulator_stats().get("InitiateMultipartUpload", 0)
    report = in_replica(packages["sign"], tmp_path, [wsgi(request), event(request)], env)
    sessions = [json.loads(answer["body"]) for answer in report["answers"]]
    assert [answer["status"] for answer in report["answers"]] == [200, 200], sessions
    assert {(s["partSize"], s["partCount"]) for s in sessions} == {(8 * 1024 * 1024, 1)}
    assert all(s["key"].startswith("uploads/") and s["key"].endswith(".mp4") for s in sessions)
    assert len({s["uploadId"] for s in sessions}) == 2
    assert browser.emulator_stats()["InitiateMultipartUpload"] == opened + 2
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:
        modes = db.execute("SELECT mode, part_size FROM grants").fetchall()
    assert modes == [("multipart", 8 * 1024 * 1024)] * 2
    assert report["origins"]["oss2"] == "runtime"


@pytest.mark.parametrize("isolated", RUNTIMES)
def test_the_callback_package_records_into_sqlite_and_refuses_a_forgery(
    packages: dict[str, build.Package],
    tmp_path: Path,
    callbacks: tuple[str, list[dict[str, Any]]],
    isolated: bool,
) -> None:
    database = tmp_path / "records.sqlite3"
    key_url, (first, second) = callbacks
    forged = {**first, "body_b64": base64.b64encode(b"bucket=bench-bucket&size=1").decode()}
    checks = [wsgi(first), event(second), wsgi(forged), event(forged)]
    env = fixtures.callback_env(key_url, str(database))
    report = in_replica(packages["callback"], tmp_path, checks, env, isolated=isolated)
    answers = report["answers"]
    assert [a["status"] for a in answers] == [200, 200, 401, 401], answers
    assert [json.loads(a["body"])["code"] for a in answers[2:]] == ["SignatureInvalid"] * 2
    with sqlite3.connect(database) as db:
        keys = sorted(row[0] for row in db.execute("SELECT key FROM records"))
    assert keys == [fixtures.callback_values(i)["object"] for i in range(2)]
    assert report["origins"]["cryptography"] == "package"
    assert "jwt.jwks_client" not in report["modules"]


def test_the_callback_package_and_bootstrap_run_on_the_runtimes_tablestore_sdk(
    packages: dict[str, build.Package],
    tmp_path: Path,
    callbacks: tuple[str, list[dict[str, Any]]],
) -> None:
    """Tablestore 5.4.1, as FC's python3.10 runtime ships it: every call our code makes is
    encoded by that SDK, then answered by the in-memory table (tests/support/ots.py)."""
    key_url, (first, second) = callbacks
    checks = [
        wsgi(first),
        event(second),
        wsgi(first),  # OSS never retries, but a duplicate stays one row
        {
            "kind": "bootstrap",
            "primary_key": [["pk", "STRING"], ["bucket", "STRING"], ["key", "STRING"]],
            "defined_columns": [list(c) for c in DEFINED_COLUMNS],
        },
    ]
    env = {**fixtures.callback_env(key_url, "/nonexistent/unused.sqlite3"), **TABLESTORE_ENV}
    report = in_replica(packages["callback"], tmp_path, checks, env, tablestore="oss_uploads")
    assert report["tablestore_version"] == "5.4.1"
    assert report["origins"]["tablestore"] == "runtime"
    *answers, bootstrap = report["answers"]
    assert [a["status"] for a in answers] == [200, 200, 200], answers
    assert sorted(key.split("/", 2)[2] for key in report["rows"]) == [
        fixtures.callback_values(i)["object"] for i in range(2)
    ]
    # The callback's client (built once), then the bootstrap's.
    assert {"retry_policy", "socket_timeout", "sts_token"} <= set(report["clients"][0])
    # 5.4.1 has no include_base_data: the index is created first, then both rows rewritten.
    assert (bootstrap["first"], bootstrap["again"]) == (0, 0), bootstrap["out"]
    calls = bootstrap["calls"]
    created = calls.index("CreateIndex oss_uploads_by_owner []")
    assert calls[created + 1 :].count("UpdateRow") == 2
    assert "set created_at_rev on 2 rows" in bootstrap["out"]
    assert "already exist" in bootstrap["out"]


def test_the_reconcile_package_repairs_through_oss2_and_tablestore_of_the_runtime(
    packages: dict[str, build.Package], tmp_path: Path, stack: Stack
) -> None:
    browser = StackClient(stack.url("app"), stack.url("oss"))
    grant = browser.grant(browser.token("carol"), path="docs/")
    keys = [grant["dir"] + name for name in ("a.txt", "b.txt")]
    for key in keys:
        stored = browser.upload(grant, b"hello", key=key, content_type="text/plain")
        assert stored.status_code == 203
    env = {name: stack.values[name] for name in STACK_OSS}
    env.update(TABLESTORE_ENV)
    env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = "dev-access-key-id"
    env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "dev-access-key-secret"
    del env["ALIBABA_CLOUD_SECURITY_TOKEN"]
    # A prefix grant issued ten minutes ago that has ended (past its callback grace and the
    # sweeper's settle time), as the sign function would have written it.
    now = int(time.time())
    ended = {
        "owner": "carol",
        "grant_id": "01HZREPLICAGRANT00000000000",
        "mode": "prefix",
        "target": grant["dir"],
        "bucket": "dev-bucket",
        "max_bytes": 1024,
        "expires_at": now - 300,
        "created_at": (now - 600) * 1000,
    }
    checks = [{"kind": "reconcile", "grants": [ended]}]
    report = in_replica(packages["reconcile"], tmp_path, checks, env, tablestore="oss_uploads")
    (answer,) = report["answers"]
    timer, audit = answer["timer"], answer["audit"]
    assert (timer["mode"], timer["recorded"], timer["failed"]) == ("sweep", 2, 0), timer
    assert (audit["recorded"], audit["failed"]) == (0, 0), audit
    rows = {k.split("/", 2)[2]: v for k, v in report["rows"].items()}
    recorded = {key: row for key, row in rows.items() if key in keys}
    assert sorted(recorded) == sorted(keys)
    assert all(row["reconciled"] is True and row["owner"] == "carol" for row in recorded.values())
    assert report["origins"]["oss2"] == "runtime"
    assert report["origins"]["tablestore"] == "runtime"
