"""`make probe`: settle on a real bucket what OSS's documentation leaves open (docs/probe.md).

Each experiment (deploy/experiments.py) runs once against the real bucket and once against the
local emulator (`local/oss_emulator`, started here on loopback with the same bucket name and
region), and the two outcomes are printed side by side. Any difference exits 1: the emulator then follows OSS.
Objects are written under `PROBE_PREFIX` (default `probe/`) with the caller's credentials and
deleted afterwards (the emulator has no DeleteObject; its copies go with its temporary folder).

Needs OSS_BUCKET, OSS_REGION and credentials (OSS_ACCESS_KEY_ID/SECRET, or
ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET[/SECURITY_TOKEN]) allowed to PutObject, GetObject, ListObjects,
AbortMultipartUpload and DeleteObject under the prefix; OSS_ENDPOINT overrides `https://oss-<region>.aliyuncs.com`;
PROBE_ORIGIN is an origin the bucket's CORS allows (default: the first AllowedOrigin of
deploy/oss/cors.xml). Without credentials it says so and exits 0.

    python -m deploy.probe
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import oss2
import requests
from werkzeug.serving import make_server

from deploy.experiments import EXPERIMENTS, Experiment, Target
from local.oss_emulator import AccessKey, EmulatorConfig, OssEmulator
from local.oss_emulator.cors import DEPLOYED as CORS_FILE


def load_target(environ: Mapping[str, str]) -> tuple[Target | None, str]:
    """The real bucket, or None and why the probe cannot run here."""
    key_id = environ.get("OSS_ACCESS_KEY_ID") or environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
    secret = environ.get("OSS_ACCESS_KEY_SECRET") or environ.get(
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET", ""
    )
    if not key_id or not secret:
        return None, "no OSS_ACCESS_KEY_ID/SECRET or ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET"
    missing = [name for name in ("OSS_BUCKET", "OSS_REGION") if not environ.get(name)]
    if missing:
        return None, f"{', '.join(missing)} not set"
    bucket, region = environ["OSS_BUCKET"], environ["OSS_REGION"]
    endpoint = environ.get("OSS_ENDPOINT") or f"https://oss-{region}.aliyuncs.com"
    scheme, _, host = endpoint.partition("://")
    return (
        Target(
            name="oss",
            post_url=f"{scheme}://{bucket}.{host.rstrip('/')}",
            sdk_endpoint=endpoint,
            bucket=bucket,
            region=region,
            key_id=key_id,
            secret=secret,
            token=environ.get("ALIBABA_CLOUD_SECURITY_TOKEN", ""),
            origin=environ.get("PROBE_ORIGIN") or deployed_origin(),
            prefix=environ.get("PROBE_PREFIX") or "probe/",
        ),
        "",
    )


def deployed_origin() -> str:
    root = ET.parse(CORS_FILE).getroot()  # noqa: S314 - our own deploy file
    return root.findtext("CORSRule/AllowedOrigin") or ""


@contextmanager
def emulated(real: Target) -> Iterator[Target]:
    """The emulator as the real bucket's twin: same bucket, region and allowed origin."""
    key = AccessKey("probe-access-key-id", secrets.token_hex(16))
    with tempfile.TemporaryDirectory(prefix="oss-probe-") as data:
        slot = _Late()
        server = make_server("127.0.0.1", 0, slot, threaded=True)
        url = f"http://127.0.0.1:{server.server_port}"
        slot.app = OssEmulator(
            EmulatorConfig(
                bucket=real.bucket,
                region=real.region,
                access_keys=(key,),
                data_dir=Path(data),
                public_url=url,
                cors_origins=frozenset([real.origin]),
            )
        )
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
        thread.daemon = True
        thread.start()
        try:
            yield Target(
                "emulator",
                url,
                url,
                real.bucket,
                real.region,
                key.key_id,
                key.secret,
                origin=real.origin,
                prefix=real.prefix,
            )
        finally:
            server.shutdown()
            thread.join(timeout=5)
            server.server_close()


class _Late:
    """A WSGI app set after the socket is bound (the emulator needs its own URL)."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self.app(environ, start_response)


def run(
    real: Target,
    emulator: Target,
    out: TextIO,
    *,
    experiments: Sequence[Experiment] = EXPERIMENTS,
    session: requests.Session | None = None,
) -> int:
    """Every experiment on both; a table; 1 when any outcome differs."""
    http = session or requests.Session()
    differences = 0
    for experiment in experiments:
        observed = {}
        for target in (real, emulator):
            try:
                observed[target.name] = experiment.run(target, http)
            except (requests.RequestException, oss2.exceptions.OssError) as exc:
                observed[target.name] = f"error: {type(exc).__name__}"
        same = observed[real.name] == observed[emulator.name]
        differences += not same
        print(
            f"{'same' if same else 'DIFFERENT':9} {experiment.name}: {experiment.question}",
            file=out,
        )
        print(f"          {real.name}: {observed[real.name]}", file=out)
        print(f"          {emulator.name}: {observed[emulator.name]}", file=out)
    cleanup(real)
    print(f"probe: {differences} difference(s) in {len(experiments)} experiment(s)", file=out)
    return 1 if differences else 0


def cleanup(target: Target) -> None:
    """Delete what the probe wrote under its prefix (best effort)."""
    try:
        sdk = target.sdk()
        keys = [o.key for o in oss2.ObjectIteratorV2(sdk, prefix=target.prefix)]
        for start in range(0, len(keys), 1000):
            sdk.batch_delete_objects(keys[start : start + 1000])
    except (oss2.exceptions.OssError, requests.RequestException):
        return


def main(environ: Mapping[str, str] | None = None, out: TextIO = sys.stdout) -> int:
    real, why = load_target(os.environ if environ is None else environ)
    if real is None:
        print(f"probe: not run ({why}); nothing to compare, see docs/probe.md", file=out)
        return 0
    with emulated(real) as emulator:
        return run(real, emulator, out)


if __name__ == "__main__":
    sys.exit(main())
