"""The database: SQLAlchemy 2 async, one declarative Base, migrations run at start.

Embedded: SQLite through aiosqlite, WAL journal and ``synchronous=FULL`` (a committed job
row survives power loss). Cluster: PostgreSQL through asyncpg. The schema is owned by the
Alembic migrations in ``engine/migrations`` (the gateway's account tables register on the
same Base so one migration history covers the database).

On PostgreSQL several gateways may start at once: migrations run under a transaction-scoped
advisory lock, so one of them upgrades the schema and the others wait and then find it current.
It is also the event bus between processes: ``notify`` inside a writing transaction (delivered
when it commits, in commit order) and ``listen`` on a connection of its own. Channels are named
after the schema the tables live in, so two Clipora installations (or two test schemas) on one
server never hear each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

MIGRATIONS = Path(__file__).parent / "migrations"

log = logging.getLogger("clipora.db")

#: pg_advisory_xact_lock key held while migrations run (any constant; "clipora" in ASCII)
MIGRATION_LOCK = 0x636C69706F7261

#: what a listener's queue yields when its connection is gone (the listener must reconnect)
LISTEN_LOST = object()


class Base(DeclarativeBase):
    pass


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


class Database:
    """An async engine + session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.session: async_sessionmaker[AsyncSession] = async_sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def sqlite_in(cls, data_dir: Path) -> Database:
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite+aiosqlite:///{(data_dir / 'clipora.db').resolve()}")

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        from alembic import command
        from alembic.config import Config

        def upgrade(connection: Any) -> None:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")

        async with self.engine.begin() as conn:
            if not self.is_sqlite:  # one gateway migrates; the others wait here, then find it at head
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            await conn.run_sync(upgrade)

    # -- notifications (PostgreSQL) -----------------------------------------------------------

    _schema: str | None = None

    async def channel(self, name: str) -> str:
        """``name`` scoped to the schema this database's tables are in (``clipora_<name>_public``)."""
        if self._schema is None:
            async with self.engine.connect() as conn:
                self._schema = str(await conn.scalar(text("SELECT current_schema()")))
        return f"clipora_{name}_{self._schema}"[:63]

    async def notify(self, session: AsyncSession, name: str, payload: str = "") -> None:
        """Tell every listener on ``name`` once ``session``'s transaction commits (no-op on SQLite)."""
        if self.is_sqlite:
            return
        await session.execute(text("SELECT pg_notify(:channel, :payload)"),
                              {"channel": await self.channel(name), "payload": payload})

    @contextlib.asynccontextmanager
    async def listen(self, name: str, ping_s: float = 15.0) -> AsyncIterator[asyncio.Queue[Any]]:
        """LISTEN on ``name`` over a connection of its own; yields a queue of payloads.

        The queue yields :data:`LISTEN_LOST` when the connection ends (the server restarted, or a
        ping every ``ping_s`` went unanswered: a silently broken link): the caller leaves the block
        and listens again. PostgreSQL only.
        """
        if self.is_sqlite:
            raise RuntimeError("LISTEN needs PostgreSQL")
        channel = await self.channel(name)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        async with self.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection  # the asyncpg connection
            assert raw is not None

            def heard(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
                queue.put_nowait(payload)

            def lost(_conn: Any) -> None:
                queue.put_nowait(LISTEN_LOST)

            async def ping() -> None:
                while True:
                    await asyncio.sleep(ping_s)
                    try:
                        await asyncio.wait_for(raw.fetchval("SELECT 1"), timeout=max(ping_s / 3, 1.0))
                    except Exception:
                        log.warning("the LISTEN connection stopped answering; listening again")
                        queue.put_nowait(LISTEN_LOST)
                        return

            raw.add_termination_listener(lost)
            await raw.add_listener(channel, heard)
            pinger = asyncio.create_task(ping(), name=f"listen-ping-{name}")
            try:
                yield queue
            finally:
                pinger.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pinger
                raw.remove_termination_listener(lost)
                if not raw.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(raw.remove_listener(channel, heard), 2.0)
                else:
                    await conn.invalidate()  # a dead connection must not go back to the pool

    async def ping(self) -> None:
        """One round trip to the database (raises when it does not answer)."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
