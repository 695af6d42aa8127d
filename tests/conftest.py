"""Shared fixtures: real PostgreSQL, SQLite and Redis, an App key, settings, and the GitHub stand-in."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import bot.models  # noqa: F401  (tables on the metadata, for truncation order)
from bot.app import create_app
from bot.db import Database
from bot.migrate import upgrade
from bot.queue import connect
from bot.settings import Settings
from localhub import serving
from tests import services
from tests.chaos_report import Report
from tests.llm_standin import ScriptedModel

REPO_ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_SECRET = "test-webhook-secret-8f3a1c"


@pytest.fixture(scope="session")
def app_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="session")
def postgresql_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session."""
    server = make_url(services.postgres_url())
    name = f"clarity_test_{uuid.uuid4().hex[:10]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = server.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'clarity.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on both backends."""
    return request.getfixturevalue(f"{request.param}_database")


async def _empty(db: Database) -> None:
    tables = [table.name for table in reversed(SQLModel.metadata.sorted_tables)]
    async with db.engine.begin() as connection:
        if db.engine.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """An empty database (both backends)."""
    database = Database(database_url)
    await _empty(database)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    return services.redis_url()


@pytest.fixture
def make_settings(app_private_key: str, redis_url: str) -> Callable[..., Settings]:
    """Settings for a test, isolated by a queue prefix of its own."""
    prefix = f"clarity-test-{uuid.uuid4().hex[:8]}"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            app_id=4242,
            client_id="Iv1.testclient",
            private_key=app_private_key,
            webhook_secrets=[WEBHOOK_SECRET],
            redis_url=redis_url,
            github_api_url="http://127.0.0.1:9",
            queue_prefix=prefix,
        )
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
async def queue(redis_url: str):
    redis = connect(redis_url)
    yield redis
    await redis.aclose()


@pytest.fixture
def intake(
    db: Database, make_settings: Callable[..., Settings]
) -> Iterator[Callable[..., tuple[str, Settings]]]:
    """Starts live web services on the test database: `intake(**setting_overrides) -> (url, settings)`."""
    running = []

    def start(**overrides: Any) -> tuple[str, Settings]:
        settings = make_settings(database_url=db.url, **overrides)
        server = serving(create_app(settings))
        url = server.__enter__()
        running.append(server)
        return url, settings

    yield start
    for server in running:
        server.__exit__(None, None, None)


@pytest.fixture
def loop_settings() -> dict:
    """Settings overrides for `tests.test_pull_request.loop`, which several modules reuse; a
    module may override this fixture."""
    return {}


@pytest.fixture(scope="module")
def scripted_model() -> Iterator[ScriptedModel]:
    """A scripted OpenAI-compatible model server, one per test module."""
    model = ScriptedModel()
    with model.serving() as url:
        model.url = url
        yield model


@pytest.fixture
def model(scripted_model: ScriptedModel) -> ScriptedModel:
    scripted_model.scripts.clear()
    scripted_model.requests.clear()
    scripted_model.repeat_failures.clear()
    return scripted_model


_CHAOS = Report()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chaos: the fault, fuzz and load suite (bounded here, full under `make chaos`)"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    _CHAOS.current_test = item.nodeid


@pytest.fixture
def chaos(request: pytest.FixtureRequest) -> Report:
    """The suite's report: `chaos.record(section, figure, value, target=..., ok=...)`."""
    _CHAOS.current_test = request.node.nodeid
    return _CHAOS


def pytest_sessionfinish(session: pytest.Session) -> None:
    base = os.environ.get("CLARITY_TEST_ARTEFACTS")
    cache = getattr(session.config, "cache", None)  # None under `-p no:cacheprovider`
    folder = Path(base or (cache.mkdir("chaos") if cache else tempfile.gettempdir()))
    written = _CHAOS.write(folder)
    if written is not None:
        session.config.get_terminal_writer().line(f"chaos report: {written}")
