"""Running builds: checkpoints, retries, failure policies, gates, fallback and control actions."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from sqlmodel import select

from bot.db import Database
from bot.models import (
    Build,
    BuildEvent,
    BuildMode,
    BuildStatus,
    BuildTier,
    Installation,
    Repository,
    Task,
    TaskStatus,
)
from orchestrator import control, fallback
from orchestrator import lease as leases
from orchestrator.dag import Dag, FailurePolicy, Node
from orchestrator.events import EventType
from orchestrator.executor import run_build
from orchestrator.transitions import Change, IllegalMove, LeaseLost, transition
from tests import dag_nodes
from tests.dag_nodes import chain


def n(key: str, fn: str = "noop", *deps: str, **options) -> Node:
    return Node(key, f"tests.dag_nodes:{fn}", tuple(deps), **options)


@pytest.fixture(autouse=True)
def fresh_node_state():
    # Build ids repeat across tests (tables are emptied), so node state keyed by id must too.
    dag_nodes.releases.clear()
    dag_nodes.attempts.clear()
    dag_nodes.opened_sandboxes.clear()


@pytest.fixture
async def ctx(db: Database, queue, make_settings):
    async with db.session() as session:
        session.add(Installation(id=1, account_login="octo-org"))
        await session.flush()
        session.add(Repository(id=10, installation_id=1, full_name="octo-org/app"))
        await session.commit()
    return {"db": db, "redis": queue, "settings": make_settings(database_url=db.url)}


async def start(ctx, dag: Dag, **options) -> Build:
    options = {"tier": BuildTier.SCAN, "trigger": "test", **options}
    return await control.create_build(
        ctx["db"], dag, installation_id=1, repository_id=10, head_sha="a" * 40, **options
    )


async def state(ctx, build_id: int) -> tuple[Build, dict[str, Task], list[BuildEvent]]:
    async with ctx["db"].session() as session:
        build = await session.get(Build, build_id)
        tasks = {
            t.key: t for t in await session.exec(select(Task).where(Task.build_id == build_id))
        }
        events = list(
            await session.exec(
                select(BuildEvent).where(BuildEvent.build_id == build_id).order_by(BuildEvent.seq)
            )
        )
    return build, tasks, events


def started(events: list[BuildEvent]) -> Counter[str]:
    return Counter(e.task_key for e in events if e.type == EventType.NODE_STARTED)


def types(events: list[BuildEvent]) -> list[str]:
    return [e.type for e in events]


async def test_a_build_runs_every_node_in_order_and_checkpoints_each(ctx):
    build = await start(
        ctx, chain(n("a"), n("b", "noop", "a"), n("check", "gate_pass", "b", gate=True))
    )
    assert await run_build(ctx, build.id) == "succeeded"
    build, tasks, events = await state(ctx, build.id)
    assert build.status is BuildStatus.SUCCEEDED
    assert {k: t.status for k, t in tasks.items()} == dict.fromkeys(
        ("a", "b", "check"), TaskStatus.SUCCEEDED
    )
    assert tasks["b"].result == {"node": "b", "inputs": ["a"]}
    assert types(events)[:2] == [EventType.BUILD_QUEUED, EventType.BUILD_STARTED]
    assert types(events)[-1] == EventType.BUILD_SUCCEEDED
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


async def test_a_node_does_not_wait_for_an_unrelated_slow_branch(ctx):
    # `release` only runs if it need not wait for `slow`; it then lets `slow` finish.
    dag = chain(
        n("a"),
        n("slow", "wait_for_release", "a"),
        n("b", "noop", "a"),
        n("release", "release_slow", "b"),
    )
    build = await start(ctx, dag)
    assert await asyncio.wait_for(run_build(ctx, build.id), 10) == "succeeded"


async def test_the_concurrency_limit_holds(ctx):
    ctx["node_concurrency"] = 1
    build = await start(ctx, chain(n("a"), n("b"), n("c")))
    await run_build(ctx, build.id)
    _, _, events = await state(ctx, build.id)
    running = 0
    for event in events:
        running += event.type == EventType.NODE_STARTED
        running -= event.type == EventType.NODE_SUCCEEDED
        assert running <= 1


async def test_a_flaky_node_is_retried_with_backoff_until_it_succeeds(ctx):
    build = await start(
        ctx, chain(n("a", "flaky", retries=2, backoff=0.01, params={"failures": "2"}))
    )
    assert await run_build(ctx, build.id) == "succeeded"
    _, tasks, events = await state(ctx, build.id)
    assert tasks["a"].attempts == 3
    delays = [e.data["delay"] for e in events if e.type == EventType.NODE_RETRY_SCHEDULED]
    assert delays == [0.01, 0.02]


async def test_a_node_github_rate_limits_waits_until_the_reset_without_using_a_retry(ctx):
    build = await start(ctx, chain(n("a", "rate_limited", retries=0, params={"wait": "0.3"})))
    refused_at = time.time()
    assert await run_build(ctx, build.id) == "succeeded"
    _, tasks, events = await state(ctx, build.id)
    [scheduled] = [e for e in events if e.type == EventType.NODE_RETRY_SCHEDULED]
    assert 0.2 < scheduled.data["delay"] <= 0.3 and "rate limit" in scheduled.data["error"]
    assert tasks["a"].result["at"] >= refused_at + 0.25  # not asked again before the reset
    assert tasks["a"].attempts == 2


async def test_exhausted_retries_fail_the_build_and_skip_dependents(ctx):
    build = await start(
        ctx, chain(n("a", "fail", retries=1, backoff=0.01), n("b", "noop", "a"), n("other"))
    )
    assert await run_build(ctx, build.id) == "failed"
    build, tasks, _ = await state(ctx, build.id)
    assert build.status is BuildStatus.FAILED and "a broke" in build.error
    assert (tasks["a"].status, tasks["a"].attempts) == (TaskStatus.FAILED, 2)
    assert tasks["b"].status is TaskStatus.SKIPPED


async def test_a_permanent_failure_is_not_retried(ctx):
    build = await start(ctx, chain(n("a", "fail_permanently", retries=3, backoff=0.01)))
    await run_build(ctx, build.id)
    _, tasks, _ = await state(ctx, build.id)
    assert tasks["a"].attempts == 1


@pytest.mark.parametrize("gate", ["gate_block", "gate_undecided", "fail", "gate_not_a_decision"])
async def test_gates_fail_closed(ctx, gate):
    build = await start(
        ctx, chain(n("a"), n("gate", gate, "a", gate=True, retries=2), n("publish", "noop", "gate"))
    )
    assert await run_build(ctx, build.id) == "failed"
    _, tasks, events = await state(ctx, build.id)
    assert tasks["gate"].status is TaskStatus.BLOCKED
    assert tasks["gate"].attempts == 1  # an erroring gate is not retried into passing
    assert tasks["publish"].status is TaskStatus.SKIPPED
    assert EventType.GATE_BLOCKED in types(events)


async def test_replan_splits_a_failed_node_and_its_dependents_wait_for_both_parts(ctx):
    dag = chain(
        n("a"),
        n(
            "big",
            "fail",
            "a",
            on_failure=FailurePolicy.REPLAN,
            params={"planner": "tests.dag_nodes:split_in_two"},
        ),
        n("after", "noop", "big"),
    )
    build = await start(ctx, dag)
    assert await run_build(ctx, build.id) == "succeeded"
    build, tasks, events = await state(ctx, build.id)
    assert tasks["big"].status is TaskStatus.SKIPPED
    assert tasks["big-part1"].status is tasks["big-part2"].status is TaskStatus.SUCCEEDED
    assert tasks["after"].result["inputs"] == ["big-part1", "big-part2"]
    assert [node["key"] for node in build.dag_spec] == ["a", "big-part1", "big-part2", "after"]
    assert EventType.REPLANNED in types(events)


async def test_replan_without_a_split_records_debt_and_goes_on(ctx):
    build = await start(
        ctx, chain(n("a", "fail", on_failure=FailurePolicy.REPLAN), n("b", "noop", "a"))
    )
    assert await run_build(ctx, build.id) == "succeeded"
    _, tasks, events = await state(ctx, build.id)
    [debt] = [e for e in events if e.type == EventType.DEBT_RECORDED]
    assert "a left undone" in debt.data["debt"]
    assert tasks["b"].status is TaskStatus.SUCCEEDED


@pytest.fixture
def deterministic_fallback(monkeypatch):
    monkeypatch.setitem(
        fallback.FALLBACKS, BuildTier.DEEP_SCAN, "tests.dag_nodes:DETERMINISTIC_SCAN"
    )


async def test_an_autonomous_build_falls_back_to_the_deterministic_dag_once(
    ctx, deterministic_fallback
):
    dag = chain(
        n("fetch"),
        n("agent", "fail", "fetch", on_failure=FailurePolicy.FALLBACK),
        n("report", "noop", "agent"),
    )
    build = await start(
        ctx,
        dag,
        tier=BuildTier.DEEP_SCAN,
        mode=BuildMode.AUTONOMOUS,
        fallback_scan_mode=BuildMode.DETERMINISTIC,
    )
    assert await run_build(ctx, build.id) == "succeeded"
    build, tasks, events = await state(ctx, build.id)
    assert build.mode is BuildMode.DETERMINISTIC
    assert [e.data["reason"] for e in events if e.type == EventType.FALLBACK_MODE_SWITCHED] == [
        "RuntimeError: agent broke"
    ]
    assert tasks["scan"].status is TaskStatus.SUCCEEDED
    assert started(events)["fetch"] == 1  # finished before the switch: not re-run
    assert tasks["report"].status is TaskStatus.SKIPPED


async def test_parallel_agents_failing_together_fall_back_once(ctx, deterministic_fallback):
    dag = Dag(
        "parallel-agents",
        (
            n("fetch"),
            *(n(k, "fail_permanently", "fetch", on_failure=FailurePolicy.FALLBACK) for k in "xyz"),
            n("report", "noop", "x", "y", "z"),
        ),
    )
    build = await start(
        ctx,
        dag,
        tier=BuildTier.DEEP_SCAN,
        mode=BuildMode.AUTONOMOUS,
        fallback_scan_mode=BuildMode.DETERMINISTIC,
    )
    assert await run_build(ctx, build.id) == "succeeded"
    build, tasks, events = await state(ctx, build.id)
    assert types(events).count(EventType.FALLBACK_MODE_SWITCHED) == 1
    assert tasks["scan"].status is TaskStatus.SUCCEEDED


async def test_fallback_needs_an_autonomous_build_that_asked_for_it(ctx, deterministic_fallback):
    dag = chain(n("agent", "fail", on_failure=FailurePolicy.FALLBACK))
    build = await start(ctx, dag, tier=BuildTier.DEEP_SCAN, mode=BuildMode.AUTONOMOUS)
    assert await run_build(ctx, build.id) == "failed"
    _, _, events = await state(ctx, build.id)
    assert EventType.FALLBACK_MODE_SWITCHED not in types(events)


async def test_a_resumed_build_re_runs_no_finished_node(ctx):
    build = await start(ctx, chain(n("a"), n("b", "fail", "a"), n("c", "noop", "b")))
    assert await run_build(ctx, build.id) == "failed"
    await transition(
        ctx["db"], build.id, None, Change(EventType.NODE_PROGRESS)
    )  # a later event, for ordering
    async with ctx["db"].session() as session:
        row = await session.get(Build, build.id)
        row.dag_spec = [
            {**node, "run": "tests.dag_nodes:noop"} if node["key"] == "b" else node
            for node in row.dag_spec
        ]
        session.add(row)
        await session.commit()
    await control.retry(ctx["db"], build.id)
    assert await run_build(ctx, build.id) == "succeeded"
    _, _, events = await state(ctx, build.id)
    assert started(events) == {"a": 1, "b": 2, "c": 1}


async def test_abort_cancels_running_nodes_and_stops_the_owner(ctx):
    build = await start(
        ctx, chain(n("a"), n("wait", "wait_for_release", "a"), n("after", "noop", "wait"))
    )
    runner = asyncio.create_task(run_build(ctx, build.id))
    while (build.id, "wait") not in dag_nodes.releases:
        await asyncio.sleep(0)
    await control.abort(
        ctx["db"], ctx["redis"], ctx["settings"].queue_prefix, build.id, "superseded"
    )
    assert await asyncio.wait_for(runner, 10) == "lease-lost"
    build, tasks, events = await state(ctx, build.id)
    assert build.status is BuildStatus.ABORTED and build.error == "superseded"
    assert tasks["wait"].status is tasks["after"].status is TaskStatus.SKIPPED
    assert types(events)[-1] == EventType.BUILD_ABORTED


async def test_a_stale_lease_holder_cannot_write(ctx):
    build = await start(ctx, chain(n("a")))
    prefix = ctx["settings"].queue_prefix
    first = await leases.acquire(ctx["redis"], ctx["db"], build.id, "worker-1", prefix=prefix)
    await leases.release(ctx["redis"], first)  # or it expired: either way another worker takes over
    second = await leases.acquire(ctx["redis"], ctx["db"], build.id, "worker-2", prefix=prefix)
    assert second.fence == first.fence + 1
    with pytest.raises(LeaseLost):
        await transition(
            ctx["db"],
            build.id,
            first.fence,
            Change(EventType.BUILD_STARTED, build=BuildStatus.RUNNING),
        )
    await transition(
        ctx["db"],
        build.id,
        second.fence,
        Change(EventType.BUILD_STARTED, build=BuildStatus.RUNNING),
    )


async def test_a_build_owned_by_a_live_worker_is_not_run_twice(ctx):
    build = await start(ctx, chain(n("a")))
    prefix = ctx["settings"].queue_prefix
    assert await leases.acquire(ctx["redis"], ctx["db"], build.id, "other-worker", prefix=prefix)
    assert await run_build(ctx, build.id) == "owned-elsewhere"
    _, tasks, _ = await state(ctx, build.id)
    assert tasks["a"].attempts == 0


async def test_an_aborted_build_resumes_from_its_checkpoints(ctx):
    build = await start(
        ctx, chain(n("a"), n("wait", "wait_for_release", "a"), n("after", "noop", "wait"))
    )
    runner = asyncio.create_task(run_build(ctx, build.id))
    while (build.id, "wait") not in dag_nodes.releases:
        await asyncio.sleep(0)
    await control.abort(ctx["db"], ctx["redis"], ctx["settings"].queue_prefix, build.id)
    await asyncio.wait_for(runner, 10)
    dag_nodes.releases[(build.id, "wait")].set()
    await control.resume(ctx["db"], build.id)
    assert await run_build(ctx, build.id) == "succeeded"
    _, _, events = await state(ctx, build.id)
    assert started(events) == {"a": 1, "wait": 2, "after": 1}


async def test_retry_is_only_for_failed_builds(ctx):
    build = await start(ctx, chain(n("a")))
    await run_build(ctx, build.id)
    with pytest.raises(IllegalMove):
        await control.retry(ctx["db"], build.id)


async def test_the_replan_action_splits_a_failed_node_and_requeues_the_build(ctx):
    dag = chain(
        n("a"),
        n("b", "fail", "a", params={"planner": "tests.dag_nodes:split_in_two"}),
        n("c", "noop", "b"),
    )
    build = await start(ctx, dag)
    assert await run_build(ctx, build.id) == "failed"
    await control.replan(ctx["db"], build.id)
    assert await run_build(ctx, build.id) == "succeeded"
    _, tasks, events = await state(ctx, build.id)
    assert started(events) == {"a": 1, "b": 1, "b-part1": 1, "b-part2": 1, "c": 1}
    assert tasks["c"].result["inputs"] == ["b-part1", "b-part2"]


async def test_abort_destroys_the_sandboxes_of_running_nodes(ctx):
    import tempfile
    from datetime import timedelta
    from pathlib import Path

    from orchestrator.sandbox.local import LocalSandboxProvider

    root = Path(tempfile.mkdtemp(prefix="clarity-abort-test-"))
    ctx["sandboxes"] = LocalSandboxProvider(root)
    build = await start(ctx, chain(n("work", "hold_sandbox")))
    runner = asyncio.create_task(run_build(ctx, build.id))
    while (build.id, "work") not in dag_nodes.releases:
        await asyncio.sleep(0)
    assert [p.name for p in root.iterdir() if p.is_dir()]  # the sandbox exists while the node runs
    await control.abort(ctx["db"], ctx["redis"], ctx["settings"].queue_prefix, build.id)
    assert await asyncio.wait_for(runner, 10) == "lease-lost"
    assert (
        await LocalSandboxProvider(root).reap(older_than=timedelta(0)) == 0
    )  # nothing left to reap


async def test_a_worker_that_lost_its_lease_asks_for_the_build_to_run_again(ctx):
    """A late heartbeat loses the lease with nobody else running the build: it is queued again
    at once, not left to the reconciler."""
    from bot.queue import fast_queue

    build = await start(
        ctx, chain(n("a"), n("wait", "wait_for_release", "a"), n("after", "noop", "wait"))
    )
    runner = asyncio.create_task(run_build(ctx, build.id))
    while (build.id, "wait") not in dag_nodes.releases:
        await asyncio.sleep(0)
    prefix = ctx["settings"].queue_prefix
    await ctx["redis"].delete(leases.lease_key(prefix, build.id))  # as if it had expired
    taken = await leases.acquire(ctx["redis"], ctx["db"], build.id, "interim", prefix=prefix)
    await leases.release(ctx["redis"], taken)  # a worker took it over and let go
    dag_nodes.releases[(build.id, "wait")].set()
    assert await asyncio.wait_for(runner, 10) == "lease-lost"
    queued = await ctx["redis"].queued_jobs(queue_name=fast_queue(prefix))
    assert [job.args for job in queued if job.function == "run_build"] == [(build.id,)]
    assert await run_build(ctx, build.id) == "succeeded"
