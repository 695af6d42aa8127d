"""The Tier 2 deep scan: Tier 1 at the head, then agents in sandboxes, then one report.

check_run → baseline (Tier 1 in a sandbox at the head) → scanner, prober and
security agents in parallel → planner → educator → report. Each agent node opens
its own sandbox of the head, so a restarted node needs nothing a dead worker held.
An agent that cannot give a valid answer fails its node; the build then falls back,
once, to the deterministic DAG (check_run → baseline → report) and says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from bot.models import BuildTier
from orchestrator.agent_nodes import budget_of, models_of, record_run, usage_of
from orchestrator.agents.contracts import Role
from orchestrator.agents.prompts import CONTRACTS
from orchestrator.agents.runs import AgentFailed, AgentStatus
from orchestrator.dag import Dag, FailurePolicy, Node
from orchestrator.deep_report import AgentUsage
from orchestrator.fallback import FALLBACKS
from orchestrator.head import head_sandbox
from orchestrator.hooks import FAILURE_HOOKS
from orchestrator.nodes import NodeContext, NodeFailure
from orchestrator.tier1 import SCAN_TIMEOUT, ScanOutcome
from scanner.model import Severity

MAX_VALIDATED = 40  # Tier 1 findings the security agent validates, worst first
AGENT_TIMEOUT = 1800.0  # a node's ceiling; the pack's wall time stops the agent first


class AgentResult(BaseModel):
    """An agent node's result: the validated output (empty when skipped) and its usage."""

    role: str
    output: dict[str, Any] = Field(default_factory=dict)
    usage: AgentUsage


async def scanner(ctx: NodeContext) -> AgentResult:
    outcome = _baseline(ctx)
    report = outcome.report
    given = {
        "head_sha": ctx.build.head_sha,
        "tier1_score": report.get("score", {}),
        "languages": report.get("coverage", {}).get("languages", {}),
        "tier1_rules_already_reported": sorted({f["rule_id"] for f in outcome.findings}),
    }
    return await _run_role(ctx, Role.SCANNER, given)


async def prober(ctx: NodeContext) -> AgentResult:
    languages = _baseline(ctx).report.get("coverage", {}).get("languages", {})
    return await _run_role(ctx, Role.PROBER, {"languages": languages}, network=True)


async def security(ctx: NodeContext) -> AgentResult:
    findings = validated_findings(_baseline(ctx))
    if not findings:
        return _skipped(Role.SECURITY, {"verdicts": []})
    return await _run_role(ctx, Role.SECURITY, {"findings": findings})


async def planner(ctx: NodeContext) -> AgentResult:
    confirmed = _confirmed(ctx)
    concerns = _output(ctx, "scanner").get("concerns", [])
    if not confirmed and not concerns:
        return _skipped(Role.PLANNER, {"summary": "Nothing confirmed to fix.", "steps": []})
    given = {
        "findings": [f["fingerprint"] for f in confirmed],
        "details": {f["fingerprint"]: f for f in confirmed},
        "concerns": concerns,
        "probe": _output(ctx, "prober"),
    }
    return await _run_role(ctx, Role.PLANNER, given)


async def educator(ctx: NodeContext) -> AgentResult:
    confirmed = _confirmed(ctx)
    if not confirmed:
        return _skipped(Role.EDUCATOR, {"summary": "Nothing confirmed to explain.", "lessons": []})
    given = {
        "findings": [f["fingerprint"] for f in confirmed],
        "details": {f["fingerprint"]: f for f in confirmed},
    }
    return await _run_role(ctx, Role.EDUCATOR, given)


def validated_findings(outcome: ScanOutcome) -> list[dict[str, Any]]:
    """The Tier 1 findings handed to the security agent: the worst first, at most MAX_VALIDATED."""
    keys = ("fingerprint", "rule_id", "title", "severity", "path", "line", "message", "evidence")
    ranked = sorted(outcome.findings, key=lambda f: -Severity(f["severity"]).rank)
    return [{key: f.get(key) for key in keys} for f in ranked[:MAX_VALIDATED]]


def _baseline(ctx: NodeContext) -> ScanOutcome:
    outcome = ScanOutcome.model_validate(ctx.inputs["baseline"])
    if outcome.config_error or outcome.skipped:
        raise NodeFailure(
            f"Tier 1 did not run as configured: {outcome.config_error or outcome.skipped}",
            retryable=False,
        )
    return outcome


