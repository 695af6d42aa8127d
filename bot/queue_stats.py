"""How full an arq queue is and how long its oldest job has waited, read from Redis.

arq keeps a queue as a sorted set named after it, scored by when each job is
due (its enqueue time, in ms, or later for a deferred retry); a job stays in the
set while it runs, marked by an `arq:in-progress:<id>` key. Reading is bounded:
two commands for the depth and the due jobs, and one pipeline over at most
`SCAN_LIMIT` of them to skip those already running.
"""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
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
        running = await pipe.execute()
    for (_, score), taken in zip(due, running, strict=True):
        if not taken:
            return QueueStats(queue, depth, max(0.0, (now - score) / 1000))
    return QueueStats(queue, depth, None)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
