"""DESIGN.md "Contracts", statement by statement, checked the way an outside test would check them.

Commands and the local stack run as processes (`make -n`, `make dev`, a fresh interpreter that
imports the handlers) over loopback sockets. The functions are driven through their WSGI entry
points with settings from dicts; OSS's callbacks are signed by tests/support's CallbackBuilder
and its key is served by a loopback key host listed in CALLBACK_TRUSTED_KEY_URLS. Each test names
the contract line it proves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import jwt
import pytest
import requests

from local.oss_emulator.crc64 import crc64
from shared.callback import app as callback_app
from shared.callback.settings import CallbackSettings
from shared.http.fc2 import wsgi_adapter
from shared.keys import new_object_id
from shared.records.sqlite import SqliteStore
from shared.sign import app as sign_app
from shared.sign.settings import SignSettings
from tests import samples
from tests.support.callbacks import (
    CallbackBuilder,
    Clock,
    public_pem,
    render_form_body,
    rsa_key,
    settings_env,
    wsgi_environ,
)
from tests.support.data import HOSTILE
from tests.support.devstack import MAKE_DEV, SHELL_ROLE, DevProcess, StackClient, free_ports
from tests.support.emulator import code_of, replaced
from tests.support.fc import Answer, call, environ
from tests.support.keyhost import KeyHost, key_host
from tests.support.multipart import Client
from tests.support.sign import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    GRANT_SECRET,
    JWT_SECRET,
    SIGN_ENV,
    decode_callback,
    decode_policy,
    grant_token,
    overridden,
    sign_env,
)
from tests.support.sign import token as sign_in_token

ROOT = Path(__file__).resolve().parents[1]
DEV_JWT_SECRET = "dev-jwt-secret-not-for-production-0001"
DEV_GRANT_SECRET = "dev-grant-secret-not-for-production-0001"
OTHER_GRANT_SECRET = "contract-other-grant-secret-0123456789-x"
BUCKET = "contract-bucket"
MAX_BYTES = 1024 * 1024
EMULATOR_KEY = "/.well-known/oss-emulator/callback_pub_key.pem"  # the emulator's public key
ULID = re.compile(r"[0-9a-hjkmnp-tv-z]{26}")
BODY_FIELDS = [  # DESIGN.md "Callback body", in its order
    *("bucket", "object", "etag", "size", "mimeType"),
    *("imageInfo.height", "imageInfo.width", "imageInfo.format"),
    *("crc64", "contentMd5", "clientIp", "reqId", "operation"),
]


# --- plumbing: loopback key server, WSGI calls, OSS-style callbacks -------------------------------


OSS_KEY = rsa_key(2048)  # stands in for OSS's private key: it signs the callbacks


@pytest.fixture(scope="module")
def key_server() -> Iterator[KeyHost]:
    """OSS's key host on 127.0.0.1: the public key and a sign-in key set."""
    pem = public_pem(OSS_KEY)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(OSS_KEY.public_key(), as_dict=True)
    jwks = json.dumps({"keys": [{**jwk, "kid": "contract-1", "use": "sig"}]}).encode()
    with key_host({"/key.pem": pem, "/jwks.json": jwks}) as host:
        yield host


WSGI = Callable[..., Any]


# --- the two functions, built as functions/*/index.py build them ---------------------------------


