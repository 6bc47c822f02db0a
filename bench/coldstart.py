"""Cold starts: fresh interpreters (`python -I`) importing a handler and serving one request.

The interpreter is the replica of FC's python3.10 runtime (`make fc-runtime`, .venv-fc/) when it
is built: the package first on sys.path, the runtime's built-in modules (cryptography, requests,
tablestore 5.4.1, …) after it, as on FC. The parent times each child from spawn to exit, each run
paired with a bare `python -I -c pass` of the same interpreter just before it; "above bare" is
the median of those differences. The child reports its own import and request times and its peak
RSS (`ru_maxrss`). Children get a clean environment: only the settings the function reads.

    python -m bench.coldstart [--runs N] [--dist DIR]   # just the cold-start figures
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.timing import ChildRun, median_runs, run_child

BENCH_DIR = pathlib.Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
CHILD = BENCH_DIR / "child.py"
REPLICA = ROOT / ".venv-fc" / "bin" / "python"
WATCH = ("tablestore", "requests", "cryptography", "jwt", "sqlite3", "shared.records.tablestore")


@dataclass(frozen=True)
class Layout:
    """Where a function's code comes from: its built package, or the repository checkout."""

    function: str
    paths: tuple[str, ...]
    module: str
    source: str  # "dist/sign" or "repository"


def layout(function: str, dist: pathlib.Path) -> Layout:
    package = dist / function
    if (package / "index.py").is_file():
        return Layout(function, (str(package),), "index", f"dist/{function}")
    return Layout(function, (str(ROOT),), f"functions.{function}.index", "repository")


def runtime_python() -> str:
    """The FC python3.10 runtime replica when built, else this interpreter (no built-ins)."""
    return str(REPLICA) if REPLICA.is_file() else sys.executable


def is_replica(python: str) -> bool:
    return pathlib.Path(python) == REPLICA


