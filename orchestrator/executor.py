"""`run_build(ctx, build_id)`: run a build's DAG under a lease, checkpointing every node.

The scheduler decides (pure); this module acts: it starts node coroutines,
applies retries and failure policies, and records every change through
`transition`. A worker that loses its lease stops writing at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from redis.exceptions import RedisError
from sqlmodel import select

from bot import claims, metrics
from bot.db import Database
from bot.models import Build, BuildStatus, Task, TaskStatus, utcnow
from bot.outbound_jobs import build_completed
from bot.queue import queue_for
from orchestrator import lease as leases
from orchestrator.batching import Batcher
from orchestrator.control import announce, cancel_channel, enqueue
from orchestrator.dag import Dag
from orchestrator.events import EventType
from orchestrator.hooks import FAILURE_HOOKS, FailureContext
from orchestrator.node_steps import NodeSteps, Outcome
from orchestrator.nodes import (
    dag_from_spec,
    resolve,
)
from orchestrator.scheduler import Scheduler
from orchestrator.transitions import TERMINAL_BUILD, Change, LeaseLost, TaskChange, transition_many
from policies import node_concurrency_for

log = structlog.get_logger(__name__)

DEFAULT_CONCURRENCY = 4


async def run_build(ctx: dict[str, Any], build_id: int) -> str:
    """The arq job: own the build, run what is left of its DAG, release it."""
    structlog.contextvars.bind_contextvars(build_id=build_id)
    owner = claims.worker_id(ctx)
    settings = ctx["settings"]
    ttl_ms = int(settings.build_lease_ttl.total_seconds() * 1000)
    lease = await leases.acquire(
        ctx["redis"], ctx["db"], build_id, owner, prefix=settings.queue_prefix, ttl_ms=ttl_ms
    )
    if lease is None:
        log.info("build.owned_elsewhere")
        return "owned-elsewhere"
    try:
        return await BuildRunner(ctx, lease).run()
    except LeaseLost:
        # A late heartbeat (a paused or overloaded worker) loses the lease without anyone else
        # taking it: ask again at once rather than wait for the reconciler. Whoever holds it
        # now, if anyone, makes the new job a no-op.
        log.warning("build.lease_lost")
        await _ask_again(ctx, build_id)
        return "lease-lost"
    finally:
        with contextlib.suppress(Exception):
            await leases.release(ctx["redis"], lease)
        await build_completed(ctx, build_id)  # subscribers hear of a build that ended, however
        structlog.contextvars.unbind_contextvars("build_id", "installation_id", "repository_id")


async def _ask_again(ctx: dict[str, Any], build_id: int) -> None:
    async with ctx["db"].session() as session:
        build = await session.get(Build, build_id)
    if build is None or build.status in TERMINAL_BUILD:
        return
    prefix = ctx["settings"].queue_prefix
    with contextlib.suppress(RedisError):
        await enqueue(ctx["redis"], build_id, queue_for(prefix, build.tier.value))


class BuildRunner(NodeSteps):
    """Runs one build's DAG while it holds the lease."""

    def __init__(self, ctx: dict[str, Any], lease: leases.Lease) -> None:
        self.ctx = ctx
        self.db: Database = ctx["db"]
        self.lease = lease
        self.build_id = lease.build_id
        self.lost = asyncio.Event()
        self.results: dict[str, dict[str, Any]] = {}
        self.changes: Batcher[Change, None] = Batcher(self._commit)

    async def change(self, change: Change) -> None:
        """Record `change`; changes made at the same moment by other nodes share its commit."""
        await self.changes.submit(change)

    async def _commit(self, batch: list[Change]) -> list[None]:
        try:
            await transition_many(self.db, self.build_id, self.lease.fence, batch)
        except LeaseLost:
            self.lost.set()
            raise
        await announce(self.ctx["redis"], self.ctx["settings"].queue_prefix, self.build_id)
        return [None] * len(batch)

    async def run(self) -> str:
        await self.changes.start()
        try:
            return await self._run()
        finally:
            await self.changes.stop()

    async def _run(self) -> str:
        build, tasks = await self._load()
        structlog.contextvars.bind_contextvars(
            installation_id=build.installation_id, repository_id=build.repository_id
        )
        if build.status in TERMINAL_BUILD:
            return build.status.value
        started = build.status is BuildStatus.QUEUED
        await self.change(
            Change(
                EventType.BUILD_STARTED if started else EventType.BUILD_RESUMED,
                build=BuildStatus.RUNNING,
                data={"fence": self.lease.fence},
            )
        )
        for task in tasks.values():
            if task.status is TaskStatus.RUNNING:  # its worker died mid-node: run it again
                await self.change(
                    Change(EventType.NODE_RESET, task=TaskChange(task.key, TaskStatus.PENDING))
                )
        watchers = [
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(self._listen_for_abort()),
        ]
        try:
            return await self._loop(build, dag_from_spec(build.dag_name, build.dag_spec), tasks)
        finally:
            for watcher in watchers:
                watcher.cancel()
            for watcher in watchers:
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    async def _load(self) -> tuple[Build, dict[str, Task]]:
        async with self.db.session() as session:
            build = await session.get(Build, self.build_id)
            if build is None:
                raise LookupError(f"build {self.build_id} does not exist")
            rows = await session.exec(select(Task).where(Task.build_id == self.build_id))
            tasks = {task.key: task for task in rows}
        # Results of finished nodes, for their dependents' inputs (kept current by _succeeded).
        self.results.update(
            {k: t.result or {} for k, t in tasks.items() if t.status is TaskStatus.SUCCEEDED}
        )
        return build, tasks

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease.ttl_ms / 3000)
            if not await leases.renew(self.ctx["redis"], self.lease):
                self.lost.set()
                return

    async def _listen_for_abort(self) -> None:
        # An abort bumps the fence (so every later write is refused) and says so here,
        # so running nodes are cancelled now rather than at their next write.
        pubsub = self.ctx["redis"].pubsub()
        try:
            await pubsub.subscribe(cancel_channel(self.ctx["settings"].queue_prefix, self.build_id))
            while not self.lost.is_set():
                if await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0):
                    self.lost.set()
        except (RedisError, OSError) as error:
            # Without Redis an abort is still noticed: at the next write, by the fence.
            log.warning("build.abort_listener_stopped", error=type(error).__name__)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    async def _loop(self, build: Build, dag: Dag, tasks: dict[str, Task]) -> str:
        finished = {
            k for k, t in tasks.items() if t.status in (TaskStatus.SUCCEEDED, TaskStatus.SKIPPED)
        }
        scheduler = Scheduler(dag, finished=finished, limit=self._concurrency(build))
        running: dict[str, asyncio.Task[Outcome]] = {}
        failure: str | None = None
        lost = asyncio.create_task(self.lost.wait())
        try:
            while scheduler.is_active() and failure is None:
                for key in scheduler.ready():
                    scheduler.started(key)
                    running[key] = asyncio.create_task(
                        metrics.timed_node(
                            build, key, self._run_node(build, dag, dag.node(key), tasks)
                        )
                    )
                if not running:
                    break
                await asyncio.wait([*running.values(), lost], return_when=asyncio.FIRST_COMPLETED)
                if self.lost.is_set():
                    raise LeaseLost("lease lost while running")
                for key in [k for k, t in running.items() if t.done()]:
                    if key not in running or key not in dag.keys:
                        continue  # finished as the DAG changed under it (a fallback, a split)
                    outcome = running.pop(key).result()
                    if outcome.kind in ("succeeded", "debt"):
                        scheduler.finished(key)
                    elif outcome.kind == "split" and outcome.dag is not None:
                        dag, tasks = outcome.dag, (await self._load())[1]
                        scheduler = self._rebuild(dag, tasks, running, limit=scheduler.limit)
                    elif outcome.kind == "fallback":
                        await self._cancel(running)
                        build, dag, tasks = await self._switch_to_fallback(
                            build, dag, outcome.detail
                        )
                        scheduler = self._rebuild(dag, tasks, running, limit=scheduler.limit)
                    else:
                        failure = f"{key}: {outcome.detail}"
                        await self._skip(scheduler.failed(key), f"{key} {outcome.kind}")
        finally:
            lost.cancel()
            await self._cancel(running)
        if failure is not None:
            await self.change(
                Change(EventType.BUILD_FAILED, build=BuildStatus.FAILED, error=failure)
            )
            metrics.build_ended(build, "failed", (utcnow() - build.created_at).total_seconds())
            await self._after_failure(failure)
            return "failed"
        await self.change(Change(EventType.BUILD_SUCCEEDED, build=BuildStatus.SUCCEEDED))
        metrics.build_ended(build, "succeeded", (utcnow() - build.created_at).total_seconds())
        return "succeeded"

    async def _after_failure(self, error: str) -> None:
        """The DAG's failure hook, if it has one: best effort, the failure is already recorded."""
        build, _ = await self._load()
        hook = FAILURE_HOOKS.get(build.dag_name)
        if hook is None:
            return
        try:
            await resolve(hook)(FailureContext(build, error, self.ctx))
        except Exception as hook_error:  # a broken hook must not hide the build's own failure
            log.exception("build.failure_hook_failed", error=type(hook_error).__name__)

    def _concurrency(self, build: Build) -> int:
        # The policy pack says how many nodes of a build of this tier may run at once.
        if "node_concurrency" in self.ctx:
            return self.ctx["node_concurrency"]
        if "policy" in self.ctx:
            return node_concurrency_for(self.ctx["policy"], build.tier)
        return DEFAULT_CONCURRENCY

    def _rebuild(
        self, dag: Dag, tasks: dict[str, Task], running: dict[str, Any], *, limit: int
    ) -> Scheduler:
        finished = {
            k for k, t in tasks.items() if t.status in (TaskStatus.SUCCEEDED, TaskStatus.SKIPPED)
        }
        scheduler = Scheduler(dag, finished=finished - set(running), limit=limit)
        for key in running:  # still running under the new DAG
            scheduler.started(key)
        return scheduler

    async def _cancel(self, running: dict[str, asyncio.Task[Outcome]]) -> None:
        for task in running.values():
            task.cancel()
        for task in running.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        running.clear()

    async def _skip(self, keys: set[str], reason: str) -> None:
        for key in sorted(keys):
            await self.change(
                Change(
                    EventType.NODE_SKIPPED,
                    task=TaskChange(key, TaskStatus.SKIPPED),
                    data={"reason": reason},
                )
            )
