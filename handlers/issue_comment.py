"""`/clarity <command>` in a pull request comment: who may, and what happens.

Commands: help, status, deep-scan, fix, approve, ignore, abort, retry. Bots, including
this App, are ignored; edits never re-run, and a comment delivered twice is carried out once.
"""

from __future__ import annotations

from typing import Any

from gidgethub import sansio
from gidgethub.abc import GitHubAPI
from gidgethub.routing import Router
from sqlmodel import col, select

from bot.handled import may_command
from bot.models import Build, BuildStatus, BuildTier, FixAttempt, utcnow
from bot.queue import fast_queue
from handlers.commands import Command, CommandName, help_reply, parse_commands
from handlers.context import HandlerContext
from handlers.deep_scan import deep_scan
from handlers.fix import approve_command, fix_command
from handlers.ignore import ignore_finding
from orchestrator import control
from orchestrator.fix_stats import attempts_table, fix_rates, rates_table
from orchestrator.pr_publish import mark_stopped
from orchestrator.pr_scan import build_url
from orchestrator.publish_render import neutral_output
from policies import authorize, load_pack

router = Router()

HANDLED = {
    CommandName.HELP,
    CommandName.STATUS,
    CommandName.DEEP_SCAN,
    CommandName.ABORT,
    CommandName.RETRY,
    CommandName.IGNORE,
    CommandName.FIX,
    CommandName.APPROVE,
}
SEEN_FOR = 7 * 24 * 3600  # seconds a handled command is remembered (GitHub redelivers for days)


@router.register("issue_comment", action="created")
async def run_commands(event: sansio.Event, gh: GitHubAPI, ctx: HandlerContext) -> None:
    data = event.data
    if not may_command(data):
        return
    commands = parse_commands(data["comment"].get("body") or "")
    if not commands:
        return
    repo = data["repository"]
    where = {"owner": repo["owner"]["login"], "repo": repo["name"]}
    for command in commands:
        if await _first_time(ctx, data["comment"]["id"], command):
            await run_command(ctx, gh, data, where, command)


async def run_command(
    ctx: HandlerContext,
    gh: GitHubAPI,
    data: dict[str, Any],
    where: dict[str, str],
    command: Command,
) -> None:
    """Authorise, acknowledge and carry out one command, answering in the pull request."""
    number = data["issue"]["number"]
    user = data["sender"]["login"]
    if command.name is CommandName.HELP:
        unknown = (
            command.args[1] if command.args[:1] == ("unknown",) and len(command.args) > 1 else None
        )
        await _reply(gh, where, number, help_reply(unknown))
        return
    if command.name not in HANDLED:
        await _reply(
            gh,
            where,
            number,
            f"`/clarity {command.name.value}` is not available yet on this installation.",
        )
        return
    permission = await gh.getitem(
        "/repos/{owner}/{repo}/collaborators/{username}/permission",
        url_vars={**where, "username": user},
    )
    pack = load_pack(getattr(ctx.settings, "policy_pack", "default"))
    # `role_name` tells maintain from write and triage from read; `permission` is the legacy level.
    level = permission.get("role_name") or permission.get("permission")
    decision = authorize(pack, command.name.value, level)
    if not decision.allowed:
        await _reply(
            gh,
            where,
            number,
            f"@{user} cannot run `/clarity {command.name.value}`: {decision.reason}.",
        )
        return
    await gh.post(
        "/repos/{owner}/{repo}/issues/comments/{id}/reactions",
        url_vars={**where, "id": str(data["comment"]["id"])},
        data={"content": "eyes"},
    )
    answer = lambda body: _reply(gh, where, number, body)  # noqa: E731
    if command.name is CommandName.DEEP_SCAN:
        await deep_scan(ctx, gh, data, where, command, answer)
        return
    if command.name is CommandName.FIX:
        await fix_command(ctx, gh, data, command.args, answer)
        return
    if command.name is CommandName.APPROVE:
        await approve_command(ctx, data, command.args, answer)
        return
    if command.name is CommandName.IGNORE:
        today = utcnow().date()  # the edge reads the clock; the command's checks take the date
        reply = await ignore_finding(
            ctx.db, data["repository"]["id"], number, command.args, today=today
        )
        await _reply(gh, where, number, reply)
        return
    builds = await _builds(ctx, data["repository"]["id"], number)
    if command.name is CommandName.STATUS:
        fixes = await _fix_status(ctx, data, number)
        await _reply(gh, where, number, "\n\n".join([_status(ctx, builds), *fixes]))
    elif command.name is CommandName.ABORT:
        running = [b for b in builds if b.status in (BuildStatus.QUEUED, BuildStatus.RUNNING)]
        for build in running:
            await control.abort(
                ctx.db, ctx.queue, ctx.settings.queue_prefix, build.id, f"aborted by @{user}"
            )
            # Its check run is finished here: the owner is cancelled and publishes nothing.
            url = build_url(ctx.settings, build.id)
            await mark_stopped(
                ctx.db, gh, build.id, neutral_output("Stopped", f"Aborted by @{user}.", url)
            )
        await _reply(
            gh,
            where,
            number,
            f"Aborted {len(running)} build(s)." if running else "Nothing is running.",
        )
    elif command.name is CommandName.RETRY:
        failed = next(
            (b for b in builds if b.status in (BuildStatus.FAILED, BuildStatus.ABORTED)), None
        )
        if failed is None:
            await _reply(gh, where, number, "No failed or aborted build to retry.")
            return
        await control.resume(ctx.db, failed.id)
        await control.enqueue(ctx.queue, failed.id, fast_queue(ctx.settings.queue_prefix))
        await _reply(
            gh, where, number, f"Retrying build {failed.id}: {build_url(ctx.settings, failed.id)}"
        )


