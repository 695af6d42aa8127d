"""`/clarity deep-scan [confirm]`: quote, quota, then the Tier 2 build on the slow queue.

A quote is given first, estimated from the commit's Tier 1 scan. Above the pack's
threshold (a repository may lower it) the scan waits for `/clarity deep-scan confirm`.
Every request is a `Quote` row keyed by its comment, so a delivery seen twice starts
one build; a confirm claims the pending quote with one conditional update.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gidgethub.abc import GitHubAPI
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot import usage
from bot.models import (
    Build,
    BuildMode,
    BuildStatus,
    BuildTier,
    Quote,
    QuoteStatus,
    Task,
    TaskStatus,
    utcnow,
)
from bot.queue import slow_queue
from handlers.commands import Command, confirmed, quota_refusal
from handlers.context import HandlerContext
from orchestrator import control
from orchestrator.agents.llm import prices_for
from orchestrator.deep_scan import AGENT_KEYS, DEEP_SCAN_DAG
from orchestrator.pr_scan import build_url
from orchestrator.tier1 import ScanOutcome, config_at
from policies import (
    Pack,
    QuotaKind,
    RepoConfigError,
    ScanSize,
    check_quota,
    effective_pack,
    estimate_build,
    load_pack,
    load_repo_config,
    needs_confirmation,
    render_quote,
)
from scanner.rules import catalogue

CONFIRM = "/clarity deep-scan confirm"
QUOTE_LIFETIME = timedelta(hours=24)


async def deep_scan(
    ctx: HandlerContext,
    gh: GitHubAPI,
    data: dict[str, Any],
    where: dict[str, str],
    command: Command,
    reply: Any,
) -> None:
    number, user = data["issue"]["number"], data["sender"]["login"]
    pack = load_pack(getattr(ctx.settings, "policy_pack", "default"))
    if not pack.tiers.deep_scan:
        await reply("Deep scans are turned off by this installation's policy pack.")
        return
    pull = await gh.getitem(
        "/repos/{owner}/{repo}/pulls/{number}", url_vars={**where, "number": str(number)}
    )
    pack = await _effective(gh, where, pull["base"]["ref"], pack)
    head_sha = pull["head"]["sha"]
    repository_id = data["repository"]["id"]
    if confirmed(command):
        quote = await _pending(ctx, repository_id, number)
        if quote is None:
            await reply(
                "No deep scan is waiting for a confirmation here. "
                "Comment `/clarity deep-scan` for a quote."
            )
            return
        if quote.head_sha == head_sha:
            if await _claim(ctx, quote.id):
                await _start(ctx, data, pack, quote, reply, "")
            return
        await _expire(ctx, quote.id)  # the head moved: the old quote no longer says the truth
    running = await _running(ctx, repository_id, number, head_sha)
    if running is not None:
        url = build_url(ctx.settings, running.id)
        await reply(
            f"A deep scan of `{head_sha[:7]}` is already running: [build {running.id}]({url})."
        )
        return
    estimate = await _estimate(ctx, repository_id, head_sha, pack)
    threshold = pack.budgets.deep_scan.confirm_over_usd
    waits = needs_confirmation(estimate, threshold)
    quote = Quote(
        installation_id=data["installation"]["id"],
        repository_id=repository_id,
        pr_number=number,
        head_sha=head_sha,
        requester=user,
        comment_id=data["comment"]["id"],
        tier=BuildTier.DEEP_SCAN,
        status=QuoteStatus.PENDING if waits else QuoteStatus.CONFIRMED,
        estimate={"cost_low": estimate.cost_low, "cost_high": estimate.cost_high},
        expires_at=utcnow() + QUOTE_LIFETIME,
    )
    try:
        async with ctx.db.session() as session:
            session.add(quote)
            await session.commit()
            await session.refresh(quote)
    except IntegrityError:
        return  # this comment was handled already (a redelivery): one quote, one build
    text = render_quote(estimate, threshold=threshold, confirm_command=CONFIRM)
    if waits:
        await reply(text)
        return
    await _start(ctx, data, pack, quote, reply, text)


async def _start(
    ctx: HandlerContext, data: dict[str, Any], pack: Pack, quote: Quote, reply: Any, text: str
) -> None:
    """Count the quota, create the build and queue it on the slow queue."""
    user = data["sender"]["login"]
    now = utcnow()
    subject = usage.pull_request_subject(data["repository"]["full_name"], quote.pr_number)
    scope = dict(installation_id=quote.installation_id, user=user, pull_request=subject, now=now)
    decision = await usage.reserve(ctx.db, pack, QuotaKind.DEEP_SCAN, **scope)
    if decision.allowed:
        spend = await usage.snapshot(ctx.db, pack, QuotaKind.LLM_COST, **scope)
        money = check_quota(pack, QuotaKind.LLM_COST, spend)
        if not money.allowed:
            await usage.release(ctx.db, pack, QuotaKind.DEEP_SCAN, **scope)
            decision = money
    if not decision.allowed:
        await _expire(ctx, quote.id)
        await reply(quota_refusal(user, "deep scan", decision.reason, decision.resets_at))
        return
    build = await control.create_build(
        ctx.db,
        DEEP_SCAN_DAG,
        installation_id=quote.installation_id,
        repository_id=quote.repository_id,
        tier=BuildTier.DEEP_SCAN,
        head_sha=quote.head_sha,
        trigger=f"comment:{quote.comment_id}",
        mode=BuildMode.AUTONOMOUS,
        pr_number=quote.pr_number,
        requester=user,
        delivery_id=ctx.delivery_id,
        fallback_scan_mode=BuildMode.DETERMINISTIC,
        budget_usd=pack.budgets.deep_scan.max_cost_usd,
    )
    async with ctx.db.session() as session:
        await session.execute(
            update(Quote).where(col(Quote.id) == quote.id).values(build_id=build.id)
        )
        await session.commit()
    if ctx.queue is not None:
        await control.enqueue(ctx.queue, build.id, slow_queue(ctx.settings.queue_prefix))
    url = build_url(ctx.settings, build.id)
    started = f"Deep scan of `{quote.head_sha[:7]}` started: [build {build.id}]({url})."
    await reply(f"{started}\n\n{text}" if text else started)


async def _effective(gh: GitHubAPI, where: dict[str, str], base_ref: str, pack: Pack) -> Pack:
    """The pack as the base branch's `.clarity.yml` tightens it (an invalid file changes nothing)."""
    text = await config_at(gh, where["owner"], where["repo"], base_ref)
    try:
        return effective_pack(pack, load_repo_config(text, known_rules=set(catalogue())))
    except RepoConfigError:
        return pack  # Tier 1 reports the invalid file on the pull request's check run


