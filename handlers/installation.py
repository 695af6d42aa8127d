"""Keep `Installation` and `Repository` rows true to GitHub's installation events."""

from __future__ import annotations

from typing import Any

from gidgethub import sansio
from gidgethub.abc import GitHubAPI
from gidgethub.routing import Router
from sqlalchemy import delete
from sqlmodel import col, select

from bot.db import Database
from bot.models import Installation, PullRequest, Repository, utcnow
from handlers.context import HandlerContext
from handlers.pull_request import scan_commit
from handlers.records import upsert

router = Router()

RESUMED_AT_MOST = 50  # open pull requests (the latest updated) scanned again on unsuspend


@router.register("installation", action="created")
@router.register("installation", action="new_permissions_accepted")
async def record_installation(event: sansio.Event, gh: GitHubAPI, ctx: HandlerContext) -> None:
    await save_installation(ctx.db, event.data["installation"], event.data.get("repositories"))


@router.register("installation", action="deleted")
async def forget_installation(event: sansio.Event, gh: GitHubAPI, ctx: HandlerContext) -> None:
    await delete_installation(ctx.db, event.data["installation"]["id"])


@router.register("installation", action="suspend")
@router.register("installation", action="unsuspend")
async def mark_suspension(event: sansio.Event, gh: GitHubAPI, ctx: HandlerContext) -> None:
    await save_installation(ctx.db, event.data["installation"])
    if event.data["action"] == "unsuspend":
        await resume_scans(ctx, gh, event.data)


async def resume_scans(ctx: HandlerContext, gh: GitHubAPI, payload: dict[str, Any]) -> int:
    """Scan again the open pull requests whose head has no scan that finished or is under way.

    GitHub refuses every call of a suspended installation, so a scan the suspension cut
    off left its check run in progress; the new build takes the same check run over and
    completes it. Heads already scanned, or being scanned, are left alone.
    """
    installation_id = payload["installation"]["id"]
    async with ctx.db.session() as session:
        pulls = (
            await session.exec(
                select(PullRequest.repository_id, PullRequest.number, PullRequest.head_sha)
                .join(Repository, col(Repository.id) == col(PullRequest.repository_id))
                .where(Repository.installation_id == installation_id, col(PullRequest.open))
                .order_by(col(PullRequest.updated_at).desc())
                .limit(RESUMED_AT_MOST)
            )
        ).all()
    started = 0
    for repository_id, number, head_sha in pulls:
        build_id = await scan_commit(
            ctx,
            installation_id=installation_id,
            repository_id=repository_id,
            head_sha=head_sha,
            pr_number=number,
            trigger="installation.unsuspend",
            requester=(payload.get("sender") or {}).get("login"),
            gh=gh,
        )
        started += build_id is not None
    return started


@router.register("installation_repositories", action="added")
@router.register("installation_repositories", action="removed")
async def sync_repositories(event: sansio.Event, gh: GitHubAPI, ctx: HandlerContext) -> None:
    installation = event.data["installation"]
    await save_installation(ctx.db, installation, event.data.get("repositories_added", []))
    await remove_repositories(
        ctx.db,
        installation["id"],
        [repo["id"] for repo in event.data.get("repositories_removed", [])],
    )


async def save_installation(
    db: Database, data: dict[str, Any], repositories: list[dict[str, Any]] | None = None
) -> None:
    """Insert or update an installation (and add `repositories`) from its webhook representation."""
    # A pull request event may have created the row a moment ago: insert it race-free first.
    await upsert(
        db,
        Installation(id=data["id"], account_login=data["account"]["login"]),
        key=["id"],
        update=[],
    )
    async with db.session() as session:
        row = await session.get(Installation, data["id"])
        row.account_login = data["account"]["login"]
        row.account_type = data["account"].get("type", "User")
        row.repository_selection = data.get("repository_selection", row.repository_selection)
        suspended = data.get("suspended_at")
        row.suspended_at = utcnow() if suspended else None
        row.updated_at = utcnow()
        session.add(row)
        await session.flush()
        for repo in repositories or []:
            existing = await session.get(Repository, repo["id"])
            target = existing or Repository(id=repo["id"], installation_id=data["id"], full_name="")
            target.installation_id = data["id"]
            target.full_name = repo["full_name"]
            target.private = bool(repo.get("private", False))
            session.add(target)
        await session.commit()


async def remove_repositories(
    db: Database, installation_id: int, repository_ids: list[int]
) -> None:
    if not repository_ids:
        return
    async with db.session() as session:
        await session.exec(
            delete(Repository).where(
                col(Repository.installation_id) == installation_id,
                col(Repository.id).in_(repository_ids),
            )
        )
        await session.commit()


async def delete_installation(db: Database, installation_id: int) -> None:
    """Remove an installation and, by cascade, everything stored for it."""
    async with db.session() as session:
        await session.exec(delete(Installation).where(col(Installation.id) == installation_id))
        await session.commit()
