"""The one place a build or a task changes state.

Each call validates the move, checks the caller's fencing token, updates the
rows and appends the `BuildEvent`, in one transaction. Nothing else writes
build or task state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import defer
from sqlmodel import col, select

from bot.db import Database
from bot.models import Build, BuildEvent, BuildMode, BuildStatus, Task, TaskStatus, utcnow
from orchestrator.events import EventType

_BUILD_MOVES: Mapping[BuildStatus, frozenset[BuildStatus]] = {
    BuildStatus.QUEUED: frozenset({BuildStatus.RUNNING, BuildStatus.ABORTED, BuildStatus.FAILED}),
    BuildStatus.RUNNING: frozenset(
        {
            BuildStatus.RUNNING,
            BuildStatus.SUCCEEDED,
            BuildStatus.FAILED,
            BuildStatus.ABORTED,
            BuildStatus.QUEUED,
        }
    ),
    BuildStatus.FAILED: frozenset({BuildStatus.QUEUED}),
    BuildStatus.ABORTED: frozenset({BuildStatus.QUEUED}),
    BuildStatus.SUCCEEDED: frozenset(),
}
_TASK_MOVES: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.RUNNING, TaskStatus.SKIPPED}),
    TaskStatus.RUNNING: frozenset(
        {
            TaskStatus.SUCCEEDED,
            TaskStatus.FAILED,
            TaskStatus.BLOCKED,
            TaskStatus.PENDING,
            TaskStatus.SKIPPED,
        }
    ),
    TaskStatus.FAILED: frozenset({TaskStatus.PENDING, TaskStatus.SKIPPED}),
    TaskStatus.BLOCKED: frozenset({TaskStatus.PENDING, TaskStatus.SKIPPED}),
    TaskStatus.SKIPPED: frozenset({TaskStatus.PENDING}),
    TaskStatus.SUCCEEDED: frozenset(),
}
TERMINAL_BUILD = frozenset({BuildStatus.SUCCEEDED, BuildStatus.FAILED, BuildStatus.ABORTED})


class TransitionError(Exception):
    """A state change that may not happen."""


class IllegalMove(TransitionError):
    def __init__(self, what: str, old: str, new: str) -> None:
        super().__init__(f"{what} cannot move from {old} to {new}")


class LeaseLost(TransitionError):
    """The caller's fencing token is stale: another worker owns the build now."""


class UnknownBuild(TransitionError):
    pass


@dataclass(frozen=True, slots=True)
class TaskChange:
    key: str
    status: TaskStatus
    result: dict[str, Any] | None = None
    error: str | None = None
    count_attempt: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    """One transition: an event, and the state it moves the build and/or one task to."""

    event: EventType
    build: BuildStatus | None = None
    task: TaskChange | None = None
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # the build's error, with a FAILED build
    dag_spec: list[dict[str, Any]] | None = None  # replaced DAG (replan, fallback)
    mode: BuildMode | None = None  # fallback switches an autonomous build to deterministic
    bump_fence: bool = False  # control actions: the current owner's next write is refused
    reset_unfinished: bool = False  # resume/retry: every task not succeeded goes back to pending
    skip_unfinished: bool = False  # abort: every task not finished is skipped
    new_tasks: tuple[tuple[str, tuple[str, ...]], ...] = ()  # tasks the new DAG adds


async def transition(db: Database, build_id: int, fence: int | None, change: Change) -> BuildEvent:
    """Apply `change` and append its event atomically; `fence` None is the control plane's override."""
    return (await transition_many(db, build_id, fence, [change]))[0]


async def transition_many(
    db: Database, build_id: int, fence: int | None, changes: Sequence[Change]
) -> list[BuildEvent]:
    """Apply `changes` in order, in one transaction: all of them or none."""
    for attempt in range(5):
        try:
            return await _transition(db, build_id, fence, changes)
        except IntegrityError:
            # Two writers took the same next `seq` (SQLite has no row lock to order them): again.
            if attempt == 4:
                raise
        except OperationalError as error:
            # SQLite refuses at once (no busy wait) to upgrade a read to a write when another
            # writer committed since the read began: the whole transition is simply redone.
            if attempt == 4 or "database is locked" not in str(error):
                raise
            await asyncio.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")


