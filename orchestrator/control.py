"""Creating builds and the control actions on them: abort, resume, retry, replan."""

from __future__ import annotations

import uuid
from datetime import timedelta

from arq.connections import ArqRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlmodel import col, select

from bot.db import Database
from bot.models import Build, BuildMode, BuildStatus, BuildTier, Task, TaskStatus, utcnow
from bot.queue import urgent_due
from orchestrator import lease as leases
from orchestrator.dag import Dag
from orchestrator.events import EventType
from orchestrator.nodes import dag_from_spec, dag_spec
from orchestrator.replan import plan_failure
from orchestrator.transitions import TERMINAL_BUILD, Change, IllegalMove, transition


def cancel_channel(prefix: str, build_id: int) -> str:
    return f"{prefix}:build:{build_id}:cancel"


def events_channel(prefix: str, build_id: int) -> str:
    """Where a build's new events are announced (their content stays in the database)."""
    return f"{prefix}:build:{build_id}:events"


async def announce(redis: Redis, prefix: str, build_id: int) -> None:
    """Wake the build's live event streams; losing this only delays them until their next poll."""
    try:
        await redis.publish(events_channel(prefix, build_id), "1")
    except (RedisError, OSError):
        pass


async def create_build(
    db: Database,
    dag: Dag,
    *,
    installation_id: int,
    repository_id: int,
    tier: BuildTier,
    head_sha: str,
    trigger: str,
    mode: BuildMode = BuildMode.DETERMINISTIC,
    pr_number: int | None = None,
    requester: str | None = None,
    delivery_id: str | None = None,
    fallback_scan_mode: BuildMode | None = None,
    budget_usd: float | None = None,
) -> Build:
    """A queued build with one pending task per node, and its BUILD_QUEUED event."""
    async with db.session() as session:
        build = Build(
            installation_id=installation_id,
            repository_id=repository_id,
            tier=tier,
            mode=mode,
            head_sha=head_sha,
            pr_number=pr_number,
            trigger=trigger,
            requester=requester,
            delivery_id=delivery_id,
            fallback_scan_mode=fallback_scan_mode,
            budget_usd=budget_usd,
            dag_name=dag.name,
            dag_spec=dag_spec(dag),
        )
        session.add(build)
        await session.flush()
        for node in dag.nodes:
            session.add(Task(build_id=build.id, key=node.key, deps=list(node.deps)))
        await session.commit()
    await transition(
        db,
        build.id,
        None,
        Change(EventType.BUILD_QUEUED, data={"dag": dag.name, "trigger": trigger}),
    )
    return build


async def enqueue(redis: ArqRedis, build_id: int, queue_name: str) -> None:
    """Ask a worker to run (or go on running) the build, ahead of waiting deliveries (someone
    waits for its check run); the lease keeps it single-owner."""
    await redis.enqueue_job(
        "run_build",
        build_id,
        _job_id=f"build:{build_id}:{uuid.uuid4().hex[:12]}",
        _queue_name=queue_name,
        _defer_until=urgent_due(),
    )


async def abort(
    db: Database, redis: Redis, prefix: str, build_id: int, reason: str = "aborted"
) -> None:
    """Stop a build now: its owner's next write is refused and its running nodes are cancelled."""
    await transition(
        db,
        build_id,
        None,
        Change(
            EventType.BUILD_ABORTED,
            build=BuildStatus.ABORTED,
            bump_fence=True,
            skip_unfinished=True,
            error=reason,
            data={"reason": reason},
        ),
    )
    # The owner listens here and cancels its nodes at once (their sandboxes are destroyed on the way out).
    await redis.publish(cancel_channel(prefix, build_id), reason)
    await announce(redis, prefix, build_id)


async def resume(db: Database, build_id: int) -> None:
    """Queue a failed or aborted build again; finished nodes are not re-run."""
    await _requeue(db, build_id, "resume")


async def retry(db: Database, build_id: int) -> None:
    """Re-run a failed build's failed nodes (and what they held up)."""
    await _failed_build(db, build_id, "retry")
    await _requeue(db, build_id, "retry")


async def replan(db: Database, build_id: int) -> None:
    """Apply each failed node's planner (split or debt), then queue the build again."""
    build = await _failed_build(db, build_id, "replan")
    async with db.session() as session:
        failed = list(
            await session.exec(
                select(Task).where(Task.build_id == build_id, col(Task.status) == TaskStatus.FAILED)
            )
        )
    dag = dag_from_spec(build.dag_name, build.dag_spec)
    for task in failed:
        change, new_dag = await plan_failure(dag, dag.node(task.key), task.error or "failed")
        dag = new_dag or dag
        await transition(db, build_id, None, change)
    await _requeue(db, build_id, "replan")


async def _failed_build(db: Database, build_id: int, action: str) -> Build:
    async with db.session() as session:
        build = await session.get(Build, build_id)
    if build is None or build.status is not BuildStatus.FAILED:
        raise IllegalMove(f"build {build_id}", build.status if build else "missing", action)
    return build


async def _requeue(db: Database, build_id: int, action: str) -> None:
    # A new fence: a worker still holding the old lease can write nothing more.
    change = Change(
        EventType.BUILD_QUEUED,
        build=BuildStatus.QUEUED,
        bump_fence=True,
        reset_unfinished=True,
        data={"action": action},
    )
    await transition(db, build_id, None, change)


async def orphaned_builds(db: Database, redis: Redis, prefix: str, grace: timedelta) -> list[int]:
    """Builds that should be running but whose owner is gone (lease expired), or queued too long."""
    cutoff = utcnow() - grace
    async with db.session() as session:
        rows = await session.exec(
            select(Build).where(col(Build.status).in_([BuildStatus.RUNNING, BuildStatus.QUEUED]))
        )
        candidates = [b for b in rows if b.status is BuildStatus.RUNNING or b.created_at < cutoff]
    return [b.id for b in candidates if not await leases.held(redis, prefix, b.id)]


def is_terminal(status: BuildStatus) -> bool:
    return status in TERMINAL_BUILD
