"""The job queues (arq over Redis): fast work now, slow (agent) work later."""

from __future__ import annotations

from collections.abc import Sequence

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
    redis: ArqRedis, function: str, job_ids: Sequence[str], queue_name: str
) -> int:
    """Enqueue `function(job_id)` for each id, with the id as arq job id, in one pipeline.

    Equivalent to arq's `enqueue_job(function, job_id, _job_id=job_id)` per id
    (same keys, serialisation and expiry, so an unmodified arq worker runs
    them), without a WATCH transaction per job. Returns how many were new.
    """
    if not job_ids:
        return 0
    script = redis.register_script(_ENQUEUE_NEW)
    now = timestamp_ms()
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            job = serialize_job(function, (job_id,), {}, None, now, serializer=redis.job_serializer)
            await script(
                keys=[job_key_prefix + job_id, result_key_prefix + job_id, queue_name],
                args=[expires_extra_ms, job, now, job_id],
                client=pipe,
            )
        results = await pipe.execute()
    return sum(results)
