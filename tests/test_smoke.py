"""`make smoke` logic against a fake FC 2.0 management client (pytest-mock) and the `make dev`
stack on loopback: the real sign and callback functions and the OSS emulator, so the smoke test
walks the same path as against a deployment (grant, PostObject with its callback, listing, the
reconcile function invoked once) — no cloud, no network beyond 127.0.0.1."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from pytest_mock import MockerFixture

from deploy import smoke
from deploy.template import load_template
from local.dev import Stack
from shared.reconcile.app import timer_handler
from shared.reconcile.settings import ReconcileSettings
from shared.records.sqlite import SqliteStore
from tests import oss_sdk
from tests.support.devstack import stack_settings, unanswered_callback_url

TEMPLATE = load_template(Path(__file__).resolve().parents[1] / "template.yml")
JWT_SECRET = "smoke-test-jwt-secret-0123456789abcdef"
GRANT_SECRET = "smoke-test-grant-secret-0123456789abcdef"
ENVIRON = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "smoke-ak",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "smoke-sk",
    "ALIBABA_CLOUD_ACCOUNT_ID": "1234567890",
    "DEPLOY_REGION": "cn-hangzhou",
    "AUTH_JWT_SECRET": JWT_SECRET,
}


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The `make dev` stack with the smoke test's secrets; with the indirect parameter
    "callbacks lost", nobody answers its CALLBACK_URL."""
    settings = {"AUTH_JWT_SECRET": JWT_SECRET, "GRANT_SECRET": GRANT_SECRET}
    if getattr(request, "param", None) == "callbacks lost":
        settings["CALLBACK_URL"] = unanswered_callback_url()
    dev = Stack(stack_settings(tmp_path / "stack", **settings))
    dev.start()
    yield dev
    dev.stop()


def fake_fc(
    mocker: MockerFixture,
    stack: Stack,
    *,
    functions: Callable[[dict[str, Any]], None] = lambda _: None,
    triggers: Callable[[dict[str, Any]], None] = lambda _: None,
    callback_url: str | None = None,
) -> Any:
    """fc2.Client answering for the functions as the template says unless `functions` or
    `triggers` change them; invoking reconcile runs its timer handler against the stack."""
    by_name = {TEMPLATE.functions[key].name: key for key in TEMPLATE.functions}
    urls = {"sign": stack.url("app"), "callback": callback_url or stack.values["CALLBACK_URL"]}
    configs, listed = {}, {}
    for key, spec in TEMPLATE.functions.items():
        configs[key] = {"functionName": spec.name, "runtime": spec.runtime, "handler": spec.handler}
        configs[key]["environmentVariables"] = {name: "value" for name in spec.environment}
        (trigger,) = spec.triggers  # the reconcile function's: a timer
        config = {"authType": trigger.auth_type, "methods": list(trigger.methods)}
        listed[key] = {"triggers": [{"triggerName": trigger.name, "triggerType": trigger.type}]}
        listed[key]["triggers"][0].update(triggerConfig=config, urlInternet=urls.get(key, ""))
    functions(configs)
    triggers(listed)
    client = mocker.Mock()
    client.get_function.side_effect = lambda _, name: mocker.Mock(data=configs[by_name[name]])
    client.list_triggers.side_effect = lambda _, name: mocker.Mock(data=listed[by_name[name]])
    values = stack.values
    reconcile_env = {
        **values,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": values["OSS_ACCESS_KEY_ID"],
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": values["OSS_ACCESS_KEY_SECRET"],
    }

    def invoke(service: str, name: str, payload: bytes | None = None) -> Any:
        assert by_name[name] == "reconcile"
        summary = timer_handler(
            payload, None, ReconcileSettings.from_env(reconcile_env), reconcile_env
        )
        return mocker.Mock(data=json.dumps(summary).encode())

    client.invoke_function.side_effect = invoke
    return client


