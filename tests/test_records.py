"""Upserts: rows several deliveries may create at once, written race-free and in one transaction."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.db import Database
from bot.models import Installation, PullRequest, Repository, utcnow
from handlers.records import Upsert, upsert, upsert_all


def repository(**changes) -> Repository:
    fields = dict(id=7, installation_id=1, full_name="octo/app", private=False)
    return Repository(**{**fields, **changes})


UPDATE = ("full_name", "private", "default_branch")


async def rows(db: Database, model):
    async with db.session() as session:
        return list(await session.exec(select(model)))


async def test_an_upsert_inserts_then_updates_only_the_named_columns(db: Database):
    await upsert(db, Installation(id=1, account_login="octo"), key=["id"], update=[])
    await upsert(db, Installation(id=1, account_login="renamed"), key=["id"], update=[])
    [installation] = await rows(db, Installation)
    assert installation.account_login == "octo"  # nothing to update: the first row stays
    await upsert_all(db, [Upsert(repository(), ("id",), UPDATE)])
    await upsert_all(db, [Upsert(repository(full_name="octo/renamed"), ("id",), UPDATE)])
    [row] = await rows(db, Repository)
    assert (row.full_name, row.private) == ("octo/renamed", False)


async def test_concurrent_upserts_of_one_row_all_succeed_and_leave_one_row(db: Database):
    await upsert(db, Installation(id=1, account_login="octo"), key=["id"], update=[])
    await asyncio.gather(
        *(
            upsert_all(db, [Upsert(repository(private=n % 2 == 0), ("id",), UPDATE)])
            for n in range(10)
        )
    )
    assert len(await rows(db, Repository)) == 1


async def test_an_unchanged_row_is_not_written_again(postgresql_database: str):
    db = Database(postgresql_database)
    try:
        await upsert(db, Installation(id=1, account_login="octo"), key=["id"], update=[])
        await upsert_all(db, [Upsert(repository(), ("id",), UPDATE)])
        version = "SELECT xmin::text FROM repository WHERE id = 7"
        async with db.autocommit() as connection:
            before = (await connection.execute(text(version))).scalar()
        await upsert_all(db, [Upsert(repository(), ("id",), UPDATE)])
        async with db.autocommit() as connection:
            unchanged = (await connection.execute(text(version))).scalar()
        await upsert_all(db, [Upsert(repository(private=True), ("id",), UPDATE)])
        async with db.autocommit() as connection:
            changed = (await connection.execute(text(version))).scalar()
        assert unchanged == before != changed
    finally:
        await db.dispose()


async def test_the_upserts_of_one_call_are_one_transaction(db: Database):
    orphan = PullRequest(
        repository_id=404,  # no such repository: the foreign key refuses it
        number=1,
        head_sha="a" * 40,
        head_ref="feature",
        base_ref="main",
        updated_at=utcnow(),
    )
    with pytest.raises(IntegrityError):
        await upsert_all(
            db,
            [
                Upsert(Installation(id=1, account_login="octo"), ("id",)),
                Upsert(orphan, ("repository_id", "number"), ("head_sha",)),
            ],
        )
    assert await rows(db, Installation) == []
