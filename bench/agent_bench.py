"""Agent loop overhead: our sandbox `terminal` through run_agent, next to OpenHands' stock one.

    .venv/bin/python bench/agent_bench.py [--steps 20] [--runs 5]

The real OpenHands loop is driven by the scripted OpenAI-compatible server of
tests/llm_standin.py: each conversation makes N `terminal` calls (`echo n`) then
finishes with a security verdict. One tool call is timed as the interval between
two consecutive requests reaching the model (the tool runs, its observation is
recorded, the next completion is asked for), so both sides are timed alike.

* ours: `run_agent` (security contract) on a bubblewrap LocalSandbox, its terminal
  one persistent shell in the sandbox, started by the first call of each
  conversation (that call is in the p95); the pattern security analyser is on;
* reference: a plain `LocalConversation` with OpenHands' stock `TerminalTool`
  (terminal_type="subprocess") in a local temporary directory, same script.

Also the fixed cost of one call with a 1-step script (finish only): run_agent
(conversation set-up, contract validation, close), next to a plain conversation
with no tool (the reference) and one with the stock terminal (whose shell start-up
sleeps 1 s). p50/p95 are over all calls of all runs; a warm-up of each is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

# Before OpenHands and LiteLLM are imported: no price list download, no banner, quiet logs.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENHANDS_SUPPRESS_BANNER", "1")
os.environ.setdefault("LOG_LEVEL", "ERROR")  # OpenHands warns when our tools take stock names

import structlog
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.agents.contracts import Role
from orchestrator.agents.llm import ModelChoice
from orchestrator.agents.prompts import CONTRACTS, task_message
from orchestrator.agents.runner import Budget, run_agent
from orchestrator.sandbox.base import ArchiveSource, Sandbox, open_sandbox
from orchestrator.sandbox.local import LocalSandboxProvider
from tests.llm_standin import Call, ScriptedModel, finish, terminal
from tests.sandbox_contract import SPEC, github_tarball

from openhands.sdk import LLM, Agent, Tool  # isort: skip
from openhands.sdk.conversation.impl.local_conversation import LocalConversation  # isort: skip
from openhands.sdk.event import ObservationEvent  # isort: skip
from openhands.sdk.tool import register_tool  # isort: skip
from openhands.tools.terminal import TerminalTool  # isort: skip
from openhands.tools.terminal.impl import TerminalExecutor  # isort: skip
from openhands.tools.terminal.terminal.subprocess_terminal import SubprocessTerminal  # isort: skip

# Our tools module took the name "terminal"; the stock class is offered under another
# registry name, and still shows the model the tool name "terminal".
register_tool("stock_terminal", TerminalTool)

SECURITY = CONTRACTS[Role.SECURITY]
APP = {"app/db.py": b'import sqlite3\n\n\ndef find(name):\n    q = f"SELECT {name}"\n'}
FINDING = {
    "fingerprint": "f00d",
    "rule_id": "py-sql-injection",
    "title": "SQL built from input",
    "severity": "high",
    "path": "app/db.py",
    "line": 5,
}
GIVEN = {"findings": [FINDING]}
VERDICT = {
    "verdicts": [
        {
            "fingerprint": "f00d",
            "verdict": "confirmed",
            "confidence": 0.9,
            "reasoning": "the name reaches the query unescaped",
            "evidence": [{"path": "app/db.py", "line": 5, "excerpt": 'q = f"SELECT'}],
        }
    ]
}
KEY = "sk-scripted-" + "k" * 24
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # the stock shell's bracketed-paste codes


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def script(model: ScriptedModel, steps: int) -> list[float]:
    """Script `steps` echo calls and a verdict; the list fills with each request's arrival."""
    arrivals: list[float] = []

    def stamped(call: Call) -> Callable[[dict[str, Any]], Call]:
        def step(_request: dict[str, Any]) -> Call:
            arrivals.append(time.perf_counter())
            return call

        return step

    calls = [terminal(f"echo {n}") for n in range(steps)] + [finish(VERDICT)]
    model.script("security", *[stamped(call) for call in calls])
    return arrivals


def choice(url: str) -> ModelChoice:
    return ModelChoice("openai/scripted", KEY, url, 1e-9, 1e-9, num_retries=0)


async def ours(model: ScriptedModel, url: str, sandbox: Sandbox, steps: int) -> tuple[list, float]:
    arrivals = script(model, steps)
    budget = Budget(max_iterations=steps + 5, max_cost_usd=100.0, wall_seconds=600.0)
    started = time.perf_counter()
    run = await run_agent(SECURITY, GIVEN, sandbox, choice(url), budget)
    wall = time.perf_counter() - started
    outputs = [
        e["output"].strip()
        for e in run.events
        if e["kind"] == "ObservationEvent" and e["tool"] == "terminal"
    ]
    assert outputs == [str(n) for n in range(steps)], outputs
    return [b - a for a, b in pairwise(arrivals)], wall


