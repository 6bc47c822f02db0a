"""The third-party code a function's package carries: the modules its code reaches (lazy imports
too), the pinned requirements that provide them, what FC's python3.10 runtime provides instead,
and the wheels installed for that runtime (docs/deploy.md). `deploy/build.py` assembles the rest.
"""

from __future__ import annotations

import importlib.metadata
import modulefinder
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from deploy import BuildError

# Modules imported by our code that FC's python3.10 runtime provides and we deliberately use from
# there (platform.md §0.3): tablestore 5.4.1 (vendoring 6.x adds ~35 MB of numpy/protobuf/aiohttp)
# and oss2 2.16.0 (the reconcile function lists and HEADs objects with it; pinned in dev to match).
RUNTIME_PROVIDED = frozenset({"tablestore", "oss2"})
# Imported by our code but installed by whoever provides its client library: urllib3 (used by
# the Tablestore adapter) is vendored with requests when a function needs requests, and otherwise
# is the runtime's own, the one its tablestore and requests run on.
RUNTIME_OR_TRANSITIVE = frozenset({"urllib3"})
# Backends a library imports only on demand, so no scan of our code sees them: PyJWT verifies
# RS256/ES256 (AUTH_JWKS_URL) only when `cryptography` can be imported.
IMPLIED_IMPORTS: Mapping[str, tuple[str, ...]] = {"jwt": ("cryptography",)}
# The sign function needs `cryptography` for nothing but AUTH_JWKS_URL: its package ships it only
# when the build's environment sets that variable (`make deploy` builds with the deployment's
# settings), which keeps the package ~0.3 MB instead of ~5 MB and its cold start shorter. A sign
# function started with AUTH_JWKS_URL but without cryptography refuses to start (shared/sign/auth.py).
JWKS_SETTING = "AUTH_JWKS_URL"
PIP_PLATFORM_ARGS = (
    "--only-binary=:all:",
    "--platform",
    "manylinux2014_x86_64",
    "--python-version",
    "3.10",
    "--implementation",
    "cp",
)


def third_party_imports(entry: Path, root: Path) -> set[str]:
    """Top-level names of non-project, non-stdlib modules reachable from `entry`, lazy ones too."""
    finder = modulefinder.ModuleFinder(path=[str(root)])
    finder.run_script(str(entry))
    missing, _maybe_globals = finder.any_missing_maybe()  # `from pkg import name` of a global
    missing_own = sorted(name for name in missing if name.split(".")[0] in ("shared", "functions"))
    if missing_own:
        raise BuildError(f"{entry} reaches project modules that do not exist: {missing_own}")
    names = {name.split(".")[0] for name in finder.badmodules}
    return {
        name
        for name in names
        if name not in sys.stdlib_module_names
        and name not in sys.builtin_module_names
        and name not in ("shared", "functions")
    }


def requirement_pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file, keyed by normalised distribution name."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9._+!-]+)", text)
        if not match:
            raise BuildError(f"{path}: {text!r} is not pinned as name==version")
        pins[normalise(match.group(1))] = f"{match.group(1)}=={match.group(2)}"
    return pins


def normalise(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def top_level_names(distribution: str) -> set[str]:
    """Importable top-level names a distribution installed in this interpreter provides."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise BuildError(f"{distribution} is not installed in the build venv (make venv)") from exc
    declared = dist.read_text("top_level.txt")
    if declared:
        return {line.strip() for line in declared.splitlines() if line.strip()}
    names = set()
    for file in dist.files or ():
        first = file.parts[0]
        if first.endswith((".dist-info", ".data")) or first == "..":
            continue
        names.add(first.split(".")[0])
    return names


def implied_imports(function: str, environ: Mapping[str, str]) -> Mapping[str, tuple[str, ...]]:
    """IMPLIED_IMPORTS, less PyJWT's cryptography for a sign function that uses no JWKS."""
    if function == "sign" and not environ.get(JWKS_SETTING, "").strip():
        return {}
    return IMPLIED_IMPORTS


def select_requirements(
    imports: Iterable[str],
    pins: Mapping[str, str],
    implied: Mapping[str, tuple[str, ...]] = IMPLIED_IMPORTS,
) -> list[str]:
    """The pinned requirements that provide `imports`; an import nobody provides is an error."""
    providers = {name: top_level_names(name) for name in pins}
    wanted = set(imports)
    for module in imports:
        wanted.update(implied.get(module, ()))
    chosen: set[str] = set()
    for module in sorted(wanted):
        if module in RUNTIME_PROVIDED or module in RUNTIME_OR_TRANSITIVE:
            continue
        owners = [name for name, tops in providers.items() if module in tops]
        if not owners:
            raise BuildError(
                f"module {module!r} is imported but neither pinned in requirements.txt "
                f"nor provided by the runtime ({', '.join(sorted(RUNTIME_PROVIDED))})"
            )
        chosen.update(owners)
    return sorted(pins[name] for name in chosen)


def installed_constraints() -> str:
    """Pin every transitive dependency to the version installed (and tested) in the build venv."""
    lines = {
        f"{dist.metadata['Name']}=={dist.version}"
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"]
    }
    return "\n".join(sorted(lines, key=str.lower)) + "\n"


def vendor(target: Path, requirements: Sequence[str]) -> None:
    """Install wheels for FC's python3.10 x86_64 into the package root (FC puts /code on sys.path)."""
    if not requirements:
        return
    with tempfile.TemporaryDirectory() as scratch:
        constraints = Path(scratch) / "constraints.txt"
        constraints.write_text(installed_constraints())
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "--no-compile",
            *PIP_PLATFORM_ARGS,
            "--target",
            str(target),
            "--constraint",
            str(constraints),
            *requirements,
        ]
        # The command is ours: this interpreter's pip and pinned requirement strings.
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BuildError(f"pip could not vendor {requirements}:\n{result.stderr.strip()}")
