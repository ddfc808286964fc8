"""Shared fixtures: the project's committed test media, the optional real recordings, settings."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import event, text

from engine.backends import select_backend
from engine.config import Settings
from engine.db import Database
from engine.stage import StageContext

MEDIA = Path(__file__).parent / "media"
SHARED_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, before any worker starts
        from tests.judges import reset_margins

        reset_margins()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    from tests.judges import summary_lines

    for line in summary_lines():
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return MEDIA


@pytest.fixture(scope="session")
def truth() -> dict:
    return json.loads((MEDIA / "truth.json").read_text())["files"]


@pytest.fixture(scope="session")
def shared_media() -> Path:
    """The real recordings in ../shared/media; tests using them skip where it is absent."""
    if not SHARED_MEDIA.is_dir():
        pytest.skip("../shared/media is not present on this machine")
    return SHARED_MEDIA


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.from_env(environ={}, cache_dir=tmp_path_factory.getbasetemp() / "cache", threads=2)


@pytest.fixture
def ctx(tmp_path: Path, settings: Settings) -> StageContext:
    return StageContext("test-job", tmp_path, settings, select_backend("cpu"))


def need_tool(name: str) -> None:
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed")


# -- databases: every store test runs on SQLite and, where one is reachable, on PostgreSQL --------

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.asynccontextmanager
async def private_pg_schema() -> AsyncIterator[Callable[[], Database]]:
    """A factory of ``Database`` objects on one fresh, empty schema of the shared ``test`` database.

    Each call is another connection pool on the same schema (several gateways, as separate
    processes would have); all are closed and the schema dropped at the end. Skips where
    PostgreSQL is not reachable (fails in CI, where .ci/run starts it: a skip would hide a broken
    install). Other suites share the ``test`` database, hence the private schema.
    """
    if not pg_reachable():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (CI starts it in .ci/run)")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    schema = f"t_{secrets.token_hex(6)}"
    admin = Database(PG_URL)
    async with admin.engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {schema}"))
    made: list[Database] = []

    def make() -> Database:
        database = Database(PG_URL)

        @event.listens_for(database.engine.sync_engine, "connect")
        def _search_path(dbapi_conn, _rec):  # pragma: no cover - runs inside asyncpg's adapter
            cur = dbapi_conn.cursor()
            cur.execute(f"SET search_path TO {schema}")
            cur.close()
            dbapi_conn.commit()  # else the pool's reset-on-return rolls the SET back

        made.append(database)
        return database

    try:
        yield make
    finally:
        for database in made:
            await database.close()
        async with admin.engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        await admin.close()


@pytest.fixture
async def pg_schema() -> AsyncIterator[Callable[[], Database]]:
    """:func:`private_pg_schema` as a fixture: ``pg_schema()`` is another Database on the schema."""
    async with private_pg_schema() as make:
        yield make


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request, tmp_path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = Database.sqlite_in(tmp_path)
        await database.migrate()
        yield database
        await database.close()
        return
    async with private_pg_schema() as make:
        database = make()
        await database.migrate()
        yield database
