"""What `make bench` measures: the plan, the results, and the runs that fill them."""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import baselines, coldstart, components, fixtures, inprocess, ledger, sizes, verify
from bench.coldstart import ColdStart
from bench.components import profiles
from bench.inprocess import Measured, callback_tablestore
from bench.naive import KEY_PATH
from tests.support.callbacks import public_pem, rsa_key
from tests.support.data import VECTORS
from tests.support.keyhost import key_host

ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Plan:
    runs: int  # fresh interpreters per cold-start figure
    sign_iterations: int
    callback_iterations: int
    naive_iterations: int
    bare_iterations: int
    component_iterations: int
    slow_runs: int  # cold starts that import the Tablestore SDK (~1 s each)
    profile_iterations: int

    @classmethod
    def full(cls, runs: int) -> Plan:
        return cls(runs, 3000, 1500, 400, 5000, 2000, min(runs, 3), 1000)

    @classmethod
    def quick(cls) -> Plan:
        return cls(1, 30, 30, 10, 50, 30, 1, 20)


@dataclass
class Results:
    plan: Plan
    bare_ms: float = 0.0
    bare_rss_kb: int = 0
    cold: dict[str, ColdStart | str] = None  # type: ignore[assignment]
    warm: dict[str, Measured | str] = None  # type: ignore[assignment]
    parts: list[Measured] = None  # type: ignore[assignment]
    heaviest: dict[str, list[tuple[str, float]]] = None  # type: ignore[assignment]
    sizes: dict[str, sizes.PackageSize | None] = None  # type: ignore[assignment]
    profiles: dict[str, list[tuple[str, float]]] = None  # type: ignore[assignment]
    verify: list[Measured] = None  # type: ignore[assignment]
    python: str = ""  # the interpreter of the cold starts

    def __post_init__(self) -> None:
        self.cold, self.warm, self.parts, self.heaviest, self.sizes = {}, {}, [], {}, {}
        self.profiles, self.verify = {}, []


def attempt(store: dict[str, Any], name: str, produce: Any) -> None:
    """Run one measurement; a failure becomes a row saying why, not a crashed run."""
    try:
        store[name] = produce()
    except Exception as exc:
        store[name] = f"not measured: {type(exc).__name__}: {str(exc)[:300]}"
        print(f"[bench] {name}: {store[name]}", file=sys.stderr)


def collect(plan: Plan, dist: pathlib.Path) -> Results:
    results = Results(plan)
    vectors = VECTORS
    c1 = next(c for c in vectors["callbacks"] if c["id"] == "C1")
    sign_where = coldstart.layout("sign", dist)
    callback_where = coldstart.layout("callback", dist)
    # Built packages run in the FC runtime replica; the repository's code needs this venv.
    built = sign_where.source != "repository"
    python = coldstart.runtime_python() if built else sys.executable
    results.python = python
    results.bare_ms, results.bare_rss_kb = coldstart.bare_python(plan.runs, python)
    private_key = rsa_key(2048)
    count = max(plan.callback_iterations, plan.naive_iterations) + 60
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as tmp,
        inprocess_key_server(private_key) as server,
    ):
        setup = inprocess.callback_setup(count, private_key, server.url(KEY_PATH))
        _cold(results, (sign_where, callback_where), setup, c1, tmp, python=python)
        _warm(results, plan, setup, c1)
    for function in ("sign", "callback"):
        results.sizes[function] = sizes.package_size(dist, function)
    return results


def not_shipped(where: coldstart.Layout, modules: tuple[str, ...]) -> tuple[str, ...]:
    """Modules a built package leaves out: blocked in its cold start, as on a bare runtime.

    `python -I` still sees the bench venv's site-packages; without the block PyJWT would import
    the venv's cryptography, which the sign package deliberately does not ship.
    """
    if where.source == "repository":
        return ()
    return tuple(m for m in modules if not any((pathlib.Path(p) / m).exists() for p in where.paths))


def inprocess_key_server(private_key: Any) -> Any:
    """The test public key on 127.0.0.1, as OSS's key host would serve it."""
    return key_host({KEY_PATH: public_pem(private_key)})


