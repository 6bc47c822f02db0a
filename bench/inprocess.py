"""Warm per-request figures: the real handlers called in process, the way FC calls a warm instance.

Every request goes through `shared.http.wsgi_adapter` over the real `create_app`, as
`functions/*/index.py` wires them; only the settings (a dict), the key fetch (answered once,
from memory) and, for one row, the Tablestore client (a fake `OTSClient`) are ours.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import fixtures
from bench.baselines import RsaCase, v4_signature
from bench.timing import PerCall, per_call
from shared.records.base import PutOutcome, PutResult, Record
from tests.support.callbacks import public_pem

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """The access log line is part of the cost, so it is written, but to /dev/null."""
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stderr(sink):
        yield


def open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


class Caller:
    """Calls a WSGI app with a fresh copy of a prepared environ; counts non-expected statuses."""

    def __init__(self, app: WsgiApp, environs: Sequence[dict[str, Any]], expect: int) -> None:
        self.app = app
        self.templates = [(dict(e), e["wsgi.input"].getvalue()) for e in environs]
        self.expect = expect
        self.unexpected = 0
        self.last_status = 0
        self.last_body = b""

    def __call__(self, index: int) -> None:
        template, body = self.templates[index % len(self.templates)]
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(body)
        status: list[str] = []
        chunks = self.app(environ, lambda line, headers, exc_info=None: status.append(line))
        self.last_body = b"".join(chunks)
        self.last_status = int(status[0][:3])
        if self.last_status != self.expect:
            self.unexpected += 1


@dataclass
class Measured:
    label: str
    timing: PerCall
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# --- sign -------------------------------------------------------------------------------------


def sign_handler(env: dict[str, str]) -> WsgiApp:
    """`functions/sign/index.py`'s handler, built from a settings dict instead of os.environ."""
    from shared.http.fc2 import wsgi_adapter
    from shared.sign import app as sign_app
    from shared.sign.settings import SignSettings

    app = sign_app.create_app(SignSettings.from_env(env), environ=env)
    return wsgi_adapter(app, function="sign", max_body=sign_app.MAX_BODY)


def measure_sign(iterations: int) -> Measured:
    env = fixtures.sign_env()
    spec = fixtures.sign_request_spec(fixtures.user_token())
    caller = Caller(sign_handler(env), [fixtures.environ_from_spec(spec)], expect=200)
    with quiet_stderr():
        timing = per_call(caller, iterations)
    _require(caller, "sign GET /signature")
    return Measured("sign: GET /signature (JWT, exact key, V4)", timing)


def measure_bare_v4(iterations: int, policy: bytes) -> Measured:
    """The crypto a grant cannot avoid: V4 key chain (4 HMACs), policy HMAC, base64."""
    secret = fixtures.sign_env()["OSS_ACCESS_KEY_SECRET"]
    timing = per_call(
        lambda _i: v4_signature(secret, "20300101", fixtures.REGION, policy), iterations
    )
    return Measured("bare V4: key chain + policy HMAC + base64", timing, f"policy {len(policy)} B")


# --- callback ---------------------------------------------------------------------------------


class MemoryStore:
    """A dict behind the RecordStore interface: the callback's cost with the store taken out."""

    backend = "memory"

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], Record] = {}
        self._lock = threading.Lock()

    def put(self, record: Record, *, replace: bool) -> PutOutcome:
        with self._lock:
            stored = self._rows.get((record.bucket, record.key))
            if stored is not None and stored.etag == record.etag:
                return PutOutcome(stored, PutResult.DUPLICATE)
            self._rows[(record.bucket, record.key)] = record
            return PutOutcome(record, PutResult.CREATED if stored is None else PutResult.REPLACED)

    def get(self, bucket: str, key: str) -> Record | None:
        return self._rows.get((bucket, key))

    def list_by_owner(self, owner: str, *, limit: int = 50, cursor: str | None = None) -> Any:
        raise NotImplementedError("not used by the callback")

    # The grant ledger, taken out too: no grant is found, usage is not kept.
    def get_grant(self, owner: str, grant_id: str) -> None:
        return None

    def charge(self, owner: str, size: int, files: int, limits: Any) -> None:
        return None

    def refund(self, owner: str, size: int, files: int) -> None:
        return None


class FetchOnce:
    """The trusted test key URL answered from memory; counts fetches to prove the cache holds."""

    def __init__(self, pem: bytes) -> None:
        self.pem = pem
        self.calls = 0

    def __call__(self, url: str) -> bytes:
        self.calls += 1
        return self.pem


def callback_handler(
    env: dict[str, str], store_factory: Callable[[Any], Any], fetch: Callable[[str], bytes]
) -> WsgiApp:
    """`functions/callback/index.py`'s handler, with the store and key fetch injected."""
    from shared.callback import app as callback_app
    from shared.callback.settings import CallbackSettings
    from shared.http.fc2 import wsgi_adapter

    app = callback_app.create_app(
        CallbackSettings.from_env(env), environ=env, store_factory=store_factory, fetch=fetch
    )
    return wsgi_adapter(app, function="callback", max_body=callback_app.MAX_BODY)


@dataclass
class CallbackSetup:
    """Signed callbacks (distinct objects, one prefix grant) and the key that signed them."""

    key_url: str
    pem: bytes
    callbacks: list[fixtures.SignedCallback]
    bare: RsaCase

    def environs(self) -> list[dict[str, Any]]:
        return [c.environ() for c in self.callbacks]


