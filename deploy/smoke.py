"""Post-deploy smoke test of a stack deployed from template.yml (FC 2.0 API, aliyun-fc2).

Checks, against what template.yml says: each function's runtime, handler and environment
variable names (`get_function`); one anonymous HTTP trigger with the template's methods
(`list_triggers`); then over HTTPS a forged callback refused with 401 `SignatureInvalid`, and the
whole upload path as a user walks it: sign in (the caller token), a grant from the sign function
(whose callback URL must be the callback function's trigger), a tiny PNG POSTed to the real
bucket with it, the callback's answer relayed by OSS, the record found through `GET /uploads`,
one invocation of the reconcile function, and the upload deleted through
`DELETE /uploads/{key}` where the deployed sign function serves it (until then: a note, and the
object stays). Every step prints its latency.

Needs ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET (+ _SECURITY_TOKEN for STS), ALIBABA_CLOUD_ACCOUNT_ID,
DEPLOY_REGION, and SMOKE_JWT or AUTH_JWT_SECRET to mint a caller token. Without credentials it
says so and exits 0.

    python -m deploy.smoke [template.yml]
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import jwt
import requests

from deploy.template import Function, Template, load_template, read_dotenv

HTTP_TIMEOUT = 15.0
SMOKE_USER = "smoke-test"
# A well-formed callback that OSS never signed: the deployed callback must answer 401.
FORGED_BODY = "bucket=smoke&object=uploads%2Fsmoke-test%2Fforged.txt&etag=0&size=1&grant=forged"
FORGED_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Authorization": base64.b64encode(b"\x00" * 128).decode(),
    "x-oss-pub-key-url": base64.b64encode(
        b"https://gosspublic.alicdn.com/callback_pub_key_v1.pem"
    ).decode(),
}


# The smallest valid PNG (1×1, grey): uploads are typically images, and the allow-list of a
# deployment (UPLOAD_ALLOWED_TYPES) is likelier to admit image/png than anything else.
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
)
LISTING_WAIT_SECONDS = 10.0  # the owner index is updated asynchronously
LISTING_POLL_SECONDS = 0.5


class FcClient(Protocol):
    """What the smoke test needs of `fc2.Client`."""

    def get_function(self, serviceName: str, functionName: str) -> Any: ...

    def list_triggers(self, serviceName: str, functionName: str) -> Any: ...

    def invoke_function(
        self, serviceName: str, functionName: str, payload: bytes | None = None
    ) -> Any: ...


@dataclass(frozen=True)
class Config:
    region: str
    account_id: str
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(default="", repr=False)
    caller_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class Result:
    check: str
    ok: bool
    detail: str = ""
    ms: float | None = None  # latency of the call the check made
    skipped: bool = False  # not checked: the deployment cannot do it yet (detail says why)


def load_config(environ: Mapping[str, str], now: float) -> tuple[Config | None, str]:
    """The deployment to check, or None and why the smoke test cannot run here."""
    key_id = environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
    secret = environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")
    if not key_id or not secret:
        return None, "no ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET in the environment"
    missing = [n for n in ("ALIBABA_CLOUD_ACCOUNT_ID", "DEPLOY_REGION") if not environ.get(n)]
    if missing:
        return None, f"{', '.join(missing)} not set"
    token = environ.get("SMOKE_JWT", "")
    if not token and environ.get("AUTH_JWT_SECRET"):
        claims = {"sub": SMOKE_USER, "iat": int(now), "exp": int(now) + 300}
        for claim, name in (("aud", "AUTH_JWT_AUDIENCE"), ("iss", "AUTH_JWT_ISSUER")):
            if environ.get(name):
                claims[claim] = environ[name]
        token = jwt.encode(claims, environ["AUTH_JWT_SECRET"], algorithm="HS256")
    return (
        Config(
            region=environ["DEPLOY_REGION"],
            account_id=environ["ALIBABA_CLOUD_ACCOUNT_ID"],
            access_key_id=key_id,
            access_key_secret=secret,
            security_token=environ.get("ALIBABA_CLOUD_SECURITY_TOKEN", ""),
            caller_token=token,
        ),
        "",
    )


def fc2_client(config: Config) -> FcClient:
    """The FC 2.0 management client (aliyun-fc2), with a short timeout."""
    import fc2  # type: ignore[import-untyped]  # noqa: PLC0415 - only when really deploying

    client: FcClient = fc2.Client(
        endpoint=f"https://{config.account_id}.{config.region}.fc.aliyuncs.com",
        accessKeyID=config.access_key_id,
        accessKeySecret=config.access_key_secret,
        securityToken=config.security_token,
        Timeout=HTTP_TIMEOUT,
    )
    return client


class Smoke:
    """One run of the checks; every check appends a Result and never raises."""

    def __init__(
        self,
        template: Template,
        config: Config,
        client: FcClient,
        session: requests.Session,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.template = template
        self.config = config
        self.client = client
        self.session = session
        self.sleep = sleep
        self.results: list[Result] = []
        self.service = str(template.service.get("name", ""))

    def record(self, check: str, ok: bool, detail: str = "", ms: float | None = None) -> bool:
        self.results.append(Result(check, ok, detail, ms))
        return ok

    def run(self) -> list[Result]:
        urls = {key: self.check_function(key) for key in self.template.functions}
        if urls.get("callback"):
            self.check_forged_callback(urls["callback"] or "")
        sign = urls.get("sign")
        if not sign:
            return self.results
        grant = self.check_grant(sign, urls.get("callback"))
        key = self.check_upload(grant) if grant is not None else None
        if key is not None:
            self.check_listed(sign, key)
        if "reconcile" in self.template.functions:
            self.check_reconcile()
        if key is not None:
            self.check_delete(sign, key)
        return self.results

    # --- FC configuration --------------------------------------------------------------------

    def check_function(self, key: str) -> str | None:
        """Runtime, handler, environment names and the HTTP trigger; returns the trigger URL."""
        spec = self.template.functions[key]
        started = time.perf_counter()
        try:
            config = self.client.get_function(self.service, spec.name).data
        except Exception as exc:  # fc2.FcError, network errors: reported, never raised
            self.record(f"{key}: get_function", False, _describe(exc), _since(started))
            return None
        self.record(
            f"{key}: runtime",
            config.get("runtime") == spec.runtime,
            f"{config.get('runtime')!r}, template says {spec.runtime!r}",
            _since(started),  # the get_function call
        )
        self.record(
            f"{key}: handler",
            config.get("handler") == spec.handler,
            f"{config.get('handler')!r}, template says {spec.handler!r}",
        )
        deployed = set((config.get("environmentVariables") or {}).keys())
        missing = sorted(set(spec.environment) - deployed)
        self.record(
            f"{key}: environment variables",
            not missing,
            f"missing {missing}" if missing else f"{len(spec.environment)} names present",
        )
        return self.check_trigger(key, spec)

    def check_trigger(self, key: str, spec: Function) -> str | None:
        started = time.perf_counter()
        try:
            triggers = self.client.list_triggers(self.service, spec.name).data.get("triggers", [])
        except Exception as exc:
            self.record(f"{key}: list_triggers", False, _describe(exc), _since(started))
            return None
        ms = _since(started)
        if any(t.type == "timer" for t in spec.triggers):  # the reconcile function: no URL
            timers = [t for t in triggers if t.get("triggerType") == "timer"]
            self.record(f"{key}: one timer trigger", len(timers) == 1, f"{len(timers)} found", ms)
            return None
        http = [t for t in triggers if t.get("triggerType") == "http"]
        if not self.record(f"{key}: one HTTP trigger", len(http) == 1, f"{len(http)} found", ms):
            return None
        trigger = http[0]
        config = trigger.get("triggerConfig") or {}
        if isinstance(config, str):
            config = json.loads(config)
        (expected,) = spec.triggers
        self.record(
            f"{key}: trigger is anonymous",
            config.get("authType") == "anonymous",
            f"authType {config.get('authType')!r}",
        )
        methods = sorted(m.upper() for m in config.get("methods") or [])
        self.record(
            f"{key}: trigger methods",
            methods == sorted(expected.methods),
            f"{methods}, template says {sorted(expected.methods)}",
        )
        url = str(trigger.get("urlInternet") or "") or (
            f"https://{self.config.account_id}.{self.config.region}.fc.aliyuncs.com"
            f"/2016-08-15/proxy/{self.service}/{spec.name}/"
        )
        return url if url.endswith("/") else url + "/"

    # --- over HTTP ---------------------------------------------------------------------------

    def check_forged_callback(self, url: str) -> None:
        """Anyone can make OSS (or curl) call this URL: an unsigned callback must get 401."""
        started = time.perf_counter()
        try:
            answer = self.session.post(
                url + "oss-callback", data=FORGED_BODY, headers=FORGED_HEADERS, timeout=HTTP_TIMEOUT
            )
        except requests.RequestException as exc:
            self.record("callback: forged callback refused", False, _describe(exc), _since(started))
            return
        code = _json(answer).get("code")
        self.record(
            "callback: forged callback refused",
            answer.status_code == 401 and code == "SignatureInvalid",
            f"HTTP {answer.status_code} {code}",
            _since(started),
        )

    def check_grant(self, url: str, callback_url: str | None) -> dict[str, Any] | None:
        """A real caller token gets a complete grant whose callback points at our callback."""
        if not self.config.caller_token:
            self.record("sign: grant issued", False, "set SMOKE_JWT or AUTH_JWT_SECRET")
            return None
        started = time.perf_counter()
        try:
            answer = self.session.get(
                url + "signature",
                params={"path": "smoke/"},
                headers=self._bearer(),
                timeout=HTTP_TIMEOUT,
            )
        except requests.RequestException as exc:
            self.record("sign: grant issued", False, _describe(exc), _since(started))
            return None
        ms = _since(started)
        grant = _json(answer)
        fields = grant.get("fields") or {}
        complete = answer.status_code == 200 and all(
            grant.get(name) for name in ("host", "dir", "policy", "callback")
        )
        if not self.record(
            "sign: grant issued",
            complete and isinstance(fields, dict) and bool(fields),
            f"HTTP {answer.status_code} {grant.get('code', '')}".strip(),
            ms,
        ):
            return None
        try:
            callback = json.loads(base64.b64decode(str(grant["callback"]), validate=True))
            target = str(callback["callbackUrl"])
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            self.record("sign: callback URL is the callback trigger", False, _describe(exc))
            return None
        expected = (callback_url or "").rstrip("/")
        self.record(
            "sign: callback URL is the callback trigger",
            not expected or target.rstrip("/") == expected,
            target,
        )
        return grant

    def check_upload(self, grant: Mapping[str, Any]) -> str | None:
        """POST a tiny PNG to the bucket with the grant; OSS relays the callback's answer."""
        key = f"{grant['dir']}smoke-{int(time.time())}-{secrets.token_hex(4)}.png"
        parts: list[tuple[str, Any]] = [("key", (None, key))]
        parts += [(name, (None, str(value))) for name, value in dict(grant["fields"]).items()]
        parts.append(("file", ("smoke.png", TINY_PNG, "image/png")))
        started = time.perf_counter()
        try:
            answer = self.session.post(str(grant["host"]), files=parts, timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            self.record("upload: POST to the bucket", False, _describe(exc), _since(started))
            return None
        ms = _since(started)
        body = _json(answer)
        if answer.status_code == 203:  # stored, but OSS reports the callback failed
            detail = f"HTTP 203: stored without a callback answer ({answer.text[:160]!r})"
        else:
            detail = f"HTTP {answer.status_code} {body.get('Status') or body.get('code') or ''}"
        ok = answer.status_code == 200 and body.get("Status") == "OK" and body.get("key") == key
        self.record(
            "upload: POST to the bucket, callback answered", ok, f"{detail.strip()} {key}", ms
        )
        return key if answer.status_code in (200, 203) else None

    def check_listed(self, url: str, key: str) -> None:
        """The record is listed by GET /uploads (the owner index lags: poll for a while)."""
        started = time.perf_counter()
        tries = 0
        while True:
            tries += 1
            try:
                answer = self.session.get(
                    url + "uploads", headers=self._bearer(), timeout=HTTP_TIMEOUT
                )
            except requests.RequestException as exc:
                self.record("uploads: record listed", False, _describe(exc), _since(started))
                return
            items = _json(answer).get("items")
            keys = [item.get("key") for item in items or [] if isinstance(item, dict)]
            if key in keys or answer.status_code != 200:
                break
            if time.perf_counter() - started + LISTING_POLL_SECONDS > LISTING_WAIT_SECONDS:
                break
            self.sleep(LISTING_POLL_SECONDS)
        self.record(
            "uploads: record listed",
            key in keys,
            f"HTTP {answer.status_code}, {len(keys)} listed, {tries} request(s)",
            _since(started),
        )

    def check_reconcile(self) -> None:
        """One run of the reconcile function, invoked synchronously; it must fail nothing."""
        spec = self.template.functions["reconcile"]
        payload = json.dumps({"triggerName": "smoke", "payload": ""}).encode()
        started = time.perf_counter()
        try:
            answer = self.client.invoke_function(self.service, spec.name, payload=payload)
            summary = json.loads(answer.data)
        except Exception as exc:  # fc2.FcError (a function error too), bad JSON: reported
            self.record("reconcile: one run", False, _describe(exc), _since(started))
            return
        ms = _since(started)
        if not isinstance(summary, dict):
            self.record("reconcile: one run", False, f"answered {str(summary)[:120]!r}", ms)
            return
        counts = ", ".join(
            f"{name} {summary.get(name)}" for name in ("ended", "recorded", "released", "failed")
        )
        self.record("reconcile: one run", summary.get("failed") == 0, counts, ms)

    def check_delete(self, url: str, key: str) -> None:
        """DELETE /uploads/{key}: what the smoke test uploaded goes, where the route exists."""
        started = time.perf_counter()
        try:
            answer = self.session.delete(
                url + "uploads/" + quote(key, safe="/"),
                headers=self._bearer(),
                timeout=HTTP_TIMEOUT,
            )
        except requests.RequestException as exc:
            self.record("uploads: smoke upload deleted", False, _describe(exc), _since(started))
            return
        ms = _since(started)
        body = _json(answer)
        unserved = answer.status_code == 405 or (
            answer.status_code == 404 and str(body.get("message", "")).startswith("no route")
        )
        if unserved:
            note = f"the deployed sign function has no DELETE /uploads/{{key}} yet: {key} stays"
            self.results.append(Result("uploads: smoke upload deleted", True, note, ms, True))
            return
        self.record(
            "uploads: smoke upload deleted",
            answer.status_code in (200, 204),
            f"HTTP {answer.status_code} {body.get('code', '')}".strip(),
            ms,
        )

    def _bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.caller_token}"}


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        value = answer.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def describe(result: Result) -> str:
    """One line per check: mark, name, detail, latency."""
    mark = "skip" if result.skipped else ("ok  " if result.ok else "FAIL")
    detail = f" ({result.detail})" if result.detail else ""
    latency = f" [{result.ms:.0f} ms]" if result.ms is not None else ""
    return f"smoke: {mark} {result.check}{detail}{latency}"


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    client_factory: Callable[[Config], FcClient] = fc2_client,
    session: requests.Session | None = None,
    now: Callable[[], float] = time.time,
) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    path = Path(args[0] if args else "template.yml")
    template = load_template(path)
    if template.is_fc3:
        print("smoke: aliyun-fc2 speaks the FC 2.0 API; check FC 3.0 stacks with `s info`")
        return 2
    if environ is None:
        environ = {**read_dotenv(path.parent / ".env"), **os.environ}
    config, reason = load_config(environ, now())
    if config is None:
        print(f"smoke: skipped, {reason} (nothing deployed can be checked without credentials)")
        return 0
    results = Smoke(template, config, client_factory(config), session or requests.Session()).run()
    for result in results:
        print(describe(result))
    failed = [r for r in results if not r.ok]
    skipped = [r for r in results if r.skipped]
    print(
        f"smoke: {len(results) - len(failed) - len(skipped)} passed, {len(failed)} failed, "
        f"{len(skipped)} skipped"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
