"""The inbox: retention of bodies and nonces, and finding stranded deliveries."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

from bot import inbox
from bot.db import Database
from bot.models import Delivery, DeliveryStatus, utcnow


def delivery(
    guid: str, *, age: timedelta, status: DeliveryStatus = DeliveryStatus.PROCESSED
) -> Delivery:
    return Delivery(
        id=guid,
        event="push",
        nonce=hashlib.sha256(guid.encode()).hexdigest(),
        body=b"{}",
        status=status,
        received_at=utcnow() - age,
    )


async def test_accept_refuses_a_second_row_with_the_same_nonce(db: Database):
    assert await inbox.accept(db, delivery("a", age=timedelta(0)))
    twin = delivery("b", age=timedelta(0))
    twin.nonce = hashlib.sha256(b"a").hexdigest()
    assert not await inbox.accept(db, twin)


async def test_prune_drops_old_bodies_then_old_rows_but_never_unprocessed_ones(db: Database):
    await inbox.accept(db, delivery("recent", age=timedelta(hours=1)))
    await inbox.accept(db, delivery("old-body", age=timedelta(days=4)))
    await inbox.accept(db, delivery("expired", age=timedelta(days=8)))
    await inbox.accept(db, delivery("stuck", age=timedelta(days=8), status=DeliveryStatus.RECEIVED))
    now = utcnow()
    bodies, rows = await inbox.prune(
        db, bodies_before=now - timedelta(days=3), rows_before=now - timedelta(days=7)
    )
    assert (bodies, rows) == (2, 1)
    assert (await inbox.get(db, "recent")).body == b"{}"
    assert (await inbox.get(db, "old-body")).body is None
    assert await inbox.get(db, "expired") is None
    stuck = await inbox.get(db, "stuck")
    assert stuck is not None and stuck.body == b"{}"


async def test_stranded_lists_only_received_deliveries_past_the_grace_period(db: Database):
    await inbox.accept(
        db, delivery("fresh", age=timedelta(seconds=1), status=DeliveryStatus.RECEIVED)
    )
    await inbox.accept(
        db, delivery("lost", age=timedelta(minutes=5), status=DeliveryStatus.RECEIVED)
    )
    await inbox.accept(db, delivery("done", age=timedelta(minutes=5)))
    assert await inbox.stranded(db, timedelta(minutes=1)) == ["lost"]


async def test_finish_records_a_truncated_error(db: Database):
    await inbox.accept(db, delivery("x", age=timedelta(0), status=DeliveryStatus.RECEIVED))
    await inbox.finish(db, "x", error="E" * 5000)
    row = await inbox.get(db, "x")
    assert row.status is DeliveryStatus.FAILED and len(row.error) == inbox.MAX_ERROR_LENGTH


async def test_begin_attempt_counts_attempts_and_only_while_the_delivery_is_to_be_processed(
    db: Database,
):
    await inbox.accept(db, delivery("x", age=timedelta(0), status=DeliveryStatus.RECEIVED))
    first = await inbox.begin_attempt(db, "x")
    second = await inbox.begin_attempt(db, "x")
    assert (first.attempts, second.attempts) == (1, 2)
    assert first.status is DeliveryStatus.RECEIVED and first.body == b"{}"
    await inbox.finish(db, "x")
    assert await inbox.begin_attempt(db, "x") is None
    assert await inbox.begin_attempt(db, "never-stored") is None
    assert (await inbox.get(db, "x")).attempts == 2


async def test_workers_beginning_the_same_delivery_at_once_each_count_one_attempt(db: Database):
    await inbox.accept(db, delivery("x", age=timedelta(0), status=DeliveryStatus.RECEIVED))
    begun = await asyncio.gather(*(inbox.begin_attempt(db, "x") for _ in range(8)))
    assert sorted(d.attempts for d in begun) == list(range(1, 9))