async def _estimate(ctx: HandlerContext, repository_id: int, head_sha: str, pack: Pack) -> Any:
    settings = ctx.settings
    async with ctx.db.session() as session:
        task = (
            await session.exec(
                select(Task)
                .join(Build, col(Build.id) == Task.build_id)
                .where(
                    Build.repository_id == repository_id,
                    Build.head_sha == head_sha,
                    col(Task.key).in_(("scan", "baseline")),
                    Task.status == TaskStatus.SUCCEEDED,
                )
                .order_by(col(Task.id).desc())
            )
        ).first()
    scan = None
    if task is not None and task.result:
        outcome = ScanOutcome.model_validate(task.result)
        if outcome.report:
            scan = ScanSize.from_report(outcome.report)
    prices = prices_for(
        settings.llm_model,
        settings.llm_input_cost_per_token,
        settings.llm_output_cost_per_token,
    )
    return estimate_build(scan, AGENT_KEYS, prices, pack.budgets.deep_scan)


async def _pending(ctx: HandlerContext, repository_id: int, number: int) -> Quote | None:
    async with ctx.db.session() as session:
        return (
            await session.exec(
                select(Quote)
                .where(
                    Quote.repository_id == repository_id,
                    Quote.pr_number == number,
                    Quote.status == QuoteStatus.PENDING,
                    col(Quote.expires_at) > utcnow(),
                )
                .order_by(col(Quote.id).desc())
            )
        ).first()


async def _claim(ctx: HandlerContext, quote_id: int) -> bool:
    """Pending → confirmed, once: a second confirm (or a redelivery) finds nothing to claim."""
    async with ctx.db.session() as session:
        result = await session.execute(
            update(Quote)
            .where(col(Quote.id) == quote_id, col(Quote.status) == QuoteStatus.PENDING)
            .values(status=QuoteStatus.CONFIRMED)
        )
        await session.commit()
    return result.rowcount == 1


async def _expire(ctx: HandlerContext, quote_id: int) -> None:
    async with ctx.db.session() as session:
        await session.execute(
            update(Quote).where(col(Quote.id) == quote_id).values(status=QuoteStatus.EXPIRED)
        )
        await session.commit()


async def _running(
    ctx: HandlerContext, repository_id: int, number: int, head_sha: str
) -> Build | None:
    async with ctx.db.session() as session:
        return (
            await session.exec(
                select(Build).where(
                    Build.repository_id == repository_id,
                    Build.pr_number == number,
                    Build.head_sha == head_sha,
                    Build.tier == BuildTier.DEEP_SCAN,
                    col(Build.status).in_((BuildStatus.QUEUED, BuildStatus.RUNNING)),
                )
            )
        ).first()
