"""One agent role's run: an OpenHands conversation in the worker, its tools in the sandbox.

Budgets are enforced by OpenHands (iterations, cost through LiteLLM's accounting,
stuck detection) and here (wall time). High-risk actions are refused without a
human: OpenHands' pattern analyser marks them and the headless policy rejects them;
the sandbox's command policy refuses the rest. The final message must satisfy the
role's contract; one invalid answer is sent back with its problems, a second fails.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel, SecretStr

from orchestrator.agents import llm as _llm  # noqa: F401  (sets LiteLLM's offline switches first)
from orchestrator.agents.contracts import Contract, ContractViolation, Facts, Role, normalise
from orchestrator.agents.llm import ModelChoice
from orchestrator.agents.prompts import retry_message, task_message
from orchestrator.agents.runs import AgentFailed, AgentRun, AgentStatus, Budget
from orchestrator.agents.tools import give_back, lend
from orchestrator.agents.trajectory import compact
from orchestrator.sandbox.base import Sandbox, SandboxError

from openhands.sdk import LLM, Agent, Tool  # isort: skip
from openhands.sdk.conversation.exceptions import ConversationRunError  # isort: skip
from openhands.sdk.conversation.impl.local_conversation import LocalConversation  # isort: skip
from openhands.sdk.conversation.response_utils import get_agent_final_response  # isort: skip
from openhands.sdk.conversation.state import ConversationExecutionStatus  # isort: skip
from openhands.sdk.event import ActionEvent  # isort: skip
from openhands.sdk.event.conversation_error import ConversationErrorEvent  # isort: skip
from openhands.sdk.security import ConfirmRisky, SecurityRisk  # isort: skip
from openhands.sdk.security.defense_in_depth.pattern import PatternSecurityAnalyzer  # isort: skip
from openhands.tools.task_tracker import TaskTrackerTool  # isort: skip

REJECTED = "refused by Clarity Check's headless policy: high-risk action"


Observer = Callable[[dict[str, Any]], Awaitable[None]]


async def run_agent(
    contract: Contract,
    given: Mapping[str, Any],
    sandbox: Sandbox,
    model: ModelChoice,
    budget: Budget,
    *,
    observe: Observer | None = None,
) -> AgentRun:
    """Run `contract`'s role on `sandbox`; the validated output, or AgentFailed."""
    started = time.monotonic()
    workspace = lend(sandbox)
    home = tempfile.mkdtemp(prefix="clarity-agent-")  # the conversation's own state, not the code
    loop = asyncio.get_running_loop()
    events: list[Any] = []

    def collect(event: Any) -> None:
        events.append(event)
        if observe is not None and isinstance(event, ActionEvent):
            summary = {"agent": contract.role.value, "tool": event.tool_name}
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(observe(summary)))

    conversation = LocalConversation(
        agent=_agent(model, workspace.id),
        workspace=home,
        visualizer=None,
        callbacks=[collect],
        max_iteration_per_run=budget.max_iterations,
        max_budget_per_run=budget.max_cost_usd,
        stuck_detection=True,
        delete_on_close=True,
    )
    conversation.set_security_analyzer(PatternSecurityAnalyzer())
    conversation.set_confirmation_policy(
        ConfirmRisky(threshold=SecurityRisk.HIGH, confirm_unknown=False)
    )
    run = AgentRun(contract.role.value, model.model, AgentStatus.ERROR)
    try:
        async with asyncio.timeout(budget.wall_seconds):
            conversation.send_message(task_message(contract, dict(given), sandbox.workspace))
            run.output = await _answer(conversation, contract, given, workspace, run, events)
        run.status = AgentStatus.FINISHED
    except TimeoutError:
        run.status, run.error = AgentStatus.TIMEOUT, f"ran past {budget.wall_seconds:g} s"
    except ContractViolation as violation:
        run.status, run.error = AgentStatus.INVALID, str(violation)
    except _Ended as ended:
        run.status, run.error = ended.status, ended.detail
    finally:
        conversation.interrupt()
        run.iterations = len({e.llm_response_id for e in events if isinstance(e, ActionEvent)})
        run.cost_usd = _cost(conversation)
        run.duration_seconds = time.monotonic() - started
        run.events = [compact(e) for e in events]
        await give_back(workspace)
        await asyncio.to_thread(_close, conversation, home)
    if run.status is not AgentStatus.FINISHED:
        raise AgentFailed(run)
    return run


