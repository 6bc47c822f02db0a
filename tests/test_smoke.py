"""`make smoke` logic against a fake FC 2.0 management client (pytest-mock) and the `make dev`
stack on loopback: the real sign and callback functions and the OSS emulator, so the smoke test
walks the same path as against a deployment (grant, PostObject with its callback, listing, the
reconcile function invoked once) — no cloud, no network beyond 127.0.0.1."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import jwt
import pytest
import requests
from pytest_mock import MockerFixture

from deploy import smoke
from deploy.template import load_template
from local.dev import Stack as DevStack
from shared.reconcile.app import timer_handler
from shared.reconcile.settings import ReconcileSettings
from shared.records.sqlite import SqliteStore
from tests.support.devstack import stack_settings, unanswered_callback_url

TEMPLATE = load_template(Path(__file__).resolve().parents[1] / "template.yml")
JWT_SECRET = "smoke-test-jwt-secret-0123456789abcdef"
GRANT_SECRET = "smoke-test-grant-secret-0123456789abcdef"


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Stack:
    sign_url: str
    callback_url: str
    dev: DevStack


def buffered(app: Callable[..., Any]) -> Callable[..., Any]:
    """Hand the app a terminated body stream, as FC does (wsgiref passes the raw socket)."""

    def wrapper(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length))
        return app(environ, start_response)

    return wrapper


@contextmanager
def serve(app: Callable[..., Any]) -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, buffered(app), handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """The `make dev` stack (sign + callback functions behind the FC 2.0 WSGI adapters, the OSS
    emulator, SQLite records) on free loopback ports, with the smoke test's secrets."""
    dev = DevStack(
        stack_settings(
            tmp_path / "stack",
            AUTH_JWT_SECRET=JWT_SECRET,
            GRANT_SECRET=GRANT_SECRET,
        )
    )
    dev.start()
    try:
        # The callback's trigger URL is where OSS calls it: CALLBACK_URL of the sign function.
        yield Stack(dev.url("app") + "/", dev.values["CALLBACK_URL"] + "/", dev)
    finally:
        dev.stop()


def deployed_function(key: str) -> dict[str, Any]:
    spec = TEMPLATE.functions[key]
    return {
        "functionName": spec.name,
        "runtime": spec.runtime,
        "handler": spec.handler,
        "environmentVariables": {name: "value" for name in spec.environment},
    }


def deployed_triggers(key: str, url: str) -> dict[str, Any]:
    (trigger,) = TEMPLATE.functions[key].triggers
    if trigger.type == "timer":  # the reconcile function
        config = {"cronExpression": "@every 10m", "enable": True}
        return {
            "triggers": [
                {"triggerName": trigger.name, "triggerType": "timer", "triggerConfig": config}
            ]
        }
    return {
        "triggers": [
            {
                "triggerName": trigger.name,
                "triggerType": "http",
                "triggerConfig": {"authType": "anonymous", "methods": list(trigger.methods)},
                "urlInternet": url.rstrip("/"),
            }
        ]
    }


def fake_fc(
    mocker: MockerFixture,
    stack: Stack,
    functions: dict[str, dict[str, Any]] | None = None,
    triggers: dict[str, dict[str, Any]] | None = None,
) -> Any:
    """A stand-in for fc2.Client answering like the FC 2.0 API for the deployed functions;
    invoking the reconcile function runs its timer handler against the dev stack."""
    by_name = {TEMPLATE.functions[key].name: key for key in TEMPLATE.functions}
    urls = {"sign": stack.sign_url, "callback": stack.callback_url}
    functions = {**{key: deployed_function(key) for key in TEMPLATE.functions}, **(functions or {})}
    triggers = {
        **{key: deployed_triggers(key, urls.get(key, "")) for key in TEMPLATE.functions},
        **(triggers or {}),
    }
    client = mocker.Mock()
    client.get_function.side_effect = lambda service, name: mocker.Mock(
        data=functions[by_name[name]]
    )
    client.list_triggers.side_effect = lambda service, name: mocker.Mock(
        data=triggers[by_name[name]]
    )
    values = stack.dev.values
    reconcile_env = {
        **values,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": values["OSS_ACCESS_KEY_ID"],
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": values["OSS_ACCESS_KEY_SECRET"],
    }

    def invoke(service: str, name: str, payload: bytes | None = None) -> Any:
        assert by_name[name] == "reconcile"
        settings = ReconcileSettings.from_env(reconcile_env)
        summary = timer_handler(payload, None, settings, reconcile_env)
        return mocker.Mock(data=json.dumps(summary).encode())

    client.invoke_function.side_effect = invoke
    return client


