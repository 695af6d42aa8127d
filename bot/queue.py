"""The job queues (arq over Redis): fast work now, slow (agent) work later."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis, RedisSettings
from arq.constants import expires_extra_ms, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from redis.asyncio import ConnectionPool

# arq's enqueue_job, for many jobs in one round trip: a job whose id exists
# (queued, running or with a kept result) is not enqueued again.
_ENQUEUE_NEW = """
if redis.call('exists', KEYS[1], KEYS[2]) == 0 then
  redis.call('psetex', KEYS[1], ARGV[1], ARGV[2])
  redis.call('zadd', KEYS[3], ARGV[3], ARGV[4])
  return 1
end
return 0
"""


# Work someone is waiting on (a pull request's check run) is due this much before it is
# enqueued, so a worker takes it ahead of any backlog of cheap deliveries younger than that.
# Bounded, so nothing starves; far longer than any backlog of a healthy fast lane (readiness
# fails at 60 s). Queue statistics date waiting from the enqueue time, not from this score.
URGENT_HEAD_START = timedelta(minutes=5)
# Deliveries that start a pull request's check run.
URGENT_DELIVERIES = frozenset(
    {
        ("pull_request", "opened"),
        ("pull_request", "reopened"),
        ("pull_request", "synchronize"),
        ("pull_request", "ready_for_review"),
        ("check_suite", "requested"),
        ("check_suite", "rerequested"),
        ("check_run", "rerequested"),
    }
)


def is_urgent(event: str, action: str | None) -> bool:
    """Whether a delivery starts a check run someone is waiting for."""
    return (event, action) in URGENT_DELIVERIES


def urgent_due(now: datetime | None = None) -> datetime:
    """When urgent work enqueued `now` is due (for arq's `_defer_until`)."""
    return (now or datetime.now(UTC)) - URGENT_HEAD_START


def fast_queue(prefix: str) -> str:
    """Deliveries, Tier 1 scans and publishing: never waits behind agents."""
    return f"{prefix}:fast"


def slow_queue(prefix: str) -> str:
    """Deep scans and fixes."""
    return f"{prefix}:slow"


def queue_for(prefix: str, tier: str) -> str:
    """The queue a build of `tier` runs on: agents on the slow one."""
    return fast_queue(prefix) if tier == "scan" else slow_queue(prefix)


def connect(redis_url: str, *, timeout: float = 1.0) -> ArqRedis:
    """An arq client that connects lazily, so the web process starts (and accepts) while Redis is down."""
    pool = ConnectionPool.from_url(
        redis_url, socket_connect_timeout=timeout, socket_timeout=timeout, health_check_interval=30
    )
    return ArqRedis(connection_pool=pool)


def redis_settings(redis_url: str) -> RedisSettings:
    return RedisSettings.from_dsn(redis_url)


async def enqueue_many(
    redis: ArqRedis,
    function: str,
    job_ids: Sequence[str],
    queue_name: str,
    urgent: Collection[str] = (),
) -> int:
    """Enqueue `function(job_id)` for each id, with the id as arq job id, in one pipeline;
    the ids in `urgent` go ahead of the waiting backlog (see `URGENT_HEAD_START`).

    Equivalent to arq's `enqueue_job(function, job_id, _job_id=job_id)` per id
    (same keys, serialisation and expiry, so an unmodified arq worker runs
    them), without a WATCH transaction per job. Returns how many were new.
    """
    if not job_ids:
        return 0
    script = redis.register_script(_ENQUEUE_NEW)
    now = timestamp_ms()
    head_start = int(URGENT_HEAD_START.total_seconds() * 1000)
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            job = serialize_job(function, (job_id,), {}, None, now, serializer=redis.job_serializer)
            due = now - head_start if job_id in urgent else now
            await script(
                keys=[job_key_prefix + job_id, result_key_prefix + job_id, queue_name],
                args=[expires_extra_ms, job, due, job_id],
                client=pipe,
            )
        results = await pipe.execute()
    return sum(results)
