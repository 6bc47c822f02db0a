"""Run in a fresh interpreter (`python -I bench/child.py CONFIG`): import a handler, serve requests.

Self-contained on purpose: it must not import anything before the handler, so the figures are
those of a cold Function Compute instance. It prints one line, REPORT_MARK + JSON, on stdout.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import base64  # noqa: E402
import importlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

REPORT_MARK = "BENCH-CHILD-REPORT "


def environ_for(spec: dict[str, Any]) -> dict[str, Any]:
    body = base64.b64decode(spec.get("body_b64", ""))
    environ: dict[str, Any] = {
        "REQUEST_METHOD": spec.get("method", "GET"),
        "PATH_INFO": spec.get("path", "/"),
        "QUERY_STRING": spec.get("query", ""),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "9",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    if spec.get("content_type"):
        environ["CONTENT_TYPE"] = spec["content_type"]
    environ.update(spec.get("headers", {}))
    return environ


def serve(handler: Any, spec: dict[str, Any]) -> tuple[int, bytes, float]:
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(line)

    started = time.perf_counter()
    body = b"".join(handler(environ_for(spec), start_response))
    return int(status[0].split()[0]), body, (time.perf_counter() - started) * 1000


def stub_tablestore(fake_module: str, fake_class: str) -> None:
    """Swap tablestore.OTSClient for a fake the moment the real SDK finishes importing."""
    import importlib.abc
    import importlib.machinery

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
            if name != "tablestore":
                return None
            sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None:
                return spec
            real_exec = spec.loader.exec_module

            def exec_module(module: Any) -> None:
                real_exec(module)
                fake = getattr(importlib.import_module(fake_module), fake_class)
                module.OTSClient = fake

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
            return spec

    sys.meta_path.insert(0, Finder())


def block_imports(prefixes: list[str]) -> None:
    """Make packages unimportable, as if the function's package did not ship them (what-if runs)."""
    import importlib.abc

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
            if any(name == p or name.startswith(p + ".") for p in prefixes):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Blocker())


def main() -> None:
    config = json.loads(sys.argv[1])
    if sys.path and sys.path[0] == config.get("script_dir"):
        del sys.path[0]  # this file's folder is not part of any function's package
    sys.path[:0] = config["paths"]
    sys.path.extend(config.get("late_paths", []))
    if config.get("block"):
        block_imports(config["block"])
    if config.get("stub_tablestore"):
        stub_tablestore(*config["stub_tablestore"])
    watch = config.get("watch", [])
    report: dict[str, Any] = {"boot_ms": (time.perf_counter() - STARTED) * 1000}
    sys.stderr.write("BENCH-IMPORT-START\n")  # -X importtime: what follows is the handler's
    sys.stderr.flush()
    started = time.perf_counter()
    module = importlib.import_module(config["module"])
    report["import_ms"] = (time.perf_counter() - started) * 1000
    report["loaded_after_import"] = {name: name in sys.modules for name in watch}
    handler = getattr(module, config.get("attr", "handler"), None)
    results = []
    for spec in config.get("requests", []):
        status, body, elapsed = serve(handler, spec)
        results.append(
            {
                "status": status,
                "ms": elapsed,
                "body": body[:300].decode("utf-8", "replace"),
                "loaded": {name: name in sys.modules for name in watch},
            }
        )
    report["requests"] = results
    report["total_ms"] = (time.perf_counter() - STARTED) * 1000
    report["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stdout.write(REPORT_MARK + json.dumps(report) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
