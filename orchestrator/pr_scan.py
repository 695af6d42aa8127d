"""The pull-request scan: a check run at once, the Tier 1 scan, comparison with the base, publish.

check_run → scan → compare → verdict → publish. Every GitHub side effect stores
GitHub's id before the next step (CheckRun and PullRequest rows), so a retried
node updates instead of creating a second check run or comment.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import col, select

from bot.auth import capability
from bot.models import Build, BuildStatus, CheckRun, Repository, Task
from orchestrator.dag import Dag, Node
from orchestrator.hooks import FAILURE_HOOKS
from orchestrator.nodes import NodeContext, NodeFailure
from orchestrator.tier1 import SCAN_TIMEOUT, ScanOutcome, Verdict, health, judge, our_side

CHECK_NAME = "Clarity Check"


class CheckRunRef(BaseModel):
    github_id: int


class ComparisonResult(BaseModel):
    """Fingerprints of the head's findings against the default branch's latest scan."""

    base_sha: str | None = None
    new: list[str] = Field(default_factory=list)
    fixed: list[dict[str, Any]] = Field(default_factory=list)  # findings only the base has
    persisting: list[str] = Field(default_factory=list)
    # The same against the pull request's previous head (or the base when there is none).
    since_sha: str | None = None
    since_new: list[str] = Field(default_factory=list)
    since_fixed: list[dict[str, Any]] = Field(default_factory=list)
    since_persisting: list[str] = Field(default_factory=list)


def build_url(settings: Any, build_id: int) -> str:
    """The build's page, with the link that lets whoever holds it read this build."""
    link = capability(build_id, settings.link_key())
    return f"{settings.public_url.rstrip('/')}/builds/{build_id}?cap={link}"


async def repository_of(ctx: NodeContext) -> tuple[str, str]:
    async with ctx.services["db"].session() as session:
        repository = await session.get(Repository, ctx.build.repository_id)
    if repository is None:
        raise NodeFailure(f"repository {ctx.build.repository_id} is not known", retryable=False)
    owner, name = repository.full_name.split("/", 1)
    return owner, name


def publisher(ctx: NodeContext, name: str) -> Any:
    """An installation client narrowed to this repository and what publishing needs."""
    return ctx.services["github"].for_installation(
        ctx.build.installation_id,
        repositories=(name,),
        permissions={
            "checks": "write",
            "issues": "write",
            "pull_requests": "read",
            "contents": "read",
        },
    )


async def check_run(ctx: NodeContext) -> CheckRunRef:
    """Create the commit's check run (in progress), or take over the one it already has."""
    return await open_check_run(ctx, CHECK_NAME)


async def open_check_run(ctx: NodeContext, check_name: str) -> CheckRunRef:
    """The check run named `check_name` of the build's commit, in progress and linked to the build."""
    build, db = ctx.build, ctx.services["db"]
    owner, name = await repository_of(ctx)
    gh = publisher(ctx, name)
    # One check run per commit, even when two builds of it start at once: create it under a lock.
    lock_name = f"{ctx.services['settings'].queue_prefix}:lock:check-run:{build.repository_id}:{build.head_sha}:{check_name}"
    async with ctx.services["redis"].lock(lock_name, timeout=60, blocking_timeout=60):
        async with db.session() as session:
            row = (
                await session.exec(
                    select(CheckRun).where(
                        CheckRun.repository_id == build.repository_id,
                        CheckRun.head_sha == build.head_sha,
                        CheckRun.name == check_name,
                    )
                )
            ).one_or_none()
            # A row without its GitHub id was left by an attempt that died (or failed) after
            # the row and perhaps after the creation: then the check run may already exist.
            interrupted = row is not None and row.github_id is None
            if row is None:
                row = CheckRun(
                    repository_id=build.repository_id, head_sha=build.head_sha, name=check_name
                )
                session.add(row)
                await session.commit()  # the unique row first: a racing build reuses it
        url = build_url(ctx.services["settings"], build.id)
        fields = {"status": "in_progress", "details_url": url, "external_id": str(build.id)}

        async def made() -> dict[str, Any] | None:
            # A creation answered with a 5xx may have happened: ours is then the newest.
            found = await gh.getitem(
                "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,app_id,filter}",
                url_vars={
                    "owner": owner,
                    "repo": name,
                    "ref": build.head_sha,
                    "check_name": check_name,
                    "app_id": str(ctx.services["settings"].app_id),
                    "filter": "latest",
                },
            )
            return next(iter(found["check_runs"]), None)

        github_id = row.github_id
        if github_id is None and interrupted:
            github_id = ((await made()) or {}).get("id")
        if github_id is None:
            created = await gh.create(
                "/repos/{owner}/{repo}/check-runs",
                {"owner": owner, "repo": name},
                data={"name": check_name, "head_sha": build.head_sha, **fields},
                existing=made,
            )
            github_id = created["id"]
        else:
            await gh.patch(
                "/repos/{owner}/{repo}/check-runs/{id}",
                url_vars={"owner": owner, "repo": name, "id": str(github_id)},
                data=fields,
            )
        async with db.session() as session:
            stored = await session.get(CheckRun, row.id)
            stored.github_id, stored.build_id = github_id, build.id
            session.add(stored)
            build_row = await session.get(Build, build.id)
            build_row.check_run_id = github_id
            session.add(build_row)
            await session.commit()
    return CheckRunRef(github_id=github_id)


