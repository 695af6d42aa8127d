"""Publishing a fix: the control plane commits the checked patch and opens (or updates) its PR.

The sandbox never holds a write token: the patch is applied here to the head's
files, committed with the Git Data API by a token narrowed to the repository, on
`clarity/fix/<pr>-<fingerprint prefix>`, and proposed into the pull request's own
branch. No branch of ours can target a fork: a fork's pull request gets a small change
as a review of suggested changes (applied with one click), a larger one as a comment
with the diff. One fix PR per finding: a repeat updates it, unless a
human committed on the branch, which stops automatic updates.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from typing import Any

import gidgethub
from pydantic import BaseModel

from bot.models import FixAttempt, FixOutcome, Repository, utcnow
from orchestrator.fix import FixResult, find_attempt, fix_attempt, target
from orchestrator.fix_suggest import Suggestion, suggestions
from orchestrator.git_commit import (
    apply_patch,
    commit_changes,
    fix_branch,
    open_pull,
    patch_modes,
    point_branch,
)
from orchestrator.head import head_archive, pull_request_of
from orchestrator.hooks import FailureContext
from orchestrator.nodes import NodeContext, NodeFailure
from orchestrator.pr_scan import build_url, repository_of
from orchestrator.publish_comment import short_id
from scanner.secrets import redact

SUGGESTION_LIMIT = 60_000  # characters of patch shown in a fork's comment


class FixPublished(BaseModel):
    outcome: str
    branch: str | None = None
    fix_pr_number: int | None = None
    commit_sha: str | None = None


def writer(ctx: NodeContext, name: str) -> Any:
    """The only client that writes code: this repository, contents and pull requests."""
    return ctx.services["github"].for_installation(
        ctx.build.installation_id,
        repositories=(name,),
        permissions={"contents": "write", "pull_requests": "write", "issues": "write"},
    )


async def publish(ctx: NodeContext) -> FixPublished:
    result = FixResult.model_validate(ctx.inputs["fix"])
    finding = target(ctx)
    owner, name = await repository_of(ctx)
    gh = writer(ctx, name)
    pull = await pull_request_of(ctx.services, ctx.build)
    attempt = await fix_attempt(ctx)
    ident = short_id(finding["fingerprint"])
    issue = {"owner": owner, "repo": name, "number": str(ctx.build.pr_number)}
    if pull is None or pull.from_fork:
        return await _suggest(ctx, gh, owner, name, attempt, result, ident, finding)
    archive = await head_archive(ctx, owner, name)
    base = files_from_archive(archive, result.changed)
    try:
        changes = apply_patch(base, result.patch)
    except Exception as error:  # a patch that does not apply to the head is never committed
        raise NodeFailure(f"the patch does not apply to the head: {error}", retryable=False)
    commit = await commit_changes(
        gh,
        owner,
        name,
        parent_sha=ctx.build.head_sha,
        changes=changes,
        modes=patch_modes(result.patch),
        message=f"Fix {ident}: {finding['title']}\n\n{result.summary}",
    )
    branch = fix_branch(ctx.build.pr_number, finding["fingerprint"])
    moved = await point_branch(
        gh, owner, name, branch, commit, ours=attempt.commit_sha if attempt else None
    )
    if moved.human_commits:
        await _record(ctx, attempt, result, FixOutcome.HUMAN_EDITED, reason="a human committed")
        await gh.post(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            url_vars=issue,
            data={
                "body": f"Someone committed on `{branch}`, so {ident}'s fix is no longer updated automatically."
            },
        )
        return FixPublished(outcome="human_edited", branch=branch)
    url = build_url(ctx.services["settings"], ctx.build.id)
    opened = await open_pull(
        gh,
        owner,
        name,
        branch=branch,
        base=pull.head_ref,
        title=f"Fix {ident}: {finding['title']}"[:250],
        body=description(ident, finding, result, ctx.build.pr_number, url),
    )
    note = (
        f"Opened #{opened.number} with a checked fix for {ident}."
        if opened.created
        else f"Updated #{opened.number}, the fix for {ident}, with a new checked patch."
    )
    await gh.post(
        "/repos/{owner}/{repo}/issues/{number}/comments",
        url_vars=issue,
        data={
            "body": f"{note} Tests, the security re-scan and the policy gates passed: [build]({url})."
        },
    )
    await _record(
        ctx, attempt, result, FixOutcome.OPENED, branch=branch, number=opened.number, commit=commit
    )
    return FixPublished(
        outcome="opened", branch=branch, fix_pr_number=opened.number, commit_sha=commit
    )


async def _suggest(
    ctx: NodeContext,
    gh: Any,
    owner: str,
    name: str,
    attempt: FixAttempt | None,
    result: FixResult,
    ident: str,
    finding: dict[str, Any],
) -> FixPublished:
    """A fork's pull request: the fix as one review of suggestions, else as a comment."""
    number = str(ctx.build.pr_number)
    base = files_from_archive(await head_archive(ctx, owner, name), result.changed)
    found = suggestions(result.patch, base)
    # redaction would change the code a suggestion applies: such a fix goes in the comment
    if found and all(redact(s.comment()["body"]) == s.comment()["body"] for s in found):
        url = build_url(ctx.services["settings"], ctx.build.id)
        try:
            await gh.post(
                "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
                url_vars={"owner": owner, "repo": name, "pull_number": number},
                data=review(ident, finding, result, ctx.build.head_sha, found, url),
            )
        except gidgethub.BadRequest as error:
            # GitHub places comments only on lines it can resolve in the diff
            if int(error.status_code) != 422:
                raise
        else:
            await _record(ctx, attempt, result, FixOutcome.OPENED, reason="suggested in a review")
            return FixPublished(outcome="suggested")
    await gh.post(
        "/repos/{owner}/{repo}/issues/{number}/comments",
        url_vars={"owner": owner, "repo": name, "number": number},
        data={"body": fork_comment(ident, finding, result)},
    )
    await _record(ctx, attempt, result, FixOutcome.OPENED, reason="suggested as a comment")
    return FixPublished(outcome="suggested")


