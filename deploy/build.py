"""Build one deployable package per function: `dist/<fn>/` and a deterministic `dist/<fn>.zip`.

Each package holds the function's `index.py` at the root, the `shared/` modules it imports and
the third-party modules that function imports, vendored for FC python3.10 x86_64 from
`requirements.txt` (versions pinned to what the build venv tested). What the runtime already
ships and we choose to use from it (`RUNTIME_PROVIDED`, see docs/deploy.md) is never vendored.

    python -m deploy.build [--dist DIR] [FUNCTION ...]
"""

from __future__ import annotations

import argparse
import modulefinder
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy import BuildError
from deploy.vendor import (
    RUNTIME_OR_TRANSITIVE,
    RUNTIME_PROVIDED,
    implied_imports,
    requirement_pins,
    select_requirements,
    third_party_imports,
    vendor,
)

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("sign", "callback", "reconcile")
TARGET_PYTHON = (3, 10)
# Installer noise that changes from build to build or is never read at run time.
NOISE_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
NOISE_SUFFIXES = (".pyi", ".pyc", ".pyo")
NOISE_DIRS = frozenset({"__pycache__", "tests", "test", "bin"})
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
CODE_DIR = "/code"  # where FC unpacks the package; recorded in bytecode for readable tracebacks


@dataclass(frozen=True)
class Package:
    function: str
    directory: Path
    archive: Path
    vendored: tuple[str, ...]  # requirement pins installed into the package
    runtime_imports: tuple[str, ...]  # modules left to the FC runtime


def deploy_environment(root: Path = ROOT) -> dict[str, str]:
    """The settings `s deploy` will use: `.env` beside the templates, overridden by the shell."""
    from deploy.template import read_dotenv  # noqa: PLC0415 - only the CLI build needs it

    return {**read_dotenv(root / ".env"), **os.environ}


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