def base_env() -> dict[str, str]:
    """What every child inherits: nothing but a locale and PATH (no credentials, no PYTHON*)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


@dataclass
class ColdStart:
    label: str
    wall_ms: float  # median spawn-to-exit
    runs: int
    import_ms: float  # median, measured inside the child
    request_ms: list[float]  # median per request position
    statuses: list[int]
    maxrss_kb: int  # max over runs
    loaded_after_import: dict[str, bool]
    loaded_after_requests: dict[str, bool]
    bodies: list[str] = field(default_factory=list)
    source: str = ""
    above_bare_ms: float | None = None  # median of (run - bare run just before it)


def bare_python(runs: int, python: str = sys.executable) -> tuple[float, int]:
    """Median wall time of `python -I -c pass`, and its peak RSS."""
    code = (
        "import resource,json;print('BENCH-CHILD-REPORT '+json.dumps({'maxrss_kb':"
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))"
    )
    wall, _ = median_runs([python, "-I", "-c", "pass"], base_env(), runs)
    _, rss_runs = median_runs([python, "-I", "-c", code], base_env(), 1)
    return wall, int(rss_runs[0].report["maxrss_kb"])


def cold_start(
    label: str,
    where: Layout,
    env: Mapping[str, str],
    requests: Sequence[dict[str, Any]],
    runs: int,
    *,
    stub_tablestore: bool = False,
    block: Sequence[str] = (),
    python: str = sys.executable,
) -> ColdStart:
    """Run the handler cold `runs` times; every request must answer as its spec expects."""
    config: dict[str, Any] = {
        "script_dir": str(BENCH_DIR),
        "paths": list(where.paths),
        "module": where.module,
        "requests": [{k: v for k, v in r.items() if k != "expect"} for r in requests],
        "watch": list(WATCH),
    }
    if block:
        config["block"] = list(block)
    if stub_tablestore:
        config["late_paths"] = [str(ROOT)]  # for bench.fakes only, behind the function's code
        config["stub_tablestore"] = ["bench.fakes", "FakeOTSClient"]
    child_env = {**base_env(), **env}
    wall, above, results = paired_runs(
        [python, "-I", str(CHILD), json.dumps(config)], child_env, runs, python
    )
    _check(label, results, requests)
    first = results[0].report
    return ColdStart(
        label=label,
        wall_ms=wall,
        runs=len(results),
        import_ms=statistics.median(r.report["import_ms"] for r in results),
        request_ms=[
            statistics.median(r.report["requests"][i]["ms"] for r in results)
            for i in range(len(requests))
        ],
        statuses=[req["status"] for req in first["requests"]],
        maxrss_kb=max(int(r.report["maxrss_kb"]) for r in results),
        loaded_after_import=first["loaded_after_import"],
        loaded_after_requests=first["requests"][-1]["loaded"] if requests else {},
        bodies=[req["body"] for req in first["requests"]],
        source=where.source,
        above_bare_ms=above,
    )


def paired_runs(
    argv: Sequence[str], env: Mapping[str, str], runs: int, python: str
) -> tuple[float, float, list[ChildRun]]:
    """Median wall, median of (wall - a bare run of `python` just before), and every run."""
    results, differences = [], []
    for _ in range(max(1, runs)):
        bare = run_child([python, "-I", "-c", "pass"], base_env())
        run = run_child(argv, env)
        results.append(run)
        differences.append(run.wall_ms - bare.wall_ms)
    return (
        statistics.median(r.wall_ms for r in results),
        statistics.median(differences),
        results,
    )


def import_only(module: str, runs: int, python: str = sys.executable) -> ColdStart:
    """A fresh interpreter importing one module (e.g. the Tablestore SDK) and nothing else."""
    config = {"script_dir": str(BENCH_DIR), "paths": [], "module": module, "watch": list(WATCH)}
    argv = [python, "-I", str(CHILD), json.dumps(config)]
    wall, above, results = paired_runs(argv, base_env(), runs, python)
    return ColdStart(
        label=f"import {module}",
        wall_ms=wall,
        runs=len(results),
        import_ms=statistics.median(r.report["import_ms"] for r in results),
        request_ms=[],
        statuses=[],
        maxrss_kb=max(int(r.report["maxrss_kb"]) for r in results),
        loaded_after_import=results[0].report["loaded_after_import"],
        loaded_after_requests={},
        above_bare_ms=above,
    )


_IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( +)(\S+)")
OWN_PACKAGES = frozenset({"shared", "functions", "index"})


def heaviest_imports(
    where: Layout,
    env: Mapping[str, str],
    top: int = 6,
    *,
    block: Sequence[str] = (),
    python: str = sys.executable,
) -> list[tuple[str, float]]:
    """`-X importtime` of the handler import: what our modules import directly, by package (ms)."""
    config: dict[str, Any] = {
        "script_dir": str(BENCH_DIR),
        "paths": list(where.paths),
        "module": where.module,
        "block": list(block),
    }
    done = subprocess.run(
        [python, "-I", "-X", "importtime", str(CHILD), json.dumps(config)],
        env={**base_env(), **env},
        capture_output=True,
        timeout=60,
        check=False,
    )
    text = done.stderr.decode("utf-8", "replace").split("BENCH-IMPORT-START", 1)[-1]
    return direct_imports(text.splitlines(), top)


def direct_imports(lines: Sequence[str], top: int) -> list[tuple[str, float]]:
    """Cumulative ms of the third-party/stdlib imports whose importer is one of our modules.

    importtime prints children before their parent; read backwards, each entry's parent is the
    nearest earlier entry one level up.
    """
    entries = []
    for line in lines:
        match = _IMPORTTIME.match(line)
        if match is not None:
            entries.append((len(match.group(3)) // 2, match.group(4), int(match.group(2)) / 1000))
    totals: dict[str, float] = {}
    stack: list[tuple[int, str]] = []
    for depth, name, cumulative_ms in reversed(entries):
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else "index"
        package = name.split(".")[0]
        if package not in OWN_PACKAGES and parent.split(".")[0] in OWN_PACKAGES:
            totals[package] = totals.get(package, 0.0) + cumulative_ms
        stack.append((depth, name))
    return sorted(totals.items(), key=lambda item: -item[1])[:top]


def _check(label: str, results: list[ChildRun], requests: Sequence[dict[str, Any]]) -> None:
    for run in results:
        answers = run.report.get("requests", [])
        for spec, answer in zip(requests, answers, strict=True):
            expected = spec.get("expect", 200)
            if answer["status"] != expected:
                raise RuntimeError(
                    f"{label}: expected {expected}, got {answer['status']}: {answer['body']}"
                )


# Above bare python3.10, the Tablestore SDK import apart. The callback's first request here fetches
# our test key from 127.0.0.1 (requests loads for it); OSS's real callbacks name OSS's key, which
# is pinned: the "OSS key (pinned)" figure is that path.
TARGETS_MS = {"sign": 60.0, "callback": 150.0, "callback, OSS key (pinned)": 150.0}


def measure(dist: pathlib.Path, runs: int, python: str) -> dict[str, ColdStart]:
    """sign (GET /signature) and callback (one key fetch from 127.0.0.1, SQLite) from `dist`,
    and the runtime's Tablestore SDK import on its own."""
    from bench import fixtures
    from bench.inprocess import callback_setup
    from bench.naive import KEY_PATH
    from tests.support.callbacks import public_pem, rsa_key
    from tests.support.data import VECTORS
    from tests.support.keyhost import key_host

    sign_request = fixtures.sign_request_spec(fixtures.user_token())
    private_key = rsa_key(2048)
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as tmp,
        key_host({KEY_PATH: public_pem(private_key)}) as host,
    ):
        key_url = host.url(KEY_PATH)
        setup = callback_setup(1, private_key, key_url)
        callback_env = fixtures.callback_env(key_url, os.path.join(tmp, "cold.sqlite3"))
        c1 = next(c for c in VECTORS["callbacks"] if c["id"] == "C1")
        # OSS's own documented callback, signed with OSS's key, which the callback pins (no
        # fetch): verified, then refused with 400 since its body carries no grant of ours.
        pinned = {**fixtures.c1_callback(c1).spec(), "expect": 400}
        return {
            "sign": cold_start(
                "sign",
                layout("sign", dist),
                fixtures.sign_env(),
                [sign_request],
                runs,
                python=python,
            ),
            "callback": cold_start(
                "callback",
                layout("callback", dist),
                callback_env,
                [setup.callbacks[0].spec()],
                runs,
                python=python,
            ),
            "callback, OSS key (pinned)": cold_start(
                "callback C1",
                layout("callback", dist),
                {**callback_env, "OSS_BUCKET": "yonghu-test"},
                [pinned],
                runs,
                python=python,
            ),
            "import tablestore": import_only("tablestore", max(3, runs // 3), python=python),
        }


def describe(name: str, run: ColdStart) -> str:
    target = TARGETS_MS.get(name)
    verdict = "" if target is None else f" (target ≤ {target:.0f} ms)"
    loaded = ", ".join(
        n for n, on in (run.loaded_after_requests or run.loaded_after_import).items() if on
    )
    requests = "".join(f"; first request {ms:.0f} ms" for ms in run.request_ms[:1])
    return (
        f"{name}: {run.above_bare_ms:.0f} ms above bare{verdict}; wall {run.wall_ms:.0f} ms, "
        f"import {run.import_ms:.0f} ms{requests}; {run.runs} runs; code from {run.source or '-'}; "
        f"loaded: {loaded or 'none of ' + ', '.join(WATCH)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cold starts of the built packages.")
    parser.add_argument("--runs", type=int, default=9, help="paired runs per figure")
    parser.add_argument("--dist", type=pathlib.Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    python = runtime_python()
    where = "FC python3.10 runtime replica" if is_replica(python) else "this venv (no replica)"
    print(f"cold starts in {python} ({where}), median of {args.runs} paired runs")
    for name, run in measure(args.dist, args.runs, python).items():
        print(describe(name, run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