class _Ended(Exception):
    def __init__(self, status: AgentStatus, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


async def _answer(
    conversation: LocalConversation,
    contract: Contract,
    given: Mapping[str, Any],
    workspace: Any,
    run: AgentRun,
    events: list[Any],
) -> BaseModel:
    for attempt in (1, 2):
        run.attempts = attempt
        await _run_headless(conversation, events)
        message = get_agent_final_response(conversation.state.events)
        try:
            output = contract.parse(message)
            contract.check(output, given, await _facts(contract, output, workspace))
            return output
        except ContractViolation as violation:
            if attempt == 2:
                raise
            conversation.send_message(retry_message(violation.problems))
    raise AssertionError("unreachable")


async def _run_headless(conversation: LocalConversation, events: list[Any]) -> None:
    """Run until the agent finishes; actions needing a human's confirmation are refused."""
    while True:
        try:
            await conversation.arun()
        except ConversationRunError as error:
            cause = error.__cause__
            where = type(cause).__module__ if cause is not None else ""
            if where.startswith(("litellm", "openai", "openhands.sdk.llm", "httpx")):
                raise _Ended(AgentStatus.MODEL_ERROR, f"the model failed: {cause}") from None
            raise _Ended(AgentStatus.ERROR, str(cause or error)) from None
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise asyncio.CancelledError  # OpenHands pauses on cancel; the node was cancelled
        status = conversation.state.execution_status
        if status is ConversationExecutionStatus.WAITING_FOR_CONFIRMATION:
            conversation.reject_pending_actions(REJECTED)
            continue
        if status is ConversationExecutionStatus.FINISHED:
            return
        if status is ConversationExecutionStatus.STUCK:
            raise _Ended(AgentStatus.STUCK, "the agent repeated itself without progress")
        error = next((e for e in reversed(events) if isinstance(e, ConversationErrorEvent)), None)
        code = error.code if error is not None else ""
        detail = error.detail if error is not None else f"the conversation ended {status.value}"
        if code == "MaxIterationsReached":
            raise _Ended(AgentStatus.ITERATIONS, detail)
        if code == "MaxBudgetReached":
            raise _Ended(AgentStatus.BUDGET, detail)
        if "LLM" in code or "llm" in detail.lower() or "model" in detail.lower():
            raise _Ended(AgentStatus.MODEL_ERROR, detail)
        raise _Ended(AgentStatus.ERROR, f"{code}: {detail}" if code else detail)


async def _facts(contract: Contract, output: BaseModel, workspace: Any) -> Facts:
    """Line counts of every cited file (None when missing) and what the terminal ran."""
    counts: dict[str, int | None] = {}
    for cite in contract.citations(output):
        cite.path = normalise(cite.path, workspace.sandbox.workspace)
        if cite.path in counts:
            continue
        try:
            data = await workspace.sandbox.read_file(cite.path)
            counts[cite.path] = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
        except (SandboxError, OSError):
            counts[cite.path] = None
    changed: frozenset[str] = frozenset()
    if contract.role is Role.BUILDER:
        changed = changed_files(await workspace.sandbox.diff())
    return Facts(line_counts=counts, commands=dict(workspace.commands), changed=changed)


def changed_files(patch: str) -> frozenset[str]:
    """The paths a git patch touches (both sides of each `diff --git` header)."""
    found = set()
    for line in patch.splitlines():
        if line.startswith("diff --git a/"):
            old, _, new = line[len("diff --git a/") :].partition(" b/")
            found.update({old, new})
    return frozenset(found)


def _agent(model: ModelChoice, workspace_id: str) -> Agent:
    llm = LLM(
        model=model.model,
        api_key=SecretStr(model.api_key) if model.api_key else None,
        base_url=model.base_url,
        num_retries=model.num_retries,
        retry_min_wait=1,
        retry_max_wait=4,
        input_cost_per_token=model.input_cost_per_token,
        output_cost_per_token=model.output_cost_per_token,
        usage_id="agent",
    )
    return Agent(
        llm=llm,
        tools=[
            Tool(name="terminal", params={"workspace_id": workspace_id}),
            Tool(name="file_editor", params={"workspace_id": workspace_id}),
            Tool(name=TaskTrackerTool.name),
        ],
    )


def _cost(conversation: LocalConversation) -> float:
    try:
        return float(conversation.conversation_stats.get_combined_metrics().accumulated_cost)
    except Exception:  # no LLM call was made
        return 0.0


def _close(conversation: LocalConversation, home: str) -> None:
    try:
        conversation.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
