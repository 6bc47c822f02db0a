"""The built packages (`make build`): what they hold, that they are reproducible, that each one
serves a request from an empty directory in an isolated python3.10 with nothing else installed,
and that each one works in a replica of FC's python3.10 runtime (`make fc-runtime`: its built-in
modules, tablestore 5.4.1 and oss2 2.16.0 among them, on sys.path after the code directory)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import jwt
import pytest

from bench import fixtures
from bench.naive import KEY_PATH
from deploy import build
from local.dev import Stack
from shared.callback.body import callback_body_template
from tests.support.callbacks import public_pem, rsa_key
from tests.support.devstack import (
    http_session,
    sign_in_and_grant,
    stack_settings,
    unanswered_callback_url,
)
from tests.support.keyhost import key_host

JWT_SECRET = "package-test-jwt-secret-0123456789abcdef"
GRANT_SECRET = "package-test-grant-secret-0123456789abcdef"
BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
# The packages hold FC python3.10 binaries (cffi's _cffi_backend) and python3.10 bytecode, which
# only a 3.10 interpreter can check; `make` builds .venv with python3.10 whenever the machine has it.
ON_PYTHON310 = pytest.mark.skipif(
    sys.version_info[:2] != (3, 10),
    reason=f"needs python3.10 (FC's runtime); this venv runs {sys.version_info[0]}.{sys.version_info[1]}",
)

# Runs inside the isolated interpreter: FC puts the code directory on sys.path and calls the
# handler; we do the same, then report what was imported from where.
DRIVER = r"""
import io, json, os, sys, sysconfig
package = sys.argv[1]
sys.path.insert(0, package)
import index

request = json.loads(sys.argv[2])
environ = {
    "REQUEST_METHOD": request["method"], "PATH_INFO": request["path"],
    "QUERY_STRING": request.get("query", ""), "SERVER_PROTOCOL": "HTTP/1.1",
    "CONTENT_LENGTH": str(len(request.get("body", "").encode())),
    "CONTENT_TYPE": request.get("content_type", ""),
    "wsgi.input": io.BytesIO(request.get("body", "").encode()), "REMOTE_ADDR": "127.0.0.1",
}
for name, value in request.get("headers", {}).items():
    environ["HTTP_" + name.upper().replace("-", "_")] = value
seen = {}
def start_response(status, headers):
    seen["status"], seen["headers"] = status, headers
body = b"".join(index.handler(environ, start_response))

event = {
    "version": "v1", "rawPath": request["path"], "body": request.get("body", ""),
    "isBase64Encoded": False, "headers": request.get("headers", {}),
    "queryParameters": dict(p.split("=", 1) for p in request.get("query", "").split("&") if p),
    "requestContext": {"requestId": "req-1", "http": {"method": request["method"],
                       "path": request["path"], "sourceIp": "127.0.0.1"}},
}
answer = index.event_handler(json.dumps(event).encode(), None)

stdlib = sysconfig.get_paths()["stdlib"]
outside = sorted(
    name for name, module in list(sys.modules.items())
    if name != "__main__" and getattr(module, "__file__", None)
    and not os.path.realpath(module.__file__).startswith((os.path.realpath(package), stdlib))
)
print(json.dumps({"status": seen["status"], "body": body.decode(), "event": answer,
                  "outside": outside, "tablestore": "tablestore" in sys.modules}))
