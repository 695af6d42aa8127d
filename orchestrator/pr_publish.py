"""Publishing a pull-request scan: complete the check run (annotations in batches), one sticky comment.

A retried publish never duplicates: annotation batches already sent are read
back from the build's events, and the comment is found by GitHub's id (or,
the first time, by its hidden marker) under a per-PR lock before one is created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gidgethub
from pydantic import BaseModel

from bot.github import describe, is_answer
from bot.models import Build, PullRequest, Repository, utcnow
from orchestrator.head import pull_request_of
from orchestrator.hooks import FailureContext
from orchestrator.nodes import NodeContext
from orchestrator.pr_scan import CheckRunRef, ComparisonResult, build_url, publisher, repository_of
from orchestrator.publish_render import (
    Comparison,
    annotation_batches,
    changed_lines,
    check_run_output,
    fix_actions,
    is_sticky,
    neutral_output,
    should_comment,
    sticky_comment,
    superseded_output,
)
from orchestrator.tier1 import ScanOutcome, Verdict


class Published(BaseModel):
    check_run_id: int
    annotations: int
    comment_id: int | None


async def publish(ctx: NodeContext) -> Published:
    build = ctx.build
    owner, name = await repository_of(ctx)
    gh = publisher(ctx, name)
    outcome = ScanOutcome.model_validate(ctx.inputs["scan"])
    result = ComparisonResult.model_validate(ctx.inputs["compare"])
    verdict = Verdict.model_validate(ctx.inputs["verdict"])
    check = CheckRunRef.model_validate(ctx.inputs["check_run"])
    url = build_url(ctx.services["settings"], build.id)
    by_print = {f["fingerprint"]: f for f in outcome.findings}
    comparison = Comparison(
        new=[by_print[p] for p in result.new if p in by_print],
        fixed=list(result.fixed),
        persisting=[by_print[p] for p in result.persisting if p in by_print],
    )
    if outcome.config_error is not None or outcome.skipped is not None:
        output = neutral_output(verdict.title, verdict.reason, url)
    else:
        changed = None
        if build.pr_number is not None:
            files = [
                item
                async for item in gh.getiter(
                    "/repos/{owner}/{repo}/pulls/{number}/files",
                    url_vars={"owner": owner, "repo": name, "number": str(build.pr_number)},
                )
            ]
            changed = changed_lines(files)
        output = check_run_output(
            outcome.report,
            comparison,
            conclusion=verdict.conclusion,
            verdict_reason=verdict.reason,
            build_url=url,
            changed=changed,
        )
    batches = annotation_batches(output.annotations) or [()]
    path = {"owner": owner, "repo": name, "id": str(check.github_id)}
    check_run = "/repos/{owner}/{repo}/check-runs/{id}"

    async def annotations_on_run() -> int:
        run = await gh.getitem(check_run, url_vars=path)
        return int((run.get("output") or {}).get("annotations_count") or 0)

    # A publish tried again (a retry, or a resume after its worker died) may have sent some
    # batches already; GitHub appends annotations, so its count says which to skip.
    on_run = await annotations_on_run() if ctx.attempt > 1 else 0
    annotated = 0  # annotations on the run up to and with each batch
    for index, batch in enumerate(batches):
        annotated += len(batch)
        if batch and annotated <= on_run:
            continue
        data: dict[str, Any] = {
            "output": {"title": output.title, "summary": output.summary, "annotations": list(batch)}
        }
        if output.text:
            data["output"]["text"] = output.text
        if index == 0:
            data.update(
                status="completed", conclusion=verdict.conclusion, completed_at=utcnow().isoformat()
            )
            if actions := fix_actions(comparison):
                data["actions"] = actions
        if batch:
            expected = annotated

            async def appended() -> int | None:
                # Carried out but answered 5xx: GitHub holds the batch already.
                count = await annotations_on_run()
                return count if count >= expected else None

            await gh.once("PATCH", check_run, path, data=data, done=appended)
        else:
            await gh.patch(check_run, url_vars=path, data=data)
        await ctx.progress({"annotation_batch": index})
    comment_id = None
    if build.pr_number is not None and outcome.skipped is None:
        since = Comparison(
            new=[by_print[p] for p in result.since_new if p in by_print],
            fixed=list(result.since_fixed),
            persisting=[by_print[p] for p in result.since_persisting if p in by_print],
        )
        try:
            comment_id = await _sticky_comment(
                ctx, gh, owner, name, outcome, since, verdict, url, result.since_sha
            )
        except gidgethub.BadRequest as error:
            if not is_answer(error):
                raise
            # The check run carries the verdict already: a comment GitHub refuses must not undo it.
            await ctx.progress({"comment_refused": describe(error)})
    return Published(
        check_run_id=check.github_id, annotations=len(output.annotations), comment_id=comment_id
    )


async def _sticky_comment(
    ctx: NodeContext,
    gh: Any,
    owner: str,
    name: str,
    outcome: ScanOutcome,
    comparison: Comparison,
    verdict: Verdict,
    url: str,
    since_sha: str | None,
) -> int | None:
    build, db = ctx.build, ctx.services["db"]
    prefix = ctx.services["settings"].queue_prefix
    # One comment per pull request, even with two builds publishing at once.
    async with ctx.services["redis"].lock(
        f"{prefix}:lock:comment:{build.repository_id}:{build.pr_number}",
        timeout=120,
        blocking_timeout=120,
    ):
        pull = await pull_request_of(ctx.services, build)
        comment_id = pull.comment_id if pull else None
        if comment_id is None:  # created before its id was stored: found by its marker
            comment_id = await find_bot_comment(gh, owner, name, build.pr_number, is_sticky)
        if not should_comment(outcome.comment, comparison, comment_id is not None):
            return comment_id
        body = sticky_comment(
            outcome.report,
            comparison,
            conclusion=verdict.conclusion,
            build_url=url,
            since=since_sha,
        )
        comment_id = await post_or_edit(
            gh, owner, name, build.pr_number, comment_id, body, is_sticky
        )
        if pull is not None and pull.comment_id != comment_id:
            async with db.session() as session:
                row = await session.get(PullRequest, pull.id)
                row.comment_id = comment_id
                session.add(row)
                await session.commit()
    return comment_id


async def find_bot_comment(
    gh: Any, owner: str, name: str, number: int, matches: Callable[[str], bool]
) -> int | None:
    """The id of a bot's comment on issue `number` whose body `matches` (anyone can type a
    marker, so the author must be a bot too)."""
    async for comment in gh.getiter(
        "/repos/{owner}/{repo}/issues/{number}/comments",
        url_vars={"owner": owner, "repo": name, "number": str(number)},
    ):
        if (comment.get("user") or {}).get("type") == "Bot" and matches(comment.get("body") or ""):
            return comment["id"]
    return None


async def post_or_edit(
    gh: Any,
    owner: str,
    name: str,
    number: int,
    comment_id: int | None,
    body: str,
    matches: Callable[[str], bool],
) -> int:
    """Create the comment on issue `number`, or edit comment `comment_id`; its id.

    A creation GitHub answered with a 5xx may have happened: the bot's comment whose body
    `matches` is looked for before it is tried again.
    """
    if comment_id is None:

        async def made() -> dict[str, Any] | None:
            found = await find_bot_comment(gh, owner, name, number, matches)
            return None if found is None else {"id": found}

        created = await gh.create(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            {"owner": owner, "repo": name, "number": str(number)},
            data={"body": body},
            existing=made,
        )
        return created["id"]
    await gh.patch(
        "/repos/{owner}/{repo}/issues/comments/{id}",
        url_vars={"owner": owner, "repo": name, "id": str(comment_id)},
        data={"body": body},
    )
    return comment_id


async def complete_neutral(gh: Any, repository: str, check_run_id: int, output: Any) -> None:
    """Finish a check run as neutral: for problems on our side, never red."""
    owner, name = repository.split("/", 1)
    await gh.patch(
        "/repos/{owner}/{repo}/check-runs/{id}",
        url_vars={"owner": owner, "repo": name, "id": str(check_run_id)},
        data={
            "status": "completed",
            "conclusion": "neutral",
            "completed_at": utcnow().isoformat(),
            "output": {"title": output.title, "summary": output.summary},
        },
    )


async def mark_superseded(db: Any, gh: Any, settings: Any, build_id: int, new_sha: str) -> None:
    """Complete an aborted build's check run as neutral: a newer push replaced it."""
    await mark_stopped(db, gh, build_id, superseded_output(new_sha, build_url(settings, build_id)))


