"""A push to the default branch is scanned as the baseline pull requests are compared with."""

from __future__ import annotations

from gidgethub import sansio
from gidgethub.abc import GitHubAPI
from gidgethub.routing import Router

from bot.handled import pushed_to_default_branch
from handlers.context import HandlerContext
from handlers.pull_request import record_repository, scan_commit
from orchestrator.tier1 import SCAN_DAG

router = Router()


@router.register("push")
async def scan_default_branch(event: sansio.Event, gh: GitHubAPI, ctx: HandlerContext) -> None:
    payload = event.data
    if not pushed_to_default_branch(payload):
        return  # branches are scanned through their pull requests
    repository = payload["repository"]
    await record_repository(ctx.db, payload)
    # The baseline DAG has no publish step: no check run or comment on the default branch.
    await scan_commit(
        ctx,
        installation_id=payload["installation"]["id"],
        repository_id=repository["id"],
        head_sha=payload["after"],
        pr_number=None,
        trigger="push",
        requester=(payload.get("sender") or {}).get("login"),
        gh=None,
        dag=SCAN_DAG,
    )