def _cold(
    results: Results,
    layouts: tuple[coldstart.Layout, coldstart.Layout],
    setup: inprocess.CallbackSetup,
    c1: dict[str, Any],
    tmp: str,
    *,
    python: str,
) -> None:
    """In the FC runtime replica when built (its built-ins, cryptography included, on the path
    after the package); otherwise in this venv, blocking what a package does not ship."""
    plan, (sign_where, callback_where) = results.plan, layouts
    cold, runs = results.cold, plan.runs
    replica = coldstart.is_replica(python)
    sign_env = fixtures.sign_env()
    sign_request = fixtures.sign_request_spec(fixtures.user_token())
    sign_block = () if replica else not_shipped(sign_where, ("cryptography",))
    attempt(
        cold,
        "sign",
        lambda: coldstart.cold_start(
            "sign", sign_where, sign_env, [sign_request], runs, block=sign_block, python=python
        ),
    )
    if not replica:
        attempt(
            cold,
            "sign-no-cryptography" if not sign_block else "sign-with-cryptography",
            lambda: coldstart.cold_start(
                "sign",
                sign_where,
                sign_env,
                [sign_request],
                runs,
                block=() if sign_block else ("cryptography",),
            ),
        )
    callback_env = fixtures.callback_env(setup.key_url, os.path.join(tmp, "cold.sqlite3"))
    specs = [c.spec() for c in setup.callbacks]
    attempt(
        cold,
        "callback",
        lambda: coldstart.cold_start(
            "callback", callback_where, callback_env, specs[:1], runs, python=python
        ),
    )
    pinned_env = {**callback_env, "OSS_BUCKET": "yonghu-test"}
    pinned = {**fixtures.c1_callback(c1).spec(), "expect": 400}
    attempt(
        cold,
        "callback-pinned",
        lambda: coldstart.cold_start(
            "callback C1", callback_where, pinned_env, [pinned], runs, python=python
        ),
    )
    ts_env = {**callback_env, **fixtures.tablestore_overrides()}
    attempt(
        cold,
        "callback-tablestore",
        lambda: coldstart.cold_start(
            "callback tablestore",
            callback_where,
            ts_env,
            specs[1:3],
            plan.slow_runs,
            stub_tablestore=True,
            python=python,
        ),
    )
    attempt(
        cold,
        "import-tablestore",
        lambda: coldstart.import_only("tablestore", plan.slow_runs, python=python),
    )
    attempt(cold, "import-requests", lambda: coldstart.import_only("requests", runs, python=python))
    for name, where, env, block in (
        ("sign", sign_where, sign_env, sign_block),
        ("callback", callback_where, callback_env, ()),
    ):
        try:
            results.heaviest[name] = coldstart.heaviest_imports(
                where, env, block=block, python=python
            )
        except Exception as exc:
            print(f"[bench] import profile of {name}: {exc}", file=sys.stderr)


def _warm(results: Results, plan: Plan, setup: inprocess.CallbackSetup, c1: dict[str, Any]) -> None:
    from shared.records.sqlite import SqliteStore

    warm = results.warm
    policy = baselines.typical_policy()
    attempt(warm, "bare-v4", lambda: inprocess.measure_bare_v4(plan.bare_iterations, policy))
    attempt(warm, "sign", lambda: inprocess.measure_sign(plan.sign_iterations))
    for backend in ("none", "sqlite", "tablestore"):
        attempt(
            warm,
            f"sign-ledger-{backend}",
            lambda b=backend: ledger.measure_sign_ledger(plan.sign_iterations, b),  # type: ignore[misc]
        )
    attempt(warm, "sweep", lambda: ledger.measure_sweep(max(20, plan.sign_iterations // 10)))
    attempt(
        warm, "bare-rsa-test", lambda: inprocess.measure_bare_rsa(setup.bare, plan.bare_iterations)
    )
    oss_case = baselines.oss_c1_case(VECTORS)
    attempt(
        warm, "bare-rsa-oss", lambda: inprocess.measure_bare_rsa(oss_case, plan.bare_iterations)
    )
    n = plan.callback_iterations
    attempt(
        warm,
        "callback-memory",
        lambda: inprocess.measure_callback(
            setup,
            n,
            "callback: test key, store = in-memory dict",
            lambda _t: inprocess.MemoryStore(),
        ),
    )
    attempt(
        warm,
        "callback-sqlite",
        lambda: inprocess.measure_callback(
            setup,
            n,
            "callback: test key, SQLite store",
            lambda t: SqliteStore(os.path.join(t, "warm.sqlite3")),
        ),
    )
    attempt(warm, "callback-tablestore", lambda: callback_tablestore(setup, n))
    attempt(warm, "callback-c1", lambda: inprocess.measure_callback_pinned_c1(c1, n))
    attempt(warm, "naive", lambda: inprocess.measure_naive(setup, plan.naive_iterations))
    try:
        results.verify = verify.measure_modes(setup, min(n, 300))
    except Exception as exc:
        print(f"[bench] verify: {type(exc).__name__}: {exc}", file=sys.stderr)
    try:
        results.profiles = profiles(setup, plan.profile_iterations)
    except Exception as exc:
        print(f"[bench] profiles: {type(exc).__name__}: {exc}", file=sys.stderr)
    producers: list[Callable[[], list[Measured]]] = [
        lambda: components.sign_components(plan.component_iterations),
        lambda: components.callback_components(setup, plan.component_iterations),
    ]
    for produce in producers:
        try:
            results.parts.extend(produce())
        except Exception as exc:
            print(f"[bench] components: {type(exc).__name__}: {exc}", file=sys.stderr)
