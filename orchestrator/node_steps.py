"""One node's life within a build: run it, retry it, judge a gate, apply its failure policy.

A mixin of the build runner (`executor.BuildRunner`), which provides `change`,
`_load`, `results` and `ctx`; kept apart from the build loop it serves.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import structlog

from bot import metrics
from bot.github import RateLimited, describe, is_answer
from bot.models import Build, BuildMode, BuildStatus, Task, TaskStatus
from orchestrator.dag import Dag, FailurePolicy, Node
from orchestrator.events import EventType
from orchestrator.fallback import fallback_dag
from orchestrator.nodes import (
    GateDecision,
    NodeContext,
    NodeFailure,
    dag_spec,
    resolve,
    result_json,
)
from orchestrator.replan import plan_failure
from orchestrator.transitions import Change, LeaseLost, TaskChange


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one node ended, for the main loop."""

    key: str
    kind: str  # succeeded | debt | failed | blocked | split | fallback
    detail: str = ""
    dag: Dag | None = None


# How often one node run waits out GitHub's rate limit (each wait up to its reset, an hour at most).
MAX_RATE_LIMIT_WAITS = 3


class NodeSteps:
    """How the build runner runs a single node."""

    ctx: dict[str, Any]
    results: dict[str, dict[str, Any]]

    async def change(self, change: Change) -> None:
        raise NotImplementedError

    async def _load(self) -> tuple[Build, dict[str, Task]]:
        raise NotImplementedError

    async def _run_node(
        self, build: Build, dag: Dag, node: Node, tasks: dict[str, Task]
    ) -> Outcome:
        attempts = tasks[node.key].attempts
        waits = 0  # for GitHub's quota: not failures, so they use none of the node's retries
        # Each node runs in its own asyncio task, so these stay on its own log lines.
        structlog.contextvars.bind_contextvars(task_id=tasks[node.key].id, task=node.key)
        while True:
            attempts += 1
            await self.change(
                Change(
                    EventType.NODE_STARTED,
                    task=TaskChange(node.key, TaskStatus.RUNNING, count_attempt=True),
                    data={"attempt": attempts},
                )
            )
            try:
                result = await asyncio.wait_for(
                    resolve(node.run)(await self._context(build, node, attempts)), node.timeout
                )
            except asyncio.CancelledError:
                raise
            except LeaseLost:
                raise
            except (
                Exception
            ) as error:  # a node's failure is data: recorded, retried or handled by policy
                detail = describe(error)
                # GitHub's rate limit says until when: asking again sooner would be refused.
                reset_at = (
                    error.retry_at
                    if isinstance(error, RateLimited) and waits < MAX_RATE_LIMIT_WAITS
                    else None
                )
                if node.gate and reset_at is None:
                    return await self._blocked(node, f"gate raised {detail}")
                # GitHub's 4xx answers stay the same however often the node asks again.
                retryable = (
                    error.retryable if isinstance(error, NodeFailure) else not is_answer(error)
                )
                if reset_at is not None or (retryable and attempts - waits <= node.retries):
                    if reset_at is not None:
                        waits += 1
                        delay = max(0.0, reset_at - time.time())
                    else:
                        delay = node.retry_delay(attempts)
                    await self.change(
                        Change(
                            EventType.NODE_RETRY_SCHEDULED,
                            task=TaskChange(node.key, TaskStatus.PENDING, error=detail),
                            data={"attempt": attempts, "delay": delay, "error": detail},
                        )
                    )
                    # The node's own coroutine waits; the other nodes go on meanwhile.
                    await asyncio.sleep(delay)
                    continue
                return await self._failed(build, dag, node, detail)
            return await self._succeeded(node, result)

    async def _context(self, build: Build, node: Node, attempt: int) -> NodeContext:
        inputs = {key: self.results.get(key, {}) for key in node.deps}

        async def progress(data: dict[str, Any]) -> None:
            await self.change(Change(EventType.NODE_PROGRESS, data={"node": node.key, **data}))

        return NodeContext(build, node, attempt, inputs, self.ctx, progress)

    async def _succeeded(self, node: Node, result: Any) -> Outcome:
        self.results[node.key] = result_json(result)
        if node.gate:
            if not isinstance(result, GateDecision) or result.passed is not True:
                reason = (
                    result.reason
                    if isinstance(result, GateDecision)
                    else "the gate gave no decision"
                )
                return await self._blocked(node, reason)
            await self.change(
                Change(
                    EventType.GATE_PASSED,
                    task=TaskChange(node.key, TaskStatus.SUCCEEDED, result=result_json(result)),
                    data={"reason": result.reason},
                )
            )
            return Outcome(node.key, "succeeded")
        await self.change(
            Change(
                EventType.NODE_SUCCEEDED,
                task=TaskChange(node.key, TaskStatus.SUCCEEDED, result=result_json(result)),
            )
        )
        return Outcome(node.key, "succeeded")

    async def _blocked(self, node: Node, reason: str) -> Outcome:
        metrics.GATE_FAILURES.labels(node.key).inc()
        await self.change(
            Change(
                EventType.GATE_BLOCKED,
                task=TaskChange(node.key, TaskStatus.BLOCKED, error=reason),
                data={"reason": reason},
            )
        )
        return Outcome(node.key, "blocked", reason)

    async def _failed(self, build: Build, dag: Dag, node: Node, detail: str) -> Outcome:
        if node.on_failure is FailurePolicy.REPLAN:
            change, new_dag = await plan_failure(dag, node, detail)
            await self.change(change)
            return Outcome(node.key, "split" if new_dag else "debt", detail, new_dag)
        if node.on_failure is FailurePolicy.FALLBACK and _may_fall_back(build):
            await self.change(
                Change(
                    EventType.NODE_FAILED,
                    task=TaskChange(node.key, TaskStatus.FAILED, error=detail),
                )
            )
            return Outcome(node.key, "fallback", detail)
        await self.change(
            Change(
                EventType.NODE_FAILED,
                task=TaskChange(node.key, TaskStatus.FAILED, error=detail),
                data={"error": detail},
            )
        )
        return Outcome(node.key, "failed", detail)

    async def _switch_to_fallback(
        self, build: Build, dag: Dag, reason: str
    ) -> tuple[Build, Dag, dict[str, Task]]:
        """Once per build: continue as the deterministic DAG of the build's tier."""
        new_dag = fallback_dag(build.tier)
        metrics.fell_back(build)
        _, tasks = await self._load()
        for key, task in tasks.items():
            if key not in new_dag.keys and task.status in (TaskStatus.PENDING, TaskStatus.RUNNING):
                await self.change(
                    Change(
                        EventType.NODE_SKIPPED,
                        task=TaskChange(key, TaskStatus.SKIPPED),
                        data={"reason": "fallback"},
                    )
                )
        await self.change(
            Change(
                EventType.FALLBACK_MODE_SWITCHED,
                build=BuildStatus.RUNNING,
                mode=BuildMode.DETERMINISTIC,
                dag_spec=dag_spec(new_dag),
                new_tasks=tuple((n.key, n.deps) for n in new_dag.nodes if n.key not in tasks),
                data={
                    "from": BuildMode.AUTONOMOUS.value,
                    "to": BuildMode.DETERMINISTIC.value,
                    "reason": reason,
                },
            )
        )
        for key in new_dag.keys:
            if key in tasks and tasks[key].status in (
                TaskStatus.FAILED,
                TaskStatus.BLOCKED,
                TaskStatus.SKIPPED,
            ):
                await self.change(
                    Change(EventType.NODE_RESET, task=TaskChange(key, TaskStatus.PENDING))
                )
        build, tasks = await self._load()
        return build, new_dag, tasks


def _may_fall_back(build: Build) -> bool:
    # Autonomous builds that asked for it, once: after the switch the build is deterministic.
    return (
        build.mode is BuildMode.AUTONOMOUS and build.fallback_scan_mode is BuildMode.DETERMINISTIC
    )