def sign_values(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    """tests/support/sign.py's settings, with this file's bucket, size limit and ledger."""
    ours: dict[str, str | None] = {"OSS_BUCKET": BUCKET, "UPLOAD_MAX_BYTES": str(MAX_BYTES)}
    ours["SQLITE_PATH"] = str(tmp_path / "records.sqlite3")
    return sign_env(**ours | overrides)


def sign_handler(
    values: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    now: Callable[[], float] | None = None,
) -> WSGI:
    core = sign_app.create_app(SignSettings.from_env(values), environ=environ or {}, now=now)
    return wsgi_adapter(core, function="sign", max_body=sign_app.MAX_BODY)


def login(user: str = "alice", *, secret: str = JWT_SECRET, now: float | None = None) -> str:
    """A sign-in token issued now (the functions here read the real clock unless told)."""
    return sign_in_token(user, secret=secret, now=time.time() if now is None else now)


def get_grant(handler: WSGI, token: str | None = None, **params: str) -> dict[str, Any]:
    answer = ask_grant(handler, token, **params)
    assert answer.status == 200, answer.body
    data: dict[str, Any] = answer.json()
    return data


def ask_grant(handler: WSGI, token: str | None = None, **params: str) -> Answer:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
    return call(handler, environ("GET", "/signature", query, headers=headers))


BUILD = CallbackBuilder(OSS_KEY)  # signs the string to verify as OSS does


def oss_body(grant: Mapping[str, Any], **values: str) -> bytes:
    """The grant's own callback body, rendered by OSS for a genuine upload's values."""
    key = grant.get("key") or grant["dir"] + "photo.png"
    facts = BUILD.values(None, bucket=BUCKET, object=key) | values
    return render_form_body(decode_callback(grant["callback"])["callbackBody"], facts)


@dataclass
class Apps:
    """The two functions as FC 2.0 serves them; OSS calls the callback after a PostObject."""

    sign: WSGI
    callback: WSGI
    key_url: str

    def post(self, body: bytes, *, path: str = "/oss-callback", **options: Any) -> Answer:
        """OSS signs the callback and POSTs it; `options` go to CallbackBuilder.request."""
        options.setdefault("key_url", self.key_url)
        request = BUILD.request(body=body, path=path.encode(), **options)
        return call(self.callback, wsgi_environ(request))

    def upload(self, grant: Mapping[str, Any], **values: str) -> Answer:
        return self.post(oss_body(grant, **values))

    def uploads(self, token: str | None, query: str = "") -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = call(self.sign, environ("GET", "/uploads", query, headers=headers))
        assert answer.status == 200, answer.body
        data: dict[str, Any] = answer.json()
        return data


def make_apps(
    tmp_path: Path, key_server: KeyHost, clock: Callable[[], float] | None = None, **callback: str
) -> Apps:
    """tests/support/callbacks.py's callback settings (UPLOAD_VERIFY=off: these callbacks describe
    objects no bucket holds; Verification: test_callback_verify.py, e2e/test_e2e_verify.py)."""
    trusted = key_server.url()
    values = settings_env(
        tmp_path, OSS_BUCKET=BUCKET, GRANT_SECRET=GRANT_SECRET, CALLBACK_TRUSTED_KEY_URLS=trusted
    )
    settings = CallbackSettings.from_env(overridden(values, callback))
    core = callback_app.create_app(settings, environ={}, now=clock)
    handler = wsgi_adapter(core, function="callback", max_body=callback_app.MAX_BODY)
    return Apps(sign_handler(sign_values(tmp_path), now=clock), handler, key_server.url())


@pytest.fixture
def apps(tmp_path: Path, key_server: KeyHost) -> Apps:
    return make_apps(tmp_path, key_server)


# === Commands ======================================================================================


def test_readme_shows_make_dev_and_make_test_first() -> None:
    """Commands: the README shows these two commands first."""
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```[a-z]*\n(.*?)```", readme, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert [c for c in commands if c][:2] == ["make dev", "make test"]
    first_make = re.search(r"\bmake [a-z]+", readme)
    assert first_make is not None
    assert first_make.group(0) == "make dev"


def test_ci_run_calls_make_test(tmp_path: Path) -> None:
    """Commands: `.ci/run` calls `make test` (after lint and typecheck), and fails when it fails."""
    log = tmp_path / "calls"
    for tool in ("make", "npm"):  # stand-ins that record their arguments; `make test` fails
        (tmp_path / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n[ "$*" != test ]\n')
        (tmp_path / tool).chmod(0o755)
    done = subprocess.run(  # noqa: S603
        [str(ROOT / ".ci" / "run")],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    calls = log.read_text().splitlines()
    assert calls == ["make lint typecheck", "npm ci --no-audit --no-fund", "make test"], done.stderr
    assert done.returncode != 0  # `set -e`: a failing `make test` fails the run


@pytest.mark.parametrize(("target", "runs"), [("dev", "-m local.dev"), ("test", "-m pytest")])
def test_make_dev_and_test_build_the_virtualenv_themselves(
    tmp_path: Path, target: str, runs: str
) -> None:
    """Commands: on a fresh machine they create `.venv/` and install pinned dependencies."""
    venv = tmp_path / "fresh" / ".venv"
    plan = subprocess.run(  # noqa: S603
        ["make", "-n", "-C", str(ROOT), target, f"VENV={venv}"],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    steps = plan.splitlines()
    create = next(i for i, s in enumerate(steps) if f"-m venv {venv}" in s)
    install = next(
        i for i, s in enumerate(steps) if "pip install" in s and "-r requirements-dev.txt" in s
    )
    run = next(i for i, s in enumerate(steps) if f"{venv}/bin/python {runs}" in s)
    assert create < install < run


def test_every_dependency_is_pinned() -> None:
    """Commands: pinned dependencies (every requirement names one exact version)."""
    for name in ("requirements.txt", "requirements-tablestore.txt", "requirements-dev.txt"):
        for raw in (ROOT / name).read_text().splitlines():
            line = raw.split("#")[0].strip()
            if line and not line.startswith("-r "):
                assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][A-Za-z0-9.+\-]*", line), line


HANDLER_SCRIPT = """
import importlib, json, sys, time
import jwt
from tests.support.fc import call, environ, event

which = sys.argv[1]  # FC's own way, `index` from the code directory: test_packages.py
module = importlib.import_module(f"functions.{which}.index")
out = {"attrs": [n for n in ("handler", "event_handler") if callable(getattr(module, n, None))]}


def wsgi(method, path, query="", headers=None):
    answer = call(module.handler, environ(method, path, query, headers=headers))
    return answer.status, answer.json()


def fc3(method, path, query="", headers=None, body=""):
    answer = module.event_handler(event(method, path, raw_query=query, headers=headers, body=body), None)
    return answer["statusCode"], json.loads(answer["body"])


def brief(status, data):
    return [status, data.get("code") or data.get("dir")]


if which == "sign":
    now = int(time.time())
    claims = {"sub": "carol", "iat": now, "exp": now + 60}
    auth = {"Authorization": "Bearer " + jwt.encode(claims, sys.argv[2], "HS256")}
    out["anonymous"] = brief(*wsgi("GET", "/signature", "path=docs/"))
    status, grant = wsgi("GET", "/signature", "path=docs/", auth)
    out["signed"] = [status, grant.get("dir"), grant.get("host"), grant.get("version")]
    out["event"] = brief(*fc3("GET", "/signature", "path=docs/", auth))
else:
    out["get"] = brief(*wsgi("GET", "/any/where"))
    out["post"] = brief(*wsgi("POST", "/any/where"))
    out["event"] = brief(*fc3("POST", "/x", body="a=b"))
print(json.dumps(out))
"""


def fresh_python(code: str, env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter with the repository root on PYTHONPATH and only `env` as settings."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


SIGN_PROCESS_ENV = sign_env(OSS_BUCKET=BUCKET, OSS_REGION="cn-shanghai")  # SQLITE_PATH: per test


DEFAULT_ENDPOINT = f"https://{BUCKET}.oss-cn-shanghai.aliyuncs.com"  # OSS_ENDPOINT unset
HANDLERS = {
    "sign": (
        {**SIGN_PROCESS_ENV, "CALLBACK_TRUSTED_KEY_URLS": "not a url"},  # not the sign's setting
        {
            "anonymous": [401, "Unauthorized"],
            "signed": [200, "uploads/carol/docs/", DEFAULT_ENDPOINT, "v4"],
            "event": [200, "uploads/carol/docs/"],
        },
    ),
    "callback": (
        {
            "OSS_BUCKET": BUCKET,
            "GRANT_SECRET": GRANT_SECRET,
            "OSS_REGION": "cn-shanghai",  # the callback deletes refused uploads: it needs OSS_*
            # malformed settings the callback never uses must not stop it
            "AUTH_MODE": "sometimes",
            "AUTH_JWT_SECRET": "short",
            "CALLBACK_URL": "not a url",
            "UPLOAD_MAX_BYTES": "lots",
        },
        {
            "get": [405, "MethodNotAllowed"],
            "post": [401, "SignatureInvalid"],
            "event": [401, "SignatureInvalid"],
        },
    ),
}


@pytest.mark.parametrize("which", ["sign", "callback"])
def test_handlers_import_with_settings_from_the_process_environment(
    tmp_path: Path, which: str
) -> None:
    """Commands/Handlers: repository root on PYTHONPATH, settings from the process environment.
    Settings: each function validates only the settings it uses (the callback needs no AUTH_*)."""
    env, answers = HANDLERS[which]
    env = {**env, "SQLITE_PATH": str(tmp_path / "r.sqlite3")}
    done = fresh_python(HANDLER_SCRIPT, env, which, JWT_SECRET)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out == {"attrs": ["handler", "event_handler"], **answers}


START_UP_FAILURES = [  # one per kind; every variable's rules: test_settings.py
    ("sign", {"CALLBACK_URL": "https://cb.example.com/hook?x=1"}, "CALLBACK_URL"),
    ("callback", {"UPLOAD_ALLOWED_TYPES": "png"}, "UPLOAD_ALLOWED_TYPES"),
    ("callback", {"GRANT_SECRET": None}, "GRANT_SECRET"),
    ("callback", {"RECORDS_BACKEND": "tablestore"}, "TABLESTORE_ENDPOINT"),  # then required
]


@pytest.mark.parametrize(("which", "overrides", "name"), START_UP_FAILURES)
def test_a_missing_or_malformed_setting_fails_at_start_up_naming_it(
    tmp_path: Path, which: str, overrides: dict[str, str | None], name: str
) -> None:
    """Principles/Settings: missing or malformed fails at start-up with a message naming it."""
    env = {**HANDLERS[which][0], "SQLITE_PATH": str(tmp_path / "r.sqlite3")}  # these start
    done = fresh_python(f"import functions.{which}.index", overridden(env, overrides))
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("shared.errors.ConfigError: "), done.stderr
    assert name in last, done.stderr


# === Settings ======================================================================================

DESIGN_SETTINGS = [  # DESIGN.md "Settings" and "Local stack", by family
    *("OSS_BUCKET", "OSS_REGION", "OSS_ENDPOINT", "OSS_SIGNATURE_VERSION"),
    *("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "CALLBACK_URL", "CALLBACK_TRUSTED_KEY_URLS"),
    *("UPLOAD_KEY_PREFIX", "UPLOAD_MAX_BYTES", "UPLOAD_ALLOWED_TYPES", "POLICY_TTL_SECONDS"),
    *("GRANT_SECRET", "AUTH_MODE", "AUTH_JWT_SECRET", "AUTH_JWKS_URL", "CORS_ALLOWED_ORIGINS"),
    *("RECORDS_BACKEND", "TABLESTORE_ENDPOINT", "TABLESTORE_INSTANCE", "TABLESTORE_TABLE"),
    *("SQLITE_PATH", "DEV_HOST", "DEV_DATA_DIR"),
    *("DEV_APP_PORT", "DEV_CALLBACK_PORT", "DEV_OSS_PORT"),
]


def test_every_setting_is_documented_in_the_readme() -> None:
    """Settings: every name in DESIGN.md, and every one the code adds, is in the README."""
    readme = (ROOT / "README.md").read_text()
    source = (ROOT / "shared" / "settings.py").read_text() + (ROOT / "local" / "dev.py").read_text()
    read_by_code = set(re.findall(r'"((?:[A-Z][A-Z0-9]*_)+[A-Z0-9]+)"', source))
    # …and every name a function's own settings read (`env.integer(\n "MULTIPART_PART_BYTES"…`).
    loaders = "".join(path.read_text() for path in sorted((ROOT / "shared").rglob("*.py")))
    read_by_code |= set(re.findall(r'env\.\w+\(\s*"((?:[A-Z][A-Z0-9]*_)+[A-Z0-9]+)"', loaders))
    assert "MULTIPART_PART_BYTES" in read_by_code
    missing = sorted(n for n in set(DESIGN_SETTINGS) | read_by_code if f"`{n}`" not in readme)
    assert missing == []


def test_upload_key_prefix_empty_only_with_auth_mode_none(tmp_path: Path) -> None:
    """Settings: UPLOAD_KEY_PREFIX set-but-empty only with AUTH_MODE=none; then `path` non-empty."""
    # refused at start-up without AUTH_MODE=none: test_settings.py
    handler = sign_handler(sign_values(tmp_path, UPLOAD_KEY_PREFIX="", AUTH_MODE="none"))
    ask_grant(handler, path="").error(400, "BadRequest")  # no grant covers the whole bucket
    ask_grant(handler).error(400, "BadRequest")
    ask_grant(handler, path="/").error(400, "BadRequest")
    grant = get_grant(handler, path="avatars/")
    assert grant["dir"] == "avatars/"
    assert ["starts-with", "$key", "avatars/"] in decode_policy(grant["policy"])["conditions"]
    # unset (not empty) means the default template
    default = get_grant(sign_handler(sign_values(tmp_path, AUTH_MODE="none")), path="")
    assert default["dir"] == "uploads/anonymous/"


def test_grant_secret_is_a_list_first_signs_all_verify(tmp_path: Path, key_server: KeyHost) -> None:
    """Settings: GRANT_SECRET comma-separated: the first signs, all verify."""
    rotated = f"{OTHER_GRANT_SECRET},{GRANT_SECRET}"
    signer = sign_handler(sign_values(tmp_path, GRANT_SECRET=rotated))
    grant = get_grant(signer, login(), filename="a.png", size="10")
    token = grant_token(grant)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    jwt.decode(token, OTHER_GRANT_SECRET, ["HS256"], options={"verify_aud": False})  # the first
    for secrets, status in [
        (f"{GRANT_SECRET},{OTHER_GRANT_SECRET}", 200),  # the signer's key anywhere in the list
        (OTHER_GRANT_SECRET, 200),
        (GRANT_SECRET, 403),  # the signer's first key is not among them
    ]:
        oss = make_apps(tmp_path, key_server, GRANT_SECRET=secrets)  # its own sign unused
        answer = oss.upload(grant, size="10")
        assert answer.status == status, answer.body
    oss.upload(grant, size="10").error(403, "GrantInvalid")


# === Sign function ================================================================================


def v4_signature(secret: str, date: str, region: str, policy_b64: str) -> str:
    """oss-protocol.md §3.2, written out independently of shared.sign.policy."""
    key = ("aliyun_v4" + secret).encode()
    for part in (date, region, "oss", "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()


def test_exact_key_grant_v4_every_field(tmp_path: Path) -> None:
    """Sign function: host, dir, key, policy, expire (int), callback, fields in order, version."""
    clock = Clock()
    handler = sign_handler(sign_values(tmp_path), now=clock)
    exact = {"path": "avatars/", "filename": "Me.PNG", "size": "2048", "type": "image/png"}
    grant = get_grant(handler, login(now=clock.now), **exact)
    # every answer field and form field, in order: test_policy_content.py (shape and field order)
    assert set(grant) == {"host", "dir", "key", "policy", "expire", "callback", "fields", "version"}
    assert grant["host"] == f"https://{BUCKET}.oss-cn-hangzhou.aliyuncs.com"
    assert grant["dir"] == "uploads/alice/avatars/"
    assert re.fullmatch(re.escape(grant["dir"]) + ULID.pattern + r"\.png", grant["key"])
    # time-ordered: the id starts with the grant's millisecond (ULID layout: test_keys.py)
    stamp = new_object_id(int(clock.now * 1000), bytes(10))[:10]
    assert grant["key"][len(grant["dir"]) :].startswith(stamp)
    assert type(grant["expire"]) is int
    assert grant["expire"] == int(clock.now) + 300
    assert grant["version"] == "v4"
    fields = grant["fields"]
    assert fields["Content-Type"] == "image/png"
    assert fields["x-oss-forbid-overwrite"] == "true"
    date = time.strftime("%Y%m%d", time.gmtime(clock.now))
    assert fields["x-oss-credential"] == f"{ACCESS_KEY_ID}/{date}/cn-hangzhou/oss/aliyun_v4_request"
    expected = v4_signature(ACCESS_KEY_SECRET, date, "cn-hangzhou", grant["policy"])
    assert fields["x-oss-signature"] == expected
    policy = decode_policy(grant["policy"])
    assert policy["expiration"] == time.strftime(
        "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(grant["expire"])
    )
    conditions = policy["conditions"]
    assert {"bucket": BUCKET} in conditions
    assert ["content-length-range", 1, 2048] in conditions
    assert ["eq", "$key", grant["key"]] in conditions
    assert ["in", "$content-type", ["image/png"]] in conditions
    # every other field pinned (callback, forbid-overwrite, x-oss-*): test_policy_content.py


def test_prefix_grant_v1_for_legacy_clients(tmp_path: Path) -> None:
    """Sign function: prefix mode (starts-with, [1, UPLOAD_MAX_BYTES], no type); V1 accessid/signature."""
    handler = sign_handler(sign_values(tmp_path, OSS_SIGNATURE_VERSION="v1"))
    grant = get_grant(handler, login(), path="docs/2024")
    assert "key" not in grant
    assert grant["dir"] == "uploads/alice/docs/2024/"
    assert grant["version"] == "v1"
    assert grant["accessid"] == ACCESS_KEY_ID
    digest = hmac.new(ACCESS_KEY_SECRET.encode(), grant["policy"].encode(), hashlib.sha1).digest()
    assert grant["signature"] == base64.b64encode(digest).decode()
    conditions = decode_policy(grant["policy"])["conditions"]
    assert ["starts-with", "$key", grant["dir"]] in conditions
    assert ["content-length-range", 1, MAX_BYTES] in conditions
    assert not any("content-type" in json.dumps(c).lower() for c in conditions)


PATHS = [
    ("avatars/", "uploads/alice/avatars/"),
    ("avatars", "uploads/alice/avatars/"),
    ("", "uploads/alice/"),
    ("a/b-c/d_e/f.g", "uploads/alice/a/b-c/d_e/f.g/"),
    ("x" * 256, "uploads/alice/" + "x" * 256 + "/"),
    ("x" * 255 + "/", "uploads/alice/" + "x" * 255 + "/"),
]


@pytest.mark.parametrize(("path", "folder"), PATHS)
def test_path_rules_accept(apps: Apps, path: str, folder: str) -> None:
    """Sign function `path`: segments of letters, digits, -, _, .; one trailing /; empty = root."""
    assert get_grant(apps.sign, login(), path=path)["dir"] == folder


@pytest.mark.parametrize("path", HOSTILE["paths"])
def test_path_rules_refuse(apps: Apps, path: str) -> None:
    """Sign function `path`: leading /, //, \\, %, control characters, . or .., > 256 bytes → 400."""
    auth = {"Authorization": f"Bearer {login()}"}
    for query in (f"path={path}", f"path={path}&filename=a.png&size=1"):
        answer = call(apps.sign, environ("GET", "/signature", query, headers=auth))
        answer.error(400, "BadRequest")


@pytest.mark.parametrize(
    ("size", "status", "code"),
    [
        (None, 400, "BadRequest"),  # every other malformed size: test_sign_app.py (S5)
        ("0", 400, "BadRequest"),
        (str(MAX_BYTES + 1), 413, "TooLarge"),
    ],
)
def test_exact_key_size_rules(apps: Apps, size: str | None, status: int, code: str) -> None:
    """Sign function `size`: required with filename, integer ≥ 1 and ≤ UPLOAD_MAX_BYTES, else 400/413."""
    params = {"filename": "a.png"} if size is None else {"filename": "a.png", "size": size}
    ask_grant(apps.sign, login(), **params).error(status, code)


@pytest.mark.parametrize("size", ["1", "00042", str(MAX_BYTES)])
def test_exact_key_size_bounds_are_the_policy_range(apps: Apps, size: str) -> None:
    """Sign function: the policy's content-length-range is [1, size], the grant's ceiling too."""
    grant = get_grant(apps.sign, login(), filename="a.bin", size=size)
    ranges = [
        c for c in decode_policy(grant["policy"])["conditions"] if "content-length-range" in c
    ]
    assert ranges == [["content-length-range", 1, int(size)]]
    claims = jwt.decode(grant_token(grant), GRANT_SECRET, ["HS256"], options={"verify_aud": False})
    assert claims["max"] == int(size)


DEFAULT_TYPES = [  # DESIGN.md's UPLOAD_ALLOWED_TYPES default: images, audio and video, documents
    *[("png", "image/png"), ("jpg", "image/jpeg"), ("jpeg", "image/jpeg"), ("gif", "image/gif")],
    *[("webp", "image/webp"), ("avif", "image/avif"), ("heic", "image/heic")],
    *[("mp3", "audio/mpeg"), ("m4a", "audio/mp4"), ("wav", "audio/wav"), ("mp4", "video/mp4")],
    *[("mov", "video/quicktime"), ("webm", "video/webm"), ("pdf", "application/pdf")],
    *[("txt", "text/plain"), ("csv", "text/csv"), ("json", "application/json")],
    *[("zip", "application/zip"), ("bin", "application/octet-stream")],
]
ACTIVE = ["html", "htm", "xhtml", "svg", "xml", "js", "mjs", "php"]


@pytest.mark.parametrize(("ext", "mime"), DEFAULT_TYPES)
def test_default_allow_list(apps: Apps, ext: str, mime: str) -> None:
    """Sign function: UPLOAD_ALLOWED_TYPES' default; the type is pinned and sent as Content-Type."""
    grant = get_grant(apps.sign, login(), filename=f"file.{ext}", size="10", type=mime)
    assert grant["key"].endswith(f".{ext}")
    assert grant["fields"]["Content-Type"] == mime
    assert ["in", "$content-type", [mime]] in decode_policy(grant["policy"])["conditions"]


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        *((f"file.{ext}", None) for ext in ("exe", "tar", "docx", "gz", "md")),
        ("a.png", "image/jpeg"),
        ("a.png", "text/html"),
    ],
)
def test_types_off_the_allow_list_or_not_for_the_extension_are_refused(
    apps: Apps, name: str, mime: str | None
) -> None:
    """Sign function: the extension is checked against the allow-list; `type` must be allowed
    for the extension."""
    params = {"filename": name, "size": "10", **({"type": mime} if mime else {})}
    ask_grant(apps.sign, login(), **params).error(400, "BadRequest")


ACTIVE_LISTED = (  # as an operator might list them, with their real types
    "png=image/png,html=text/html,svg=image/svg+xml,xml=application/xml,js=text/javascript,"
    "mjs=text/javascript,php=application/x-php,htm=text/html,xhtml=application/xhtml+xml"
)


@pytest.mark.parametrize("ext", ACTIVE)
def test_active_content_is_refused_whatever_the_setting_says(tmp_path: Path, ext: str) -> None:
    """Sign function: html/htm/xhtml, svg, xml, js/mjs, php… → 400 even when the operator lists
    them (dropped from the setting: test_settings.py::test_active_content_is_dropped_from_the_allow_list)."""
    handler = sign_handler(sign_values(tmp_path, UPLOAD_ALLOWED_TYPES=ACTIVE_LISTED))
    ask_grant(handler, login(), filename=f"page.{ext}", size="10").error(400, "BadRequest")
    get_grant(handler, login(), filename="a.png", size="10")  # the rest of the list still works


def test_sign_auth_and_error_shapes(tmp_path: Path) -> None:
    """Sign function Auth: Bearer HS256 JWT, user = sub; missing or bad token: 401; AUTH_MODE=none
    is `anonymous`. Errors: {"Status": "Error", "code", "message"} for 400/401/403/413/503."""
    handler = sign_handler(sign_values(tmp_path))
    assert get_grant(handler, login("bob"), path="p")["dir"] == "uploads/bob/p/"
    ask_grant(handler, None, path="p").error(401, "Unauthorized")
    other_secret = login(secret="another-secret-0123456789-abcdefghij")
    ask_grant(handler, other_secret, path="p").error(401, "Unauthorized")
    ask_grant(handler, login(now=time.time() - 7200), path="p").error(401, "Unauthorized")
    bad = call(handler, environ("GET", "/signature", headers={"Authorization": "Basic YTpi"}))
    bad.error(401, "Unauthorized")
    anonymous = sign_handler(sign_values(tmp_path, AUTH_MODE="none"))
    assert get_grant(anonymous, None, path="p")["dir"] == "uploads/anonymous/p/"
    preflight = {"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"}
    call(handler, environ("OPTIONS", "/signature", headers=preflight)).error(403, "Forbidden")
    # no credentials at all (no FC context, no ALIBABA_CLOUD_*, no OSS_ACCESS_KEY_*): 503
    roleless = sign_values(tmp_path, OSS_ACCESS_KEY_ID=None, OSS_ACCESS_KEY_SECRET=None)
    ask_grant(sign_handler(roleless), login(), path="p").error(503, "Unavailable")


def fc_context(key_id: str, secret: str, token: str) -> SimpleNamespace:
    """FC's invocation context: the role's temporary credentials."""
    credentials = SimpleNamespace(
        access_key_id=key_id, access_key_secret=secret, security_token=token
    )
    return SimpleNamespace(credentials=credentials, request_id="fc-request-1")


def test_credentials_order_context_then_role_variables_then_static_keys(tmp_path: Path) -> None:
    """Principles: FC context credentials → ALIBABA_CLOUD_* → OSS_ACCESS_KEY_*, read per invocation."""
    role_env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "STS.env-id",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret",
        "ALIBABA_CLOUD_SECURITY_TOKEN": "env-token",
    }
    handler = sign_handler(sign_values(tmp_path), environ=role_env)
    auth = {"Authorization": f"Bearer {login()}"}

    def credential(handler: WSGI, extra: Mapping[str, Any] | None = None) -> tuple[str, Any]:
        grant = call(handler, environ("GET", "/signature", "path=p", headers=auth, **(extra or {})))
        fields = grant.json()["fields"]  # the token's pinning: test_policy_content.py
        return fields["x-oss-credential"].split("/")[0], fields.get("x-oss-security-token")

    context = {"fc.context": fc_context("STS.ctx-id", "ctx-secret", "ctx-token")}
    assert credential(handler, context) == ("STS.ctx-id", "ctx-token")
    empty = {"fc.context": fc_context("", "", "")}
    assert credential(handler, empty) == ("STS.env-id", "env-token")
    assert credential(handler) == ("STS.env-id", "env-token")
    assert credential(sign_handler(sign_values(tmp_path), environ={})) == (ACCESS_KEY_ID, None)


def test_a_frozen_time_time_freezes_grants_and_their_expiry(
    tmp_path: Path, key_server: KeyHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Principles: clocks are read per call, so a test that freezes `time.time` freezes grants."""
    apps = make_apps(tmp_path, key_server)  # no clock injected: the functions' own defaults
    frozen = [1_900_000_000.0]
    monkeypatch.setattr(time, "time", lambda: frozen[0])  # after start-up, as freezegun would
    grant = get_grant(apps.sign, login(now=frozen[0]), filename="a.png", size="10")
    assert grant["expire"] == 1_900_000_000 + 300
    frozen[0] += 300 + 121  # past the policy's expiry and the 120 s grace
    apps.upload(grant, size="10").error(403, "GrantInvalid")


# === Callback function ============================================================================


def test_any_path_the_body_cap_and_the_string_to_verify(apps: Apps) -> None:
    """Callback: any path; bodies over 64 KB → 413 TooLarge (64 KB itself is read); the string
    to verify is the URL-decoded path, `?` + raw query only when non-empty, LF, raw body."""
    apps.post(b"a=" + b"x" * (64 * 1024 - 1)).error(413, "TooLarge")
    apps.post(b"a=" + b"x" * (64 * 1024 - 2)).error(400, "BadRequest")  # authentic, unusable
    body = oss_body(get_grant(apps.sign, login(), path="p"))
    proxied = "/2016-08-15/proxy/svc/fn/hook"
    # '/a b/é' arrives as PATH_INFO latin-1 text; OSS signed the decoded path
    for path in ("/", "/oss-callback", "/a/b/c", proxied, "/a b/é", "/hook"):
        answer = apps.post(body, path=path, query="a=1&b=%2F" if path == "/hook" else "")
        assert answer.status == 200, (path, answer.body)
    # the same body signed without the query (or with a '?' and no query) does not verify
    unsigned_query = apps.post(body, path="/hook", query="a=1", signed=b"/hook\n" + body)
    unsigned_query.error(401, "SignatureInvalid")
    apps.post(body, path="/hook", signed=b"/hook?\n" + body).error(401, "SignatureInvalid")
    apps.post(body, path="/a b/é", signed=b"/a%20b/%C3%A9\n" + body).error(401, "SignatureInvalid")


def test_callback_success_answer(tmp_path: Path, key_server: KeyHost) -> None:
    """Callback: 200 {"Status": "OK", key, size, etag, mimeType, …} + Content-Type + Content-Length."""
    apps = make_apps(tmp_path, key_server)
    grant = get_grant(apps.sign, login(), filename="cat.png", size="5000", type="image/png")
    etag = "0CC175B9C0F1B6A831C399E269772661"
    answer = apps.upload(grant, size="4321", etag=etag)  # a 640x480 PNG (CallbackBuilder.values)
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-length"] == str(len(answer.body))
    data = answer.json()
    assert [data[n] for n in ("Status", "key", "size", "etag", "mimeType", "owner")] == [
        "OK",
        grant["key"],
        4321,
        etag,
        "image/png",
        "alice",
    ]
    assert isinstance(data["createdAt"], int)
    assert "url" not in data
    with_url = make_apps(tmp_path / "u", key_server, DOWNLOAD_BASE_URL="https://cdn.example.com/")
    grant = get_grant(with_url.sign, login(), path="p")
    answer = with_url.upload(grant, object=grant["dir"] + "me@home.png")
    assert answer.json()["url"] == "https://cdn.example.com/uploads/alice/p/me%40home.png"


def test_callback_body_carries_every_variable_and_the_grant(apps: Apps) -> None:
    """Callback body: form-urlencoded; bucket, object, etag, size, mimeType, imageInfo.*, crc64,
    contentMd5, clientIp, reqId, operation and the constant grant token."""
    grant = get_grant(apps.sign, login(), filename="a.jpg", size="99")
    config = decode_callback(grant["callback"])
    assert config["callbackUrl"] == SIGN_ENV["CALLBACK_URL"]
    assert config["callbackBodyType"] == "application/x-www-form-urlencoded"
    pairs = [part.split("=", 1) for part in config["callbackBody"].split("&")]
    variables = {name: value for name, value in pairs if value.startswith("${")}
    assert variables == {name: "${" + name + "}" for name in BODY_FIELDS}
    constants = [(n, v) for n, v in pairs if not v.startswith("${")]
    assert len(constants) == 1
    assert re.fullmatch(r"[A-Za-z0-9._-]+", constants[0][1])  # no encoding needed in form mode
    # OSS renders empty image fields as empty values in form mode: still a 200
    empty = {"imageInfo.height": "", "imageInfo.width": "", "imageInfo.format": ""}
    answer = apps.upload(grant, size="99", mimeType="image/jpeg", clientIp="198.51.100.7", **empty)
    assert answer.status == 200, answer.body
    data = answer.json()
    facts = BUILD.values(clientIp="198.51.100.7")
    assert (data["crc64"], data["contentMd5"], data["clientIp"], data["imageInfo"]) == (
        facts["crc64"],
        facts["contentMd5"],
        "198.51.100.7",
        None,
    )


# === Records ======================================================================================


def test_exact_key_same_object_is_the_same_record_a_different_one_409(
    tmp_path: Path, key_server: KeyHost
) -> None:
    """Records: the same object again (same etag) → the same record, answered 200; a different
    object under an exact-key grant's key → 409 Conflict; never a second record."""
    clock = Clock()
    apps = make_apps(tmp_path, key_server, clock=clock)
    grant = get_grant(apps.sign, login(now=clock.now), filename="a.png", size="10")
    first = apps.upload(grant, size="10", etag="AAAA0000")
    clock.now += 30
    again = apps.upload(grant, size="10", etag="AAAA0000")
    assert (first.status, again.status) == (200, 200)
    assert again.json() == first.json()
    apps.upload(grant, size="10", etag="BBBB1111").error(409, "Conflict")
    items = apps.uploads(login(now=clock.now))["items"]
    assert [(i["key"], i["etag"]) for i in items] == [(grant["key"], "AAAA0000")]


def test_prefix_grant_replaces_while_valid_never_after(tmp_path: Path, key_server: KeyHost) -> None:
    """Records: prefix grant → the newer object replaces the record while the grant is valid;
    never a second record, never a stale overwrite after the grant has expired."""
    clock = Clock(1_800_000_000.0)
    apps = make_apps(tmp_path, key_server, clock=clock)
    grant = get_grant(apps.sign, login(now=clock.now), path="p")
    key = grant["dir"] + "same.png"
    assert apps.upload(grant, object=key, etag="AAAA0000").status == 200
    clock.now += 10
    replaced = apps.upload(grant, object=key, etag="BBBB1111", size="77")
    assert replaced.status == 200
    assert (replaced.json()["etag"], replaced.json()["size"]) == ("BBBB1111", 77)
    clock.now = grant["expire"] + 121
    apps.upload(grant, object=key, etag="CCCC2222").error(403, "GrantInvalid")
    clock.now = 1_800_000_100.0
    items = apps.uploads(login(now=clock.now))["items"]
    assert [(i["key"], i["etag"]) for i in items] == [(key, "BBBB1111")]


def test_uploads_listing_order_paging_and_shape(tmp_path: Path, key_server: KeyHost) -> None:
    """Sign function GET /uploads: the caller's records, createdAt desc then key asc; limit default 50,
    at most 200; opaque URL-safe cursor; next null on the last page; the record fields."""
    clock = Clock(1_800_000_000.0)
    apps = make_apps(tmp_path, key_server, clock=clock)
    token = login(now=clock.now)
    auth = {"Authorization": f"Bearer {token}"}
    grant = get_grant(apps.sign, token, path="many")
    other = get_grant(apps.sign, login("bob", now=clock.now), path="many")
    assert apps.upload(other, object=other["dir"] + "bob.png").status == 200
    for index in range(230):
        if index % 3:  # some uploads share a millisecond: the key breaks the tie
            clock.now += 0.001
        key = grant["dir"] + f"{index:04d}.png"
        assert apps.upload(grant, object=key).status == 200
    first = apps.uploads(token)
    assert len(first["items"]) == 50
    assert set(first["items"][0]) >= {"key", "size", "etag", "mimeType", "owner", "createdAt"}
    assert all(item["owner"] == "alice" for item in first["items"])
    assert isinstance(first["items"][0]["createdAt"], int)
    assert first["items"][0]["createdAt"] == int(clock.now * 1000)  # milliseconds
    biggest = apps.uploads(token, "limit=1000")
    assert len(biggest["items"]) == 200
    cursor = biggest["next"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)
    rest = apps.uploads(token, f"limit=200&cursor={cursor}")
    assert len(rest["items"]) == 30
    assert rest["next"] is None
    listed = [(i["createdAt"], i["key"]) for i in biggest["items"] + rest["items"]]
    assert listed == sorted(listed, key=lambda item: (-item[0], item[1]))  # ties: key ascending
    assert len({key for _, key in listed}) == 230
    # The page boundary fell inside a tie, and the cursor resumed at the tie's next key.
    assert biggest["items"][-1]["createdAt"] == rest["items"][0]["createdAt"]
    assert [i["key"] for i in apps.uploads(login("bob", now=clock.now))["items"]] == [
        other["dir"] + "bob.png"
    ]
    forged = call(apps.sign, environ("GET", "/uploads", "cursor=bm90LW91cnM", headers=auth))
    forged.error(400, "BadRequest")  # no token, bad limits: test_sign_app.py


# === Local stack: `make dev` as a process ========================================================


class MakeDev(DevProcess, StackClient):
    """`make dev` in its own process group (Ctrl-C reaches make and the stack, as in a terminal),
    with ALIBABA_CLOUD_* in the shell it must ignore; a browser's calls through StackClient."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], new_session: bool) -> None:
        DevProcess.__init__(self, command, env, new_session)
        StackClient.__init__(self, self.url("app"), self.url("oss"))

    @classmethod
    def run(cls, **settings: str) -> MakeDev:
        """`make dev` with `settings` and nothing else: unset ones keep the stack's defaults."""
        return cls.start(
            settings,
            host=None,
            ports=False,
            extra_env=SHELL_ROLE,
            new_session=True,
            command=MAKE_DEV,
        )

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20, *, must_exit: bool = True) -> int:
        """Ctrl-C: SIGINT to the whole process group, then wait for a clean exit."""
        try:
            return super().stop(sig, timeout, must_exit=must_exit)
        finally:
            self.http.close()


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory, key_server: KeyHost) -> Iterator[MakeDev]:
    """The default stack on free ports; its data dir's name contains the word 'ready'."""
    data_dir = tmp_path_factory.mktemp("already-ready") / "data"
    stack = MakeDev.run(
        DEV_DATA_DIR=str(data_dir), CALLBACK_TRUSTED_KEY_URLS=key_server.url(), **free_ports()
    )
    stack.data_dir = data_dir  # type: ignore[attr-defined]
    yield stack.wait_ready()
    stack.stop()


def test_make_dev_prints_ready_only_once_every_listener_accepts(dev: MakeDev) -> None:
    """Local stack: `ready` once every listener accepts; nothing printed before contains it."""
    index = next(i for i, line in enumerate(dev.lines) if "ready" in line.lower())
    assert not any("ready" in line.lower() for line in dev.lines[:index]), dev.lines
    # the first line with the word is the stack's ready line, not a path echoed before it
    assert dev.url("app") in dev.lines[index], dev.lines
    assert dev.accepting_at_ready == {"app": True, "callback": True, "oss": True}
    assert dev.printed(str(dev.data_dir)), dev.lines  # type: ignore[attr-defined]


def test_make_dev_defaults_and_the_shell_role_ignored(dev: MakeDev) -> None:
    """Local stack dev defaults; ALIBABA_CLOUD_* from the shell ignored (signs with OSS_ACCESS_KEY_*)."""
    token = dev.token("dora")
    assert jwt.decode(token, DEV_JWT_SECRET, algorithms=["HS256"])["sub"] == "dora"
    answer = dev.http.get(dev.url("app") + "/dev/token", params={"user": "eve"}, timeout=10)
    assert list(answer.json()) == ["token"]
    assert answer.headers["Content-Type"].startswith("application/json")
    grant = dev.grant(token, path="pics", filename="a.png", size="10")
    # OSS_ENDPOINT, the emulator: test_make_dev_overrides_and_the_legacy_client_end_to_end
    date = grant["fields"]["x-oss-date"][:8]
    credential = f"dev-access-key-id/{date}/cn-hangzhou/oss/aliyun_v4_request"
    assert grant["fields"]["x-oss-credential"] == credential
    assert "x-oss-security-token" not in grant["fields"]
    assert {"bucket": "dev-bucket"} in decode_policy(grant["policy"])["conditions"]
    config = decode_callback(grant["callback"])
    assert config["callbackUrl"] == dev.url("callback") + "/oss-callback"
    claims = jwt.decode(
        grant_token(grant), DEV_GRANT_SECRET, algorithms=["HS256"], options={"verify_aud": False}
    )
    assert claims["sub"] == "dora"
    expected = v4_signature("dev-access-key-secret", date, "cn-hangzhou", grant["policy"])
    assert grant["fields"]["x-oss-signature"] == expected


def test_make_dev_upload_end_to_end_with_records_in_the_data_dir(dev: MakeDev) -> None:
    """Local stack: PostObject POST /; SQLite records and objects in DEV_DATA_DIR."""
    token = dev.token("frank")
    payload = uuid.uuid4().bytes * 64
    grant = dev.grant(token, path="e2e", filename="blob.bin", size=str(len(payload)))
    answer = dev.upload(grant, payload)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["Status"] == "OK"
    assert (data["key"], data["size"]) == (grant["key"], len(payload))
    assert data["etag"].upper() == hashlib.md5(payload).hexdigest().upper()  # noqa: S324
    # signed reads of the private bucket: e2e/test_e2e_upload.py, test_emulator_presign.py
    assert [item["key"] for item in dev.uploads(token)] == [grant["key"]]
    data_dir: Path = dev.data_dir  # type: ignore[attr-defined]
    with closing(SqliteStore(str(data_dir / "records.sqlite3"))) as records:  # as printed
        assert records.get("dev-bucket", grant["key"]) is not None
    assert any(p.is_file() and p.read_bytes() == payload for p in data_dir.rglob("*"))


def test_make_dev_multipart_answers_have_the_design_shapes(dev: MakeDev) -> None:
    """Multipart uploads (version 2): each route's JSON exactly as DESIGN's table has it, on the
    stack `make dev` runs; complete answers the callback's record, DELETE 204."""
    call = Client(dev, "grace").call  # type: ignore[arg-type] # a StackClient, as LiveStack is
    payload = uuid.uuid4().bytes * 40
    created = call("POST", "/multipart", {"path": "big", "filename": "a.bin", "size": len(payload)})
    assert created.status_code == 200, created.text
    session = created.json()
    assert set(session) == {"uploadId", "key", "partSize", "partCount", "expire"}
    assert session["partCount"] == 1
    assert session["key"].startswith("uploads/grace/big/")
    signed = call("POST", f"/multipart/{session['uploadId']}/parts", {"partNumbers": [1]}).json()
    assert set(signed) == {"parts", "expire"}
    (part,) = signed["parts"]
    assert set(part) == {"partNumber", "url", "headers"}
    put = dev.http.put(part["url"], data=payload, headers=part["headers"], timeout=10)
    assert put.status_code == 200, put.text
    listed = call("GET", f"/multipart/{session['uploadId']}").json()
    assert set(listed) == {"uploadId", "key", "size", "partSize", "partCount", "parts"}
    assert [set(item) for item in listed["parts"]] == [{"partNumber", "etag", "size"}]
    done = call("POST", f"/multipart/{session['uploadId']}/complete")
    record = done.json()
    assert (done.status_code, record["Status"], record["key"]) == (200, "OK", session["key"])
    assert {"key", "size", "etag", "mimeType", "owner", "createdAt"} <= set(record)
    other = call("POST", "/multipart", {"filename": "b.bin", "size": 10}).json()
    removed = call("DELETE", f"/multipart/{other['uploadId']}")
    assert (removed.status_code, removed.content) == (204, b"")


@pytest.mark.parametrize("path", ["/", "/oss-callback", "/any/path/at/all"])
def test_make_dev_callback_port_serves_every_path(dev: MakeDev, path: str) -> None:
    """Local stack: the callback function on DEV_CALLBACK_PORT, every path, as an FC trigger URL."""
    posted = dev.http.post(dev.url("callback") + path, data=b"bucket=x", timeout=10)
    assert posted.status_code == 401
    assert posted.json()["code"] == "SignatureInvalid"
    got = dev.http.get(dev.url("callback") + path, timeout=10)
    assert got.status_code == 405
    assert got.json()["code"] == "MethodNotAllowed"


def test_make_dev_appends_the_emulator_key_to_the_trusted_urls(
    dev: MakeDev, key_server: KeyHost
) -> None:
    """Local stack: the emulator serves its key; make dev appends it to CALLBACK_TRUSTED_KEY_URLS."""
    pem = dev.http.get(dev.url("oss") + EMULATOR_KEY, timeout=10)
    assert pem.status_code == 200
    assert pem.content.startswith(b"-----BEGIN PUBLIC KEY-----")
    # the emulator's own key: a real upload through the emulator, its callback answered 200
    token = dev.token("gina")
    grant = dev.grant(token, path="own")
    data, key = samples.png(4, 4), grant["dir"] + "x.png"
    stored = dev.upload(grant, data, key=key, content_type="image/png")
    assert stored.status_code == 200, stored.text
    # the URL from the environment is still trusted: an OSS stand-in signing with that key
    # (the same object again: the callback confirms it with the emulator, the same record)
    facts = {
        "etag": hashlib.md5(data).hexdigest().upper(),  # noqa: S324 - OSS's ETag
        "size": str(len(data)),
        "crc64": str(crc64(data)),
        "imageInfo.format": "png",
        "imageInfo.width": "4",
        "imageInfo.height": "4",
    }
    body = oss_body(grant, bucket="dev-bucket", object=key, **facts)
    signed = BUILD.request(body=body, key_url=key_server.url())  # as OSS signs and sends it
    url = dev.url("callback") + "/oss-callback"
    answer = dev.http.post(url, data=body, headers=signed.headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert [i["key"] for i in dev.uploads(token)] == [key]


def oss_error(response: requests.Response) -> tuple[int, str]:
    code = code_of(response)
    assert code, response.text
    assert "xml" in response.headers["Content-Type"]
    return response.status_code, code


def test_make_dev_emulator_errors_in_oss_order(dev: MakeDev) -> None:
    """Local stack: shape → signature → policy → size, with OSS's XML error codes."""
    token = dev.token("hugo")
    exact = dev.grant(token, path="errs", filename="a.txt", size="5")  # "12345" is text
    prefix = dev.grant(token, path="errs")
    fields = list(exact["fields"].items())
    bad_signature = replaced(fields, "x-oss-signature", "0" * 64)
    bad_acl = [*bad_signature, ("x-oss-object-acl", "bogus")]
    _, date_and_scope = exact["fields"]["x-oss-credential"].split("/", 1)
    unknown_key = replaced(fields, "x-oss-credential", "nobody/" + date_and_scope)
    outside = prefix["dir"].replace("errs/", "elsewhere/") + "x.png"
    cases = [
        (dev.upload(exact, b"12345", fields=unknown_key), (403, "InvalidAccessKeyId")),
        (dev.upload(exact, b"123456"), (400, "EntityTooLarge")),
        (dev.upload(prefix, b"", key=prefix["dir"] + "empty.bin"), (400, "EntityTooSmall")),
        # a bad signature is reported before the size, the policy (the key) before the size
        (dev.upload(exact, b"123456789", fields=bad_signature), (403, "SignatureDoesNotMatch")),
        (dev.upload(prefix, b"x" * (MAX_BYTES * 30), key=outside), (403, "AccessDenied")),
        # and the form's shape before the signature
        (dev.upload(exact, b"12345", fields=bad_acl), (400, "InvalidArgument")),
    ]
    for response, expected in cases:
        assert oss_error(response) == expected, response.text
    assert "Invalid according to Policy" in dev.upload(prefix, b"x", key=outside).text
    assert dev.upload(exact, b"12345").status_code == 200
    assert oss_error(dev.upload(exact, b"12345")) == (409, "FileAlreadyExists")


def loopback_alias() -> str | None:
    """127.0.0.2 when this machine routes the whole loopback block (Linux does)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.2", 0))
    except OSError:
        return None
    return "127.0.0.2"


def test_make_dev_overrides_and_the_legacy_client_end_to_end(tmp_path: Path) -> None:
    """Local stack: DEV_* and any setting overridden (V1, AUTH_MODE=none, empty prefix,
    CALLBACK_URL); the legacy client's exact form uploads and expects {"Status": "OK"}."""
    host = loopback_alias() or "127.0.0.1"
    ports = free_ports(host)
    stack = MakeDev.run(
        DEV_HOST=host,
        DEV_DATA_DIR=str(tmp_path / "legacy"),
        OSS_SIGNATURE_VERSION="v1",
        AUTH_MODE="none",
        UPLOAD_KEY_PREFIX="",
        CALLBACK_URL=f"http://{host}:{ports['DEV_CALLBACK_PORT']}/hooks/oss",
        **ports,
    )
    try:
        stack.wait_ready()
        assert stack.accepting_at_ready == {"app": True, "callback": True, "oss": True}
        # getSignature(path): GET {basePath}/signature with the body as the query string
        path = "avatars/"  # normalizePath('/avatars')
        signature = stack.grant(None, path=path)
        assert signature["host"] == stack.url("oss")
        assert signature["version"] == "v1"
        assert signature["accessid"] == "dev-access-key-id"
        callback_url = decode_callback(signature["callback"])["callbackUrl"]
        assert callback_url == stack.url("callback") + "/hooks/oss"
        assert int(signature["expire"]) * 1000 > time.time() * 1000
        keys = []
        for name, content in (("me.png", samples.png(2, 2)), ("notes", b"no extension")):
            ext = name.rsplit(".", 1)[1] if "." in name else ""
            key = path + str(uuid.uuid4()) + ("." if ext else "") + ext
            form = [
                ("key", (None, key)),
                ("policy", (None, signature["policy"])),
                ("OSSAccessKeyId", (None, signature["accessid"])),
                ("success_action_status", (None, "200")),
                ("signature", (None, signature["signature"])),
                ("callback", (None, signature["callback"])),
                ("file", (name, content, "image/png" if ext else "application/octet-stream")),
            ]
            response = stack.http.post(signature["host"], files=form, timeout=20)
            assert response.status_code == 200, response.text
            assert response.json()["Status"] == "OK"
            keys.append(key)
        listed = stack.uploads(None)
        assert {item["key"] for item in listed} == set(keys)
        assert {item["owner"] for item in listed} == {"anonymous"}
        # the emulator's key path is one no object key can take, even under a granted prefix
        reserved = stack.grant(None, path=".well-known/oss-emulator")
        taken = stack.upload(
            reserved, b"-----BEGIN PUBLIC KEY-----", key=reserved["dir"] + "callback_pub_key.pem"
        )
        assert oss_error(taken) == (400, "InvalidObjectName")
    finally:
        assert stack.stop() in (0, 2, -signal.SIGINT, 130)
    assert not stack.accepts("app")


def test_make_dev_default_ports_and_data_dir() -> None:
    """Local stack: DEV_HOST 127.0.0.1, ports 8000/8001/9000 and DEV_DATA_DIR .local/ by default."""
    for port in (8000, 8001, 9000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                pytest.skip(f"port {port} is in use on this machine")
    stack = MakeDev.run()
    try:
        stack.wait_ready()
        assert stack.accepting_at_ready == {"app": True, "callback": True, "oss": True}
        assert stack.printed(str(ROOT / ".local" / "records.sqlite3")), stack.lines
        assert stack.http.get(stack.url("oss") + EMULATOR_KEY, timeout=10).status_code == 200
    finally:
        stack.stop()


def test_make_dev_accepts_a_jwks_url_instead_of_the_dev_secret(
    tmp_path: Path, key_server: KeyHost
) -> None:
    """Local stack: any setting can be overridden, AUTH_JWKS_URL too (it replaces the dev secret)."""
    stack = MakeDev.run(
        DEV_DATA_DIR=str(tmp_path / "jwks"),
        AUTH_JWKS_URL=key_server.base + "/jwks.json",
        **free_ports(),
    )
    try:
        stack.wait_ready()
        now = int(time.time())
        token = jwt.encode(
            {"sub": "ivy", "iat": now, "exp": now + 600},
            OSS_KEY,
            "RS256",
            headers={"kid": "contract-1"},
        )
        assert stack.grant(token, path="k")["dir"] == "uploads/ivy/k/"
        forged = jwt.encode({"sub": "ivy", "exp": now + 600}, DEV_JWT_SECRET, "HS256")
        assert stack.signature(forged, path="k").status_code == 401
        assert stack.http.get(stack.url("app") + "/dev/token?user=x", timeout=10).status_code == 404
    finally:
        stack.stop()
