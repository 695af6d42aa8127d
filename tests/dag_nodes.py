"""Node functions and DAGs for the orchestrator's tests (importable by a worker subprocess too)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import structlog

from bot.github import RateLimited
from orchestrator.dag import Dag, FailurePolicy, Node
from orchestrator.nodes import GateDecision, NodeContext, NodeFailure, Replan

# Attempts seen per (build, node), for nodes that fail a given number of times.
attempts: Counter[tuple[int, str]] = Counter()
# Released by tests to let a waiting node finish.
releases: dict[tuple[int, str], asyncio.Event] = {}


async def noop(ctx: NodeContext) -> dict:
    return {"node": ctx.node.key, "inputs": sorted(ctx.inputs)}


async def log_line(ctx: NodeContext) -> dict:
    structlog.get_logger("tests.dag_nodes").info("node.working")
    return {}


async def fail(ctx: NodeContext) -> dict:
    raise RuntimeError(f"{ctx.node.key} broke")


async def fail_permanently(ctx: NodeContext) -> dict:
    raise NodeFailure("not worth retrying", retryable=False)


async def flaky(ctx: NodeContext) -> dict:
    """Fails as many times as the node's `failures` parameter says, then succeeds."""
    attempts[(ctx.build.id, ctx.node.key)] += 1
    if attempts[(ctx.build.id, ctx.node.key)] <= int(ctx.node.params.get("failures", "1")):
        raise RuntimeError("transient")
    return {"attempt": ctx.attempt}


async def gate_pass(ctx: NodeContext) -> GateDecision:
    return GateDecision(passed=True, reason="all clear")


async def gate_block(ctx: NodeContext) -> GateDecision:
    return GateDecision(passed=False, reason="a new critical finding")


async def gate_undecided(ctx: NodeContext) -> GateDecision:
    return GateDecision(passed=None, reason="could not tell")


async def gate_not_a_decision(ctx: NodeContext) -> dict:
    return {"looks": "fine"}


async def wait_for_release(ctx: NodeContext) -> dict:
    """Blocks until the test sets the event (in-process tests)."""
    event = releases.setdefault((ctx.build.id, ctx.node.key), asyncio.Event())
    await ctx.progress({"waiting": True})
    await event.wait()
    return {"released": True}


async def wait_for_file(ctx: NodeContext) -> dict:
    """Blocks until a file appears (tests that run a worker in another process)."""
    path = Path(ctx.node.params["path"])
    await ctx.progress({"waiting_for": path.name})
    while not path.exists():
        await asyncio.sleep(0.05)
    return {"released": True}


async def split_in_two(dag: Dag, node: Node, error: str) -> Replan:
    return Replan(
        split=(
            Node(f"{node.key}-part1", "tests.dag_nodes:noop", node.deps),
            Node(f"{node.key}-part2", "tests.dag_nodes:noop", node.deps),
        )
    )


def chain(*nodes: Node, name: str = "test") -> Dag:
    return Dag(name, tuple(nodes))


DETERMINISTIC_SCAN = Dag(
    "deterministic-scan",
    (Node("fetch", "tests.dag_nodes:noop"), Node("scan", "tests.dag_nodes:noop", ("fetch",))),
)
FAIL_POLICY = FailurePolicy


async def release_slow(ctx: NodeContext) -> dict:
    """Lets the build's `slow` node finish: proves this node did not wait for it."""
    releases.setdefault((ctx.build.id, "slow"), asyncio.Event()).set()
    return {}


# Sandboxes opened by `hold_sandbox`, by build, so a test can check they are gone.
opened_sandboxes: dict[int, str] = {}


async def hold_sandbox(ctx: NodeContext) -> dict:
    """Opens a sandbox and waits inside it until released (or cancelled by an abort)."""
    from orchestrator.sandbox.base import open_sandbox
    from tests.sandbox_contract import SPEC, archive

    async with open_sandbox(ctx.services["sandboxes"], SPEC, archive()) as sandbox:
        opened_sandboxes[ctx.build.id] = sandbox.id
        await wait_for_release(ctx)
    return {}


async def rate_limited(ctx: NodeContext) -> dict:
    """Refused by GitHub's primary rate limit once, until `wait` seconds from now; then succeeds."""
    attempts[(ctx.build.id, ctx.node.key)] += 1
    if attempts[(ctx.build.id, ctx.node.key)] == 1:
        raise RateLimited(time.time() + float(ctx.node.params.get("wait", "0.3")))
    return {"attempt": ctx.attempt, "at": time.time()}
