"""The Tier 3 fix: a builder agent's patch that a PR may carry only with proof.

scan (Tier 1 at the head) and tests (the repository's own, before) → fix: up to
three attempts, each a builder agent in a sandbox of the head followed by the
policy, test and security gates, the next attempt given the failing gate's
evidence → policy (the control plane re-checks the final patch) → checkpoint (a
human's `/clarity approve` when the pack asks for one) → publish. Every gate fails
closed; no attempt that a gate refused is ever published.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import select

from bot import metrics
from bot.models import BuildTier, FixAttempt, FixOutcome, utcnow
from orchestrator.agent_nodes import budget_of, models_of, record_run
from orchestrator.agents.contracts import Role
from orchestrator.agents.prompts import CONTRACTS
from orchestrator.agents.runs import AgentFailed, AgentStatus
from orchestrator.dag import Dag, Node
from orchestrator.fallback import FALLBACKS
from orchestrator.fix_checks import (
    changed_of,
    policy_check,
    run_json,
    security_check,
    tests_check,
)
from orchestrator.head import head_sandbox, pack_of
from orchestrator.hooks import FAILURE_HOOKS
from orchestrator.nodes import GateDecision, NodeContext, NodeFailure
from orchestrator.test_runs import detect_in, run_tests
from orchestrator.tier1 import SCAN_TIMEOUT, ScanOutcome
from policies import checkpoint_for

ATTEMPTS = 3
ARTEFACTS = (
    "'__pycache__/' '*.py[co]' '.pytest_cache/' '.coverage' 'node_modules/' '.next/' 'dist/'"
)
FIX_TIMEOUT = 3600.0


class Baseline(BaseModel):
    """The repository's tests at the head, before any change (`run` None: it has no tests)."""

    run: dict[str, Any] | None = None


class FixResult(BaseModel):
    patch: str
    changed: list[str]
    summary: str
    explanation: str
    verification: str
    attempts: list[dict[str, Any]] = Field(default_factory=list)  # each attempt's gate evidence
    cost_usd: float = 0.0

    @property
    def diff_hash(self) -> str:
        return hashlib.sha256(self.patch.encode("utf-8", "surrogateescape")).hexdigest()


def target(ctx: NodeContext) -> dict[str, Any]:
    """The finding to fix, as the head's Tier 1 scan has it; gone → nothing to fix."""
    fingerprint = ctx.node.params["fingerprint"]
    outcome = ScanOutcome.model_validate(ctx.inputs["scan"])
    for finding in outcome.findings:
        if finding["fingerprint"] == fingerprint:
            return finding
    raise NodeFailure(
        f"finding {fingerprint[:8]} is no longer in the pull request's head", retryable=False
    )


async def baseline_tests(ctx: NodeContext) -> Baseline:
    async with head_sandbox(ctx, "fix") as head:
        command = await detect_in(head.raw)
        if command is None:
            return Baseline()
        run = await run_tests(head.raw, command)
    # A baseline that did not run is kept: the test gate then refuses every attempt, saying why.
    return Baseline(run=run_json(run))


async def attempt_fix(ctx: NodeContext) -> FixResult:
    from orchestrator.agents.runner import run_agent  # OpenHands loads where an agent runs

    finding = target(ctx)
    before = Baseline.model_validate(ctx.inputs["tests"])
    outcome = ScanOutcome.model_validate(ctx.inputs["scan"])
    pack = pack_of(ctx)
    models = await models_of(ctx, Role.BUILDER)
    evidence: list[dict[str, Any]] = []
    cost = 0.0
    async with head_sandbox(ctx, "fix") as head:
        start = (await head.raw.exec("git rev-parse HEAD")).stdout.strip()
        # What running the code leaves behind is never part of a fix.
        await head.raw.exec(f"printf '%s\\n' {ARTEFACTS} >> .git/info/exclude")
        for attempt in range(1, ATTEMPTS + 1):
            if attempt > 1:  # each attempt starts from the head, with the evidence of the last
                await head.raw.exec(f"git reset -q --hard {start} && git clean -fdq")
            given = {
                "finding": {
                    k: finding.get(k)
                    for k in (
                        "rule_id",
                        "title",
                        "severity",
                        "path",
                        "line",
                        "message",
                        "evidence",
                        "fix",
                    )
                },
                "tests": before.run["command"] if before.run else None,
                "previous_attempts": evidence,
            }
            try:
                run = await run_agent(
                    CONTRACTS[Role.BUILDER],
                    given,
                    head.sandbox,
                    models[0],
                    await budget_of(ctx, "fix"),
                    observe=ctx.progress,
                )
            except AgentFailed as failed:
                await record_run(ctx, failed.run)
                cost += failed.run.cost_usd
                if failed.run.status in (AgentStatus.MODEL_ERROR, AgentStatus.BUDGET):
                    raise NodeFailure(str(failed), retryable=False) from None
                evidence.append(
                    {"attempt": attempt, "refused_by": "agent", "reason": failed.run.error}
                )
                continue
            await record_run(ctx, run)
            cost += run.cost_usd
            patch = await head.raw.diff()
            gates = [policy_check(pack, patch)]
            if gates[-1]["passed"]:
                gates.append(await tests_check(pack, head.raw, before.run))
            if gates[-1]["passed"]:
                gates.append(await security_check(pack, head.raw, outcome, finding))
            evidence.append({"attempt": attempt, "gates": gates})
            metrics.gates_refused(gates)
            await ctx.progress(
                {"attempt": attempt, "gates": [(g["gate"], g["passed"]) for g in gates]}
            )
            if all(gate["passed"] for gate in gates):
                answer = run.output
                return FixResult(
                    patch=patch,
                    changed=sorted(c.path for c in changed_of(patch)),
                    summary=answer.summary,
                    explanation=answer.explanation,
                    verification=answer.verification,
                    attempts=evidence,
                    cost_usd=cost,
                )
    raise RefusedFix(evidence)