def files_from_archive(archive: bytes, paths: Iterable[str]) -> dict[str, bytes]:
    """The named files of GitHub's tarball (one top-level folder), where they exist."""
    wanted, found = set(paths), {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar:
            _, _, path = member.name.partition("/")
            if path in wanted and member.isfile():
                handle = tar.extractfile(member)
                if handle is not None:
                    found[path] = handle.read()
    return found


def description(ident: str, finding: dict[str, Any], result: FixResult, pr: int, url: str) -> str:
    """The fix PR's body: the finding, the change, the gates' evidence, how to verify."""
    lines = [
        f"Fixes **{ident}** ({finding['severity']}, `{finding['rule_id']}`) found in #{pr}: "
        f"{redact(finding['title'])} at `{finding['path']}:{finding.get('line')}`.",
        "",
        *_explained(result),
        "",
        f"<sub>Checked by Clarity Check before this pull request was opened: [build]({url}).</sub>",
    ]
    return "\n".join(lines)[:60_000]


def review(
    ident: str,
    finding: dict[str, Any],
    result: FixResult,
    commit: str,
    found: list[Suggestion],
    url: str,
) -> dict[str, Any]:
    """A fork's review: what the fix is and how it was checked; one suggestion per hunk."""
    lines = [
        f"A checked fix for **{ident}** ({finding['severity']}, `{finding['rule_id']}`): "
        f"{redact(finding['title'])} at `{finding['path']}:{finding.get('line')}`. This pull "
        "request comes from a fork, where Clarity Check cannot push a branch, so the change "
        "is suggested below: apply it with **Commit suggestion**.",
        "",
        *_explained(result),
        "",
        f"<sub>Checked by Clarity Check before it was suggested: [build]({url}).</sub>",
    ]
    return {
        "commit_id": commit,
        "event": "COMMENT",
        "body": "\n".join(lines)[:60_000],
        "comments": [s.comment() for s in found],
    }


def _explained(result: FixResult) -> list[str]:
    """What changed, the gates' evidence, and how to verify, as Markdown sections."""
    gates = result.attempts[-1].get("gates", []) if result.attempts else []
    return [
        "### What changed",
        redact(result.explanation),
        "",
        "### Evidence",
        *(
            f"- **{g['gate']}**: {'passed' if g['passed'] else 'refused'} — {redact(g['reason'])}"
            for g in gates
        ),
        f"- attempts: {len(result.attempts)}; files: {', '.join(f'`{p}`' for p in result.changed)}",
        "",
        "### How to verify",
        redact(result.verification),
    ]


def fork_comment(ident: str, finding: dict[str, Any], result: FixResult) -> str:
    patch = redact(result.patch)
    if len(patch) > SUGGESTION_LIMIT:
        patch = patch[:SUGGESTION_LIMIT] + "\n… (cut; the full patch is on the build page)"
    return (
        f"A checked fix for **{ident}** ({redact(finding['title'])}). This pull request comes "
        "from a fork, where Clarity Check cannot push a branch, so here is the change to "
        f"apply:\n\n{redact(result.explanation)}\n\n```diff\n{patch}\n```\n\n"
        f"How to verify: {redact(result.verification)}"
    )


async def _record(
    ctx: NodeContext,
    attempt: FixAttempt | None,
    result: FixResult,
    outcome: FixOutcome,
    *,
    branch: str | None = None,
    number: int | None = None,
    commit: str | None = None,
    reason: str | None = None,
) -> None:
    if attempt is None:
        return
    async with ctx.services["db"].session() as session:
        row = await session.get(FixAttempt, attempt.id)
        row.outcome, row.reason, row.updated_at = outcome, reason, utcnow()
        row.attempts = len(result.attempts)
        row.gate_results = result.attempts
        row.diff_hash = result.diff_hash
        row.branch = branch or row.branch
        row.fix_pr_number = number or row.fix_pr_number
        row.commit_sha = commit or row.commit_sha
        session.add(row)
        await session.commit()


async def report_refusal(failure: FailureContext) -> None:
    """No fix PR: say why on the pull request (or that a maintainer's approval is awaited)."""
    build, services = failure.build, failure.services
    fingerprint = next(
        (n["params"]["fingerprint"] for n in build.dag_spec if n["params"].get("fingerprint")), None
    )
    attempt = await find_attempt(services["db"], build.repository_id, build.pr_number, fingerprint)
    async with services["db"].session() as session:
        repository = await session.get(Repository, build.repository_id)
    if attempt is None or repository is None:
        return
    ident = short_id(attempt.fingerprint)
    if attempt.outcome is FixOutcome.AWAITING_APPROVAL:
        body = (
            f"The fix for **{ident}** passed every gate and waits for a maintainer: "
            f"{attempt.reason}. Comment `/clarity approve {ident}` to publish it."
        )
    else:
        async with services["db"].session() as session:
            row = await session.get(FixAttempt, attempt.id)
            row.outcome, row.reason, row.updated_at = FixOutcome.REFUSED, failure.error, utcnow()
            session.add(row)
            await session.commit()
        body = (
            f"No fix pull request for **{ident}**: {redact(failure.error)}\n\n"
            f"Details: [build {build.id}]({build_url(services['settings'], build.id)})."
        )
    owner, name = repository.full_name.split("/", 1)
    gh = services["github"].for_installation(
        build.installation_id, repositories=(name,), permissions={"issues": "write"}
    )
    await gh.post(
        "/repos/{owner}/{repo}/issues/{number}/comments",
        url_vars={"owner": owner, "repo": name, "number": str(build.pr_number)},
        data={"body": body},
    )
