"""`make dev` (`python -m local.dev`): the whole flow on one machine, no cloud account.

Three listeners on DEV_HOST (DESIGN.md, Local stack): the app server (demo page, /dev/token, the
sign function) on DEV_APP_PORT, the callback function on DEV_CALLBACK_PORT (every path), and the
OSS emulator on DEV_OSS_PORT. Settings (local/dev_config.py) are the production names over dev
defaults; the caller's ALIBABA_CLOUD_* are ignored so the sign function signs with
OSS_ACCESS_KEY_*, exactly the credentials the emulator accepts. A line containing "ready" is
printed once every listener accepts connections, and nothing printed before contains that word.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wsgi import get_input_stream

from local.app_server import WSGIApp, create_app_server
from local.dev_config import (
    ROOT,
    DevOptions,
    emulator_keys,
    function_values,
    ram_policies,
    role_policies,
    settings_values,
    url_host,
    versioning,
)
from local.oss_emulator import EmulatorConfig, OssEmulator
from local.oss_emulator.callback import Sender, send_with_requests
from shared.callback import app as callback_app
from shared.callback.settings import CallbackSettings
from shared.credentials import Credentials
from shared.errors import ConfigError
from shared.http.fc2 import wsgi_adapter
from shared.records import Store
from shared.sign import app as sign_app
from shared.sign.settings import SignSettings

READY_TIMEOUT_SECONDS = 10.0


class _QuietHandler(WSGIRequestHandler):
    """The apps log one JSON line per request themselves; skip werkzeug's access line."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class _OssHandler(_QuietHandler):
    """OSS answers with `Server: AliyunOSS`."""

    def version_string(self) -> str:
        return "AliyunOSS"


class _Slot:
    """A WSGI app filled in after the socket is bound (ports must be known to build settings).

    FC hands a function the whole body, so `shared.http` reads `wsgi.input` to its end when there
    is no Content-Length; on a live socket that end never comes. HTTP/1.1 says such a request
    has no body: the slot gives the apps a stream bounded by Content-Length (or the chunked end).
    """

    def __init__(self) -> None:
        self.app: WSGIApp | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.app is not None, "served before the stack was built"
        environ["wsgi.input"] = get_input_stream(environ)
        environ["wsgi.input_terminated"] = True
        return self.app(environ, start_response)


