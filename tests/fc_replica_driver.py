"""Runs inside the FC python3.10 runtime replica (`.venv-fc/bin/python -I`), never under pytest.

As on FC, the unpacked package comes first on sys.path, the runtime's site-packages after it (none
with `-S`), and the repository, when given, last: for the in-memory Tablestore (tests.support.ots)
on the runtime's tablestore 5.4.1. Argument: a JSON config {"package", "repo", "tablestore",
"checks"}, each check a "wsgi", "event", "reconcile" or "bootstrap" (see run_check). Prints one
line, REPORT + JSON: the answers, the fake table's rows and where modules came from.
"""

from __future__ import annotations

import base64
import importlib
import importlib.metadata
import io
import json
import os
import sys
import sysconfig
from typing import Any

REPORT = "FC-REPLICA-REPORT "


def install_fake_tablestore(table: str) -> Any:
    """Every OTSClient the package builds is the runtime SDK's, answering from one FakeOTS."""
    import tablestore

    from tests.support.ots import FakeOTS, sdk_backed_client_class

    fake = FakeOTS(table=table)
    client_class = sdk_backed_client_class(fake)
    built: list[list[str]] = []  # each client's keyword arguments

    def factory(*args: Any, **kwargs: Any) -> Any:
        built.append(sorted(kwargs))
        return client_class(*args, **kwargs)

    tablestore.OTSClient = factory
    fake.built = built
    return fake


def run_check(check: dict[str, Any], fake: Any) -> dict[str, Any]:
    kind = check["kind"]
    if kind in ("wsgi", "event"):
        index = importlib.import_module("index")
        if kind == "event":
            answer = index.event_handler(json.dumps(check["event"]).encode(), None)
            return {"status": answer["statusCode"], "body": answer["body"]}
        body = base64.b64decode(check["body_b64"])
        environ = {**check["environ"], "wsgi.input": io.BytesIO(body)}
        seen: list[str] = []
        body = b"".join(index.handler(environ, lambda s, h: seen.append(s)))
        return {"status": int(seen[0].split()[0]), "body": body.decode("utf-8", "replace")}
    if kind == "reconcile":
        index = importlib.import_module("index")
        from shared.credentials import resolve_credentials
        from shared.reconcile.app import run
        from shared.records import open_store
        from shared.records.grants import LedgerGrant
        from shared.settings import Limits

        settings = index.settings
        credentials = resolve_credentials(
            None, os.environ, settings.oss.access_key_id, settings.oss.access_key_secret
        )
        # The grants the sign function issued, in this run's ledger (the fake Tablestore).
        store = open_store(settings.records, credentials)
        for grant in check["grants"]:
            store.open_grant(LedgerGrant(**grant), Limits(), grant["created_at"] / 1000)
        timer = json.loads(index.handler(json.dumps({"triggerName": "timer"}).encode(), None))
        # Then the whole-bucket audit: what the sweep recorded is there, nothing else adopted.
        audit = run(settings, credentials, settle=0, since=0).summary()
        return {"timer": timer, "audit": audit}
    if kind == "bootstrap":
        import tablestore

        from tools.tables import create_tablestore_table

        out = io.StringIO()
        exists = tablestore.OTSServiceError(409, "OTSObjectAlreadyExist", "exists", "r")
        fake.existing_indexes = []

        def create_table(*_: Any, **__: Any) -> None:
            raise exists

        def describe_table(table: str) -> Any:
            meta = tablestore.TableMeta(
                table,
                [tuple(c) for c in check["primary_key"]],
                [tuple(c) for c in check["defined_columns"]],
            )
            return tablestore.DescribeTableResponse(
                meta, tablestore.TableOptions(), None, list(fake.existing_indexes)
            )

        def create_secondary_index(table: str, index: Any, *more: Any) -> None:
            fake.calls.append(f"CreateIndex {index.index_name} {list(more)}")
            fake.existing_indexes.append(index)

        fake.create_table = create_table
        fake.describe_table = describe_table
        fake.create_secondary_index = create_secondary_index
        client = tablestore.OTSClient("https://x.cn-hangzhou.ots.aliyuncs.com", "k", "s", "x")
        first = create_tablestore_table(client, fake.table, out)
        calls = list(fake.calls)
        again = create_tablestore_table(client, fake.table, out)
        return {"first": first, "again": again, "out": out.getvalue(), "calls": calls}
    raise ValueError(f"unknown check {kind!r}")


def main() -> None:
    config = json.loads(sys.argv[1])  # run with -I: this file's folder is not on sys.path
    package = os.path.realpath(config["package"])
    sys.path.insert(0, config["package"])
    if config.get("repo"):
        sys.path.append(config["repo"])
    fake = install_fake_tablestore(config["tablestore"]) if config.get("tablestore") else None
    answers = [run_check(check, fake) for check in config["checks"]]
    site = [os.path.realpath(p) + os.sep for p in sys.path if p.endswith("site-packages")]
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep
    origins: dict[str, str] = {}
    outside: list[str] = []  # imported from neither the package nor the standard library
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name == "__main__" or not path:
            continue
        real = os.path.realpath(path)
        if not real.startswith((package + os.sep, stdlib)):
            outside.append(name)
        if "." not in name and real.startswith(package + os.sep):
            origins[name] = "package"
        elif "." not in name and real.startswith(tuple(site)):
            origins[name] = "runtime"
    report = {
        "answers": answers,
        "origins": origins,
        "outside": sorted(outside),
        "path_order": [("package" if p == config["package"] else p) for p in sys.path],
        "modules": sorted(sys.modules),
    }
    if fake is not None:
        report["tablestore_version"] = importlib.metadata.version("tablestore")
        report["rows"] = {"/".join(k): v for k, v in fake.rows.items()}
        report["clients"] = fake.built
    sys.stdout.write(REPORT + json.dumps(report, default=str) + "\n")


if __name__ == "__main__":
    main()
