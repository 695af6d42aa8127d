"""A fix pull request that people merge or close: its fix attempt's outcome."""

from __future__ import annotations

from gidgethub import sansio
from gidgethub.abc import GitHubAPI
from gidgethub.routing import Router
from sqlalchemy import update
from sqlmodel import col, select

from bot.db import Database
from bot.models import FixAttempt, FixOutcome, utcnow
from handlers.context import HandlerContext

router = Router()

FIX_BRANCH_PREFIX = "clarity/fix/"  # our fix branches: clarity/fix/<pr>-<fingerprint prefix>


def closed_outcome(current: FixOutcome, merged: bool) -> FixOutcome | None:
    """The outcome of a fix attempt whose pull request was closed, or None to keep `current`.

    `resolved` stays: we closed that pull request ourselves because its finding went away.
    """
    if current is FixOutcome.RESOLVED:
        return None
    outcome = FixOutcome.MERGED if merged else FixOutcome.IGNORED
    return None if outcome is current else outcome


@router.register("pull_request", action="closed")
async def record_fix_outcome(event: sansio.Event, gh: GitHubAPI, ctx: HandlerContext) -> None:
    pull = event.data["pull_request"]
    if not pull["head"]["ref"].startswith(FIX_BRANCH_PREFIX):
        return
    await close_fix_attempt(
        ctx.db, event.data["repository"]["id"], pull["number"], merged=bool(pull.get("merged"))
    )


async def close_fix_attempt(
    db: Database, repository_id: int, fix_pr_number: int, *, merged: bool
) -> FixOutcome | None:
    """Record that fix pull request `fix_pr_number` was closed; the new outcome, or None.

    The write is conditional on the outcome read: if the fix build changes it meanwhile
    (to `resolved`, say), theirs stands and the event is decided again on it.
    """
    for _ in range(3):
        async with db.session() as session:
            attempt = (
                await session.exec(
                    select(FixAttempt).where(
                        FixAttempt.repository_id == repository_id,
                        FixAttempt.fix_pr_number == fix_pr_number,
                    )
                )
            ).first()
            if attempt is None:
                return None  # a branch named like ours that we did not open
            outcome = closed_outcome(attempt.outcome, merged)
            if outcome is None:
                return None
            changed = await session.exec(
                update(FixAttempt)
                .where(col(FixAttempt.id) == attempt.id, col(FixAttempt.outcome) == attempt.outcome)
                .values(outcome=outcome, updated_at=utcnow())
            )
            await session.commit()
            if changed.rowcount:
                return outcome
    return None