ENVIRON = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "smoke-ak",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "smoke-sk",
    "ALIBABA_CLOUD_ACCOUNT_ID": "1234567890",
    "DEPLOY_REGION": "cn-hangzhou",
    "AUTH_JWT_SECRET": JWT_SECRET,
}


def run(client: Any, environ: dict[str, str] | None = None) -> tuple[int, list[smoke.Result]]:
    config, reason = smoke.load_config(environ or ENVIRON, time.time())
    assert config is not None, reason
    results = smoke.Smoke(TEMPLATE, config, client, requests.Session()).run()
    return (0 if all(r.ok for r in results) else 1), results


def failed(results: list[smoke.Result]) -> list[str]:
    return [r.check for r in results if not r.ok]


def test_a_healthy_stack_passes_every_check(mocker: MockerFixture, stack: Stack) -> None:
    client = fake_fc(mocker, stack)
    status, results = run(client)
    assert failed(results) == []
    assert status == 0
    checks = {r.check for r in results}
    assert {
        "sign: runtime",
        "callback: handler",
        "sign: environment variables",
        "callback: trigger methods",
        "callback: forged callback refused",
        "sign: grant issued",
        "sign: callback URL is the callback trigger",
        "upload: POST to the bucket, callback answered",
        "uploads: record listed",
        "reconcile: one run",
    } <= checks
    client.get_function.assert_any_call("oss-direct-upload", "upload-sign")
    client.list_triggers.assert_any_call("oss-direct-upload", "upload-callback")
    client.invoke_function.assert_called_once()
    timed = ("upload: POST to the bucket, callback answered", "uploads: record listed")
    assert all(r.ms is not None for r in results if r.check in (*timed, "reconcile: one run"))


def test_the_upload_is_stored_recorded_listed_and_deleted(
    mocker: MockerFixture, stack: Stack
) -> None:
    status, results = run(fake_fc(mocker, stack))
    assert status == 0
    upload = next(r for r in results if r.check == "upload: POST to the bucket, callback answered")
    key = upload.detail.rsplit(" ", 1)[-1]
    assert key.startswith(f"uploads/{smoke.SMOKE_USER}/smoke/smoke-")
    assert key.endswith(".png")
    reconcile = next(r for r in results if r.check == "reconcile: one run")
    assert "failed 0" in reconcile.detail
    # DELETE /uploads/{key} (issue 16): the smoke upload goes, object first, then the record.
    (delete,) = [r for r in results if r.check == "uploads: smoke upload deleted"]
    assert (delete.ok, delete.skipped, delete.detail) == (True, False, "HTTP 204")
    assert stack.dev.emulator is not None
    assert stack.dev.emulator.store.get(key) is None
    store = SqliteStore(stack.dev.values["SQLITE_PATH"])
    try:
        record = store.get(stack.dev.values["OSS_BUCKET"], key)
    finally:
        store.close()
    assert record is not None
    assert record.deleted  # a tombstone: never listed, and a late callback cannot revive it
    assert (record.owner, record.size, record.mime_type) == (
        smoke.SMOKE_USER,
        len(smoke.TINY_PNG),
        "image/png",
    )


def test_a_callback_that_fails_shows_in_the_upload_step(
    mocker: MockerFixture, tmp_path: Path
) -> None:
    """OSS stores the object but answers 203 when the callback fails: the smoke test says so."""
    dev = DevStack(
        stack_settings(
            tmp_path / "stack",
            AUTH_JWT_SECRET=JWT_SECRET,
            GRANT_SECRET=GRANT_SECRET,
            CALLBACK_URL=unanswered_callback_url(),
        )
    )
    dev.start()
    try:
        broken = Stack(dev.url("app") + "/", dev.url("callback") + "/", dev)
        triggers = {
            "sign": deployed_triggers("sign", broken.sign_url),
            "callback": deployed_triggers("callback", broken.callback_url),
        }
        status, results = run(fake_fc(mocker, broken, triggers=triggers))
    finally:
        dev.stop()
    assert status == 1
    upload = next(r for r in results if r.check.startswith("upload:"))
    assert not upload.ok
    assert upload.detail.startswith("HTTP 203")