"""


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


def test_each_package_has_its_handler_the_shared_package_and_its_dependencies(
    packages: dict[str, build.Package],
) -> None:
    for name, package in packages.items():
        files = files_in(package.directory)
        assert (package.directory / "index.py").read_bytes() == (
            build.ROOT / "functions" / name / "index.py"
        ).read_bytes()
        assert "shared/__init__.py" in files
        rooms = {f.split("/")[1] for f in files if f.startswith("shared/") and f.count("/") > 1} - {
            "__pycache__"
        }
        # Each function ships its own room; the sign function also the callback body it pins.
        expected = {
            "sign": {"sign", "callback", "http", "records"},
            "callback": {"callback", "http", "records"},
            "reconcile": {"reconcile", "records"},
        }
        assert rooms == expected[name], rooms
        if name == "sign":
            assert {f for f in files if f.startswith("shared/callback/") and f.endswith(".py")} == {
                "shared/callback/__init__.py",
                "shared/callback/body.py",
            }
            # The /multipart routes, their strict JSON bodies and the OSS calls (oss2: runtime).
            assert {
                "shared/sign/multipart.py",
                "shared/sign/jsonbody.py",
                "shared/sign/part_urls.py",
                "shared/multipart.py",
                "shared/multipart_limits.py",
            } <= files
            # Uppy's S3 requests: the routes, their capabilities, the /s3/sign body, the XML.
            assert {
                "shared/sign/s3_compat.py",
                "shared/sign/s3_capability.py",
                "shared/sign/s3_request.py",
                "shared/sign/s3_xml.py",
            } <= files
        if name == "reconcile":  # it aborts multipart sessions that ended without a record
            assert {"shared/multipart.py", "shared/multipart_limits.py"} <= files
        assert not any(f.startswith("tools/") for f in files)
        if name != "reconcile":  # it verifies no grant or signature: no PyJWT, no cryptography
            assert "jwt/__init__.py" in files, "grant tokens need PyJWT"
        if name == "callback":  # OSS's RSA signatures
            assert "cryptography/__init__.py" in files
        if name == "sign":  # cryptography only for AUTH_JWKS_URL, unset in this build
            assert not any(f.startswith(("cryptography/", "cffi/")) for f in files)
        assert not any(f.startswith(("tablestore/", "numpy/", "google/protobuf/")) for f in files)
        assert not any(f.startswith("oss2/") for f in files), "the FC runtime ships oss2"
    assert "requests/__init__.py" in files_in(packages["callback"].directory)
    assert "requests/__init__.py" not in files_in(packages["sign"].directory)


def test_the_sign_package_leaves_tablestore_to_the_runtime(
    packages: dict[str, build.Package],
) -> None:
    sign = packages["sign"]
    assert "tablestore" in sign.runtime_imports
    assert not any(name.lower().startswith("tablestore") for name in files_in(sign.directory)), (
        "the FC python3.10 runtime ships tablestore; the sign package must not carry it"
    )


def test_vendored_versions_are_the_pinned_ones(packages: dict[str, build.Package]) -> None:
    pins = set(build.requirement_pins(build.ROOT / "requirements.txt").values())
    for package in packages.values():
        assert set(package.vendored) <= pins
        for pin in package.vendored:
            name, version = pin.split("==")
            info = [
                p
                for p in package.directory.glob("*.dist-info")
                if p.name.lower().startswith(f"{build.normalise(name).replace('-', '_')}-")
            ]
            assert [p.name for p in info] == [f"{info[0].name.split('-')[0]}-{version}.dist-info"]


def test_packages_carry_no_installer_noise(packages: dict[str, build.Package]) -> None:
    for package in packages.values():
        files = files_in(package.directory)
        assert not [f for f in files if f.rsplit("/", 1)[-1] in build.NOISE_FILES]
        assert not [f for f in files if f.endswith(".pyi") or f.startswith("bin/")]
        assert not [f for f in files if "/tests/" in f and not f.startswith("shared/")]


@ON_PYTHON310
def test_every_module_is_precompiled_for_python310(packages: dict[str, build.Package]) -> None:
    for package in packages.values():
        for source in package.directory.rglob("*.py"):
            cached = source.parent / "__pycache__" / f"{source.stem}.cpython-310.pyc"
            assert cached.is_file(), f"{source} has no python3.10 bytecode"
            flags = int.from_bytes(cached.read_bytes()[4:8], "little")
            assert flags == 0b01, f"{cached} is not an unchecked hash-based pyc"


def test_zip_holds_exactly_the_directory(packages: dict[str, build.Package]) -> None:
    for package in packages.values():
        with zipfile.ZipFile(package.archive) as archive:
            names = archive.namelist()
            assert names == sorted(names)
            assert set(names) == files_in(package.directory)
            for info in archive.infolist():
                assert info.date_time == build.ZIP_EPOCH
                assert (info.external_attr >> 16) & 0o777 in (0o644, 0o755)
            assert archive.read("index.py") == (package.directory / "index.py").read_bytes()


def test_bytecode_and_zip_are_reproducible(
    packages: dict[str, build.Package], tmp_path: Path
) -> None:
    original = packages["callback"]
    copy = tmp_path / "callback"
    shutil.copytree(original.directory, copy, ignore=shutil.ignore_patterns("__pycache__"))
    build.compile_bytecode(copy)
    build.write_zip(copy, tmp_path / "callback.zip")
    assert (tmp_path / "callback.zip").read_bytes() == original.archive.read_bytes()


@pytest.mark.parametrize(
    ("function", "jwks_url", "ships_cryptography"),
    [
        ("sign", "", False),
        ("sign", "  ", False),
        ("sign", "https://idp.example/.well-known/jwks.json", True),
        ("callback", "", True),  # it verifies OSS's RSA signatures itself
    ],
)
def test_the_sign_package_ships_cryptography_only_for_jwks(
    function: str, jwks_url: str, ships_cryptography: bool
) -> None:
    entry = build.ROOT / "functions" / function / "index.py"
    chosen = build.select_requirements(
        build.third_party_imports(entry),
        build.requirement_pins(build.ROOT / "requirements.txt"),
        build.implied_imports(function, {"AUTH_JWKS_URL": jwks_url}),
    )
    assert any(pin.startswith("cryptography==") for pin in chosen) is ships_cryptography
    assert any(pin.startswith("PyJWT==") for pin in chosen)


def test_a_function_importing_an_unpinned_module_does_not_build(tmp_path: Path) -> None:
    (tmp_path / "functions" / "sign").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "__init__.py").write_text("")
    (tmp_path / "shared" / "sign_app.py").write_text("def f():\n    import yaml\n")
    (tmp_path / "functions" / "sign" / "index.py").write_text("from shared import sign_app\n")
    (tmp_path / "requirements.txt").write_text("PyJWT==2.15.1\n")
    with pytest.raises(build.BuildError, match="'yaml' is imported but neither pinned"):
        build.build("sign", tmp_path / "dist", tmp_path)


def test_a_handler_reaching_a_missing_project_module_does_not_build(tmp_path: Path) -> None:
    (tmp_path / "functions" / "callback").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "__init__.py").write_text("")
    (tmp_path / "functions" / "callback" / "index.py").write_text("import shared.nowhere\n")
    (tmp_path / "requirements.txt").write_text("")
    with pytest.raises(build.BuildError, match=r"shared\.nowhere"):
        build.build("callback", tmp_path / "dist", tmp_path)


# --- an isolated interpreter serves one request from each unzipped package --------------------


def serve_from_zip(
    package: build.Package, tmp_path: Path, request: dict[str, object], env: dict[str, str]
) -> dict[str, object]:
    if not BASE_PYTHON.is_file():
        pytest.fail(f"the venv's base interpreter {BASE_PYTHON} is missing")
    unpacked = tmp_path / "code"
    unpacked.mkdir()
    with zipfile.ZipFile(package.archive) as archive:
        archive.extractall(unpacked)
    before = files_in(unpacked)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    result = subprocess.run(  # noqa: S603 - our interpreter, our driver
        [
            str(BASE_PYTHON),
            "-I",
            "-S",
            "-W",
            "error",
            str(driver),
            str(unpacked),
            json.dumps(request),
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    if sys.version_info[:2] == build.TARGET_PYTHON:
        written = files_in(unpacked) - before
        assert not [f for f in written if f.endswith(".pyc")], "shipped bytecode was not used"
    return outcome


def test_the_sign_package_issues_a_grant_in_an_isolated_interpreter(
    packages: dict[str, build.Package], tmp_path: Path
) -> None:
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, JWT_SECRET, "HS256")
    env = {
        "OSS_BUCKET": "package-bucket",
        "OSS_REGION": "cn-hangzhou",
        "OSS_ACCESS_KEY_ID": "package-key-id",
        "OSS_ACCESS_KEY_SECRET": "package-key-secret",
        "CALLBACK_URL": "https://callback.example.com/oss-callback",
        "AUTH_JWT_SECRET": JWT_SECRET,
        "GRANT_SECRET": GRANT_SECRET,
        "RECORDS_BACKEND": "sqlite",
        "SQLITE_PATH": str(tmp_path / "records.sqlite3"),
    }
    request = {
        "method": "GET",
        "path": "/signature",
        "query": "path=avatars/",
        "headers": {"Authorization": f"Bearer {token}"},
    }
    outcome = serve_from_zip(packages["sign"], tmp_path, request, env)
    assert outcome["status"] == "200 OK", outcome["body"]
    grant = json.loads(str(outcome["body"]))
    assert grant["dir"] == "uploads/alice/avatars/"
    assert grant["version"] == "v4"
    assert grant["fields"]["callback"] == grant["callback"]
    event = outcome["event"]
    assert isinstance(event, dict)
    assert event["statusCode"] == 200
    assert json.loads(event["body"])["dir"] == "uploads/alice/avatars/"
    assert outcome["outside"] == [], "imported from outside the package and the stdlib"
    assert outcome["tablestore"] is False


@ON_PYTHON310
def test_the_callback_package_refuses_a_forged_callback_in_an_isolated_interpreter(
    packages: dict[str, build.Package], tmp_path: Path
) -> None:
    env = {
        "OSS_BUCKET": "package-bucket",
        "OSS_REGION": "cn-hangzhou",
        "GRANT_SECRET": GRANT_SECRET,
        "RECORDS_BACKEND": "sqlite",
        "SQLITE_PATH": str(tmp_path / "records.sqlite3"),
    }
    body = "bucket=package-bucket&object=uploads%2Falice%2Fx.png&etag=abc&size=3"
    request = {
        "method": "POST",
        "path": "/oss-callback",
        "body": body,
        "content_type": "application/x-www-form-urlencoded",
        "headers": {
            "Authorization": "Zm9yZ2VkIHNpZ25hdHVyZQ==",
            "x-oss-pub-key-url": "aHR0cHM6Ly9nb3NzcHVibGljLmFsaWNkbi5jb20vY2FsbGJhY2tfcHViX2tleV92MS5wZW0=",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    }
    outcome = serve_from_zip(packages["callback"], tmp_path, request, env)
    assert outcome["status"] == "401 Unauthorized", outcome["body"]
    assert json.loads(str(outcome["body"]))["code"] == "SignatureInvalid"
    event = outcome["event"]
    assert isinstance(event, dict)
    assert event["statusCode"] == 401
    assert json.loads(event["body"])["code"] == "SignatureInvalid"
    assert outcome["outside"] == []


def test_the_build_reads_auth_jwks_url_from_the_deploy_dotenv_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`s deploy` reads `.env` beside the template; the build must see the same setting."""
    monkeypatch.delenv("AUTH_JWKS_URL", raising=False)  # the shell's, which would win
    assert "AUTH_JWKS_URL" not in build.deploy_environment(tmp_path)
    (tmp_path / ".env").write_text("AUTH_JWKS_URL=https://idp.example/jwks.json\n")
    environ = build.deploy_environment(tmp_path)
    assert environ["AUTH_JWKS_URL"] == "https://idp.example/jwks.json"
    assert build.implied_imports("sign", environ) == build.IMPLIED_IMPORTS
    monkeypatch.setenv("AUTH_JWKS_URL", "")  # the shell overrides .env, as for `s`
    assert build.implied_imports("sign", build.deploy_environment(tmp_path)) == {}


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


