"""The arq worker: processes inbox deliveries through the handlers' router, and reconciles."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import gidgethub
import httpx
import structlog
from arq import Retry
from arq.cron import cron
from arq.worker import Worker, func
from gidgethub import sansio
from sqlalchemy.exc import IntegrityError, OperationalError

import handlers
from bot import claims, inbox, queue
from bot.db import Database
from bot.github import GitHubApp, RateLimited, RetryPolicy
from bot.models import Build, utcnow
from bot.outbound_jobs import MAX_ATTEMPTS, deliver_outbound, reconcile_outbound
from bot.settings import Settings
from handlers.context import HandlerContext
from orchestrator import control
from orchestrator.executor import run_build
from orchestrator.sandbox.providers import make_provider
from orchestrator.scan_bundle import bundle_tarball
from policies import load_pack

log = structlog.get_logger(__name__)

MAX_TRIES = 5
# Seconds between queue polls of the fast lane (arq's default is 0.5): a pull request's
# delivery, then its build, each wait up to this for an idle worker to look.
FAST_POLL_DELAY = 0.05
# Longer than any build may run: an older sandbox belongs to no live build.
SANDBOX_MAX_AGE = timedelta(hours=3)
# Failures worth another try later; anything else is recorded as the delivery's error.
# An IntegrityError is two deliveries racing to create the same row: the retry finds it there.
TRANSIENT = (
    gidgethub.GitHubBroken,
    httpx.TransportError,
    OperationalError,
    IntegrityError,
    RateLimited,
)


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    ctx["db"] = Database(settings.database_url)
    ctx["http"] = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0))
    ctx["github"] = GitHubApp(
        ctx["http"],
        issuer=settings.jwt_issuer,
        private_key=settings.app_private_key(),
        base_url=settings.github_api_url,
        policy=RetryPolicy(base_delay=settings.github_retry_delay.total_seconds()),
    )
    ctx["router"] = handlers.router
    ctx["sandboxes"] = make_provider(
        settings.sandbox_backend,
        root=settings.sandbox_root,
        toolchains=tuple(settings.sandbox_toolchains),
        daytona_api_url=settings.daytona_api_url,
        daytona_api_key=settings.daytona_api_key.get_secret_value()
        if settings.daytona_api_key
        else None,
        daytona_target=settings.daytona_target,
        daytona_snapshot=settings.daytona_snapshot,
        daytona_image=settings.daytona_image,
    )
    ctx["policy"] = load_pack(settings.policy_pack)
    # Built once per process and off the event loop: built by the first scan, it would stall
    # every job of this worker for seconds.
    await asyncio.to_thread(bundle_tarball)


async def shutdown(ctx: dict[str, Any]) -> None:
    """Close what `startup` opened, which is not everything when a signal cut it short."""
    if hasattr(ctx.get("sandboxes"), "close"):
        await ctx["sandboxes"].close()
    if "http" in ctx:
        await ctx["http"].aclose()
    if "db" in ctx:
        await ctx["db"].dispose()


async def process_delivery(ctx: dict[str, Any], delivery_id: str) -> str:
    """Dispatch one stored delivery to its handlers; the row ends `processed` or `failed`."""
    structlog.contextvars.bind_contextvars(delivery_id=delivery_id)
    settings: Settings = ctx["settings"]
    claim = claims.claim_key(settings.queue_prefix, delivery_id)
    ttl_ms = int(settings.build_lease_ttl.total_seconds() * 1000)
    try:
        async with claims.claimed(ctx.get("redis"), claim, claims.worker_id(ctx), ttl_ms):
            return await _process(ctx, delivery_id)
    except (OperationalError, OSError) as error:
        # The inbox itself is unreachable (the database is down): the delivery stays
        # `received`, and this job tries again later.
        defer = _defer_for(error, ctx.get("job_try", 1))
        log.warning("delivery.retry", error=_describe(error), defer_seconds=defer)
        raise Retry(defer=defer) from error
    finally:
        structlog.contextvars.unbind_contextvars("delivery_id", "installation_id", "repository")


async def _process(ctx: dict[str, Any], delivery_id: str) -> str:
    db: Database = ctx["db"]
    delivery = await inbox.begin_attempt(db, delivery_id)
    if delivery is None:
        log.info("delivery.skipped", reason="unknown or already finished")
        return "skipped"
    if delivery.body is None:
        await inbox.finish(db, delivery_id, error="body was pruned before processing")
        return "failed"
    event = sansio.Event(json.loads(delivery.body), event=delivery.event, delivery_id=delivery.id)
    repository = (event.data.get("repository") or {}).get("full_name")
    structlog.contextvars.bind_contextvars(
        installation_id=delivery.installation_id, repository=repository
    )
    github: GitHubApp = ctx["github"]
    gh = (
        github.for_installation(delivery.installation_id)
        if delivery.installation_id
        else github.app
    )
    context = HandlerContext(
        db=db, queue=ctx.get("redis"), delivery_id=delivery_id, settings=ctx["settings"]
    )
    router = ctx["router"]
    if not router.fetch(event):
        await inbox.finish(db, delivery_id)
        log.info("delivery.ignored", github_event=delivery.event, action=delivery.action)
        return "ignored"
    try:
        await router.dispatch(event, gh, context)
    except TRANSIENT as error:
        if ctx.get("job_try", 1) >= MAX_TRIES:
            await inbox.finish(
                db, delivery_id, error=f"gave up after {MAX_TRIES} tries: {_describe(error)}"
            )
            log.error("delivery.failed", error=_describe(error), final=True)
            return "failed"
        defer = _defer_for(error, ctx.get("job_try", 1))
        log.warning("delivery.retry", error=_describe(error), defer_seconds=defer)
        raise Retry(defer=defer) from error
    except Exception as error:
        await inbox.finish(db, delivery_id, error=_describe(error))
        log.exception("delivery.failed", error=_describe(error))
        return "failed"
    await inbox.finish(db, delivery_id)
    log.info("delivery.processed", github_event=delivery.event, action=delivery.action)
    return "processed"


def _defer_for(error: BaseException, job_try: int) -> float:
    if isinstance(error, RateLimited):
        return max(1.0, error.retry_at - time.time())
    return min(300.0, 5.0 * 2 ** (job_try - 1))


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def reconcile(ctx: dict[str, Any]) -> int:
    """Re-enqueue deliveries still `received` after the grace period (their job was lost), and
    free those whose worker died while processing them (their job is still queued)."""
    settings: Settings = ctx["settings"]
    stranded = await inbox.stranded(ctx["db"], settings.reconcile_grace)
    ttl_ms = int(settings.build_lease_ttl.total_seconds() * 1000)
    requeued = freed = 0

    async def enqueue(delivery_id: str) -> Any:
        return await ctx["redis"].enqueue_job(
            "process_delivery",
            delivery_id,
            _job_id=delivery_id,
            _queue_name=queue.fast_queue(settings.queue_prefix),
        )

    for delivery_id in stranded:
        job = await enqueue(delivery_id)
        if job is None and await claims.forget_result(ctx["redis"], delivery_id):
            # Its job ended without finishing it (out of tries while the database was down):
            # arq keeps the result for an hour and would refuse the job id until then.
            job = await enqueue(delivery_id)
        if job is not None:
            requeued += 1
        elif await claims.release_abandoned(
            ctx["redis"],
            delivery_id,
            claims.claim_key(settings.queue_prefix, delivery_id),
            in_progress_ms=ctx["in_progress_ms"],
            ttl_ms=ttl_ms,
        ):
            freed += 1
    if requeued or freed:
        log.info("reconcile.requeued", count=requeued, abandoned=freed)
    return requeued + freed


async def prune(ctx: dict[str, Any]) -> tuple[int, int]:
    """Drop old delivery bodies, then nonces past their retention (always longer than freshness)."""
    settings: Settings = ctx["settings"]
    now = utcnow()
    bodies, rows = await inbox.prune(
        ctx["db"],
        bodies_before=now - settings.body_retention,
        rows_before=now - settings.nonce_retention,
    )
    log.info("prune.done", bodies=bodies, rows=rows)
    return bodies, rows


async def reconcile_builds(ctx: dict[str, Any]) -> int:
    """Resume builds whose owner died (lease expired) and queued builds nobody picked up."""
    settings: Settings = ctx["settings"]
    orphans = await control.orphaned_builds(
        ctx["db"], ctx["redis"], settings.queue_prefix, settings.reconcile_grace
    )
    for build_id in orphans:
        async with ctx["db"].session() as session:
            build = await session.get(Build, build_id)
        where = queue.queue_for(settings.queue_prefix, build.tier.value if build else "scan")
        await control.enqueue(ctx["redis"], build_id, where)
    if orphans:
        log.info("reconcile.builds_requeued", count=len(orphans))
    return len(orphans)


async def reap_sandboxes(ctx: dict[str, Any]) -> int:
    """Destroy sandboxes a crash left behind (every build destroys its own in `finally`)."""
    reaped = await ctx["sandboxes"].reap(SANDBOX_MAX_AGE)
    if reaped:
        log.warning("sandboxes.reaped", count=reaped)
    return reaped


def create_worker(settings: Settings, lane: str = "fast", **overrides: Any) -> Worker:
    """A worker of the fast lane (deliveries, Tier 1 builds, publishing, the crons) or the slow
    lane (deep scans and fixes), so a long agent build never delays a pull request's check run."""
    if lane == "slow":
        slow: dict[str, Any] = dict(
            functions=[
                func(run_build, name="run_build", max_tries=MAX_TRIES, timeout=timedelta(hours=2))
            ],
            on_startup=startup,
            on_shutdown=shutdown,
            queue_name=queue.slow_queue(settings.queue_prefix),
            redis_settings=queue.redis_settings(settings.redis_url),
            ctx={"settings": settings},
            max_jobs=4,
            job_timeout=timedelta(hours=2),
            keep_result=timedelta(hours=1),
        )
        return _dated(Worker(**{**slow, **overrides}))
    options: dict[str, Any] = dict(
        functions=[
            func(process_delivery, name="process_delivery", max_tries=MAX_TRIES),
            func(run_build, name="run_build", max_tries=MAX_TRIES, timeout=timedelta(hours=2)),
            func(deliver_outbound, name="deliver_outbound", max_tries=MAX_ATTEMPTS + 1),
        ],
        cron_jobs=[
            cron(reconcile, second={0, 30}, run_at_startup=True),
            cron(reconcile_builds, second={15, 45}, run_at_startup=True),
            cron(reconcile_outbound, second={5, 35}, run_at_startup=True),
            cron(prune, minute=17, second=0),
            cron(reap_sandboxes, minute=set(range(5, 60, 10)), second=0),
        ],
        on_startup=startup,
        on_shutdown=shutdown,
        queue_name=queue.fast_queue(settings.queue_prefix),
        redis_settings=queue.redis_settings(settings.redis_url),
        ctx={"settings": settings},
        max_jobs=20,
        poll_delay=FAST_POLL_DELAY,
        # No more ids than it can start at once (arq reads 100): an urgent job enqueued meanwhile
        # is seen at the next poll, not after the ids already read have all been started.
        queue_read_limit=20,
        job_timeout=timedelta(minutes=5),
        keep_result=timedelta(hours=1),
    )
    options.update(overrides)
    return _dated(Worker(**options))


def _dated(worker: Worker) -> Worker:
    """Note how long arq's in-progress mark lives: the reconciler dates a job's start from it."""
    worker.ctx["in_progress_ms"] = int(worker.in_progress_timeout_s * 1000)
    return worker


async def run_lanes(settings: Settings, lanes: tuple[str, ...], **overrides: Any) -> None:
    """Run the workers of `lanes` in this process (the embedded default runs both)."""
    import asyncio
    import signal

    overrides.setdefault("handle_signals", False)
    workers = [create_worker(settings, lane, **overrides) for lane in lanes]
    loop = asyncio.get_running_loop()
    stopping: list[int] = []

    def stop(signum: int) -> None:
        # One handler for all lanes: each finishes its running jobs' cancellation and stops.
        stopping.append(signum)
        for worker in workers:
            worker.handle_sig(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        await asyncio.gather(*(worker.async_run() for worker in workers))
    except asyncio.CancelledError:
        if not stopping:  # stopped by a signal, each lane's task ends cancelled: a clean exit
            raise
    finally:
        for worker in workers:
            await worker.close()