def _against(
    head: ScanOutcome, other: ScanOutcome | None
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """(new, persisting) fingerprints of `head`, and the findings only `other` has (fixed)."""
    head_prints = [f["fingerprint"] for f in head.findings]
    if other is None:
        return head_prints, [], []
    other_prints = {f["fingerprint"] for f in other.findings}
    return (
        [p for p in head_prints if p not in other_prints],
        [p for p in head_prints if p in other_prints],
        [f for f in other.findings if f["fingerprint"] not in set(head_prints)],
    )


async def compare(ctx: NodeContext) -> ComparisonResult:
    """Against the default branch's latest scan (for the verdict: all new without one), and against
    the pull request's previous head (for the comment: what changed since the last push)."""
    head = ScanOutcome.model_validate(ctx.inputs["scan"])
    base = await _latest_scan(
        ctx, col(Build.trigger).startswith("push"), Build.repository_id == ctx.build.repository_id
    )
    previous = None
    if ctx.build.pr_number is not None:
        previous = await _latest_scan(
            ctx,
            Build.repository_id == ctx.build.repository_id,
            Build.pr_number == ctx.build.pr_number,
            Build.head_sha != ctx.build.head_sha,
            col(Build.id) < ctx.build.id,
        )
    new, persisting, fixed = _against(head, base)
    since_new, since_persisting, since_fixed = _against(head, previous or base)
    return ComparisonResult(
        base_sha=base.head_sha if base else None,
        new=new,
        persisting=persisting,
        fixed=fixed,
        since_sha=previous.head_sha if previous else None,
        since_new=since_new,
        since_persisting=since_persisting,
        since_fixed=since_fixed,
    )


async def _latest_scan(ctx: NodeContext, *conditions: Any) -> ScanOutcome | None:
    """The scan result of the latest succeeded build matching `conditions`."""
    async with ctx.services["db"].session() as session:
        row = (
            await session.exec(
                select(Task)
                .join(Build, col(Build.id) == Task.build_id)
                .where(*conditions, Build.status == BuildStatus.SUCCEEDED, Task.key == "scan")
                .order_by(col(Build.id).desc())
            )
        ).first()
    if row is None or not row.result:
        return None
    outcome = ScanOutcome.model_validate(row.result)
    return None if outcome.config_error or outcome.skipped else outcome


async def verdict(ctx: NodeContext) -> Verdict:
    """Failure only for NEW findings at or above the failing severity; neutral for our own problems."""
    outcome = ScanOutcome.model_validate(ctx.inputs["scan"])
    if (neutral := our_side(outcome)) is not None:
        return neutral
    comparison = ComparisonResult.model_validate(ctx.inputs["compare"])
    new = set(comparison.new)
    title = f"{health(outcome)} · {len(new)} new, {len(comparison.fixed)} fixed"
    return judge(outcome, [f for f in outcome.findings if f["fingerprint"] in new], title, "new ")


PR_SCAN_DAG = Dag(
    "pull-request-scan",
    (
        Node("check_run", "orchestrator.pr_scan:check_run", retries=3, backoff=2.0),
        Node("scan", "orchestrator.tier1:scan", retries=2, backoff=2.0, timeout=SCAN_TIMEOUT + 60),
        Node("compare", "orchestrator.pr_scan:compare", ("scan",)),
        Node("verdict", "orchestrator.pr_scan:verdict", ("scan", "compare")),
        Node(
            "publish",
            "orchestrator.pr_publish:publish",
            ("check_run", "scan", "compare", "verdict"),
            retries=3,
            backoff=2.0,
        ),
        # Fix pull requests whose finding this push removed are closed (after publishing).
        Node(
            "close_fixes",
            "orchestrator.fix_lifecycle:close_resolved",
            ("publish", "scan"),
            retries=2,
        ),
    ),
)

FAILURE_HOOKS.setdefault(PR_SCAN_DAG.name, "orchestrator.pr_publish:report_failure")