async def _first_time(ctx: HandlerContext, comment_id: int, command: Command) -> bool:
    """True once per command line of a comment, however often GitHub delivers the comment."""
    if ctx.queue is None:  # `clarity receive`: a single local run, nothing to repeat
        return True
    key = f"{ctx.settings.queue_prefix}:command:{comment_id}:{command.line}"
    return bool(await ctx.queue.set(key, "1", nx=True, ex=SEEN_FOR))


async def _builds(ctx: HandlerContext, repository_id: int, number: int) -> list[Build]:
    """This pull request's builds, newest first."""
    async with ctx.db.session() as session:
        rows = await session.exec(
            select(Build)
            .where(Build.repository_id == repository_id, Build.pr_number == number)
            .order_by(col(Build.id).desc())
            .limit(20)
        )
        return list(rows)


async def _fix_status(ctx: HandlerContext, data: dict[str, Any], number: int) -> list[str]:
    """This pull request's fix attempts, and how fixes do by rule on the installation."""
    repository = data["repository"]
    async with ctx.db.session() as session:
        here = list(
            await session.exec(
                select(FixAttempt)
                .where(FixAttempt.repository_id == repository["id"], FixAttempt.pr_number == number)
                .order_by(col(FixAttempt.id))
            )
        )
        everywhere = await session.exec(
            select(FixAttempt.rule_id, FixAttempt.outcome).where(
                FixAttempt.installation_id == data["installation"]["id"]
            )
        )
        rates = fix_rates(everywhere.all())
    sections = []
    if here:
        table = attempts_table(here, repository["html_url"])
        sections.append("\n".join(["Fix attempts on this pull request:", "", *table]))
    if rates:
        table = rates_table(rates)
        sections.append("\n".join(["Fixes on this installation by rule:", "", *table]))
    return sections


def _status(ctx: HandlerContext, builds: list[Build]) -> str:
    if not builds:
        return "No Clarity Check build has run on this pull request yet."
    lines = ["| build | tier | commit | status |", "| --- | --- | --- | --- |"]
    for build in builds[:5]:
        link = f"[{build.id}]({build_url(ctx.settings, build.id)})"
        tier = "Tier 1 scan" if build.tier is BuildTier.SCAN else build.tier.value
        lines.append(f"| {link} | {tier} | `{build.head_sha[:7]}` | {build.status.value} |")
    return "\n".join(["Latest builds on this pull request:", "", *lines])


async def _reply(gh: GitHubAPI, where: dict[str, str], number: int, body: str) -> None:
    await gh.post(
        "/repos/{owner}/{repo}/issues/{number}/comments",
        url_vars={**where, "number": str(number)},
        data={"body": body},
    )