async def stock(
    model: ScriptedModel, url: str, workdir: str, steps: int, *, shell: bool = True
) -> tuple[list, float]:
    """A plain conversation with the stock terminal (or with no tool at all: `shell=False`)."""
    arrivals = script(model, steps)
    llm = LLM(
        model="openai/scripted",
        api_key=SecretStr(KEY),
        base_url=url,
        num_retries=0,
        input_cost_per_token=1e-9,
        output_cost_per_token=1e-9,
        usage_id="agent",
    )
    tools = [Tool(name="stock_terminal", params={"terminal_type": "subprocess"})] if shell else []
    events: list[Any] = []
    started = time.perf_counter()
    conversation = LocalConversation(
        agent=Agent(llm=llm, tools=tools),
        workspace=workdir,
        visualizer=None,
        callbacks=[events.append],
        max_iteration_per_run=steps + 5,
        delete_on_close=True,
    )
    try:
        conversation.send_message(task_message(SECURITY, GIVEN, workdir))
        await conversation.arun()
        terminal_tool = conversation.agent.tools_map.get("terminal")
    finally:
        await asyncio.to_thread(conversation.close)
    wall = time.perf_counter() - started
    if shell:  # the reference must really be OpenHands' own executor and a subprocess shell
        executor = terminal_tool.executor
        assert type(executor) is TerminalExecutor, type(executor)
        assert not executor.is_pooled and isinstance(executor._session.terminal, SubprocessTerminal)
    outputs = [
        e.observation.text.strip()
        for e in events
        if isinstance(e, ObservationEvent) and e.tool_name == "terminal"
    ]
    assert [ESCAPES.sub("", o).strip() for o in outputs] == [str(n) for n in range(steps)], outputs
    return [b - a for a, b in pairwise(arrivals)], wall


def row(name: str, values: list[float], reference: float) -> str:
    p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
    return f"{name:<48} {p50 * 1000:>9.1f} {p95 * 1000:>9.1f} {p50 / reference:>8.2f}x"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="tool calls per conversation")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    root = Path(tempfile.mkdtemp(prefix="bench-agent-sandboxes-"))
    workdir = Path(tempfile.mkdtemp(prefix="bench-agent-stock-"))
    model = ScriptedModel()
    calls: dict[str, list[float]] = {"ours": [], "stock": []}
    fixed: dict[str, list[float]] = {"ours": [], "stock": [], "bare": []}
    provider = None
    try:
        for path, data in APP.items():
            (workdir / path).parent.mkdir(parents=True, exist_ok=True)
            (workdir / path).write_bytes(data)
        provider = LocalSandboxProvider(root)
        with model.serving() as url:
            snapshot = ArchiveSource(github_tarball(APP))
            async with open_sandbox(provider, SPEC, snapshot) as sandbox:
                await ours(model, url, sandbox, 1)  # warm-up: lazy imports, first connections
                await stock(model, url, str(workdir), 1)
                for _ in range(args.runs):
                    calls["ours"] += (await ours(model, url, sandbox, args.steps))[0]
                    calls["stock"] += (await stock(model, url, str(workdir), args.steps))[0]
                    fixed["ours"].append((await ours(model, url, sandbox, 0))[1])
                    fixed["stock"].append((await stock(model, url, str(workdir), 0))[1])
                    bare = await stock(model, url, str(workdir), 0, shell=False)
                    fixed["bare"].append(bare[1])
    finally:
        if provider is not None:
            await provider.reap(older_than=timedelta(0))
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)

    per_call = percentile(calls["stock"], 0.5)
    per_run = percentile(fixed["bare"], 0.5)
    print(f"command: {shlex.join(sys.orig_argv)}")
    print(f"{args.steps} tool calls per conversation, {args.runs} runs; ratio = p50 / p50 of the")
    print("stock terminal per call, of a plain conversation with no tool per 1-step script\n")
    print(f"{'':<48} {'p50 ms':>9} {'p95 ms':>9} {'ratio':>9}")
    print(row("per tool call, stock TerminalTool (subprocess)", calls["stock"], per_call))
    print(row("per tool call, ours (LocalSandbox, run_agent)", calls["ours"], per_call))
    print(row("1-step script, plain LocalConversation, no tool", fixed["bare"], per_run))
    print(row("1-step script, plain, stock TerminalTool", fixed["stock"], per_run))
    print(row("1-step script, run_agent (fixed cost)", fixed["ours"], per_run))
    extra = percentile(fixed["ours"], 0.5) - per_run
    print(f"\nrun_agent's fixed cost over a plain conversation: {extra * 1000:+.0f} ms (p50)")


if __name__ == "__main__":
    asyncio.run(main())