async def _transition(
    db: Database, build_id: int, fence: int | None, changes: Sequence[Change]
) -> list[BuildEvent]:
    async with db.session() as session:
        # The DAG spec can be large and a transition rarely changes it: not loaded unless assigned.
        build = await session.get(
            Build, build_id, with_for_update=True, options=[defer(Build.dag_spec)]
        )
        if build is None:
            raise UnknownBuild(f"build {build_id} does not exist")
        if fence is not None and build.fencing_token != fence:
            raise LeaseLost(
                f"build {build_id} is owned by fence {build.fencing_token}, not {fence}"
            )
        keys = {c.task.key for c in changes if c.task is not None}
        tasks = {}
        if keys:
            rows = await session.exec(
                select(Task).where(Task.build_id == build_id, col(Task.key).in_(keys))
            )
            tasks = {task.key: task for task in rows}
        seq = (
            await session.exec(
                select(func.coalesce(func.max(BuildEvent.seq), 0)).where(
                    BuildEvent.build_id == build_id
                )
            )
        ).one()
        now = utcnow()
        events = []
        for change in changes:
            await _apply_build(session, build, change, now)
            if change.task is not None:
                _apply_task(build_id, tasks, change.task, now)
            seq += 1
            event = BuildEvent(
                build_id=build_id,
                seq=seq,
                type=change.event,
                task_key=change.task.key if change.task else None,
                data=change.data,
            )
            session.add(event)
            events.append(event)
        session.add(build)
        for task in tasks.values():
            session.add(task)
        await session.commit()
        return events


async def _apply_build(session: Any, build: Build, change: Change, now: Any) -> None:
    if change.build is not None and change.build is not build.status:
        if change.build not in _BUILD_MOVES[build.status]:
            raise IllegalMove(f"build {build.id}", build.status, change.build)
        build.status = change.build
        if change.build is BuildStatus.RUNNING and build.started_at is None:
            build.started_at = now
        if change.build in TERMINAL_BUILD:
            build.finished_at = now
        if change.build is BuildStatus.QUEUED:
            build.finished_at = None
    if change.error is not None:
        build.error = change.error
    if change.dag_spec is not None:
        build.dag_spec = change.dag_spec
    if change.mode is not None:
        build.mode = change.mode
    if change.bump_fence:
        build.fencing_token += 1
    if change.reset_unfinished or change.skip_unfinished:
        target = TaskStatus.PENDING if change.reset_unfinished else TaskStatus.SKIPPED
        await _bulk(session, build.id, target, now)
    for key, deps in change.new_tasks:
        session.add(Task(build_id=build.id, key=key, deps=list(deps)))


def _apply_task(build_id: int, tasks: dict[str, Task], change: TaskChange, now: Any) -> None:
    task = tasks.get(change.key)
    if task is None:
        raise TransitionError(f"build {build_id} has no task {change.key!r}")
    if change.status is not task.status and change.status not in _TASK_MOVES[task.status]:
        raise IllegalMove(f"task {change.key!r}", task.status, change.status)
    task.status = change.status
    if change.count_attempt:
        task.attempts += 1
    if change.status is TaskStatus.RUNNING:
        task.started_at, task.finished_at, task.error = now, None, None
    elif change.status in (
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.BLOCKED,
        TaskStatus.SKIPPED,
    ):
        task.finished_at = now
    if change.status is TaskStatus.PENDING:
        task.finished_at = None
    if change.result is not None:
        task.result = change.result
    if change.error is not None:
        task.error = change.error[:4000]


async def _bulk(session: Any, build_id: int, status: TaskStatus, now: Any) -> None:
    rows = await session.exec(select(Task).where(Task.build_id == build_id))
    for task in rows:
        if task.status is TaskStatus.SUCCEEDED:
            continue
        if status is TaskStatus.SKIPPED and task.status is TaskStatus.SKIPPED:
            continue
        task.status = status
        task.finished_at = now if status is TaskStatus.SKIPPED else None
        if status is TaskStatus.PENDING:
            task.error = None
        session.add(task)
