"""What operators and orchestrators poll: `GET /readyz` and `GET /metrics`.

`/healthz` (in `bot.app`) says the process is up; `/readyz` says it can do its
work: the database and Redis answer and the fast queue is not backed up. A
failed check is named with a fixed description or an error's class, never its
message: a driver's message carries hosts, ports and sometimes credentials.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import metrics
from bot.db import Database
from bot.queue import fast_queue, slow_queue
from bot.queue_stats import read_queue
from bot.state import AppState

log = structlog.get_logger(__name__)

CHECK_TIMEOUT = 2.0  # seconds per check; a probe must answer before its own timeout


class QueueBackedUp(Exception):
    """The fast queue's oldest waiting job is older than the readiness limit."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


async def _check(name: str, probe: Awaitable[str]) -> Check:
    try:
        return Check(name, True, await asyncio.wait_for(probe, CHECK_TIMEOUT))
    except TimeoutError:
        return Check(name, False, f"no answer within {CHECK_TIMEOUT:g} s")
    except QueueBackedUp as error:
        return Check(name, False, str(error))
    except Exception as error:  # any failure means not ready; only its class is shown
        log.warning("readyz.check_failed", check=name, error=type(error).__name__)
        return Check(name, False, f"unavailable ({type(error).__name__})")


async def _database(db: Database) -> str:
    async with db.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return "answered"


async def _redis(state: AppState) -> str:
    await state.queue.ping()
    return "answered"


async def _fast_queue(state: AppState) -> str:
    stats = await read_queue(state.queue, fast_queue(state.settings.queue_prefix))
    limit = state.settings.readiness_max_queue_age.total_seconds()
    if stats.oldest_age is not None and stats.oldest_age > limit:
        raise QueueBackedUp(
            f"the oldest waiting job has waited {stats.oldest_age:.0f} s (limit {limit:g} s)"
        )
    return f"{stats.depth} job(s); oldest waiting {stats.oldest_age or 0:.0f} s"


async def readyz(request: Request) -> JSONResponse:
    """200 when every check passes; 503 naming the checks that failed."""
    state: AppState = request.app.state.clarity
    database, redis = await asyncio.gather(
        _check("database", _database(state.db)), _check("redis", _redis(state))
    )
    if redis.ok:
        queue = await _check("fast_queue", _fast_queue(state))
    else:
        queue = Check("fast_queue", False, "not checked: Redis is unavailable")
    checks = [database, redis, queue]
    failed = [check.name for check in checks if not check.ok]
    body = {
        "status": "not_ready" if failed else "ready",
        "failed": failed,
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
    }
    return JSONResponse(body, status_code=503 if failed else 200)


async def metrics_endpoint(request: Request) -> Response:
    """The registry on `app.state`, in the text exposition format, with the queues read now."""
    state: AppState = request.app.state.clarity
    prefix = state.settings.queue_prefix
    try:
        for name in (fast_queue(prefix), slow_queue(prefix)):
            stats = await asyncio.wait_for(read_queue(state.queue, name), CHECK_TIMEOUT)
            metrics.observe_queue(stats.queue, stats.depth, stats.oldest_age)
    except (RedisError, OSError, TimeoutError) as error:
        log.warning("metrics.queues_unread", error=type(error).__name__)
        metrics.forget_queues()
    return Response(generate_latest(state.metrics), media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
]