def test_main_prints_and_exits_zero_on_success(
    mocker: MockerFixture, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    client = fake_fc(mocker, stack)
    code = smoke.main(
        [str(TEMPLATE.path)], ENVIRON, client_factory=lambda config: client, now=time.time
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "smoke: ok   callback: forged callback refused (HTTP 401 SignatureInvalid) [" in out
    assert "smoke: ok   uploads: smoke upload deleted (HTTP 204) [" in out
    assert re.search(r"smoke: ok   reconcile: one run \(ended \d+, .*failed 0\) \[\d+ ms\]", out)
    assert "0 failed, 0 skipped" in out


def test_a_wrong_runtime_handler_or_missing_variable_fails(
    mocker: MockerFixture, stack: Stack
) -> None:
    sign = deployed_function("sign")
    sign["runtime"] = "python3.9"
    callback = deployed_function("callback")
    callback["handler"] = "index.event_handler"
    del callback["environmentVariables"]["GRANT_SECRET"]
    client = fake_fc(mocker, stack, functions={"sign": sign, "callback": callback})
    status, results = run(client)
    assert status == 1
    assert set(failed(results)) == {
        "sign: runtime",
        "callback: handler",
        "callback: environment variables",
    }
    detail = next(r.detail for r in results if r.check == "callback: environment variables")
    assert detail == "missing ['GRANT_SECRET']"


def test_a_trigger_with_auth_or_extra_methods_fails(mocker: MockerFixture, stack: Stack) -> None:
    triggers = {
        "sign": deployed_triggers("sign", stack.sign_url),
        "callback": deployed_triggers("callback", stack.callback_url),
    }
    triggers["sign"]["triggers"][0]["triggerConfig"]["authType"] = "function"
    triggers["callback"]["triggers"][0]["triggerConfig"]["methods"] = ["GET", "POST"]
    status, results = run(fake_fc(mocker, stack, triggers=triggers))
    assert status == 1
    assert set(failed(results)) == {"sign: trigger is anonymous", "callback: trigger methods"}


def test_a_callback_that_accepts_a_forged_request_fails(
    mocker: MockerFixture, stack: Stack
) -> None:
    def accepts_anything(
        environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"Status":"OK"}']

    with serve(accepts_anything) as open_url:
        triggers = {
            "sign": deployed_triggers("sign", stack.sign_url),
            "callback": deployed_triggers("callback", open_url),
        }
        status, results = run(fake_fc(mocker, stack, triggers=triggers))
    assert status == 1
    # ...and the grant points at a callback other than the deployed trigger.
    assert failed(results)[:2] == [
        "callback: forged callback refused",
        "sign: callback URL is the callback trigger",
    ]


def test_a_bad_caller_token_means_no_grant(mocker: MockerFixture, stack: Stack) -> None:
    environ = {**ENVIRON, "AUTH_JWT_SECRET": "another-secret-entirely-0123456789abcdef"}
    status, results = run(fake_fc(mocker, stack), environ)
    assert status == 1
    assert failed(results) == ["sign: grant issued"]
    assert next(r.detail for r in results if not r.ok) == "HTTP 401 Unauthorized"


def test_smoke_jwt_is_used_as_given(mocker: MockerFixture, stack: Stack) -> None:
    token = jwt.encode({"sub": "bob", "exp": int(time.time()) + 300}, JWT_SECRET, algorithm="HS256")
    environ = {k: v for k, v in ENVIRON.items() if k != "AUTH_JWT_SECRET"}
    environ["SMOKE_JWT"] = token
    session = requests.Session()
    spy = mocker.spy(session, "get")
    config, _ = smoke.load_config(environ, time.time())
    assert config is not None
    results = smoke.Smoke(TEMPLATE, config, fake_fc(mocker, stack), session).run()
    assert failed(results) == []
    assert spy.call_args.kwargs["headers"] == {"Authorization": f"Bearer {token}"}


def test_management_api_errors_are_reported_not_raised(mocker: MockerFixture) -> None:
    client = mocker.Mock()
    client.get_function.side_effect = RuntimeError("FunctionNotFound")
    config, _ = smoke.load_config(ENVIRON, time.time())
    assert config is not None
    session = mocker.Mock(spec=requests.Session)
    results = smoke.Smoke(TEMPLATE, config, client, session).run()
    assert failed(results) == [f"{key}: get_function" for key in TEMPLATE.functions]
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
