"""The `make dev` stack's configuration (local/dev.py runs it): DEV_* options, the settings each
function gets (production names over dev defaults, the caller's ALIBABA_CLOUD_* dropped), and,
with DEV_OSS_RAM_POLICIES, the role keys and RAM policies the OSS emulator enforces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from local.oss_emulator import AccessKey
from local.oss_emulator.ram import PolicyDocumentError, RamPolicy
from shared.digits import in_range
from shared.errors import ConfigError
from shared.sign.settings import SignSettings

ROOT = Path(__file__).resolve().parent.parent
DEV_SECRETS = {
    "AUTH_JWT_SECRET": "dev-jwt-secret-not-for-production-0001",
    "GRANT_SECRET": "dev-grant-secret-not-for-production-0001",
}
STS_VARIABLES = ("DEV_OSS_STS_ACCESS_KEY_ID", "DEV_OSS_STS_ACCESS_KEY_SECRET", "DEV_OSS_STS_TOKEN")
RAM_DIR = ROOT / "deploy" / "ram"
# With DEV_OSS_RAM_POLICIES=1, each function signs with its own key, which the emulator binds to
# that function's policy in deploy/ram/ (DESIGN.md, Hardening). Dev-only keys, not secrets.
ROLE_KEYS = {
    "sign": AccessKey("dev-sign-access-key-id", "dev-sign-access-key-secret"),
    "callback": AccessKey("dev-callback-access-key-id", "dev-callback-access-key-secret"),
    "reconcile": AccessKey("dev-reconcile-access-key-id", "dev-reconcile-access-key-secret"),
}


@dataclass(frozen=True)
class DevOptions:
    """DEV_* variables: where the listeners bind and where data lives."""

    host: str
    app_port: int
    callback_port: int
    oss_port: int
    data_dir: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DevOptions:
        host = (environ.get("DEV_HOST") or "127.0.0.1").strip()
        data_dir = Path((environ.get("DEV_DATA_DIR") or ".local/").strip() or ".local/")
        return cls(
            host=host,
            app_port=_port(environ, "DEV_APP_PORT", 8000),
            callback_port=_port(environ, "DEV_CALLBACK_PORT", 8001),
            oss_port=_port(environ, "DEV_OSS_PORT", 9000),
            data_dir=data_dir.resolve(),  # relative to where `make dev` runs: the repository
        )


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    text = (environ.get(name) or "").strip()
    if not text:
        return default
    port = in_range(text, 0, 65535, max_digits=5)
    if port is None:
        raise ConfigError(name, f"must be a port number (0 picks a free one), got {text!r}")
    return port


def url_host(host: str) -> str:
    """The host to put in URLs: a wildcard bind is reached on loopback."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def settings_values(
    environ: Mapping[str, str], options: DevOptions, ports: Mapping[str, int]
) -> dict[str, str]:
    """Dev defaults (DESIGN.md), then the caller's environment minus ALIBABA_CLOUD_*."""
    host = url_host(options.host)
    app_origin = f"http://{host}:{ports['app']}"
    origins = [app_origin]
    if host == "127.0.0.1":
        origins.append(f"http://localhost:{ports['app']}")
    values = {
        "OSS_ACCESS_KEY_ID": "dev-access-key-id",
        "OSS_ACCESS_KEY_SECRET": "dev-access-key-secret",
        "OSS_BUCKET": "dev-bucket",
        "OSS_REGION": "cn-hangzhou",
        "OSS_ENDPOINT": f"http://{host}:{ports['oss']}",
        "CALLBACK_URL": f"http://{host}:{ports['callback']}/oss-callback",
        "RECORDS_BACKEND": "sqlite",
        "SQLITE_PATH": str(options.data_dir / "records.sqlite3"),
        "CORS_ALLOWED_ORIGINS": ",".join(origins),
        **DEV_SECRETS,
    }
    values.update(
        {name: value for name, value in environ.items() if not name.startswith("ALIBABA_CLOUD_")}
    )
    if (environ.get("AUTH_JWKS_URL") or "").strip() and not environ.get("AUTH_JWT_SECRET"):
        # Overriding the sign-in keys with a JWKS URL replaces the dev HS256 secret (the two
        # exclude each other); /dev/token then answers 404.
        del values["AUTH_JWT_SECRET"]
    return values


