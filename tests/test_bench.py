"""The benchmark harness (bench/): it measures the real code paths and its baselines compute
the right thing. Never a timing: the figures are for bench/RESULTS.md."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature

from bench import baselines, coldstart, fixtures, sizes
from bench.inprocess import Caller, FetchOnce, MemoryStore, callback_handler
from bench.naive import KEY_PATH, naive_app
from bench.run import main
from shared.callback.body import callback_body_template
from tests.support.callbacks import public_pem, rsa_key
from tests.support.data import VECTORS
from tests.support.keyhost import key_host


def test_bare_v4_baseline_reproduces_the_shared_vector() -> None:
    vector = VECTORS["policy_v4"][0]
    policy_b64, signature = baselines.v4_signature(
        vector["secret"], vector["x_oss_date"][:8], vector["region"], vector["policy_json"].encode()
    )
    assert policy_b64 == vector["policy"]
    assert signature == vector["signature"]


def test_bare_rsa_baseline_verifies_c1_and_rejects_a_changed_byte() -> None:
    case = baselines.oss_c1_case(VECTORS)
    case.verify()
    tampered = baselines.RsaCase(case.label, case.public_key, case.message + b"x", case.signature)
    with pytest.raises(InvalidSignature):
        tampered.verify()


def test_naive_verifier_fetches_the_key_over_loopback_every_time() -> None:
    private_key = rsa_key(1024)
    body = b"bucket=bench-bucket&object=a.png"
    with key_host({KEY_PATH: public_pem(private_key)}) as server:
        callback = fixtures.signed_callback(private_key, server.url(KEY_PATH), body)
        app = naive_app(server.base + "/")
        caller = Caller(app, [callback.environ()], expect=200)
        caller(0)
        caller(1)
        assert caller.unexpected == 0
        assert json.loads(caller.last_body) == {"Status": "OK"}
        forged = fixtures.SignedCallback(callback.path, "", body + b"&size=1", callback.headers)
        with pytest.raises(InvalidSignature):
            Caller(app, [forged.environ()], expect=200)(0)


def test_import_profile_attributes_time_to_what_our_code_imports() -> None:
    # -X importtime prints children before their parent; two spaces of indent per level.
    lines = [
        "import time: self [us] | cumulative | imported package",
        "import time:       100 |        100 |         cryptography.x509",
        "import time:       200 |        300 |       jwt.algorithms",
        "import time:       400 |        700 |     jwt",
        "import time:        10 |         10 |     json",
        "import time:        40 |        750 |   shared.auth",
        "import time:         5 |          5 |   shared.errors",
        "import time:        20 |        775 | functions.sign.index",
    ]
    totals = dict(coldstart.direct_imports(lines, top=5))
    # jwt and json are imported by shared.auth; cryptography only by jwt, so it is inside jwt.
    assert totals == {"jwt": 0.7, "json": 0.01}


def test_package_sizes_read_the_tree_and_the_zip(tmp_path: Path) -> None:
    assert sizes.package_size(tmp_path, "sign") is None
    tree = tmp_path / "sign"
    (tree / "shared").mkdir(parents=True)
    (tree / "index.py").write_bytes(b"x" * 100)
    (tree / "shared" / "a.py").write_bytes(b"y" * 1000)
    with zipfile.ZipFile(tmp_path / "sign.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(tree / "index.py", "index.py")
        zf.write(tree / "shared" / "a.py", "shared/a.py")
    size = sizes.package_size(tmp_path, "sign")
    assert size is not None
    assert (size.unzipped, size.files) == (1100, 2)
    assert size.largest[0] == ("shared", 1000)
    assert size.zipped == (tmp_path / "sign.zip").stat().st_size


def test_signed_callback_is_what_the_real_callback_accepts(tmp_path: Path) -> None:
    private_key = rsa_key(2048)
    url = "http://127.0.0.1:9/callback_pub_key.pem"
    template = callback_body_template(fixtures.prefix_grant_token())
    callbacks = [
        fixtures.signed_callback(
            private_key, url, fixtures.callback_body(template, fixtures.callback_values(i))
        )
        for i in range(3)
    ]
    fetch = FetchOnce(public_pem(private_key))
    env = fixtures.callback_env(url, str(tmp_path / "records.sqlite3"))
    store = MemoryStore()
    caller = Caller(
        callback_handler(env, lambda _c: store, fetch), [c.environ() for c in callbacks], 200
    )
    for i in range(3):
        caller(i)
    assert caller.unexpected == 0
    assert fetch.calls == 1  # the trusted key is fetched once, then served from the cache
    assert json.loads(caller.last_body)["key"] == "uploads/alice/bench/00000002.png"
    assert store.get(fixtures.BUCKET, "uploads/alice/bench/00000000.png") is not None


def test_quick_run_prints_a_table_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "RESULTS.md"
    assert main(["--quick", "--output", str(output), "--dist", str(tmp_path / "no-dist")]) == 0
    printed = capsys.readouterr().out
    report = output.read_text(encoding="utf-8")
    for text in (printed, report):
        assert "Targets" in text
        assert "sign: GET /signature" in text
        assert "callback: test key, SQLite store" in text
        assert "naive: key fetched from 127.0.0.1 per request" in text
        assert "POST /multipart/{uploadId}/parts, 100 parts with MD5s, per part" in text
        assert "multipart: Initiate, 4 × 4 MiB presigned V4 parts (4 in flight), Complete" in text
    assert "not measured:" not in report  # every path answered as expected
    assert "| sign package zipped | ≤ 1 MB | not built | not measured |" in report
    for line in ("make bench", "CPU:", "Python:", "Load average"):
        assert line in report
    assert "| sign: SDK loaded after GET /signature? | no (never imported) |" in report
    assert (
        "| callback (tablestore backend): SDK loaded after handler import? | no (lazy) |" in report
    )
