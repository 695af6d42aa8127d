"""The Starlette application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import structlog
from arq.connections import ArqRedis
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot import api, health, metrics, openapi, outbound_api, pages, queue, slo
from bot.db import Database
from bot.errors import (
    HTTPError,
    http_error_response,
    starlette_error_response,
    unexpected_error_response,
)
from bot.inbox_writer import InboxWriter
from bot.models import Delivery, DeliveryStatus
from bot.settings import Settings
from bot.state import AppState
from bot.webhooks import receive_github

log = structlog.get_logger(__name__)


async def enqueue_deliveries(redis: ArqRedis, prefix: str, deliveries: list[Delivery]) -> None:
    """Enqueue `process_delivery` for stored deliveries still to be processed, those starting a
    check run first; if Redis is down the reconciler does it later."""
    waiting = [d for d in deliveries if d.status is DeliveryStatus.RECEIVED]
    if not waiting:
        return
    ids = [delivery.id for delivery in waiting]
    urgent = {d.id for d in waiting if queue.is_urgent(d.event, d.action)}
    try:
        await queue.enqueue_many(redis, "process_delivery", ids, queue.fast_queue(prefix), urgent)
    except (RedisError, OSError) as error:
        log.warning("webhook.enqueue_deferred", deliveries=len(ids), error=type(error).__name__)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    registry: CollectorRegistry = metrics.REGISTRY,
) -> Starlette:
    """The web application; `db` may be passed in to share an engine (tests)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_db = db is None
        database = db or Database(settings.database_url)
        redis = queue.connect(settings.redis_url)
        writer = InboxWriter(database, partial(enqueue_deliveries, redis, settings.queue_prefix))
        await writer.start()
        app.state.clarity = AppState(
            settings=settings, db=database, queue=redis, inbox=writer, metrics=registry
        )
        try:
            yield
        finally:
            await writer.stop()
            await redis.aclose()
            if own_db:
                await database.dispose()

    return Starlette(
        routes=[
            Route("/webhooks/github", receive_github, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            *api.routes,
            *outbound_api.routes,
            *pages.routes,
            *health.routes,
            *slo.routes,
            *openapi.routes,
        ],
        exception_handlers={
            HTTPError: http_error_response,
            HTTPException: starlette_error_response,
            Exception: unexpected_error_response,
        },
        lifespan=lifespan,
    )


def app_from_environment() -> Starlette:
    """The application configured from the environment (for multi-process `clarity serve`)."""
    from bot import logs
    from bot.settings import load_settings

    settings = load_settings()
    logs.configure(secrets=settings.secret_values())
    return create_app(settings)