def ram_policies(environ: Mapping[str, str]) -> bool:
    """DEV_OSS_RAM_POLICIES: 1/true/yes binds each function's key to its RAM policy."""
    text = (environ.get("DEV_OSS_RAM_POLICIES") or "").strip().lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise ConfigError("DEV_OSS_RAM_POLICIES", f"must be 1 or 0, got {text!r}")


def versioning(environ: Mapping[str, str]) -> str:
    """DEV_OSS_VERSIONING: the emulated bucket's versioning state ("" = never enabled)."""
    text = (environ.get("DEV_OSS_VERSIONING") or "").strip()
    states = {"": "", "off": "", "enabled": "Enabled", "suspended": "Suspended"}
    if text.lower() not in states:
        raise ConfigError(
            "DEV_OSS_VERSIONING", f"must be Enabled, Suspended or empty, got {text!r}"
        )
    return states[text.lower()]


def function_values(values: Mapping[str, str], function: str) -> dict[str, str]:
    """The settings one function runs with: its own key when RAM policies are on."""
    own = dict(values)
    if ram_policies(values):
        key = ROLE_KEYS[function]
        own["OSS_ACCESS_KEY_ID"], own["OSS_ACCESS_KEY_SECRET"] = key.key_id, key.secret
    return own


def role_policies(
    values: Mapping[str, str], settings: SignSettings, *, owner_id: str
) -> dict[str, RamPolicy]:
    """Each role key → its deploy/ram/<function>-policy.json (none unless RAM policies are on),
    filled in as docs/deploy.md says: account, bucket, and `uploads/` → UPLOAD_KEY_PREFIX's
    fixed part (`uploads/{user}/` → `uploads/`; empty → the whole bucket)."""
    if not ram_policies(values):
        return {}
    template = settings.upload.key_prefix
    fixed = template.split("{", 1)[0]
    substitutions = {
        "<account-id>": owner_id,
        "<bucket>": settings.oss.bucket,
        "uploads/": fixed[: fixed.rfind("/") + 1],
    }
    try:
        policies = {
            key.key_id: RamPolicy.load(RAM_DIR / f"{function}-policy.json", substitutions)
            for function, key in ROLE_KEYS.items()
        }
    except (OSError, PolicyDocumentError) as exc:
        raise ConfigError("DEV_OSS_RAM_POLICIES", f"cannot load the RAM policies: {exc}") from None
    sts_key_id = (values.get(STS_VARIABLES[0]) or "").strip()
    if sts_key_id:  # the STS key stands for the sign role's temporary credentials
        policies[sts_key_id] = policies[ROLE_KEYS["sign"].key_id]
    return policies


def emulator_keys(values: Mapping[str, str], settings: SignSettings) -> tuple[AccessKey, ...]:
    """OSS_ACCESS_KEY_* (the bucket owner), the role keys when RAM policies are on, and the
    optional STS triple DEV_OSS_STS_ACCESS_KEY_ID/SECRET/TOKEN."""
    keys: list[AccessKey] = []
    if ram_policies(values):
        keys += ROLE_KEYS.values()
    if settings.oss.access_key_id and settings.oss.access_key_secret:
        keys.append(AccessKey(settings.oss.access_key_id, settings.oss.access_key_secret.value))
    sts = [(values.get(name) or "").strip() for name in STS_VARIABLES]
    if any(sts) and not all(sts):
        missing = next(name for name, value in zip(STS_VARIABLES, sts, strict=True) if not value)
        raise ConfigError(missing, "must be set together with the other DEV_OSS_STS_* variables")
    if all(sts):
        keys.append(AccessKey(sts[0], sts[1], sts[2]))
    return tuple(keys)