class RefusedFix(NodeFailure):
    """Every attempt was refused by a gate (or gave no valid answer): no pull request."""

    def __init__(self, evidence: list[dict[str, Any]]) -> None:
        reasons = []
        for item in evidence:
            refused = [g for g in item.get("gates", []) if not g["passed"]]
            why = refused[0]["reason"] if refused else item.get("reason", "no answer")
            gate = refused[0]["gate"] if refused else item.get("refused_by", "agent")
            reasons.append(f"attempt {item['attempt']}: {gate} gate: {why}")
        super().__init__("no attempt passed the gates; " + "; ".join(reasons), retryable=False)
        self.evidence = evidence


async def policy_gate(ctx: NodeContext) -> GateDecision:
    """The control plane's own check of the final patch, whatever the sandbox said before."""
    result = FixResult.model_validate(ctx.inputs["fix"])
    decision = policy_check(pack_of(ctx), result.patch)
    return GateDecision(passed=decision["passed"], reason=decision["reason"])


async def checkpoint(ctx: NodeContext) -> GateDecision:
    """Passes when the pack needs no human for this patch, or a maintainer approved it."""
    result = FixResult.model_validate(ctx.inputs["fix"])
    decision = checkpoint_for(pack_of(ctx), result.changed)
    if not decision.required:
        return GateDecision(passed=True, reason="no human checkpoint needed")
    attempt = await fix_attempt(ctx)
    if attempt is not None and attempt.approved_by:
        return GateDecision(passed=True, reason=f"approved by @{attempt.approved_by}")
    if attempt is not None:
        async with ctx.services["db"].session() as session:
            row = await session.get(FixAttempt, attempt.id)
            row.outcome, row.updated_at = FixOutcome.AWAITING_APPROVAL, utcnow()
            row.reason = "; ".join(decision.reasons)
            session.add(row)
            await session.commit()
    return GateDecision(
        passed=False, reason="waiting for a maintainer's approval: " + "; ".join(decision.reasons)
    )


async def fix_attempt(ctx: NodeContext) -> FixAttempt | None:
    build = ctx.build
    return await find_attempt(
        ctx.services["db"], build.repository_id, build.pr_number, ctx.node.params["fingerprint"]
    )


async def find_attempt(
    db: Any, repository_id: int, pr_number: int | None, fingerprint: str | None
) -> FixAttempt | None:
    """The one FixAttempt of a finding on a pull request."""
    async with db.session() as session:
        return (
            await session.exec(
                select(FixAttempt).where(
                    FixAttempt.repository_id == repository_id,
                    FixAttempt.pr_number == pr_number,
                    FixAttempt.fingerprint == fingerprint,
                )
            )
        ).one_or_none()


def fix_dag(fingerprint: str) -> Dag:
    """The fix DAG of one finding (its fingerprint travels in the nodes' params)."""
    params = {"fingerprint": fingerprint}
    return Dag(
        "fix",
        (
            Node(
                "scan", "orchestrator.tier1:scan", retries=2, backoff=2.0, timeout=SCAN_TIMEOUT + 60
            ),
            Node("tests", "orchestrator.fix:baseline_tests", retries=1, timeout=1200.0),
            Node(
                "fix",
                "orchestrator.fix:attempt_fix",
                ("scan", "tests"),
                timeout=FIX_TIMEOUT,
                params=params,
            ),
            Node("policy", "orchestrator.fix:policy_gate", ("fix",), gate=True),
            Node(
                "checkpoint",
                "orchestrator.fix:checkpoint",
                ("fix", "policy"),
                gate=True,
                params=params,
            ),
            Node(
                "publish",
                "orchestrator.fix_publish:publish",
                ("scan", "tests", "fix", "checkpoint"),
                retries=3,
                backoff=2.0,
                params=params,
            ),
        ),
    )


FAILURE_HOOKS.setdefault("fix", "orchestrator.fix_publish:report_refusal")
FALLBACKS.setdefault(BuildTier.FIX, "orchestrator.tier1:SCAN_DAG")
