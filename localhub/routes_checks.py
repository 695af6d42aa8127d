"""Check runs: create, get, update (annotations append, as GitHub documents), list for a ref."""

from __future__ import annotations

from typing import Any

from . import limits, paging, render
from .clock import parse_iso
from .endpoint import Context, Reply
from .errors import NotFound, Unprocessable
from .models import CheckRun


async def create_check_run(ctx: Context) -> Reply:
    """`checks/create`: needs an existing full commit sha."""
    hub, body, repo = ctx.hub, ctx.body, ctx.repo
    assert repo is not None
    limits.check_run_body(body, creating=True)
    head_sha = repo.git.resolve(body["head_sha"]) if len(body["head_sha"]) == 40 else None
    if head_sha is None:
        raise Unprocessable(f"No commit found for SHA: {body['head_sha']}")
    with hub.lock:
        suite = hub.check_suites.setdefault((repo.full_name.lower(), head_sha), hub.next_id())
        run = CheckRun(
            id=hub.next_id(),
            repo=repo.full_name,
            name=body["name"],
            head_sha=head_sha,
            status=body.get("status", "queued"),
            conclusion=None,
            started_at=hub.now(),
            completed_at=None,
            details_url=body.get("details_url"),
            external_id=body.get("external_id"),
            check_suite_id=suite,
        )
        _apply(hub, run, body)
        hub.check_run_records[run.id] = run
        shaped = render.check_run(hub, run, ctx.base_url)
    return Reply(201, shaped)


async def get_check_run(ctx: Context) -> Reply:
    """`checks/get`."""
    return Reply(200, render.check_run(ctx.hub, _find(ctx), ctx.base_url))


async def update_check_run(ctx: Context) -> Reply:
    """`checks/update`: output replaces, annotations append."""
    limits.check_run_body(ctx.body, creating=False)
    with ctx.hub.lock:
        run = _find(ctx)
        _apply(ctx.hub, run, ctx.body)
        shaped = render.check_run(ctx.hub, run, ctx.base_url)
    return Reply(200, shaped)


async def list_check_runs_for_ref(ctx: Context) -> Reply:
    """`checks/list-for-ref`: newest first; `filter=latest` (the default) keeps each name's newest."""
    hub, repo, query = ctx.hub, ctx.repo, ctx.query
    assert repo is not None
    head_sha = repo.git.resolve(ctx.params["ref"])
    if head_sha is None:
        raise Unprocessable(f"No commit found for SHA: {ctx.params['ref']}")
    with hub.lock:
        runs = sorted(
            (r for r in hub.check_runs(repo.full_name) if r.head_sha == head_sha),
            key=lambda r: r.id,
            reverse=True,
        )
        if "check_name" in query:
            runs = [r for r in runs if r.name == query["check_name"]]
        if "status" in query:
            runs = [r for r in runs if r.status == query["status"]]
        if "app_id" in query and query["app_id"] != str(hub.app.id):
            runs = []  # every check run here is the hub's App's
        if query.get("filter", "latest") == "latest":
            newest: dict[str, CheckRun] = {}
            for run in runs:
                newest.setdefault(run.name, run)
            runs = list(newest.values())
        url = f"{ctx.base_url}{ctx.request.url.path}"
        page, headers = paging.paginate(runs, query, url)
        shaped = [render.check_run(hub, r, ctx.base_url) for r in page]
    return Reply(200, {"total_count": len(runs), "check_runs": shaped}, headers)


def _find(ctx: Context) -> CheckRun:
    with ctx.hub.lock:
        run = ctx.hub.check_run_records.get(ctx.params["check_run_id"])
    if run is None or ctx.repo is None or run.repo.lower() != ctx.repo.full_name.lower():
        raise NotFound()
    return run


def _apply(hub: Any, run: CheckRun, body: dict[str, Any]) -> None:
    """Fold a create/update body into the run; a conclusion completes it."""
    for key in ("name", "details_url", "external_id"):
        if key in body:
            setattr(run, key, body[key])
    if "started_at" in body:
        run.started_at = parse_iso(body["started_at"])
    if "status" in body:
        run.status = body["status"]
    if "conclusion" in body:
        run.conclusion = body["conclusion"]
        run.status = "completed"
    if "completed_at" in body:
        run.completed_at = parse_iso(body["completed_at"])
    if run.status == "completed" and run.completed_at is None:
        run.completed_at = hub.now()
    output = body.get("output")
    if output:
        for key in ("title", "summary", "text"):
            if key in output:
                run.output[key] = output[key]
        run.annotations.extend(output.get("annotations") or [])
        run.images.extend(output.get("images") or [])
    if "actions" in body:
        run.actions = list(body["actions"])
