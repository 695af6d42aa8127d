"""A fix pull request whose finding went away by itself is closed: its branch is deleted.

Runs with each scan of the original pull request. A fix PR that was merged is
recorded as merged (its own `closed` event may come later); an open one whose
finding is gone is closed by deleting its branch (GitHub closes a PR whose head
branch is deleted) and recorded as resolved.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlmodel import col, select

from bot.models import FixAttempt, FixOutcome, utcnow
from orchestrator.git_commit import delete_branch
from orchestrator.nodes import NodeContext
from orchestrator.pr_scan import repository_of
from orchestrator.tier1 import ScanOutcome


class ClosedFixes(BaseModel):
    closed: list[int] = Field(default_factory=list)  # fix PR numbers closed as resolved
    merged: list[int] = Field(default_factory=list)


async def close_resolved(ctx: NodeContext) -> ClosedFixes:
    outcome = ScanOutcome.model_validate(ctx.inputs["scan"])
    done = ClosedFixes()
    if outcome.config_error or outcome.skipped or ctx.build.pr_number is None:
        return done
    present = {f["fingerprint"] for f in outcome.findings}
    async with ctx.services["db"].session() as session:
        open_fixes = [
            a
            for a in await session.exec(
                select(FixAttempt).where(
                    FixAttempt.repository_id == ctx.build.repository_id,
                    FixAttempt.pr_number == ctx.build.pr_number,
                    FixAttempt.outcome == FixOutcome.OPENED,
                    col(FixAttempt.fix_pr_number).is_not(None),
                )
            )
            if a.fingerprint not in present
        ]
    if not open_fixes:
        return done
    owner, name = await repository_of(ctx)
    gh = ctx.services["github"].for_installation(
        ctx.build.installation_id,
        repositories=(name,),
        permissions={"contents": "write", "pull_requests": "read"},
    )
    for attempt in open_fixes:
        pull = await gh.getitem(
            "/repos/{owner}/{repo}/pulls/{number}",
            url_vars={"owner": owner, "repo": name, "number": str(attempt.fix_pr_number)},
        )
        if pull.get("merged"):
            result, done.merged = FixOutcome.MERGED, [*done.merged, attempt.fix_pr_number]
        elif pull.get("state") == "open":
            await delete_branch(gh, owner, name, attempt.branch)
            result, done.closed = FixOutcome.RESOLVED, [*done.closed, attempt.fix_pr_number]
        else:
            continue  # closed unmerged: its own event records it as ignored
        async with ctx.services["db"].session() as session:
            row = await session.get(FixAttempt, attempt.id)
            row.outcome, row.updated_at = result, utcnow()
            row.reason = (
                "the finding is gone from the pull request"
                if result is FixOutcome.RESOLVED
                else None
            )
            session.add(row)
            await session.commit()
    return done
