"""The Serverless Devs templates checked against the code they deploy: handlers, code paths,
triggers, limits, and every setting each function reads at start-up — and `s preview` itself."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from deploy import build, preflight
from deploy.template import (
    Template,
    env_references,
    function_environment,
    load_template,
    read_dotenv,
)
from shared.callback.settings import CallbackSettings
from shared.reconcile.settings import ReconcileSettings
from shared.records.tablestore_ledger import due_index, ledger_table, target_index
from shared.records.tablestore_rows import index_name
from shared.sign.settings import SignSettings
from tests.oss_sdk import BUCKET, KEY_ID, SECRET
from tests.support.emulator import Emu
from tests.support.tools import unavailable

ROOT = build.ROOT
FC2 = ROOT / "template.yml"
FC3 = ROOT / "template.fc3.yml"
S_CLI = ROOT / "node_modules" / ".bin" / "s"
# Read by the settings but deliberately absent from the templates: the functions sign with the
# role's temporary credentials, and SQLite is for local runs.
NOT_DEPLOYED = frozenset({"OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "SQLITE_PATH"})
LOADERS = {
    "sign": SignSettings.from_env,
    "callback": CallbackSettings.from_env,
    "reconcile": ReconcileSettings.from_env,
}


class Recording(Mapping[str, str]):
    """Remembers every name the settings look up (Mapping's `get` and `in` call `__getitem__`)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def example_environment() -> dict[str, str]:
    """deploy/deploy.env.example with its placeholders and empty secrets filled in."""
    values = read_dotenv(ROOT / "deploy" / "deploy.env.example")
    filled = {}
    for name, raw in values.items():
        value = raw.replace("<account-id>", "1234567890123456")
        filled[name] = value.replace("<bucket>", "example-bucket").replace("<instance>", "uploads")
    filled["GRANT_SECRET"] = "grant-secret-for-template-tests-0123456789"
    filled["AUTH_JWT_SECRET"] = "jwt-secret-for-template-tests-0123456789ab"
    return filled


@pytest.fixture(params=[FC2, FC3], ids=["fc2", "fc3"])
def template(request: pytest.FixtureRequest) -> Template:
    return load_template(request.param)


def built_copy(tmp_path: Path, source: Path, *, packages: bool = True) -> Path:
    """The template copied beside a dist/ with a package per function (each an empty index.py)."""
    copy = tmp_path / source.name
    shutil.copy(source, copy)
    for key in build.FUNCTIONS if packages else ():
        (tmp_path / "dist" / key).mkdir(parents=True)
        (tmp_path / "dist" / key / "index.py").write_text("")
    return copy


def test_editions_components_and_the_fc2_service() -> None:
    """FC 2.0 `logConfig: auto` (project {account}-{region}-logproject, logstore
    fc-service-<service>-logstore): FC writes with the service role, and refuses to create the
    service if that role may not post to the logstore."""
    fc2, fc3 = load_template(FC2), load_template(FC3)
    assert (fc2.edition, fc3.edition) == ("1.0.0", "3.0.0")
    assert set(fc2.functions) == set(fc3.functions) == set(build.FUNCTIONS)
    assert fc2.service["logConfig"] == "auto"
    assert fc2.service["internetAccess"] is True
    assert fc2.service["role"] == "${env(DEPLOY_ROLE_ARN)}"
    (statement,) = policy("fc-logs-policy.json")
    assert statement["Action"] == ["log:PostLogStoreLogs"]
    assert statement["Resource"] == [
        "acs:log:<region>:<account-id>:project/<account-id>-<region>-logproject"
        f"/logstore/fc-service-{fc2.service['name']}-logstore"
    ]


def test_functions_are_our_handlers_behind_anonymous_http_within_their_limits(
    template: Template,
) -> None:
    expected = "index.event_handler" if template.is_fc3 else "index.handler"
    for key, function in template.functions.items():
        assert function.runtime == "python3.10"
        assert function.handler == expected
        module, attribute = function.handler.split(".")
        assert template.code_dir(key) == (ROOT / "dist" / key).resolve(), "make build's output"
        # The package's index.py is functions/<key>/index.py verbatim (tests/test_packages.py).
        source = (ROOT / "functions" / key / f"{module}.py").read_text()
        assert re.search(rf"^{attribute} = ", source, re.MULTILINE), f"no {key} {attribute}"
    # sign: OPTIONS for the CORS preflight of GET /signature (it carries Authorization), POST for
    # the /multipart routes, DELETE for DELETE /uploads/{key} and /multipart/{uploadId};
    # callback: OSS only POSTs.
    sign = ("GET", "OPTIONS", "POST", "DELETE")
    for key, methods in (("sign", sign), ("callback", ("POST",))):
        (trigger,) = template.functions[key].triggers
        assert (trigger.type, trigger.auth_type, trigger.methods) == ("http", "anonymous", methods)
    callback, sign_function = template.functions["callback"], template.functions["sign"]
    assert callback.timeout <= 5, "OSS waits 5 s for the callback"
    assert sign_function.timeout <= 30
    for function in (callback, sign_function):
        assert function.memory % 64 == 0
        assert 128 <= function.memory <= 1024


def test_records_go_to_tablestore_no_long_lived_key_is_deployed_and_callback_url_is_wired(
    template: Template,
) -> None:
    text = template.path.read_text()
    assert "OSS_ACCESS_KEY" not in text
    assert "ALIBABA_CLOUD_ACCESS_KEY" not in text
    for function in template.functions.values():
        assert function.environment["RECORDS_BACKEND"] == "tablestore"
    if template.is_fc3:
        assert {f.role for f in template.functions.values()} == {
            "${env('SIGN_ROLE_ARN')}",
            "${env('CALLBACK_ROLE_ARN')}",
            "${env('RECONCILE_ROLE_ARN')}",
        }
    # CALLBACK_URL is the callback trigger's URL, filled in at deployment.
    prefix = "resources." if template.is_fc3 else ""
    callback_url = template.functions["sign"].environment["CALLBACK_URL"]
    assert callback_url == f"${{{prefix}callback.output.url.system_url}}"
    env = function_environment(
        template, "sign", example_environment(), {"callback": "https://cb.example.com/"}
    )
    assert env["CALLBACK_URL"] == "https://cb.example.com/"


def test_every_setting_the_code_reads_is_deployed_and_nothing_else(
    template: Template,
) -> None:
    example = read_dotenv(ROOT / "deploy" / "deploy.env.example")
    assert set(env_references(template)) <= set(example), "missing from deploy.env.example"
    for key, load in LOADERS.items():
        env = function_environment(template, key, example_environment())
        # The fullest configuration: with a quota the callback reads the OSS settings too.
        recording = Recording({**env, "QUOTA_BYTES_PER_USER": "1"})
        load(recording)  # raises ConfigError if a required setting is missing or malformed
        deployed = set(template.functions[key].environment)
        assert recording.read - NOT_DEPLOYED <= deployed, f"{key}: settings read but not deployed"
        assert deployed <= recording.read, f"{key}: deployed names the code never reads"


# --- preflight ----------------------------------------------------------------------------------


def test_fc3_defaults_fill_optional_variables_and_fc2_wants_every_one() -> None:
    env = example_environment()
    del env["AUTH_JWKS_URL"]
    problems = preflight.check(load_template(FC2), env)
    assert any("AUTH_JWKS_URL is not set" in p and p.startswith("sign:") for p in problems)
    template = load_template(FC3)
    required = {name for name, has_default in env_references(template).items() if not has_default}
    assert required == {
        "DEPLOY_REGION",
        "SIGN_ROLE_ARN",
        "CALLBACK_ROLE_ARN",
        "RECONCILE_ROLE_ARN",
        "OSS_BUCKET",
        "OSS_REGION",
        "GRANT_SECRET",
        "TABLESTORE_ENDPOINT",
        "TABLESTORE_INSTANCE",
    }
    env = {name: value for name, value in example_environment().items() if name in required}
    env["AUTH_JWT_SECRET"] = "jwt-secret-for-template-tests-0123456789ab"
    sign = function_environment(template, "sign", env)
    assert sign["UPLOAD_KEY_PREFIX"] == "uploads/{user}/"
    assert sign["AUTH_MODE"] == "jwt"
    assert sign["TABLESTORE_TABLE"] == "oss_uploads"
    SignSettings.from_env(sign)
    del env["GRANT_SECRET"]
    problems = preflight.check(template, env)
    assert (
        "sign: env('GRANT_SECRET') not found: set GRANT_SECRET (no default in the template)"
        in problems
    )


def test_preflight_refuses_a_mixed_case_tablestore_instance(template: Template) -> None:
    env = {**example_environment(), "TABLESTORE_INSTANCE": "Uploads"}
    env["TABLESTORE_ENDPOINT"] = "https://Uploads.cn-hangzhou.ots-internal.aliyuncs.com"
    problems = preflight.check(template, env)
    (problem,) = [p for p in problems if p.startswith("TABLESTORE_INSTANCE")]
    assert "'Uploads' is not lower case" in problem
    assert "RAM resource ARNs" in problem
    assert "'uploads'" in problem
    lower = {**env, "TABLESTORE_INSTANCE": "uploads"}
    assert not any(p.startswith("TABLESTORE_INSTANCE") for p in preflight.check(template, lower))


@pytest.mark.parametrize("status", ["", "Enabled", "Suspended"])
def test_preflight_reads_the_buckets_versioning_and_refuses_a_versioned_one(
    make: Callable[..., Emu], status: str
) -> None:
    url = make(versioning=status).url
    template = load_template(FC3)
    env = {**example_environment(), "OSS_BUCKET": BUCKET, "OSS_ENDPOINT": url}
    no_credentials = (None, "no credentials in the environment to read it with")
    assert preflight.bucket_versioning(template, env) == no_credentials
    env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = KEY_ID
    env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "not-the-secret"
    assert preflight.bucket_versioning(template, env) == (
        None,
        f"GetBucketVersioning on {BUCKET} failed: 403 SignatureDoesNotMatch",
    )
    env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = SECRET
    assert preflight.bucket_versioning(template, env) == (status, "")
    problem = preflight.versioning_problem(status, BUCKET, allowed=False)
    if status:
        assert problem is not None
        assert f"has versioning {status}: OSS ignores x-oss-forbid-overwrite" in problem
        assert preflight.versioning_problem(status, BUCKET, allowed=True) is None
    else:
        assert problem is None


def test_preflight_names_a_bad_setting_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = built_copy(tmp_path, FC2)
    env = example_environment()
    for secret, status in (("short", 1), ("grant-secret-for-template-tests-0123456789", 0)):
        env["GRANT_SECRET"] = secret
        (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        assert preflight.main([str(copy)]) == status
    err = capsys.readouterr().err
    assert "sign: GRANT_SECRET: each secret must be at least 32 bytes" in err
    assert "callback: GRANT_SECRET: each secret must be at least 32 bytes" in err


def test_preflight_wants_the_built_packages_with_cryptography_in_sign_for_jwks(
    tmp_path: Path,
) -> None:
    """`make build` ships cryptography in the sign package only when AUTH_JWKS_URL is set."""
    template = load_template(built_copy(tmp_path, FC3, packages=False))
    env = {**example_environment(), "AUTH_JWT_SECRET": "", "AUTH_JWKS_URL": "https://idp.x/jwks"}
    missing = "sign: ./dist/sign/index.py is missing (run `make build`)"
    assert missing in preflight.check(template, env)
    built_copy(tmp_path, FC3)
    problem = "sign: AUTH_JWKS_URL is set but ./dist/sign ships no cryptography"
    assert any(p.startswith(problem) for p in preflight.check(template, env))
    (tmp_path / "dist" / "sign" / "cryptography").mkdir()
    assert not any(p.startswith(problem) for p in preflight.check(template, env))


# --- the real CLI, offline ---------------------------------------------------------------------


def offline_preview(home: Path, values: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`s preview -t template.fc3.yml -o json` with a throw-away HOME, telemetry and updates off."""
    if not (S_CLI.exists() and shutil.which("node")):
        unavailable("Serverless Devs CLI not installed: run `npm ci` (needs node and npm)")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **values}
    # The CLI asks npm for a newer version unless it did within the day: say it just did.
    notifier = home / ".s" / "config" / "update-notifier.json"
    notifier.parent.mkdir(parents=True)
    notifier.write_text(json.dumps({"lastUpdateCheck": int(time.time() * 1000)}))
    options: dict[str, Any] = {"env": env, "cwd": ROOT, "capture_output": True, "text": True}
    disable, preview = ("set", "analysis", "disable"), ("preview", "-t", FC3.name, "-o", "json")
    subprocess.run([str(S_CLI), *disable], timeout=60, check=True, **options)  # noqa: S603 - the pinned CLI
    return subprocess.run([str(S_CLI), *preview], timeout=120, check=False, **options)  # noqa: S603


def test_s_preview_renders_the_fc3_template_offline_as_we_do(tmp_path: Path) -> None:
    env = example_environment()
    env["CORS_ALLOWED_ORIGINS"] = "https://a.example.com,https://b.example.com"
    result = offline_preview(tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "update cli" not in result.stdout
    rendered, _ = json.JSONDecoder().raw_decode(result.stdout[result.stdout.index("{") :])
    template = load_template(FC3)
    verbatim = {"callback": "${resources.callback.output.url.system_url}"}
    for key in build.FUNCTIONS:
        props = rendered["resources"][key]["props"]
        assert props["environmentVariables"] == function_environment(template, key, env, verbatim)
        assert props["handler"] == "index.event_handler"
        assert props["role"] == env[f"{key.upper()}_ROLE_ARN"]
        assert props["region"] == env["DEPLOY_REGION"]


def test_s_preview_fails_offline_on_a_missing_required_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in example_environment().items() if k != "OSS_BUCKET"}
    result = offline_preview(tmp_path, env)
    assert result.returncode != 0
    assert re.search(r"env\('OSS_BUCKET'\) not found", result.stdout + result.stderr)


# --- RAM policies: exactly what the code calls ---------------------------------------------------

ROLES = ("sign-policy.json", "callback-policy.json", "reconcile-policy.json")


def policy(name: str) -> list[dict[str, Any]]:
    document = json.loads((ROOT / "deploy" / "ram" / name).read_text())
    assert document["Version"] == "1"
    statements: list[dict[str, Any]] = document["Statement"]
    assert all(s["Effect"] == "Allow" for s in statements)
    return statements


def oss_actions(name: str) -> set[str]:
    return {a for s in policy(name) for a in s["Action"] if a.startswith("oss:")}


def ots_grants(name: str) -> dict[str, set[str]]:
    """One role's Tablestore grants: resource (table or index name) → actions."""
    grants: dict[str, set[str]] = {}
    for statement in policy(name):
        for resource in statement["Resource"]:
            if resource.startswith("acs:ots:"):
                table = resource.rsplit("/", 1)[1]
                grants.setdefault(table, set()).update(statement["Action"])
    return grants


def test_tablestore_grants_are_the_calls_the_code_makes() -> None:
    called = set()
    for module, client in (("tablestore.py", "_client"), ("tablestore_ledger.py", "client")):
        source = (ROOT / "shared" / "records" / module).read_text()
        methods = re.findall(rf"\b{client}\.(\w+)\b", source)  # put_row → ots:PutRow
        called |= {"ots:" + method.title().replace("_", "") for method in methods}
    granted = {a for role in ROLES for actions in ots_grants(role).values() for a in actions}
    assert granted == called


def test_tablestore_resources_are_the_tables_and_indexes_each_role_uses() -> None:
    table = "oss_uploads"  # TABLESTORE_TABLE's default, as in the templates
    ledger = ledger_table(table)
    assert ots_grants("sign-policy.json") == {
        index_name(table): {"ots:GetRange"},  # GET /uploads
        table: {"ots:GetRow", "ots:UpdateRow"},  # one record, and its tombstone (DELETE)
        # the usage row and the grant, GET /quota; a multipart session settled by DELETE
        # /multipart/{uploadId} or a mismatch at Complete
        ledger: {"ots:GetRow", "ots:PutRow", "ots:UpdateRow"},
    }
    assert ots_grants("callback-policy.json") == {
        table: {"ots:GetRow", "ots:PutRow"},
        ledger: {"ots:GetRow", "ots:PutRow", "ots:UpdateRow"},  # settle a grant, charge usage
    }
    assert ots_grants("reconcile-policy.json") == {
        table: {"ots:GetRow", "ots:PutRow"},
        ledger: {"ots:GetRow", "ots:PutRow", "ots:UpdateRow"},
        due_index(table): {"ots:GetRange"},  # the sweeper's walk
        target_index(table): {"ots:GetRange"},  # the audit's covering grant
    }


def test_oss_grant_is_put_object_under_the_upload_prefix_only() -> None:
    """Under the upload prefix only: no listing of uploads in progress, no ACL."""
    assert oss_actions("sign-policy.json") == {
        "oss:PutObject",  # grants, Initiate and Complete
        "oss:GetObject",  # download URLs
        "oss:DeleteObject",  # DELETE /uploads/{key}
        "oss:ListParts",  # /multipart
        "oss:AbortMultipartUpload",
    }
    assert oss_actions("reconcile-policy.json") == {
        "oss:ListObjects",
        "oss:GetObject",
        "oss:DeleteObject",
        "oss:AbortMultipartUpload",
    }
    # HeadObject, and DeleteObject of a refused upload
    assert oss_actions("callback-policy.json") == {"oss:GetObject", "oss:DeleteObject"}
    (aborts,) = [s for s in policy("reconcile-policy.json") if "oss:DeleteObject" in s["Action"]]
    (statement,) = [s for s in policy("sign-policy.json") if "oss:PutObject" in s["Action"]]
    (resource,) = statement["Resource"]
    (removal,) = [s for s in policy("callback-policy.json") if "oss:DeleteObject" in s["Action"]]
    assert removal["Resource"] == aborts["Resource"] == [resource]
    env = function_environment(load_template(FC2), "sign", example_environment())
    del env["UPLOAD_KEY_PREFIX"]  # the code's default prefix
    static_prefix = SignSettings.from_env(env).upload.key_prefix.split("{user}", maxsplit=1)[0]
    assert static_prefix
    assert resource == f"acs:oss:*:<account-id>:<bucket>/{static_prefix}*"


def test_functions_trust_only_function_compute() -> None:
    (statement,) = policy("fc-trust-policy.json")
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"Service": ["fc.aliyuncs.com"]}
