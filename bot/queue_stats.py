"""How full an arq queue is and how long its oldest job has waited, read from Redis.

arq keeps a queue as a sorted set named after it, scored by when each job is
due (its enqueue time, in ms, later for a deferred retry, earlier for urgent work:
`bot.queue.URGENT_HEAD_START`); a job stays in the set while it runs, marked by an
`arq:in-progress:<id>` key. A job has waited since it was due, or since it was
enqueued if that is later. Reading is bounded: two commands for the depth and the
due jobs, and one pipeline over at most `SCAN_LIMIT` of them to skip those already
running and read when each was enqueued.
"""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix
from arq.jobs import DeserializationError, deserialize_job_raw
from arq.utils import timestamp_ms

SCAN_LIMIT = 100


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    depth: int  # every job in the set: waiting, deferred and running
    # Seconds the oldest due job no worker has taken has waited; None when none waits
    # (or the first SCAN_LIMIT due jobs are all running).
    oldest_age: float | None


async def read_queue(
    redis: ArqRedis, queue: str, *, now_ms: int | None = None, scan: int = SCAN_LIMIT
) -> QueueStats:
    """The queue's depth and the age of its oldest waiting job."""
    now = timestamp_ms() if now_ms is None else now_ms
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(queue)
        pipe.zrangebyscore(queue, "-inf", now, start=0, num=scan, withscores=True)
        depth, due = await pipe.execute()
    if not due:
        return QueueStats(queue, depth, None)
    async with redis.pipeline(transaction=False) as pipe:
        for job_id, _ in due:
            pipe.exists(in_progress_key_prefix + _text(job_id))
            pipe.get(job_key_prefix + _text(job_id))
        replies = await pipe.execute()
    waited = [
        now - max(score, _enqueued_ms(job, redis) or score)
        for (_, score), taken, job in zip(due, replies[::2], replies[1::2], strict=True)
        if not taken
    ]
    return QueueStats(queue, depth, max(0.0, max(waited) / 1000) if waited else None)


def _enqueued_ms(job: bytes | None, redis: ArqRedis) -> int | None:
    if job is None:
        return None
    try:
        return deserialize_job_raw(job, deserializer=getattr(redis, "job_deserializer", None))[4]
    except DeserializationError:
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
