"""Start-up imports trimmed to what a function uses: a cold start is billed, and OSS waits for it.

PyJWT's package `__init__` imports its JWKS client (`urllib.request`, `http.client`, `ssl`,
`email`: about a third of a cold start) and, whenever `cryptography` can be imported, its
asymmetric algorithms with `cryptography.x509`. On FC's python3.10 runtime `cryptography` always
can be imported (aliyun-python-sdk-core brings it), whether or not a package ships it.

`import_pyjwt(asymmetric=False)`, called by a function's entry point before anything imports
`jwt`, imports the real PyJWT package as its `__init__` is written, less two things: the JWKS
client is imported when `jwt.PyJWKClient` is first used, and `cryptography` stays hidden from
PyJWT while it loads, so it offers HMAC algorithms only (all a function that verifies HS256 tokens
uses). `asymmetric=True` (AUTH_JWKS_URL) imports PyJWT unchanged. Without a call, `import jwt`
is the plain import: nothing depends on this module but start-up time.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

JWKS_CLIENT_IMPORT = b"from .jwks_client import PyJWKClient\n"  # a line of jwt/__init__.py
LAZY_NAMES = {"PyJWKClient": "jwt.jwks_client"}


def import_pyjwt(*, asymmetric: bool) -> ModuleType:
    """PyJWT, imported once; see the module docstring for what `asymmetric=False` leaves out."""
    if "jwt" in sys.modules or asymmetric:
        return importlib.import_module("jwt")
    spec = importlib.util.find_spec("jwt")
    if spec is None or spec.origin is None or spec.loader is None:
        return importlib.import_module("jwt")  # let the plain import report what is missing
    with open(spec.origin, "rb") as file:
        source = file.read()
    if source.count(JWKS_CLIENT_IMPORT) != 1:
        return importlib.import_module("jwt")  # a PyJWT laid out otherwise: import it as it is
    module = importlib.util.module_from_spec(spec)
    module.__dict__["__getattr__"] = _lazy_attribute  # PEP 562: jwt.PyJWKClient on first use
    sys.modules["jwt"] = module
    try:
        with _hidden(("cryptography",)):
            # PyJWT's own __init__, less the one import line (line numbers kept), as the package.
            code = compile(source.replace(JWKS_CLIENT_IMPORT, b"\n"), spec.origin, "exec")
            exec(code, module.__dict__)  # noqa: S102
    except BaseException:
        for name in [n for n in sys.modules if n == "jwt" or n.startswith("jwt.")]:
            del sys.modules[name]
        raise
    return module


def _lazy_attribute(name: str) -> Any:
    """`jwt.PyJWKClient`, imported on first use."""
    if name in LAZY_NAMES:
        return getattr(importlib.import_module(LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'jwt' has no attribute {name!r}")


class _Hide:
    """A meta path finder (duck-typed: importlib.abc costs an import at start-up)."""

    def __init__(self, packages: Sequence[str]) -> None:
        self.packages = tuple(packages)

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name in self.packages or name.startswith(tuple(p + "." for p in self.packages)):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


@contextmanager
def _hidden(packages: Sequence[str]) -> Iterator[None]:
    """Modules of `packages` not imported yet cannot be imported inside the block."""
    finder = _Hide(packages)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
