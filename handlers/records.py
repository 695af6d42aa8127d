"""Inserting the rows several events may create at the same moment (upserts, race-free)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import or_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import SQLModel

from bot.db import Database


@dataclass(frozen=True, slots=True)
class Upsert:
    """Insert `row`, or update the `update` columns of the row with the same `key` columns."""

    row: SQLModel
    key: tuple[str, ...]
    update: tuple[str, ...] = ()


async def upsert(db: Database, row: SQLModel, *, key: list[str], update: list[str]) -> None:
    """Insert `row`, or update the `update` columns of the row with the same `key` columns.

    Deliveries are processed concurrently (an installation event and a pull
    request event can both be first to mention an installation), so the row's
    existence is decided by the database, not by a read before the write.
    """
    await upsert_all(db, [Upsert(row, tuple(key), tuple(update))])


async def upsert_all(db: Database, upserts: Sequence[Upsert]) -> None:
    """Each upsert, in order, in one transaction (callers keep one order: parents first)."""
    dialect = db.engine.dialect.name
    async with db.engine.begin() as connection:
        for item in upserts:
            values: dict[str, Any] = {
                k: v for k, v in item.row.model_dump().items() if v is not None or k in item.update
            }
            statement = _statement(dialect, type(item.row), tuple(values), item.key, item.update)
            await connection.execute(statement, values)


@cache
def _statement(
    dialect: str,
    model: type[SQLModel],
    columns: tuple[str, ...],
    key: tuple[str, ...],
    update: tuple[str, ...],
) -> Any:
    """The upsert's statement, built once per shape: its values are bound parameters."""
    insert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(model)
    if not update:
        return insert.on_conflict_do_nothing(index_elements=list(key))
    table = model.__table__  # type: ignore[attr-defined]
    return insert.on_conflict_do_update(
        index_elements=list(key),
        set_={c: insert.excluded[c] for c in update},
        # An unchanged row is left alone: no new row version, no lock held to commit.
        where=or_(*(table.c[c].is_distinct_from(insert.excluded[c]) for c in update)),
    )