def _output(ctx: NodeContext, key: str) -> dict[str, Any]:
    return AgentResult.model_validate(ctx.inputs[key]).output if key in ctx.inputs else {}


def _confirmed(ctx: NodeContext) -> list[dict[str, Any]]:
    verdicts = _output(ctx, "security").get("verdicts", [])
    confirmed = {v["fingerprint"] for v in verdicts if v["verdict"] == "confirmed"}
    return [f for f in validated_findings(_baseline(ctx)) if f["fingerprint"] in confirmed]


def _skipped(role: Role, output: dict[str, Any]) -> AgentResult:
    return AgentResult(
        role=role.value, output=output, usage=AgentUsage(role=role.value, status="skipped")
    )


async def _run_role(
    ctx: NodeContext, role: Role, given: dict[str, Any], *, network: bool = False
) -> AgentResult:
    """Run `role` in a fresh sandbox of the head; on a failing model, its fallback model."""
    from orchestrator.agents.runner import run_agent  # OpenHands loads where an agent runs

    models = await models_of(ctx, role)
    budget = await budget_of(ctx, "deep_scan")
    async with head_sandbox(ctx, "deep_scan") as head:
        if network:
            given = {**given, "network": head.network}
        for index, model in enumerate(models):
            try:
                run = await run_agent(
                    CONTRACTS[role], given, head.sandbox, model, budget, observe=ctx.progress
                )
            except AgentFailed as failed:
                await record_run(ctx, failed.run)
                last = index == len(models) - 1
                if failed.run.status is AgentStatus.MODEL_ERROR and not last:
                    continue  # the next model (the fallback) gets the same task
                raise NodeFailure(str(failed), retryable=False) from None
            await record_run(ctx, run)
            return AgentResult(
                role=role.value,
                output=run.output.model_dump(mode="json") if run.output else {},
                usage=usage_of(run),
            )
    raise NodeFailure(f"no model answered for the {role.value} agent", retryable=False)


def _agent(key: str, deps: tuple[str, ...]) -> Node:
    return Node(
        key,
        f"orchestrator.deep_scan:{key}",
        deps,
        timeout=AGENT_TIMEOUT,
        on_failure=FailurePolicy.FALLBACK,
    )


CHECK_RUN = Node("check_run", "orchestrator.deep_publish:check_run", retries=3, backoff=2.0)
BASELINE = Node(
    "baseline", "orchestrator.tier1:scan", retries=2, backoff=2.0, timeout=SCAN_TIMEOUT + 60
)
AGENT_KEYS = ("scanner", "prober", "security", "planner", "educator")

DEEP_SCAN_DAG = Dag(
    "deep-scan",
    (
        CHECK_RUN,
        BASELINE,
        _agent("scanner", ("baseline",)),
        _agent("prober", ("baseline",)),
        _agent("security", ("baseline",)),
        _agent("planner", ("baseline", "scanner", "prober", "security")),
        _agent("educator", ("baseline", "security")),
        Node(
            "report",
            "orchestrator.deep_publish:report",
            ("check_run", "baseline", *AGENT_KEYS),
            retries=3,
            backoff=2.0,
        ),
    ),
)

# Without agents: Tier 1 at the head, reported on the deep scan's check run and comment.
DETERMINISTIC_DAG = Dag(
    "deep-scan-deterministic",
    (
        CHECK_RUN,
        BASELINE,
        Node("report", "orchestrator.deep_publish:report", ("check_run", "baseline"), retries=3),
    ),
)

FALLBACKS[BuildTier.DEEP_SCAN] = "orchestrator.deep_scan:DETERMINISTIC_DAG"
for _dag in (DEEP_SCAN_DAG, DETERMINISTIC_DAG):
    FAILURE_HOOKS.setdefault(_dag.name, "orchestrator.deep_publish:report_failure")


def inputs_of(inputs: Mapping[str, Any], key: str) -> AgentResult | None:
    """An agent node's result among a node's inputs (absent after a fallback)."""
    return AgentResult.model_validate(inputs[key]) if inputs.get(key) else None
