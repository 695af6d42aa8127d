"""The database engine: its connections for standalone statements commit as each runs."""

from __future__ import annotations

from sqlalchemy import insert, text

from bot.db import Database
from bot.models import Installation


def add_installation(n: int):
    return insert(Installation).values(Installation(id=n, account_login="octo").model_dump())


async def test_a_statement_on_an_autocommit_connection_is_committed_before_it_is_closed(
    db: Database,
):
    async with db.autocommit() as connection:
        await connection.execute(add_installation(1))
        async with db.engine.connect() as other:  # another connection of the pool sees it
            seen = (await other.execute(text("SELECT account_login FROM installation"))).all()
        assert seen == [("octo",)]


async def test_a_connection_of_the_pool_is_transactional_again_after_autocommit(db: Database):
    async with db.autocommit():
        pass
    async with db.engine.connect() as connection:
        await connection.execute(add_installation(2))
        await connection.rollback()
    async with db.autocommit() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM installation"))).scalar() == 0
