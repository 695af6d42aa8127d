"""The durable inbox: deliveries are committed before they are acknowledged."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select

from bot.db import Database
from bot.models import Delivery, DeliveryStatus, utcnow

MAX_ERROR_LENGTH = 2000


async def accept_many(db: Database, deliveries: Sequence[Delivery]) -> set[str]:
    """Store `deliveries` in one transaction; the ids of those that were new.

    A delivery whose nonce (sha256 of the signed body) or GUID is already in the
    inbox is skipped: the unique constraint is the replay check, decided in the
    same statement as the insert.
    """
    if not deliveries:
        return set()
    rows = [delivery.model_dump() for delivery in deliveries]
    # One cached statement run executemany-style (SQLAlchemy batches it into
    # multi-row VALUES and keeps RETURNING), instead of compiling SQL per batch.
    async with db.autocommit() as connection:
        result = await connection.execute(_insert_new(db.engine.dialect.name), rows)
        return set(result.scalars())


@cache
def _insert_new(dialect: str) -> Any:
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return insert(Delivery).on_conflict_do_nothing().returning(col(Delivery.id))


async def accept(db: Database, delivery: Delivery) -> bool:
    """Store one delivery; False when it is a replay."""
    return delivery.id in await accept_many(db, [delivery])


async def get(db: Database, delivery_id: str) -> Delivery | None:
    async with db.session() as session:
        return await session.get(Delivery, delivery_id)


async def begin_attempt(db: Database, delivery_id: str) -> Delivery | None:
    """Count an attempt at a delivery still to be processed; None if there is nothing to do.

    One statement: the update takes the row's lock, so two workers never both begin it.
    """
    async with db.autocommit() as connection:
        row = (await connection.execute(_BEGIN_ATTEMPT, {"delivery_id": delivery_id})).first()
    return None if row is None else Delivery(**row._mapping)


async def finish(db: Database, delivery_id: str, error: str | None = None) -> None:
    """Mark a delivery processed, or failed with `error`."""
    async with db.autocommit() as connection:
        await connection.execute(
            _FINISH,
            {
                "delivery_id": delivery_id,
                "status": DeliveryStatus.FAILED if error else DeliveryStatus.PROCESSED,
                "error": error[:MAX_ERROR_LENGTH] if error else None,
                "processed_at": utcnow(),
            },
        )


# Built once: the worker runs these for every delivery.
_BEGIN_ATTEMPT = (
    update(Delivery)
    .where(
        col(Delivery.id) == bindparam("delivery_id"),
        col(Delivery.status) == DeliveryStatus.RECEIVED,
    )
    .values(attempts=col(Delivery.attempts) + 1)
    .returning(*Delivery.__table__.columns)
)
_FINISH = (
    update(Delivery)
    .where(col(Delivery.id) == bindparam("delivery_id"))
    .values(
        status=bindparam("status"), error=bindparam("error"), processed_at=bindparam("processed_at")
    )
)


async def stranded(db: Database, older_than: timedelta, limit: int = 500) -> list[str]:
    """Ids of deliveries still `received` after `older_than`: their job was lost (e.g. Redis was down)."""
    cutoff = utcnow() - older_than
    async with db.session() as session:
        rows = await session.exec(
            select(Delivery.id)
            .where(Delivery.status == DeliveryStatus.RECEIVED, Delivery.received_at < cutoff)
            .order_by(col(Delivery.received_at))
            .limit(limit)
        )
        return list(rows)


async def prune(db: Database, *, bodies_before: datetime, rows_before: datetime) -> tuple[int, int]:
    """Drop bodies of finished deliveries, then whole rows (nonces) past their retention."""
    async with db.session() as session:
        bodies = await session.exec(
            update(Delivery)
            .where(
                col(Delivery.status).in_([DeliveryStatus.PROCESSED, DeliveryStatus.FAILED]),
                col(Delivery.received_at) < bodies_before,
                col(Delivery.body).is_not(None),
            )
            .values(body=None)
        )
        rows = await session.exec(
            delete(Delivery).where(
                col(Delivery.received_at) < rows_before,
                Delivery.status != DeliveryStatus.RECEIVED,
            )
        )
        await session.commit()
        return bodies.rowcount, rows.rowcount