def failed(
    client: Any, environ: dict[str, str] = ENVIRON, session: requests.Session | None = None
) -> dict[str, str]:
    """One run of every check: the failed ones, each with its detail."""
    config, reason = smoke.load_config(environ, time.time())
    assert config is not None, reason
    results = smoke.Smoke(TEMPLATE, config, client, session or requests.Session()).run()
    return {r.check: r.detail for r in results if not r.ok}


def test_a_healthy_stack_passes_every_check_and_its_upload_is_deleted(
    mocker: MockerFixture, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    client = fake_fc(mocker, stack)
    code = smoke.main([str(TEMPLATE.path)], ENVIRON, client_factory=lambda _: client, now=time.time)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 failed, 0 skipped" in out
    for check in (
        "sign: runtime",
        "callback: handler",
        "sign: environment variables",
        "callback: trigger methods",
        "sign: grant issued",
        "sign: callback URL is the callback trigger",
    ):
        assert f"smoke: ok   {check} (" in out
    assert "smoke: ok   callback: forged callback refused (HTTP 401 SignatureInvalid) [" in out
    assert re.search(r"smoke: ok   uploads: record listed \(.*\) \[\d+ ms\]", out)
    assert re.search(r"smoke: ok   reconcile: one run \(ended \d+, .*failed 0\) \[\d+ ms\]", out)
    # DELETE /uploads/{key} (issue 16): the smoke upload goes, object first, then the record.
    assert "smoke: ok   uploads: smoke upload deleted (HTTP 204) [" in out
    upload = r"smoke: ok   upload: POST to the bucket, callback answered \(HTTP 200 OK (\S+)\) \[\d+ ms\]"
    match = re.search(upload, out)
    assert match is not None, out
    key = match.group(1)
    assert key.startswith(f"uploads/{smoke.SMOKE_USER}/smoke/smoke-")
    assert key.endswith(".png")
    client.get_function.assert_any_call("oss-direct-upload", "upload-sign")
    client.list_triggers.assert_any_call("oss-direct-upload", "upload-callback")
    client.invoke_function.assert_called_once()
    assert stack.emulator is not None
    assert stack.emulator.store.get(key) is None
    store = SqliteStore(stack.values["SQLITE_PATH"])
    try:
        record = store.get(stack.values["OSS_BUCKET"], key)
    finally:
        store.close()
    assert record is not None
    assert record.deleted  # a tombstone: never listed, and a late callback cannot revive it
    assert (record.owner, record.size, record.mime_type) == (
        smoke.SMOKE_USER,
        len(smoke.TINY_PNG),
        "image/png",
    )


@pytest.mark.parametrize("stack", ["callbacks lost"], indirect=True)
def test_a_callback_that_fails_shows_in_the_upload_step(
    mocker: MockerFixture, stack: Stack
) -> None:
    """OSS stores the object but answers 203 when the callback fails: the smoke test says so."""
    found = failed(fake_fc(mocker, stack, callback_url=stack.url("callback")))
    assert found["upload: POST to the bucket, callback answered"].startswith("HTTP 203")


def test_a_wrong_runtime_handler_variable_or_trigger_fails(
    mocker: MockerFixture, stack: Stack
) -> None:
    def change_functions(configs: dict[str, Any]) -> None:
        configs["sign"]["runtime"] = "python3.9"
        configs["callback"]["handler"] = "index.event_handler"
        del configs["callback"]["environmentVariables"]["GRANT_SECRET"]

    def change_triggers(listed: dict[str, Any]) -> None:
        listed["sign"]["triggers"][0]["triggerConfig"]["authType"] = "function"
        listed["callback"]["triggers"][0]["triggerConfig"]["methods"] = ["GET", "POST"]

    found = failed(fake_fc(mocker, stack, functions=change_functions, triggers=change_triggers))
    assert set(found) == {
        "sign: runtime",
        "callback: handler",
        "callback: environment variables",
        "sign: trigger is anonymous",
        "callback: trigger methods",
    }
    assert found["callback: environment variables"] == "missing ['GRANT_SECRET']"


def test_a_callback_that_accepts_a_forged_request_fails(
    mocker: MockerFixture, stack: Stack
) -> None:
    def accepts_anything(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"Status":"OK"}']

    with oss_sdk.serve(accepts_anything) as open_url:
        found = failed(fake_fc(mocker, stack, callback_url=open_url))
    # ...and the grant points at a callback other than the deployed trigger.
    assert list(found)[:2] == [
        "callback: forged callback refused",
        "sign: callback URL is the callback trigger",
    ]


def test_a_bad_caller_token_means_no_grant(mocker: MockerFixture, stack: Stack) -> None:
    environ = {**ENVIRON, "AUTH_JWT_SECRET": "another-secret-entirely-0123456789abcdef"}
    assert failed(fake_fc(mocker, stack), environ) == {
        "sign: grant issued": "HTTP 401 Unauthorized"
    }


def test_smoke_jwt_is_used_as_given(mocker: MockerFixture, stack: Stack) -> None:
    token = jwt.encode({"sub": "bob", "exp": int(time.time()) + 300}, JWT_SECRET, algorithm="HS256")
    environ = {k: v for k, v in ENVIRON.items() if k != "AUTH_JWT_SECRET"}
    environ["SMOKE_JWT"] = token
    session = requests.Session()
    spy = mocker.spy(session, "get")
    assert failed(fake_fc(mocker, stack), environ, session) == {}
    assert spy.call_args.kwargs["headers"] == {"Authorization": f"Bearer {token}"}


def test_management_api_errors_are_reported_not_raised(mocker: MockerFixture) -> None:
    client = mocker.Mock()
    client.get_function.side_effect = RuntimeError("FunctionNotFound")
    session = mocker.Mock(spec=requests.Session)
    assert list(failed(client, ENVIRON, session)) == [
        f"{key}: get_function" for key in TEMPLATE.functions
    ]
    session.get.assert_not_called()
    session.post.assert_not_called()


def test_without_credentials_it_says_so_and_exits_cleanly(
    mocker: MockerFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    factory = mocker.Mock()
    code = smoke.main(
        [str(TEMPLATE.path)], {"DEPLOY_REGION": "cn-hangzhou"}, client_factory=factory
    )
    assert code == 0
    assert "smoke: skipped, no ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET" in capsys.readouterr().out
    factory.assert_not_called()


def test_minted_token_carries_audience_and_issuer_when_configured() -> None:
    environ = {**ENVIRON, "AUTH_JWT_AUDIENCE": "uploads", "AUTH_JWT_ISSUER": "https://id.example"}
    now = time.time()
    config, _ = smoke.load_config(environ, now)
    assert config is not None
    claims = jwt.decode(
        config.caller_token,
        JWT_SECRET,
        algorithms=["HS256"],
        audience="uploads",
        options={"verify_exp": False},  # minted at the frozen NOW; its exp is checked below
    )
    assert claims["sub"] == smoke.SMOKE_USER
    assert claims["iss"] == "https://id.example"
    assert claims["exp"] == int(now) + 300


def test_the_fc2_client_targets_the_account_endpoint_with_a_short_timeout(
    mocker: MockerFixture,
) -> None:
    client_class = mocker.patch("fc2.Client")
    environ = {**ENVIRON, "ALIBABA_CLOUD_SECURITY_TOKEN": "sts-token"}
    config, _ = smoke.load_config(environ, time.time())
    assert config is not None
    assert smoke.fc2_client(config) is client_class.return_value
    client_class.assert_called_once_with(
        endpoint="https://1234567890.cn-hangzhou.fc.aliyuncs.com",
        accessKeyID="smoke-ak",
        accessKeySecret="smoke-sk",
        securityToken="sts-token",
        Timeout=smoke.HTTP_TIMEOUT,
    )
