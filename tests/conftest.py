"""Shared fixtures. Settings are built from dicts (tests/support/sign.py), never from os.environ."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from shared.callback import app as callback_app
from shared.http import Core
from shared.records.base import RecordStore
from shared.records.sqlite import SqliteStore
from shared.sign.app import create_app
from shared.sign.settings import SignSettings
from tests.support.callbacks import (
    TEST_KEY_URL,
    CallbackBuilder,
    Clock,
    KeyServer,
    Removals,
    callback_settings,
    public_pem,
    rsa_key,
)
from tests.support.sign import NOW, sign_settings


@pytest.fixture
def make_sign_app(tmp_path: Path) -> Callable[..., Core]:
    """Build the sign core with a frozen clock and no ambient credentials; override settings.
    Grants go to a ledger in this test's own directory unless SQLITE_PATH is given."""

    def build(
        settings: SignSettings | None = None,
        *,
        environ: dict[str, str] | None = None,
        now: float = NOW,
        **overrides: Any,
    ) -> Core:
        options = {
            k: overrides.pop(k)
            for k in ("store_factory", "jwks_client", "remover_factory", "bucket_factory")
            if k in overrides
        }
        overrides.setdefault("SQLITE_PATH", str(tmp_path / "ledger.sqlite3"))
        return create_app(
            settings or sign_settings(**overrides),
            environ=environ or {},
            now=lambda: now,
            **options,
        )

    return build


@pytest.fixture
def sign_app(make_sign_app: Callable[..., Core]) -> Core:
    """The sign core with the default test settings (V4, JWT auth, one CORS origin)."""
    return make_sign_app()


# --- the callback function (tests/support/callbacks.py); a module's own fixture of the same name
# --- (several define `store`) overrides these --------------------------------------------------


@pytest.fixture(scope="session")
def oss_key() -> RSAPrivateKey:
    """Stands in for OSS's private key: it signs the callbacks the tests have OSS send."""
    return rsa_key(2048)


@pytest.fixture
def build(oss_key: RSAPrivateKey) -> CallbackBuilder:
    return CallbackBuilder(oss_key)


@pytest.fixture
def keyserver(oss_key: RSAPrivateKey) -> KeyServer:
    """Serves OSS's public key at TEST_KEY_URL (the callback's injected fetch, no sockets)."""
    return KeyServer({TEST_KEY_URL: public_pem(oss_key)})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    sqlite = SqliteStore(str(tmp_path / "records.sqlite3"))
    yield sqlite
    sqlite.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def removals() -> Removals:
    """What the callback deleted (refused uploads), instead of calling OSS."""
    return Removals()


@pytest.fixture
def make_callback_app(
    tmp_path: Path, store: SqliteStore, keyserver: KeyServer, clock: Clock, removals: Removals
) -> Callable[..., Core]:
    """Build the callback core over `store`, `keyserver`, `clock` and `removals`; override settings."""

    def make(
        *,
        records: RecordStore | None = None,
        fetch: Any = None,
        remover: Any = None,
        reader: Any = None,
        **env: str,
    ) -> Core:
        chosen = records if records is not None else store
        return callback_app.create_app(
            callback_settings(tmp_path, **env),
            environ={},
            store_factory=lambda credentials: chosen,
            fetch=fetch or keyserver,
            now=clock,
            remover_factory=remover or removals,
            reader_factory=reader,
            sleep=lambda seconds: None,
        )

    return make


# Fixtures that live beside their builders: the OSS emulator's (`emu`, `make`, `served`), the
# in-process stack's (`start_stack`, for tests/e2e and tests/reliability) and the record stores'
# (`make_store`, every backend, for the record and ledger contracts).
pytest_plugins = ["tests.support.emulator", "tests.support.livestack", "tests.support.records"]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteStore]:
    """The grant ledger make_sign_app writes to (its SQLITE_PATH), opened beside it."""
    grants = SqliteStore(str(tmp_path / "ledger.sqlite3"))
    yield grants
    grants.close()
