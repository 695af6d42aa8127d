"""A delivery being processed is claimed in Redis, so a dead worker's job is told from a live one.

arq marks a job in progress for as long as the worker's longest function may run
(hours, because builds share the fast lane), so a worker killed mid-delivery
would leave that delivery waiting for hours. The claim is renewed while the job
runs and expires one lease TTL after its worker dies; the reconciler then lifts
arq's in-progress mark and the job, still queued, runs again on a live worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

from arq.constants import in_progress_key_prefix, result_key_prefix
from redis.asyncio import Redis
from redis.exceptions import RedisError

from orchestrator.lease import RELEASE_IF_OWNER, RENEW_IF_OWNER


def worker_id(ctx: dict[str, Any]) -> str:
    """This worker's name in leases and claims: host, process and a random part."""
    return ctx.setdefault(
        "worker_id", f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )


def claim_key(prefix: str, delivery_id: str) -> str:
    return f"{prefix}:claim:delivery:{delivery_id}"


@contextlib.asynccontextmanager
async def claimed(redis: Redis | None, key: str, owner: str, ttl_ms: int) -> AsyncIterator[None]:
    """Hold `key` while the block runs, renewing it every third of `ttl_ms` (no Redis: nothing).

    Redis trouble never fails the job: without its claim the job may at worst run
    twice, which the handlers tolerate, while a failed job would be retried anyway."""
    if redis is None:
        yield
        return
    with contextlib.suppress(RedisError, OSError):
        await redis.set(key, owner, px=ttl_ms)

    async def renew() -> None:
        while True:
            await asyncio.sleep(ttl_ms / 3000)
            with contextlib.suppress(RedisError, OSError):
                await redis.eval(RENEW_IF_OWNER, 1, key, owner, ttl_ms)

    beat = asyncio.create_task(renew())
    try:
        yield
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        with contextlib.suppress(RedisError, OSError):
            await redis.eval(RELEASE_IF_OWNER, 1, key, owner)


async def release_abandoned(
    redis: Redis, job_id: str, claim: str, *, in_progress_ms: int, ttl_ms: int
) -> bool:
    """Lift arq's in-progress mark of a job whose worker died; True if it was abandoned.

    Abandoned: arq marked it started (`in_progress_ms` is the mark's full lifetime) more
    than a lease TTL ago, and nobody holds its claim."""
    remaining = await redis.pttl(in_progress_key_prefix + job_id)
    if remaining < 0 or in_progress_ms - remaining <= ttl_ms or await redis.exists(claim):
        return False
    await redis.delete(in_progress_key_prefix + job_id)
    return True


async def forget_result(redis: Redis, job_id: str) -> bool:
    """Drop the kept result of a job that has ended, so the same job id may be queued again;
    True if there was one."""
    return bool(await redis.delete(result_key_prefix + job_id))
