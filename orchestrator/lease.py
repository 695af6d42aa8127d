"""One worker owns a build at a time: a Redis lease for liveness, a fencing token for safety.

The lease (SET NX PX, renewed by a heartbeat) says who may run the build now.
The fencing token is bumped in the database at every acquisition and checked
by every state write, so a worker that lost its lease (paused, partitioned)
cannot write even if it has not noticed yet. The token lives in the database,
not Redis, so losing Redis never hands out an old token again.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import update
from sqlmodel import col

from bot.db import Database
from bot.models import Build

# Compare-and-act on a key holding its owner's name (also used by bot.claims).
RENEW_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def lease_key(prefix: str, build_id: int) -> str:
    return f"{prefix}:lease:build:{build_id}"


@dataclass(frozen=True, slots=True)
class Lease:
    build_id: int
    owner: str
    fence: int
    key: str
    ttl_ms: int


async def acquire(
    redis: Redis, db: Database, build_id: int, owner: str, *, prefix: str, ttl_ms: int = 30_000
) -> Lease | None:
    """Take the build's lease, or None when another worker holds it."""
    key = lease_key(prefix, build_id)
    if not await redis.set(key, owner, nx=True, px=ttl_ms):
        return None
    async with db.session() as session:
        result = await session.exec(
            update(Build)
            .where(col(Build.id) == build_id)
            .values(fencing_token=Build.fencing_token + 1)
            .returning(Build.fencing_token)
        )
        fence = result.scalar_one_or_none()
        await session.commit()
    if fence is None:
        await redis.delete(key)
        return None
    return Lease(build_id, owner, fence, key, ttl_ms)


async def renew(redis: Redis, lease: Lease) -> bool:
    """Extend the lease; False when it has expired or belongs to someone else now."""
    return bool(await redis.eval(RENEW_IF_OWNER, 1, lease.key, lease.owner, lease.ttl_ms))


async def release(redis: Redis, lease: Lease) -> None:
    await redis.eval(RELEASE_IF_OWNER, 1, lease.key, lease.owner)


async def held(redis: Redis, prefix: str, build_id: int) -> bool:
    return bool(await redis.exists(lease_key(prefix, build_id)))
