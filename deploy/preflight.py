"""Refuse to deploy a Serverless Devs template whose functions cannot start.

The template is rendered the way `s` will (deploy/template.py), then every function's
environment is loaded with the settings class its code loads at start-up, so a missing or
malformed setting stops `make deploy` here instead of at the first cold start.

With credentials in the environment (ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET[/SECURITY_TOKEN], or
the sign function's OSS_ACCESS_KEY_ID/SECRET) it also reads the upload bucket's versioning state
(GetBucketVersioning) and refuses a versioned bucket unless told to accept one (below).

    python -m deploy.preflight template.yml [--allow-versioned-bucket]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from deploy.template import (
    Template,
    TemplateError,
    deployment_values,
    function_environment,
    load_template,
    read_dotenv,
    render,
)
from shared.callback.settings import CallbackSettings
from shared.credentials import resolve_credentials
from shared.errors import ConfigError, Unavailable
from shared.oss import bucket_client
from shared.reconcile.settings import ReconcileSettings
from shared.sign.settings import SignSettings

SETTINGS_LOADERS: Mapping[str, Callable[[Mapping[str, str]], object]] = {
    "sign": SignSettings.from_env,
    "callback": CallbackSettings.from_env,
    "reconcile": ReconcileSettings.from_env,
}
ALLOW_VERSIONED = "--allow-versioned-bucket"
VERSIONED = ("Enabled", "Suspended")  # GetBucketVersioning's Status once versioning was ever on
VERSIONING_TIMEOUT_SECONDS = 10.0


def check(template: Template, environ: Mapping[str, str]) -> list[str]:
    """Every problem that would make the deploy fail or a function refuse to start."""
    problems: list[str] = []
    for key, function in template.functions.items():
        if not (template.code_dir(key) / "index.py").is_file():
            problems.append(f"{key}: {function.code}/index.py is missing (run `make build`)")
        try:
            env = function_environment(template, key, environ)
        except TemplateError as exc:
            problems.append(f"{key}: {exc}")
            continue
        built = (template.code_dir(key) / "index.py").is_file()
        if (
            built
            and env.get("AUTH_JWKS_URL")
            and not (template.code_dir(key) / "cryptography").is_dir()
        ):
            problems.append(
                f"{key}: AUTH_JWKS_URL is set but {function.code} ships no cryptography "
                "(run `make build` with AUTH_JWKS_URL set)"
            )
        loader = SETTINGS_LOADERS.get(key)
        if loader is None:
            problems.append(f"{key}: no settings loader for this function")
            continue
        try:
            loader(env)
        except ConfigError as exc:
            problems.append(f"{key}: {exc}")
    problems += tablestore_instance_problems(template, environ)
    for label, raw in deployment_values(template):
        try:
            render(raw, template, environ, {})
        except TemplateError as exc:
            problems.append(f"{label}: {exc}")
    return problems


def tablestore_instance_problems(template: Template, environ: Mapping[str, str]) -> list[str]:
    """RAM resource ARNs name a Tablestore instance in lower case
    (`acs:ots:<region>:<account-id>:instance/<instance>/table/…`): a role policy written for a
    mixed-case name never matches, and every Tablestore call would be refused at run time."""
    names = set()
    for key in template.functions:
        try:
            names.add(function_environment(template, key, environ).get("TABLESTORE_INSTANCE", ""))
        except TemplateError:
            continue  # already reported
    return [
        f"TABLESTORE_INSTANCE: {name!r} is not lower case; RAM resource ARNs name Tablestore "
        "instances in lower case, so the role policies (deploy/ram/*.json) would never match "
        f"it: write {name.lower()!r} here and in the policies"
        for name in sorted(names)
        if name != name.lower()
    ]


BucketFactory = Callable[..., Any]


def bucket_versioning(
    template: Template, environ: Mapping[str, str], connect: BucketFactory = bucket_client
) -> tuple[str | None, str]:
    """The sign function's bucket's versioning Status ("" when never enabled), or None and why
    it was not read. Read with the deployer's credentials and the endpoint the functions use
    (the public one when theirs is the `-internal` endpoint, unreachable from outside)."""
    try:
        oss = SignSettings.from_env(function_environment(template, "sign", environ)).oss
        credentials = resolve_credentials(None, environ, oss.access_key_id, oss.access_key_secret)
    except (TemplateError, ConfigError):
        return None, "the sign function's settings do not load (see above)"
    except Unavailable:
        return None, "no credentials in the environment to read it with"
    oss = replace(oss, endpoint=oss.endpoint.replace("-internal.aliyuncs.com", ".aliyuncs.com"))
    import oss2  # noqa: PLC0415 - only a deploy with credentials needs the SDK

    try:
        bucket = connect(oss, credentials, timeout=VERSIONING_TIMEOUT_SECONDS)
        status = bucket.get_bucket_versioning().status or ""
    except (oss2.exceptions.OssError, OSError) as exc:
        return None, f"GetBucketVersioning on {oss.bucket} failed: {_oss_error(exc)}"
    return status, ""


def versioning_problem(status: str | None, bucket: str, *, allowed: bool) -> str | None:
    """What a versioned bucket means for exact-key grants; a problem unless the deployer accepts it."""
    if status not in VERSIONED or allowed:
        return None
    return (
        f"OSS_BUCKET {bucket!r} has versioning {status}: OSS ignores x-oss-forbid-overwrite on such "
        "a bucket, so an exact-key grant (or a multipart upload) can be used again before it "
        "expires to put a new version over the recorded upload, whose record would then describe "
        f"a version that is no longer current. Use a bucket that never had versioning, or pass "
        f"{ALLOW_VERSIONED} (PREFLIGHT_ARGS={ALLOW_VERSIONED} with make deploy) to accept that"
    )


def _oss_error(exc: Exception) -> str:
    code = getattr(exc, "code", "") or type(exc).__name__
    status = getattr(exc, "status", "")
    return f"{status} {code}".strip()


def main(argv: Sequence[str] | None = None, connect: BucketFactory = bucket_client) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    allowed = ALLOW_VERSIONED in args
    paths = [arg for arg in args if arg != ALLOW_VERSIONED]
    path = Path(paths[0] if paths else "template.yml")
    template = load_template(path)
    environ = {**read_dotenv(path.parent / ".env"), **os.environ}
    problems = check(template, environ)
    if not problems:
        status, why = bucket_versioning(template, environ, connect)
        if status is None:
            print(f"preflight: bucket versioning not checked: {why}")
        else:
            bucket = function_environment(template, "sign", environ).get("OSS_BUCKET", "")
            problem = versioning_problem(status, bucket, allowed=allowed)
            if problem:
                problems.append(problem)
            else:
                accepted = f" (accepted: {ALLOW_VERSIONED})" if status in VERSIONED else ""
                print(f"preflight: bucket versioning: {status or 'never enabled'}{accepted}")
    for problem in problems:
        print(f"preflight: {problem}", file=sys.stderr)
    if problems:
        print(f"preflight: {path} is not ready to deploy", file=sys.stderr)
        return 1
    print(f"preflight: {path} renders and every function's settings load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
