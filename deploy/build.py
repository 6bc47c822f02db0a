"""Build one deployable package per function: `dist/<fn>/` and a deterministic `dist/<fn>.zip`.

Each package holds the function's `index.py` at the root, the `shared/` modules it imports and
the third-party modules that function imports, vendored for FC python3.10 x86_64 from
`requirements.txt` (versions pinned to what the build venv tested). What the runtime already
ships and we choose to use from it (`RUNTIME_PROVIDED`, see docs/deploy.md) is never vendored.

    python -m deploy.build [--dist DIR] [FUNCTION ...]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import modulefinder
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("sign", "callback", "reconcile")
TARGET_PYTHON = (3, 10)
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
# Installer noise that changes from build to build or is never read at run time.
NOISE_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
NOISE_SUFFIXES = (".pyi", ".pyc", ".pyo")
NOISE_DIRS = frozenset({"__pycache__", "tests", "test", "bin"})
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
CODE_DIR = "/code"  # where FC unpacks the package; recorded in bytecode for readable tracebacks


class BuildError(Exception):
    """The package cannot be built as asked; the message says what to fix."""


@dataclass(frozen=True)
class Package:
    function: str
    directory: Path
    archive: Path
    vendored: tuple[str, ...]  # requirement pins installed into the package
    runtime_imports: tuple[str, ...]  # modules left to the FC runtime


# --- what a function imports ------------------------------------------------------------------


def third_party_imports(entry: Path, root: Path = ROOT) -> set[str]:
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


def deploy_environment(root: Path = ROOT) -> dict[str, str]:
    """The settings `s deploy` will use: `.env` beside the templates, overridden by the shell."""
    from deploy.template import read_dotenv  # noqa: PLC0415 - only the CLI build needs it

    return {**read_dotenv(root / ".env"), **os.environ}


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


# --- assembling -------------------------------------------------------------------------------


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


def project_files(entry: Path, root: Path = ROOT) -> list[Path]:
    """The `shared` modules `entry` reaches, lazy imports included, with their packages' __init__."""
    finder = modulefinder.ModuleFinder(path=[str(root)])
    finder.run_script(str(entry))
    files: set[Path] = set()
    for name, module in finder.modules.items():
        file = getattr(module, "__file__", None)
        if name.split(".")[0] != "shared" or file is None:
            continue
        path = Path(file).resolve()
        files.add(path)
        for parent in path.relative_to(root.resolve()).parents:
            if parent != Path():
                files.add(root.resolve() / parent / "__init__.py")
    return sorted(files)


def copy_project(function: str, target: Path, root: Path = ROOT) -> None:
    """The handler file at the package root (handler `index.handler`) and the `shared` modules it
    imports: each function ships only its own room of the package and the common modules."""
    entry = root / "functions" / function / "index.py"
    shutil.copy2(entry, target / "index.py")
    for path in project_files(entry, root):
        destination = target / path.relative_to(root.resolve())
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def strip(target: Path) -> None:
    """Drop installer records, stubs, scripts and test suites: never read on FC, vary per build."""
    for path in sorted(target.rglob("*"), reverse=True):
        if not path.exists():
            continue
        relative = path.relative_to(target)
        in_vendor = relative.parts[0] not in ("shared", "index.py")
        if path.is_dir() and path.name in NOISE_DIRS and in_vendor:
            shutil.rmtree(path)
        elif path.is_file() and (path.name in NOISE_FILES or path.suffix in NOISE_SUFFIXES):
            path.unlink()


def compile_bytecode(target: Path) -> bool:
    """Precompile for python3.10 with hash-based pycs: FC's /code is read-only, so without them
    every cold start recompiles every imported module; unchecked hashes survive zip timestamps."""
    if sys.version_info[:2] != TARGET_PYTHON:
        return False
    # A fresh interpreter with a fixed hash seed: frozenset constants are marshalled in hash order.
    command = [
        sys.executable,
        "-m",
        "compileall",
        "-q",
        "-j",
        "1",
        "-d",
        CODE_DIR,
        "--invalidation-mode",
        "unchecked-hash",
        str(target),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BuildError(
            f"bytecode compilation failed in {target}:\n{result.stdout}{result.stderr}"
        )
    return True


def write_zip(source: Path, archive: Path) -> None:
    """Deterministic zip: sorted names, fixed timestamps and modes, fixed compression level."""
    files = sorted(
        (p for p in source.rglob("*") if p.is_file()),
        key=lambda p: p.relative_to(source).as_posix(),
    )
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=ZIP_EPOCH)
            info.create_system = 3  # unix, so external_attr carries the mode
            mode = 0o755 if path.suffix == ".so" else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes(), compresslevel=9)


def build(
    function: str, dist: Path, root: Path = ROOT, environ: Mapping[str, str] | None = None
) -> Package:
    """Assemble `dist/<function>/` and `dist/<function>.zip` from scratch."""
    if function not in FUNCTIONS:
        raise BuildError(f"unknown function {function!r}; choose from {', '.join(FUNCTIONS)}")
    entry = root / "functions" / function / "index.py"
    imports = third_party_imports(entry, root)
    requirements = select_requirements(
        imports,
        requirement_pins(root / "requirements.txt"),
        implied_imports(function, deploy_environment(root) if environ is None else environ),
    )
    target = dist / function
    archive = dist / f"{function}.zip"
    shutil.rmtree(target, ignore_errors=True)
    archive.unlink(missing_ok=True)
    target.mkdir(parents=True)
    vendor(target, requirements)
    copy_project(function, target, root)
    strip(target)
    leaked = sorted(name for name in RUNTIME_PROVIDED if (target / name).exists())
    if leaked:
        raise BuildError(f"{function}: runtime-provided modules were vendored: {leaked}")
    compile_bytecode(target)
    write_zip(target, archive)
    return Package(
        function=function,
        directory=target,
        archive=archive,
        vendored=tuple(requirements),
        runtime_imports=tuple(
            sorted(
                name
                for name in imports & (RUNTIME_PROVIDED | RUNTIME_OR_TRANSITIVE)
                if not (target / name).exists()
            )
        ),
    )


def size_of(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("functions", nargs="*", default=list(FUNCTIONS))
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    if sys.version_info[:2] != TARGET_PYTHON:
        print(
            f"warning: building with Python {sys.version_info[0]}.{sys.version_info[1]}; "
            "bytecode is precompiled only with 3.10 (FC's runtime)",
            file=sys.stderr,
        )
    os.environ.setdefault("PIP_NO_INPUT", "1")
    try:
        for function in args.functions:
            package = build(function, args.dist)
            print(
                f"{function}: {package.archive} {package.archive.stat().st_size / 1e6:.2f} MB zipped, "
                f"{size_of(package.directory) / 1e6:.2f} MB unpacked; vendored "
                f"{', '.join(package.vendored) or 'nothing'}; from the runtime: "
                f"{', '.join(package.runtime_imports) or 'nothing'}"
            )
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
