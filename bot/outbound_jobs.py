"""The arq side of outbound webhooks: record a finished build's events, send them, re-send lost ones.

A delivery is attempted up to `MAX_ATTEMPTS` times, `outbound_retry_base` doubling
between attempts up to `MAX_DEFER` (2, 4, 8, 16, 30 minutes: about an hour), on a
network error, a 5xx, a 408 or a 429. Any other 4xx is final. A delivery that
will not be tried again is `dead` with its last error: the dead letter.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import structlog
from arq import Retry

from bot import outbound, queue
from bot.db import Database
from bot.models import OutboundDelivery, OutboundStatus, WebhookSubscription, utcnow
from bot.secret_store import SecretStore, SecretStoreError
from bot.settings import Settings

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 6
MAX_DEFER = 1800.0
TIMEOUT_SECONDS = 10.0
RETRYABLE_4XX = frozenset({408, 429})


def job_id(prefix: str, delivery_id: int) -> str:
    # arq's job ids are global to the Redis database: the prefix keeps deployments apart.
    return f"{prefix}:outbound:{delivery_id}"


def defer_for(attempt: int, base: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based)."""
    return min(MAX_DEFER, base * 2 ** (attempt - 1))


async def enqueue(redis: Any, prefix: str, delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        await redis.enqueue_job(
            "deliver_outbound",
            delivery_id,
            _job_id=job_id(prefix, delivery_id),
            _queue_name=queue.fast_queue(prefix),
        )


async def build_completed(ctx: dict[str, Any], build_id: int) -> None:
    """Record and enqueue the `build.completed` events of a build, if it has finished.

    Best effort: the build's end is already recorded, and a delivery whose enqueue
    failed is picked up by `reconcile_outbound`.
    """
    settings: Settings = ctx["settings"]
    try:
        ids = await outbound.record_completion(ctx["db"], build_id, settings.public_url)
        if ids and ctx.get("redis") is not None:
            await enqueue(ctx["redis"], settings.queue_prefix, ids)
    except Exception as error:  # never let a subscriber's bookkeeping fail a build
        log.warning("outbound.record_failed", error=type(error).__name__)


class _Failed(Exception):
    """One attempt failed; `retryable` says whether another may succeed."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


async def deliver_outbound(ctx: dict[str, Any], delivery_id: int) -> str:
    """The arq job: one attempt to POST one delivery; retries through `Retry`."""
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    async with db.session() as session:
        delivery = await session.get(OutboundDelivery, delivery_id)
        if delivery is None or delivery.status is not OutboundStatus.PENDING:
            return delivery.status.value if delivery else "missing"
        subscription = await session.get(WebhookSubscription, delivery.subscription_id)
        delivery.attempts += 1
        session.add(delivery)
        await session.commit()
        attempt = delivery.attempts
    structlog.contextvars.bind_contextvars(
        outbound_id=delivery_id, build_id=delivery.build_id, subscription_id=subscription.id
    )
    try:
        try:
            if not subscription.active:
                raise _Failed("the subscription is inactive", retryable=False)
            await _post(ctx, settings, subscription, delivery)
        except _Failed as failure:
            return await _after_failure(db, settings, delivery_id, attempt, failure)
        await _finish(db, delivery_id, OutboundStatus.DELIVERED)
        log.info("outbound.delivered", attempts=attempt)
        return OutboundStatus.DELIVERED.value
    finally:
        structlog.contextvars.unbind_contextvars("outbound_id", "build_id", "subscription_id")


async def _post(
    ctx: dict[str, Any],
    settings: Settings,
    subscription: WebhookSubscription,
    delivery: OutboundDelivery,
) -> None:
    store = SecretStore(ctx["db"], settings.encryption_keys)
    try:
        secret = await store.get(subscription.installation_id, subscription.secret_name)
    except SecretStoreError as error:
        raise _Failed(f"signing secret unavailable: {type(error).__name__}", retryable=False)
    if secret is None:
        raise _Failed("signing secret is missing", retryable=False)
    body = outbound.encode(delivery.body)
    timestamp, nonce = str(int(time.time())), str(uuid.uuid4())
    headers = {
        "content-type": "application/json",
        "user-agent": "Clarity-Check-Webhooks",
        "x-clarity-event": delivery.event,
        "x-clarity-delivery": str(delivery.id),
        "x-clarity-timestamp": timestamp,
        "x-clarity-nonce": nonce,
        "x-clarity-signature": outbound.sign(secret, timestamp, nonce, body),
    }
    try:
        response = await ctx["http"].post(
            subscription.url, content=body, headers=headers, timeout=TIMEOUT_SECONDS
        )
    except httpx.HTTPError as error:
        # The class only: an error's text may quote the URL, and a URL may hold a token.
        raise _Failed(type(error).__name__, retryable=True) from None
    if response.is_success:
        return
    status = response.status_code
    retryable = status >= 500 or status in RETRYABLE_4XX
    raise _Failed(f"HTTP {status}", retryable=retryable)


async def _after_failure(
    db: Database, settings: Settings, delivery_id: int, attempt: int, failure: _Failed
) -> str:
    reason = str(failure)
    if not failure.retryable or attempt >= MAX_ATTEMPTS:
        await _finish(db, delivery_id, OutboundStatus.DEAD, error=reason)
        log.warning("outbound.dead", attempts=attempt, error=reason)
        return OutboundStatus.DEAD.value
    defer = defer_for(attempt, settings.outbound_retry_base.total_seconds())
    async with db.session() as session:
        delivery = await session.get(OutboundDelivery, delivery_id)
        delivery.last_error = reason
        delivery.next_attempt_at = utcnow() + timedelta(seconds=defer)
        session.add(delivery)
        await session.commit()
    log.info("outbound.retry", attempts=attempt, error=reason, defer_seconds=defer)
    raise Retry(defer=defer)


async def _finish(
    db: Database, delivery_id: int, status: OutboundStatus, error: str | None = None
) -> None:
    async with db.session() as session:
        delivery = await session.get(OutboundDelivery, delivery_id)
        delivery.status = status
        if error is not None:
            delivery.last_error = error
        if status is OutboundStatus.DELIVERED:
            delivery.delivered_at = utcnow()
        session.add(delivery)
        await session.commit()


async def reconcile_outbound(ctx: dict[str, Any]) -> int:
    """Re-enqueue pending deliveries overdue by the grace period (their job was lost)."""
    settings: Settings = ctx["settings"]
    overdue = await outbound.pending(ctx["db"], utcnow() - settings.reconcile_grace)
    await enqueue(ctx["redis"], settings.queue_prefix, overdue)
    if overdue:
        log.info("outbound.requeued", count=len(overdue))
    return len(overdue)