@pytest.fixture(scope="session")
def replica() -> Path:
    """`.venv-fc/bin/python`, built by `make fc-runtime` (and by `make test`)."""
    if not FC_PYTHON.is_file():
        message = f"{FC_PYTHON} is missing: run `make fc-runtime`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return FC_PYTHON


def in_replica(
    replica: Path,
    package: build.Package,
    tmp_path: Path,
    checks: list[dict[str, object]],
    env: dict[str, str],
    *,
    tablestore: str | None = None,
) -> dict[str, object]:
    """Unzip the package and run `checks` in one fresh replica interpreter; its report."""
    unpacked = tmp_path / f"code-{package.function}"
    unpacked.mkdir()
    with zipfile.ZipFile(package.archive) as archive:
        archive.extractall(unpacked)
    config = {
        "package": str(unpacked),
        "repo": str(build.ROOT),
        "tablestore": tablestore,
        "checks": checks,
    }
    result = subprocess.run(  # noqa: S603 - the replica's interpreter, our driver
        [str(replica), "-I", str(REPLICA_DRIVER), json.dumps(config)],
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
    report: dict[str, object] = json.loads(lines[-1][len(REPLICA_REPORT) :])
    origins = report["origins"]
    assert isinstance(origins, dict)
    shadowed = sorted(
        name
        for name, origin in origins.items()
        if origin == "runtime" and any(unpacked.glob(f"{name}*"))
    )
    assert shadowed == [], "the package ships these, yet the runtime's copies were imported"
    assert report["path_order"][0] == "package"  # type: ignore[index]
    return report


def answers_of(report: dict[str, object]) -> list[dict[str, object]]:
    answers = report["answers"]
    assert isinstance(answers, list)
    return answers


@pytest.fixture(scope="module")
def key_server() -> object:
    """Our callback key on 127.0.0.1, the callbacks signed with it."""
    private_key = rsa_key(2048)
    with key_host({KEY_PATH: public_pem(private_key)}) as host:
        yield SimpleNamespace(url=host.url(KEY_PATH)), private_key


def signed_callbacks(key_server: object, count: int) -> list[dict[str, object]]:
    server, private_key = key_server  # type: ignore[misc]
    template = callback_body_template(fixtures.prefix_grant_token())
    return [
        fixtures.signed_callback(
            private_key, server.url, fixtures.callback_body(template, fixtures.callback_values(i))
        ).spec()
        for i in range(count)
    ]


def test_the_sign_package_issues_a_grant_in_the_fc_runtime(
    packages: dict[str, build.Package], replica: Path, tmp_path: Path
) -> None:
    request = fixtures.sign_request_spec(fixtures.user_token())
    checks: list[dict[str, object]] = [
        {"kind": "wsgi", "request": request},
        {"kind": "event", "request": request},
    ]
    report = in_replica(replica, packages["sign"], tmp_path, checks, fixtures.sign_env())
    for answer in answers_of(report):
        assert answer["status"] == 200, answer["body"]
        assert json.loads(str(answer["body"]))["dir"] == "uploads/alice/avatars/"
    assert "tablestore" not in report["origins"]  # type: ignore[operator]
    # The runtime has cryptography, but HS256 sign-ins need neither it nor PyJWT's JWKS client.
    modules = report["modules"]
    assert isinstance(modules, list)
    assert "cryptography" not in modules
    assert "jwt.jwks_client" not in modules


def test_the_sign_package_starts_a_multipart_upload_in_the_fc_runtime(
    packages: dict[str, build.Package], replica: Path, tmp_path: Path
) -> None:
    """POST /multipart through both adapters: the runtime's oss2 calls InitiateMultipartUpload on
    the emulator, the session goes to the ledger, and the answer names the upload."""
    stack = Stack(stack_settings(tmp_path / "stack"))
    stack.start()
    try:
        body = json.dumps({"filename": "film.mp4", "size": 300_000, "type": "video/mp4"})
        request = {
            **fixtures.sign_request_spec(fixtures.user_token()),
            "method": "POST",
            "path": "/multipart",
            "query": "",
            "content_type": "application/json",
            "body_b64": base64.b64encode(body.encode()).decode(),
        }
        names = ("OSS_BUCKET", "OSS_REGION", "OSS_ENDPOINT", "OSS_ACCESS_KEY_ID")
        env = fixtures.sign_env(
            **{name: stack.values[name] for name in names},
            OSS_ACCESS_KEY_SECRET=stack.values["OSS_ACCESS_KEY_SECRET"],
            SQLITE_PATH=str(tmp_path / "ledger.sqlite3"),
        )
        checks: list[dict[str, object]] = [
            {"kind": "wsgi", "request": request},
            {"kind": "event", "request": request},
        ]
        report = in_replica(replica, packages["sign"], tmp_path, checks, env)
        stats = http_session().get(f"{stack.url('oss')}/.well-known/oss-emulator/stats", timeout=10)
        opened = stats.json().get("InitiateMultipartUpload")
    finally:
        stack.stop()
    sessions = [json.loads(str(answer["body"])) for answer in answers_of(report)]
    assert [answer["status"] for answer in answers_of(report)] == [200, 200], sessions
    assert {(s["partSize"], s["partCount"]) for s in sessions} == {(8 * 1024 * 1024, 1)}
    assert all(s["key"].startswith("uploads/") and s["key"].endswith(".mp4") for s in sessions)
    assert len({s["uploadId"] for s in sessions}) == 2
    assert opened == 2
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:
        modes = db.execute("SELECT mode, part_size FROM grants").fetchall()
    assert modes == [("multipart", 8 * 1024 * 1024)] * 2
    assert report["origins"]["oss2"] == "runtime"  # type: ignore[index]


def test_the_callback_package_records_into_sqlite_in_the_fc_runtime(
    packages: dict[str, build.Package], replica: Path, tmp_path: Path, key_server: object
) -> None:
    server, _ = key_server  # type: ignore[misc]
    database = tmp_path / "records.sqlite3"
    first, second = signed_callbacks(key_server, 2)
    checks: list[dict[str, object]] = [
        {"kind": "wsgi", "request": first},
        {"kind": "event", "request": second},
    ]
    env = fixtures.callback_env(server.url, str(database))
    report = in_replica(replica, packages["callback"], tmp_path, checks, env)
    assert [a["status"] for a in answers_of(report)] == [200, 200], answers_of(report)
    with sqlite3.connect(database) as db:
        keys = sorted(row[0] for row in db.execute("SELECT key FROM records"))
    assert keys == [fixtures.callback_values(i)["object"] for i in range(2)]
    assert report["origins"]["cryptography"] == "package"  # type: ignore[index]
    assert "jwt.jwks_client" not in report["modules"]  # type: ignore[operator]


def test_the_callback_package_and_bootstrap_run_on_the_runtimes_tablestore_sdk(
    packages: dict[str, build.Package], replica: Path, tmp_path: Path, key_server: object
) -> None:
    """Tablestore 5.4.1, as FC's python3.10 runtime ships it: every call our code makes is
    encoded by that SDK, then answered by the in-memory table (tests/support/ots.py)."""
    server, _ = key_server  # type: ignore[misc]
    first, second = signed_callbacks(key_server, 2)
    columns = {"primary_key": [["pk", "STRING"], ["bucket", "STRING"], ["key", "STRING"]]}
    from shared.records.tablestore_rows import DEFINED_COLUMNS

    columns["defined_columns"] = [list(c) for c in DEFINED_COLUMNS]
    checks: list[dict[str, object]] = [
        {"kind": "wsgi", "request": first},
        {"kind": "event", "request": second},
        {"kind": "wsgi", "request": first},  # OSS never retries, but a duplicate stays one row
        {"kind": "bootstrap", **columns},
    ]
    env = {**fixtures.callback_env(server.url, "/nonexistent/unused.sqlite3"), **TABLESTORE_ENV}
    report = in_replica(
        replica, packages["callback"], tmp_path, checks, env, tablestore="oss_uploads"
    )
    assert report["tablestore_version"] == "5.4.1"
    assert report["origins"]["tablestore"] == "runtime"  # type: ignore[index]
    *callbacks, bootstrap = answers_of(report)
    assert [a["status"] for a in callbacks] == [200, 200, 200], callbacks
    rows = report["rows"]
    assert isinstance(rows, dict)
    assert sorted(key.split("/", 2)[2] for key in rows) == [
        fixtures.callback_values(i)["object"] for i in range(2)
    ]
    clients = report["clients"]  # the callback's (built once), then the bootstrap's
    assert isinstance(clients, list)
    assert {"retry_policy", "socket_timeout", "sts_token"} <= set(clients[0]["kwargs"])
    # 5.4.1 has no include_base_data: the index is created first, then both rows rewritten.
    assert (bootstrap["first"], bootstrap["again"]) == (0, 0), bootstrap["out"]
    calls = bootstrap["calls"]
    assert isinstance(calls, list)
    created = calls.index("CreateIndex oss_uploads_by_owner []")
    assert calls[created + 1 :].count("UpdateRow") == 2
    assert "set created_at_rev on 2 rows" in str(bootstrap["out"])
    assert "already exist" in str(bootstrap["out"])


def ended_grant(owner: str, prefix: str) -> dict[str, object]:
    """A prefix grant that was issued ten minutes ago and has ended (past its callback grace and
    the sweeper's settle time), written as the sign function would have written it."""
    now = int(time.time())
    return {
        "owner": owner,
        "grant_id": "01HZREPLICAGRANT00000000000",
        "mode": "prefix",
        "target": prefix,
        "bucket": "dev-bucket",
        "max_bytes": 1024,
        "expires_at": now - 300,
        "created_at": (now - 600) * 1000,
    }


def test_the_reconcile_package_repairs_through_oss2_and_tablestore_of_the_runtime(
    packages: dict[str, build.Package], replica: Path, tmp_path: Path
) -> None:
    stack = Stack(
        stack_settings(
            tmp_path / "stack",
            # Nobody answers: OSS keeps each upload without a record, as when a callback fails.
            CALLBACK_URL=unanswered_callback_url(),
        )
    )
    stack.start()
    try:
        http = http_session()
        grant = sign_in_and_grant(http, stack.url("app"), "carol", path="docs/")
        keys = [grant["dir"] + name for name in ("a.txt", "b.txt")]
        for key in keys:
            parts: list[tuple[str, object]] = [("key", (None, key))]
            parts += [(name, (None, value)) for name, value in grant["fields"].items()]
            parts.append(("file", ("f.txt", b"hello", "text/plain")))
            assert http.post(grant["host"], files=parts, timeout=10).status_code == 203
        names = ("OSS_BUCKET", "OSS_REGION", "OSS_ENDPOINT")
        env = {
            **{name: stack.values[name] for name in names},
            **TABLESTORE_ENV,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "dev-access-key-id",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "dev-access-key-secret",
        }
        del env["ALIBABA_CLOUD_SECURITY_TOKEN"]
        report = in_replica(
            replica,
            packages["reconcile"],
            tmp_path,
            [{"kind": "reconcile", "grants": [ended_grant("carol", grant["dir"])]}],
            env,
            tablestore="oss_uploads",
        )
    finally:
        stack.stop()
    (answer,) = answers_of(report)
    timer, audit = answer["timer"], answer["audit"]
    assert isinstance(timer, dict)
    assert isinstance(audit, dict)
    assert (timer["mode"], timer["recorded"], timer["failed"]) == ("sweep", 2, 0), timer
    assert (audit["recorded"], audit["failed"]) == (0, 0), audit
    rows = report["rows"]
    assert isinstance(rows, dict)
    recorded = {k.split("/", 2)[2]: v for k, v in rows.items() if k.split("/", 2)[2] in keys}
    assert sorted(recorded) == sorted(keys)
    assert all(row["reconciled"] is True and row["owner"] == "carol" for row in recorded.values())
    assert report["origins"]["oss2"] == "runtime"  # type: ignore[index]
    assert report["origins"]["tablestore"] == "runtime"  # type: ignore[index]
