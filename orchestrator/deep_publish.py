"""Publishing a deep scan: the "Clarity Deep Scan" check run and one report comment per PR.

The report node assembles a `DeepReport` from whatever ran: every agent (autonomous)
or only Tier 1 (deterministic, with the reason it ran without agents). The check
run's conclusion follows the pack: failure when a finding the agents did not reject,
or a concern of theirs, is at or above the failing severity; neutral for our side.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlmodel import col, select

from bot.models import BuildEvent, PullRequest, utcnow
from orchestrator.agents.contracts import (
    Concern,
    EducatorOutput,
    FindingVerdict,
    PlannerOutput,
    ProberOutput,
)
from orchestrator.deep_plan import deep_score
from orchestrator.deep_render import check_run_output, report_comment
from orchestrator.deep_report import DEEP_CHECK_NAME, REPORT_MARKER, DeepReport
from orchestrator.deep_scan import AGENT_KEYS, inputs_of
from orchestrator.events import EventType
from orchestrator.head import pull_request_of
from orchestrator.hooks import FailureContext
from orchestrator.nodes import NodeContext
from orchestrator.pr_publish import end_neutral, find_bot_comment, post_or_edit
from orchestrator.pr_scan import (
    CheckRunRef,
    build_url,
    open_check_run,
    publisher,
    repository_of,
)
from orchestrator.tier1 import ScanOutcome, judge, our_side


class DeepPublished(BaseModel):
    check_run_id: int
    comment_id: int | None
    conclusion: str


async def check_run(ctx: NodeContext) -> CheckRunRef:
    return await open_check_run(ctx, DEEP_CHECK_NAME)


async def report(ctx: NodeContext) -> DeepPublished:
    deep = await assemble(ctx)
    owner, name = await repository_of(ctx)
    gh = publisher(ctx, name)
    check = CheckRunRef.model_validate(ctx.inputs["check_run"])
    output = check_run_output(deep)
    await gh.patch(
        "/repos/{owner}/{repo}/check-runs/{id}",
        url_vars={"owner": owner, "repo": name, "id": str(check.github_id)},
        data={
            "status": "completed",
            "conclusion": deep.conclusion,
            "completed_at": utcnow().isoformat(),
            "output": output,
        },
    )
    comment_id = None
    if ctx.build.pr_number is not None:
        comment_id = await _report_comment(ctx, gh, owner, name, report_comment(deep))
    return DeepPublished(
        check_run_id=check.github_id, comment_id=comment_id, conclusion=deep.conclusion
    )


async def assemble(ctx: NodeContext) -> DeepReport:
    """The report from the build's inputs: every agent's answer, or Tier 1 alone."""
    outcome = ScanOutcome.model_validate(ctx.inputs["baseline"])
    results = {key: inputs_of(ctx.inputs, key) for key in AGENT_KEYS}
    ran = {key: result for key, result in results.items() if result is not None}
    fields: dict[str, Any] = {}
    if ran:
        output = {key: result.output for key, result in ran.items()}
        verdicts = [FindingVerdict(**v) for v in output.get("security", {}).get("verdicts", [])]
        concerns = [Concern(**c) for c in output.get("scanner", {}).get("concerns", [])]
        score, categories = deep_score(outcome.findings, verdicts, concerns)
        fields = {
            "mode": "autonomous",
            "verdicts": verdicts,
            "concerns": concerns,
            "architecture": output.get("scanner", {}).get("architecture"),
            "probe": _model(ProberOutput, output.get("prober")),
            "plan": _model(PlannerOutput, output.get("planner")),
            "education": _model(EducatorOutput, output.get("educator")),
            "deep_score": score,
            "categories": categories,
            "usage": [result.usage for result in ran.values()],
        }
    else:
        fields = {"mode": "deterministic", "fallback_reason": await _fallback_reason(ctx)}
    verdict = _verdict(outcome, fields)
    usage = fields.get("usage", [])
    started = ctx.build.started_at or ctx.build.created_at
    return DeepReport(
        head_sha=ctx.build.head_sha,
        conclusion=verdict.conclusion,
        title=verdict.title,
        reason=verdict.reason,
        tier1_score=outcome.report.get("score", {}).get("overall"),
        findings=outcome.findings,
        cost_usd=sum(u.cost_usd for u in usage),
        duration_seconds=(utcnow() - started).total_seconds(),
        build_url=build_url(ctx.services["settings"], ctx.build.id),
        **fields,
    )


def _verdict(outcome: ScanOutcome, fields: dict[str, Any]) -> Any:
    if (neutral := our_side(outcome)) is not None:
        return neutral
    rejected = {v.fingerprint for v in fields.get("verdicts", []) if v.verdict == "rejected"}
    considered = [f for f in outcome.findings if f["fingerprint"] not in rejected]
    considered += [{"severity": c.severity.value} for c in fields.get("concerns", [])]
    kind = "unrejected " if fields["mode"] == "autonomous" else ""
    return judge(outcome, considered, "Deep scan", kind)


def _model(model: type[BaseModel], data: dict[str, Any] | None) -> Any:
    return model.model_validate(data) if data else None


async def _fallback_reason(ctx: NodeContext) -> str:
    async with ctx.services["db"].session() as session:
        event = (
            await session.exec(
                select(BuildEvent)
                .where(
                    BuildEvent.build_id == ctx.build.id,
                    BuildEvent.type == EventType.FALLBACK_MODE_SWITCHED,
                )
                .order_by(col(BuildEvent.seq).desc())
            )
        ).first()
    if event is None:
        return "this build was asked to run without agents"
    return str(event.data.get("reason") or "the agents could not finish")


async def _report_comment(ctx: NodeContext, gh: Any, owner: str, name: str, body: str) -> int:
    """Create the pull request's report comment, or edit the one it has (one per PR)."""
    build, db = ctx.build, ctx.services["db"]
    prefix = ctx.services["settings"].queue_prefix
    async with ctx.services["redis"].lock(
        f"{prefix}:lock:report-comment:{build.repository_id}:{build.pr_number}",
        timeout=120,
        blocking_timeout=120,
    ):
        pull = await pull_request_of(ctx.services, build)
        comment_id = pull.report_comment_id if pull else None
        if comment_id is None:  # created before its id was stored: found by its marker
            comment_id = await find_bot_comment(
                gh, owner, name, build.pr_number, lambda body: REPORT_MARKER in body
            )
        comment_id = await post_or_edit(
            gh, owner, name, build.pr_number, comment_id, body, lambda text: REPORT_MARKER in text
        )
        if pull is not None and pull.report_comment_id != comment_id:
            async with db.session() as session:
                row = await session.get(PullRequest, pull.id)
                row.report_comment_id = comment_id
                session.add(row)
                await session.commit()
    return comment_id


async def report_failure(failure: FailureContext) -> None:
    """A failed deep scan ends its check run as neutral with the reason: never red for us."""
    await end_neutral(
        failure,
        "Clarity Deep Scan could not finish",
        f"The deep scan stopped on our side: {failure.error}",
    )
