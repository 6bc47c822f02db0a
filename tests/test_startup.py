"""shared/startup.py: PyJWT imported for HS256 only, in a fresh interpreter each time (the point
is what a cold start imports), still the real PyJWT for everything our tokens need."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from deploy.build import ROOT

PROBE = r"""
import json, sys
from shared.startup import import_pyjwt
jwt = import_pyjwt(asymmetric=sys.argv[1] == "asymmetric")
loaded = {name: name in sys.modules for name in ("cryptography", "jwt.jwks_client", "urllib.request")}
token = jwt.encode({"sub": "alice"}, "k" * 32, algorithm="HS256")
claims = jwt.decode(token, "k" * 32, algorithms=["HS256"])
try:
    jwt.decode(token, "x" * 32, algorithms=["HS256"])
    forged = "accepted"
except jwt.InvalidSignatureError:
    forged = "refused"
try:
    jwt.decode(token, "k" * 32, algorithms=["RS256"])
    rs256 = "accepted"
except jwt.PyJWTError as exc:
    rs256 = type(exc).__name__
client = jwt.PyJWKClient  # imported on first use
print(json.dumps({"loaded": loaded, "claims": claims, "forged": forged, "rs256": rs256,
                  "has_crypto": jwt.algorithms.has_crypto, "version": jwt.__version__,
                  "client": client.__module__, "again": import_pyjwt(asymmetric=True) is jwt,
                  "jwks_after": "jwt.jwks_client" in sys.modules}))
"""


@pytest.mark.parametrize("asymmetric", [False, True], ids=["hmac", "asymmetric"])
def test_hmac_only_pyjwt_skips_cryptography_and_the_jwks_client_until_used(
    asymmetric: bool,
) -> None:
    """The asymmetric import is the plain one; either is the real PyJWT, imported once."""
    mode = "asymmetric" if asymmetric else "hmac"
    result = subprocess.run(  # noqa: S603 - this interpreter, our probe
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer.pop("version")
    assert answer == {
        "loaded": dict.fromkeys(("cryptography", "jwt.jwks_client", "urllib.request"), asymmetric),
        "claims": {"sub": "alice"},
        "forged": "refused",
        "rs256": "InvalidAlgorithmError",
        "has_crypto": asymmetric,
        "client": "jwt.jwks_client",
        "jwks_after": True,
        "again": True,  # imported once: a later call returns the same module
    }
