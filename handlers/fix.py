"""`/clarity fix <id>|all-new-critical`, `/clarity approve <id>` and the "Fix new criticals" button.

Each finding gets one FixAttempt per pull request (a repeat request reuses it, and its
fix pull request is updated, not duplicated), a quota count and a fix build on the
slow queue. Caps on open fix pull requests keep one repository from flooding itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot import usage
from bot.models import (
    Build,
    BuildMode,
    BuildStatus,
    BuildTier,
    FixAttempt,
    FixOutcome,
    Task,
    TaskStatus,
    utcnow,
)
from bot.queue import slow_queue
from handlers.commands import quota_refusal
from handlers.context import HandlerContext
from orchestrator import control
from orchestrator.fix import find_attempt, fix_dag
from orchestrator.pr_scan import ComparisonResult, build_url
from orchestrator.publish_comment import resolve_short_id, short_id
from orchestrator.tier1 import ScanOutcome
from policies import Pack, QuotaKind, load_pack

ALL_NEW_CRITICAL = "all-new-critical"
MAX_OPEN_FIX_PRS = 10  # per repository
MAX_FIXES_PER_HOUR = 20  # per repository


async def fix_command(
    ctx: HandlerContext, gh: Any, data: dict[str, Any], args: tuple[str, ...], reply: Any
) -> None:
    """Start fixes for the findings `args` name on the pull request in `data`."""
    number = data["issue"]["number"]
    if not args:
        await reply(
            "Say which finding: `/clarity fix CC-XXXXXX` (ids are in the Clarity Check comment) or `/clarity fix all-new-critical`."
        )
        return
    await start_fixes(
        ctx,
        data["repository"],
        data["installation"]["id"],
        number,
        data["sender"]["login"],
        args[0],
        reply,
        source=str(data["comment"]["id"]),
    )


async def start_fixes(
    ctx: HandlerContext,
    repository: dict[str, Any],
    installation_id: int,
    number: int,
    user: str,
    wanted: str,
    reply: Any,
    *,
    source: str,
) -> None:
    pack = load_pack(getattr(ctx.settings, "policy_pack", "default"))
    if not pack.tiers.fix:
        await reply("Fixes are turned off by this installation's policy pack.")
        return
    scanned = await latest_scan(ctx, repository["id"], number)
    if scanned is None:
        await reply(
            "There is no finished Clarity Check scan of this pull request yet; try again when its check run is done."
        )
        return
    outcome, comparison = scanned
    if wanted.lower() == ALL_NEW_CRITICAL:
        new = set(comparison.new) if comparison else {f["fingerprint"] for f in outcome.findings}
        chosen = [
            f for f in outcome.findings if f["fingerprint"] in new and f["severity"] == "critical"
        ]
        if not chosen:
            await reply("This pull request adds no critical finding: nothing to fix.")
            return
    else:
        fingerprint = resolve_short_id(wanted, [f["fingerprint"] for f in outcome.findings])
        if fingerprint is None:
            await reply(
                f"No finding `{wanted[:40]}` on this pull request's head; the ids are in the Clarity Check comment."
            )
            return
        chosen = [f for f in outcome.findings if f["fingerprint"] == fingerprint]
    if (cap := await _over_cap(ctx, repository["id"])) is not None:
        await reply(cap)
        return
    for finding in chosen:
        await _start(
            ctx,
            pack,
            repository,
            installation_id,
            number,
            user,
            outcome.head_sha,
            finding,
            reply,
            source,
        )


async def _start(
    ctx: HandlerContext,
    pack: Pack,
    repository: dict[str, Any],
    installation_id: int,
    number: int,
    user: str,
    head_sha: str,
    finding: dict[str, Any],
    reply: Any,
    source: str,
) -> None:
    ident, fingerprint = short_id(finding["fingerprint"]), finding["fingerprint"]
    attempt = await find_attempt(ctx.db, repository["id"], number, fingerprint)
    if (
        attempt is not None
        and attempt.build_id is not None
        and await _running(ctx, attempt.build_id)
    ):
        await reply(
            f"A fix for {ident} is already being worked on: [build {attempt.build_id}]({build_url(ctx.settings, attempt.build_id)})."
        )
        return
    now = utcnow()
    scope = dict(
        installation_id=installation_id,
        user=user,
        pull_request=usage.pull_request_subject(repository["full_name"], number),
        now=now,
    )
    decision = await usage.reserve(ctx.db, pack, QuotaKind.FIX, **scope)
    if not decision.allowed:
        await reply(quota_refusal(user, f"fix for {ident}", decision.reason, decision.resets_at))
        return
    if attempt is None:
        try:
            async with ctx.db.session() as session:
                attempt = FixAttempt(
                    installation_id=installation_id,
                    repository_id=repository["id"],
                    pr_number=number,
                    fingerprint=fingerprint,
                    rule_id=finding["rule_id"],
                    requester=user,
                )
                session.add(attempt)
                await session.commit()
                await session.refresh(attempt)
        except IntegrityError:  # a concurrent request for the same finding won
            await usage.release(ctx.db, pack, QuotaKind.FIX, **scope)
            return
    build = await control.create_build(
        ctx.db,
        fix_dag(fingerprint),
        installation_id=installation_id,
        repository_id=repository["id"],
        tier=BuildTier.FIX,
        head_sha=head_sha,
        trigger=f"fix:{source}:{fingerprint[:8]}",
        mode=BuildMode.AUTONOMOUS,
        pr_number=number,
        requester=user,
        delivery_id=ctx.delivery_id,
        budget_usd=pack.budgets.fix.max_cost_usd,
    )
    async with ctx.db.session() as session:
        row = await session.get(FixAttempt, attempt.id)
        row.build_id, row.outcome, row.updated_at = build.id, FixOutcome.WORKING, utcnow()
        row.approved_by, row.requester = None, user
        session.add(row)
        await session.commit()
    if ctx.queue is not None:
        await control.enqueue(ctx.queue, build.id, slow_queue(ctx.settings.queue_prefix))
    await reply(
        f"Working on a fix for {ident} ({finding['title']}): [build {build.id}]({build_url(ctx.settings, build.id)})."
    )


async def approve_command(
    ctx: HandlerContext, data: dict[str, Any], args: tuple[str, ...], reply: Any
) -> None:
    """A maintainer's go for a fix that passed every gate and waits at the human checkpoint."""
    user = data["sender"]["login"]
    async with ctx.db.session() as session:
        waiting = list(
            await session.exec(
                select(FixAttempt).where(
                    FixAttempt.repository_id == data["repository"]["id"],
                    FixAttempt.pr_number == data["issue"]["number"],
                    FixAttempt.outcome == FixOutcome.AWAITING_APPROVAL,
                )
            )
        )
    fingerprint = resolve_short_id(args[0], [a.fingerprint for a in waiting]) if args else None
    attempt = next((a for a in waiting if a.fingerprint == fingerprint), None)
    if attempt is None or attempt.build_id is None:
        await reply("No fix with that id is waiting for an approval here.")
        return
    async with ctx.db.session() as session:
        row = await session.get(FixAttempt, attempt.id)
        row.approved_by, row.outcome, row.updated_at = user, FixOutcome.WORKING, utcnow()
        session.add(row)
        await session.commit()
    await control.retry(ctx.db, attempt.build_id)
    if ctx.queue is not None:
        await control.enqueue(ctx.queue, attempt.build_id, slow_queue(ctx.settings.queue_prefix))
    await reply(f"Approved by @{user}: publishing the fix for {short_id(attempt.fingerprint)}.")


