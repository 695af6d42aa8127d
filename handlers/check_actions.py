"""The Tier 1 check run's "Fix new criticals" button (`check_run` `requested_action`)."""

from __future__ import annotations

from gidgethub import sansio
from gidgethub.abc import GitHubAPI
from gidgethub.routing import Router

from handlers.context import HandlerContext
from handlers.fix import ALL_NEW_CRITICAL, start_fixes
from orchestrator.publish_render import FIX_ACTION
from policies import authorize, load_pack

router = Router()


@router.register("check_run", action="requested_action")
async def fix_from_button(event: sansio.Event, gh: GitHubAPI, ctx: HandlerContext) -> None:
    data = event.data
    pulls = data["check_run"].get("pull_requests") or []
    if data["requested_action"].get("identifier") != FIX_ACTION or not pulls:
        return
    repo = data["repository"]
    where = {"owner": repo["owner"]["login"], "repo": repo["name"]}
    number, user = pulls[0]["number"], data["sender"]["login"]

    async def reply(body: str) -> None:
        await gh.post(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            url_vars={**where, "number": str(number)},
            data={"body": body},
        )

    permission = await gh.getitem(
        "/repos/{owner}/{repo}/collaborators/{username}/permission",
        url_vars={**where, "username": user},
    )
    decision = authorize(
        load_pack(getattr(ctx.settings, "policy_pack", "default")),
        "fix",
        permission.get("role_name") or permission.get("permission"),
    )
    if not decision.allowed:
        await reply(f"@{user} cannot start fixes: {decision.reason}.")
        return
    await start_fixes(
        ctx,
        repo,
        data["installation"]["id"],
        number,
        user,
        ALL_NEW_CRITICAL,
        reply,
        source=f"action:{data['check_run']['id']}",
    )
