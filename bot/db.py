"""The database engine: async SQLAlchemy over SQLite (default) or PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel.ext.asyncio.session import AsyncSession

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


class UnsupportedDatabase(ValueError):
    """A database URL of a kind the service does not run on."""


def _with_driver(url: str, drivers: dict[str, str]) -> str:
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise UnsupportedDatabase(f"unsupported database {backend!r}: use sqlite or postgresql")
    return parsed.set(drivername=drivers[backend]).render_as_string(hide_password=False)


def async_url(url: str) -> str:
    """`url` with the async driver the service uses for its backend."""
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str) -> str:
    """`url` with the synchronous driver (migrations)."""
    return _with_driver(url, _SYNC_DRIVERS)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Cascading deletes need foreign keys on; WAL lets the web process read while a worker writes.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Database:
    """An engine and its session factory; made once per process and passed in."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = url
        target = async_url(url)
        if target.startswith("postgresql"):
            engine_options.setdefault("pool_pre_ping", True)
            engine_options.setdefault("pool_size", 10)
            engine_options.setdefault("connect_args", {"connect_timeout": 5})
        self.engine: AsyncEngine = create_async_engine(target, **engine_options)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        # The same pool; each statement commits as it runs: no BEGIN and COMMIT round trips.
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction the caller commits."""
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection for statements that each stand alone (one statement is one transaction)."""
        async with self._autocommit.connect() as connection:
            yield connection

    async def dispose(self) -> None:
        await self.engine.dispose()