async def latest_scan(
    ctx: HandlerContext, repository_id: int, number: int
) -> tuple[ScanOutcome, ComparisonResult | None] | None:
    """The pull request's latest finished Tier 1 scan and its comparison with the base."""
    async with ctx.db.session() as session:
        build = (
            await session.exec(
                select(Build)
                .where(
                    Build.repository_id == repository_id,
                    Build.pr_number == number,
                    Build.tier == BuildTier.SCAN,
                    Build.status == BuildStatus.SUCCEEDED,
                )
                .order_by(col(Build.id).desc())
            )
        ).first()
        if build is None:
            return None
        tasks = {
            t.key: t
            for t in await session.exec(
                select(Task).where(Task.build_id == build.id, Task.status == TaskStatus.SUCCEEDED)
            )
        }
    if "scan" not in tasks or not tasks["scan"].result:
        return None
    outcome = ScanOutcome.model_validate(tasks["scan"].result)
    compare = tasks.get("compare")
    return outcome, ComparisonResult.model_validate(
        compare.result
    ) if compare and compare.result else None


async def _running(ctx: HandlerContext, build_id: int) -> bool:
    async with ctx.db.session() as session:
        build = await session.get(Build, build_id)
    return build is not None and build.status in (BuildStatus.QUEUED, BuildStatus.RUNNING)


async def _over_cap(ctx: HandlerContext, repository_id: int) -> str | None:
    async with ctx.db.session() as session:
        open_prs = (
            await session.exec(
                select(func.count())
                .select_from(FixAttempt)
                .where(
                    FixAttempt.repository_id == repository_id,
                    FixAttempt.outcome == FixOutcome.OPENED,
                )
            )
        ).one()
        recent = (
            await session.exec(
                select(func.count())
                .select_from(Build)
                .where(
                    Build.repository_id == repository_id,
                    Build.tier == BuildTier.FIX,
                    col(Build.created_at) > utcnow() - timedelta(hours=1),
                )
            )
        ).one()
    if open_prs >= MAX_OPEN_FIX_PRS:
        return f"This repository already has {open_prs} open fix pull requests; merge or close some first."
    if recent >= MAX_FIXES_PER_HOUR:
        return f"{recent} fixes were started here in the last hour; try again later."
    return None