def callback_setup(count: int, private_key: Any, key_url: str) -> CallbackSetup:
    """`count` callbacks signed with `private_key`, naming `key_url` in x-oss-pub-key-url."""
    from bench.baselines import test_key_case

    template = _template()
    callbacks = [
        fixtures.signed_callback(
            private_key, key_url, fixtures.callback_body(template, fixtures.callback_values(i))
        )
        for i in range(count)
    ]
    first = callbacks[0]
    bare = test_key_case(private_key, first.path.encode() + b"\n" + first.body)
    return CallbackSetup(key_url, public_pem(private_key), callbacks, bare)


def _template() -> str:
    from shared.callback.body import callback_body_template

    return callback_body_template(fixtures.prefix_grant_token())


def measure_callback(
    setup: CallbackSetup,
    iterations: int,
    label: str,
    make_store: Callable[[str], Any],
    env_overrides: dict[str, str] | None = None,
) -> Measured:
    """Distinct objects every request (CREATED), so each write is a real insert.

    `make_store(tmpdir)` builds the store the callback's store factory hands out.
    """
    with tempfile.TemporaryDirectory(prefix="bench-callback-") as tmp:
        env = fixtures.callback_env(setup.key_url, os.path.join(tmp, "records.sqlite3"))
        env.update(env_overrides or {})
        fetch = FetchOnce(setup.pem)
        store = make_store(tmp)
        environs = setup.environs()[: max(iterations + 50, 1)]
        caller = Caller(callback_handler(env, lambda _c: store, fetch), environs, expect=200)
        fds_before = open_fds()
        with quiet_stderr():
            timing = per_call(caller, min(iterations, len(environs) - 20), warmup=20)
        fds_after = open_fds()
        close = getattr(store, "close", None)
        if callable(close):
            close()
    _require(caller, label)
    extra = {"key_fetches": fetch.calls}
    if fds_before is not None and fds_after is not None:
        extra["fds_opened"] = fds_after - fds_before
    return Measured(label, timing, extra=extra)


def measure_callback_pinned_c1(vector: dict[str, Any], iterations: int) -> Measured:
    """OSS's own C1 callback with the pinned key: verified, then refused as unusable (400).

    C1's body (`bucket=yonghu-test`) lacks the fields our template asks for, so the callback
    stops after the signature check and the body parse: the pinned-key path without the grant.
    """
    with tempfile.TemporaryDirectory(prefix="bench-c1-") as tmp:
        env = fixtures.callback_env("", os.path.join(tmp, "records.sqlite3"))
        env["OSS_BUCKET"] = "yonghu-test"

        def no_fetch(url: str) -> bytes:
            raise AssertionError(f"the pinned key path fetched {url}")

        environ = fixtures.c1_callback(vector).environ()
        caller = Caller(callback_handler(env, lambda _c: MemoryStore(), no_fetch), [environ], 400)
        with quiet_stderr():
            timing = per_call(caller, iterations)
    _require(caller, "callback C1")
    code = caller.last_body.decode("utf-8", "replace")
    return Measured(
        "callback: OSS vector C1, pinned 512-bit key (400 after verify)", timing, note=code[:60]
    )


def measure_bare_rsa(case: RsaCase, iterations: int) -> Measured:
    return Measured(
        f"bare RSA-MD5 verify, {case.label}", per_call(lambda _i: case.verify(), iterations)
    )


def measure_naive(setup: CallbackSetup, iterations: int) -> Measured:
    """The official sample's shape: fetch the key from a loopback server on every request.

    `setup.key_url` must be served by a running key host (tests/support/keyhost.py).
    """
    from bench.naive import naive_app

    trusted_prefix = setup.key_url.rsplit("/", 1)[0] + "/"
    caller = Caller(naive_app(trusted_prefix), setup.environs(), expect=200)
    timing = per_call(caller, iterations, warmup=5)
    _require(caller, "naive verifier")
    return Measured("naive: key fetched from 127.0.0.1 per request, verify, {Status: OK}", timing)


def _require(caller: Caller, label: str) -> None:
    if caller.unexpected:
        body = caller.last_body.decode("utf-8", "replace")[:300]
        raise RuntimeError(
            f"{label}: {caller.unexpected} unexpected answers (last {caller.last_status}: {body})"
        )


def callback_tablestore(setup: CallbackSetup, iterations: int) -> Measured:
    """The real TablestoreStore over a fake OTSClient (no SDK encoding, no network)."""
    import tablestore

    from shared.credentials import Credentials
    from shared.records import tablestore as backend
    from shared.settings import RecordsSettings, Secret
    from tests.support.ots import FakeOTSClient

    settings = RecordsSettings(
        backend="tablestore",
        tablestore_endpoint="https://bench.cn-hangzhou.ots.aliyuncs.com",
        tablestore_instance="bench",
        tablestore_table="oss_uploads",
        sqlite_path="",
    )
    credentials = Credentials("bench-key-id", Secret("bench-key-secret"))
    real = tablestore.OTSClient
    tablestore.OTSClient = FakeOTSClient
    try:
        store = backend.TablestoreStore(settings, credentials)
    finally:
        tablestore.OTSClient = real
    if not isinstance(store.client, FakeOTSClient):
        raise RuntimeError("the Tablestore store did not take the fake client")
    measured = measure_callback(
        setup,
        iterations,
        "callback: test key, Tablestore store over a fake OTSClient",
        lambda _t: store,
        fixtures.tablestore_overrides(),
    )
    measured.extra["put_rows"] = store.client.put_rows
    return measured
