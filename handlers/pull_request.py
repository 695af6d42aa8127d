"""Every pull request gets a Tier 1 build for its head; a newer head supersedes an older build."""

from __future__ import annotations

from typing import Any

from gidgethub import sansio
from gidgethub.abc import GitHubAPI
from gidgethub.routing import Router
from sqlmodel import col, select

from bot.db import Database
from bot.handled import PULL_REQUEST_SCANS
from bot.models import Build, BuildStatus, BuildTier, Installation, PullRequest, Repository, utcnow
from bot.queue import fast_queue
from handlers.context import HandlerContext
from handlers.records import Upsert, upsert_all
from orchestrator import control
from orchestrator.pr_publish import mark_closed, mark_superseded
from orchestrator.pr_scan import PR_SCAN_DAG
from orchestrator.transitions import IllegalMove

router = Router()


async def scan_pull_request(event: sansio.Event, gh: GitHubAPI, ctx: HandlerContext) -> None:
    await start_scan(ctx, event.data, trigger=f"pull_request.{event.data['action']}", gh=gh)


for _action in PULL_REQUEST_SCANS:
    router.add(scan_pull_request, "pull_request", action=_action)


@router.register("pull_request", action="closed")
async def stop_pull_request(event: sansio.Event, gh: GitHubAPI, ctx: HandlerContext) -> None:
    pull = event.data["pull_request"]
    repository_id = event.data["repository"]["id"]
    await record_pull_request(ctx.db, event.data, open_=False)
    for build_id in await in_flight(ctx.db, repository_id, pull["number"]):
        if await stop_build(ctx, build_id, "the pull request was closed"):
            await mark_closed(ctx.db, gh, ctx.settings, build_id)


async def record_repository(db: Database, payload: dict[str, Any]) -> None:
    """Installation and repository rows for a payload we may see before their own events."""
    await upsert_all(db, _repository_rows(payload))


async def record_pull_request(db: Database, payload: dict[str, Any], *, open_: bool = True) -> None:
    """The pull request's row, with its installation's and repository's, in one transaction."""
    pull = payload["pull_request"]
    repository_id = payload["repository"]["id"]
    row = PullRequest(
        repository_id=repository_id,
        number=pull["number"],
        head_sha=pull["head"]["sha"],
        head_ref=pull["head"]["ref"],
        base_ref=pull["base"]["ref"],
        from_fork=(pull["head"].get("repo") or {}).get("id") != repository_id,
        draft=bool(pull.get("draft", False)),
        open=open_,
        updated_at=utcnow(),
    )
    fields = ("head_sha", "head_ref", "base_ref", "from_fork", "draft", "open", "updated_at")
    await upsert_all(
        db, [*_repository_rows(payload), Upsert(row, ("repository_id", "number"), fields)]
    )


def _repository_rows(payload: dict[str, Any]) -> list[Upsert]:
    installation_id = payload["installation"]["id"]
    repository = payload["repository"]
    return [
        Upsert(
            Installation(id=installation_id, account_login=repository["owner"]["login"]), ("id",)
        ),
        Upsert(
            Repository(
                id=repository["id"],
                installation_id=installation_id,
                full_name=repository["full_name"],
                private=bool(repository.get("private", False)),
                default_branch=repository.get("default_branch"),
            ),
            ("id",),
            ("full_name", "private", "default_branch"),
        ),
    ]


async def in_flight(
    db: Database, repository_id: int, number: int, *, except_sha: str | None = None
) -> list[int]:
    async with db.autocommit() as connection:
        rows = await connection.execute(
            select(Build.id).where(
                Build.repository_id == repository_id,
                Build.pr_number == number,
                Build.tier == BuildTier.SCAN,
                col(Build.status).in_([BuildStatus.QUEUED, BuildStatus.RUNNING]),
                *([Build.head_sha != except_sha] if except_sha else []),
            )
        )
        return list(rows.scalars())


async def stop_build(ctx: HandlerContext, build_id: int, reason: str) -> bool:
    """Abort a build found in flight; False when it finished since (there is nothing to stop)."""
    try:
        await control.abort(ctx.db, ctx.queue, ctx.settings.queue_prefix, build_id, reason)
    except IllegalMove:
        return False
    return True


async def start_scan(
    ctx: HandlerContext, payload: dict[str, Any], *, trigger: str, gh: GitHubAPI | None = None
) -> int | None:
    """The pull request's head gets a build; older heads of the same pull request are aborted."""
    pull = payload["pull_request"]
    await record_pull_request(ctx.db, payload)
    return await scan_commit(
        ctx,
        installation_id=payload["installation"]["id"],
        repository_id=payload["repository"]["id"],
        head_sha=pull["head"]["sha"],
        pr_number=pull["number"],
        trigger=trigger,
        requester=(payload.get("sender") or {}).get("login"),
        gh=gh,
    )


async def scan_commit(
    ctx: HandlerContext,
    *,
    installation_id: int,
    repository_id: int,
    head_sha: str,
    pr_number: int | None,
    trigger: str,
    requester: str | None,
    gh: GitHubAPI | None,
    dag: Any = PR_SCAN_DAG,
) -> int | None:
    """A build for `head_sha` (reused when one exists, unless re-requested), enqueued."""
    if pr_number is not None:
        for build_id in await in_flight(ctx.db, repository_id, pr_number, except_sha=head_sha):
            stopped = await stop_build(ctx, build_id, f"superseded by {head_sha}")
            if stopped and gh is not None:
                await mark_superseded(ctx.db, gh, ctx.settings, build_id, head_sha)
    # Deliveries are processed concurrently: deciding "no build yet, create one" must be atomic per commit.
    lock_name = f"{ctx.settings.queue_prefix}:lock:build:{repository_id}:{head_sha}:{dag.name}"
    async with ctx.queue.lock(lock_name, timeout=60, blocking_timeout=60):
        async with ctx.db.session() as session:
            existing = (
                await session.exec(
                    select(Build.id).where(
                        Build.repository_id == repository_id,
                        Build.head_sha == head_sha,
                        Build.tier == BuildTier.SCAN,
                        Build.dag_name == dag.name,
                        col(Build.status).in_(
                            [BuildStatus.QUEUED, BuildStatus.RUNNING, BuildStatus.SUCCEEDED]
                        ),
                    )
                )
            ).first()
        if existing is not None and not trigger.endswith("rerequested"):
            return None  # this commit is already being (or was) scanned: a redelivery or a retry
        build = await control.create_build(
            ctx.db,
            dag,
            installation_id=installation_id,
            repository_id=repository_id,
            tier=BuildTier.SCAN,
            head_sha=head_sha,
            pr_number=pr_number,
            trigger=trigger,
            requester=requester,
            delivery_id=ctx.delivery_id,
        )
    await control.enqueue(ctx.queue, build.id, fast_queue(ctx.settings.queue_prefix))
    return build.id