async def mark_closed(db: Any, gh: Any, settings: Any, build_id: int) -> None:
    """Complete an aborted build's check run as neutral: its pull request was closed."""
    reason = "The pull request was closed before the scan finished."
    await mark_stopped(
        db,
        gh,
        build_id,
        neutral_output("Stopped: pull request closed", reason, build_url(settings, build_id)),
    )


async def mark_stopped(db: Any, gh: Any, build_id: int, output: Any) -> None:
    async with db.session() as session:
        build = await session.get(Build, build_id)
        repository = await session.get(Repository, build.repository_id) if build else None
    if build is None or repository is None or build.check_run_id is None:
        return  # no check run was created yet: nothing to complete
    await complete_neutral(gh, repository.full_name, build.check_run_id, output)


async def report_failure(failure: FailureContext) -> None:
    """A failed pull-request build ends its check run as neutral with the reason."""
    await end_neutral(
        failure, "Clarity Check could not finish", f"The scan stopped on our side: {failure.error}"
    )


async def end_neutral(failure: FailureContext, title: str, reason: str) -> None:
    """End a failed build's check run as neutral with `reason` (none made yet: nothing)."""
    build, services = failure.build, failure.services
    if build.check_run_id is None:
        return  # it failed before creating one
    async with services["db"].session() as session:
        repository = await session.get(Repository, build.repository_id)
    gh = services["github"].for_installation(
        build.installation_id,
        repositories=(repository.full_name.split("/", 1)[1],),
        permissions={"checks": "write"},
    )
    output = neutral_output(title, reason, build_url(services["settings"], build.id))
    await complete_neutral(gh, repository.full_name, build.check_run_id, output)