class Stack:
    """The three listeners, built from an environment mapping; `start()` returns once all accept."""

    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        web_root: Path = ROOT / "web",
        sign_environ: Mapping[str, str] | None = None,
        emulator_clock: Callable[[], float] = time.time,
        send_callback: Sender = send_with_requests,
        callback_store: Callable[[Store], Store] | None = None,
        callback_clock: Callable[[], float] | None = None,
    ) -> None:
        self.environ = dict(environ)
        self.options = DevOptions.from_env(self.environ)
        self.web_root = web_root
        self.sign_environ = sign_environ
        self.emulator_clock = emulator_clock
        self.send_callback = send_callback
        self.callback_store = callback_store  # wraps the store the callback writes (fault tests)
        self.callback_clock = callback_clock  # the callback function's clock (skew tests)
        self.servers: dict[str, BaseWSGIServer] = {}
        self.threads: list[threading.Thread] = []
        self.serving: list[BaseWSGIServer] = []
        self.values: dict[str, str] = {}
        self.emulator: OssEmulator | None = None
        self._store: Any = None

    def url(self, name: str) -> str:
        return f"http://{url_host(self.options.host)}:{self.servers[name].server_port}"

    def start(self) -> None:
        try:
            self._bind()
            self._build()
        except BaseException:
            self.stop()
            raise
        for name, server in self.servers.items():
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.2}, name=f"dev-{name}"
            )
            thread.daemon = True
            thread.start()
            self.threads.append(thread)
            self.serving.append(server)
        self._wait_accepting()

    def _bind(self) -> None:
        ports = {
            "oss": self.options.oss_port,
            "callback": self.options.callback_port,
            "app": self.options.app_port,
        }
        for name, port in ports.items():
            handler = _OssHandler if name == "oss" else _QuietHandler
            self.servers[name] = make_server(
                self.options.host, port, _Slot(), threaded=True, request_handler=handler
            )

    def _build(self) -> None:
        ports = {name: server.server_port for name, server in self.servers.items()}
        self.values = values = settings_values(self.environ, self.options, ports)
        owner = SignSettings.from_env(values)
        sign_values = function_values(values, "sign")
        sign_settings = SignSettings.from_env(sign_values)
        self.options.data_dir.mkdir(parents=True, exist_ok=True)
        config = EmulatorConfig(
            bucket=owner.oss.bucket,
            region=owner.oss.region,
            access_keys=emulator_keys(values, owner),
            data_dir=self.options.data_dir,
            public_url=self.url("oss"),
            cors_origins=owner.cors_origins,
            versioning=versioning(values),
            # The real bucket is private in signed mode (DESIGN "Private files"): so is ours.
            bucket_acl="private" if sign_settings.downloads.mode == "signed" else "public-read",
        )
        self.emulator = OssEmulator(
            replace(config, policies=role_policies(values, owner, owner_id=config.owner_id)),
            now=self.emulator_clock,
            send_callback=self.send_callback,
        )
        trusted = values.get("CALLBACK_TRUSTED_KEY_URLS", "").strip().strip(",")
        values["CALLBACK_TRUSTED_KEY_URLS"] = ",".join(
            part for part in (trusted, self.emulator.config.key_url) if part
        )
        callback_values = function_values(values, "callback")
        callback_settings = CallbackSettings.from_env(callback_values)
        store_factory = self._store_factory(sign_settings)
        sign_core = sign_app.create_app(
            sign_settings,
            environ=self.sign_environ if self.sign_environ is not None else sign_values,
            store_factory=store_factory,
        )
        callback_core = callback_app.create_app(
            callback_settings,
            environ=callback_values,
            store_factory=self._wrapped(store_factory),
            now=self.callback_clock,
        )
        sign = wsgi_adapter(sign_core, function="sign", max_body=sign_app.MAX_BODY)
        self._slot("oss").app = self.emulator
        self._slot("callback").app = wsgi_adapter(
            callback_core, function="callback", max_body=callback_app.MAX_BODY
        )
        self._slot("app").app = create_app_server(
            sign, web_root=self.web_root, auth=sign_settings.auth
        )

    def _store_factory(
        self, settings: SignSettings
    ) -> Callable[[Credentials | None], Store] | None:
        """SQLite: one store the two functions share; Tablestore: the functions' own default."""
        if settings.records.backend != "sqlite":
            return None
        from shared.records.sqlite import SqliteStore  # noqa: PLC0415 - only for this backend

        Path(settings.records.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
        self._store = store = SqliteStore(settings.records.sqlite_path)

        def factory(credentials: Credentials | None) -> Store:
            del credentials
            return store

        return factory

    def _wrapped(
        self, factory: Callable[[Credentials | None], Store] | None
    ) -> Callable[[Credentials | None], Store] | None:
        """The callback's store factory, its store wrapped by `callback_store` when one is given."""
        wrap = self.callback_store
        if wrap is None or factory is None:
            return factory
        inner = factory

        def wrapped(credentials: Credentials | None) -> Store:
            return wrap(inner(credentials))

        return wrapped

    def _slot(self, name: str) -> _Slot:
        app = self.servers[name].app
        assert isinstance(app, _Slot)
        return app

    def _wait_accepting(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        for server in self.servers.values():
            address = (url_host(self.options.host).strip("[]"), server.server_port)
            while True:
                try:
                    with socket.create_connection(address, timeout=1.0):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def stop(self) -> None:
        """Stop every listener and wait for its loop; safe to call twice or after a failed start."""
        for server in self.serving:
            server.shutdown()  # serve_forever returns and closes its socket
        for thread in self.threads:
            thread.join(timeout=5)
        for server in self.servers.values():
            if server not in self.serving:
                server.server_close()  # bound but never served
        self.servers.clear()
        self.serving.clear()
        self.threads.clear()
        if self._store is not None and hasattr(self._store, "close"):
            self._store.close()
            self._store = None

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def describe(stack: Stack) -> list[str]:
    """What the stack prints after the ready line: where each listener is and where data lives."""
    values = stack.values
    return [
        f"oss emulator     {stack.url('oss')}  bucket {values['OSS_BUCKET']}, "
        f"signature {values.get('OSS_SIGNATURE_VERSION', 'v4')}, "
        f"RAM policies {'on' if ram_policies(values) else 'off'}"
        + (f", versioning {versioning(values)}" if versioning(values) else ""),
        f"callback         {values['CALLBACK_URL']}",
        f"sign + demo page {stack.url('app')}  (/signature, /uploads, /dev/token?user=NAME)",
        f"records          {values.get('RECORDS_BACKEND', 'sqlite')} "
        f"{values.get('SQLITE_PATH', '')}",
    ]


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the stack in the foreground until SIGINT (Ctrl-C) or SIGTERM."""
    import os  # noqa: PLC0415 - the one place the process environment is read

    stack = Stack(os.environ if environ is None else environ)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            stack.start()
        except (ConfigError, OSError) as exc:
            print(f"dev stack: cannot start: {exc}", file=sys.stderr, flush=True)
            return 2
        # The ready line comes first: the details below echo settings and paths (a data dir
        # such as /tmp/already/ or a test named *_ready_*), which may contain the word.
        print(f"dev stack ready: open {stack.url('app')} (Ctrl-C stops it)", flush=True)
        for line in describe(stack):
            print(line, flush=True)
        while not stopping.wait(0.5):
            pass
        print("dev stack: stopping", flush=True)
        return 0
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
