"""HTML pages: a build (live over `/v1`'s event stream) and an installation, behind `/v1`'s credentials."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader
from sqlalchemy.orm import defer
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from bot.api import _grant
from bot.auth import Forbidden, Scope, capability
from bot.build_results import costs_of, group_findings, shown_event, shown_fixes, shown_runs
from bot.build_view import (
    STATUS_COLOURS,
    duration,
    elapsed,
    layout,
    scan_of,
    score_of,
    timings_of,
    usd,
)
from bot.db import Database
from bot.errors import NotAllowed, NotFound
from bot.models import (
    Build,
    BuildEvent,
    FixAttempt,
    Installation,
    Repository,
    Task,
    Trajectory,
    utcnow,
)
from bot.state import AppState
from bot.usage import snapshot
from orchestrator.events import EventType
from orchestrator.fix_stats import fix_rates
from orchestrator.transitions import TERMINAL_BUILD
from policies.pack import Pack, load_pack
from policies.quotas import QuotaKind, quota_period
from scanner.secrets import redact

HERE = Path(__file__).resolve().parent
# Every value is escaped; nothing here or in the templates marks text safe.
TEMPLATES = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
)
TEMPLATES.env.filters |= {"duration": duration, "redact": redact, "usd": usd}
TEMPLATES.env.globals["elapsed"] = elapsed

# An operator's page gets a read link of its own for its API calls (a browser's EventSource
# cannot send a token); the operator's token is never written into a page.
PAGE_LINK_TTL = 12 * 3600.0
EVENT_LIMIT = 1000  # the latest events rendered with the page; the stream goes on from there
RECENT_BUILDS = 50
QUOTA_LABELS = {
    QuotaKind.DEEP_SCAN: "deep scans",
    QuotaKind.FIX: "fixes",
    QuotaKind.LLM_COST: "LLM spend (USD)",
}
HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    # The page's address carries its link: no other site may be told it.
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
}


async def _build_access(request: Request) -> tuple[AppState, Build, str]:
    """The build the credential may read, and the link the page's own calls use.

    A build link is reused as it is (it expires when it would have); an operator's
    token gets a short link for this build alone.
    """
    grant = await _grant(request)
    build_id = request.path_params["build_id"]
    try:
        grant.require(Scope.READ, build_id)
    except Forbidden as error:
        raise NotAllowed(str(error)) from None
    state: AppState = request.app.state.clarity
    async with state.db.session() as session:
        build = await session.get(Build, build_id)
    if build is None:
        raise NotFound(f"build {build_id} does not exist")
    if grant.build_id is None:
        link = capability(build.id, state.settings.link_key(), ttl=PAGE_LINK_TTL)
    else:
        link = request.query_params["cap"]
    return state, build, link


async def _live(db: Database, build: Build) -> dict[str, Any]:
    """What the page shows besides its event log (and re-renders as the build moves)."""
    async with db.session() as session:
        tasks = list(
            await session.exec(select(Task).where(Task.build_id == build.id).order_by(col(Task.id)))
        )
        repository = await session.get(Repository, build.repository_id)
        trajectories = list(
            await session.exec(
                select(Trajectory)
                .where(Trajectory.build_id == build.id)
                .order_by(col(Trajectory.id))
            )
        )
        fixes: list[FixAttempt] = []
        if build.pr_number is not None:
            fixes = list(
                await session.exec(
                    select(FixAttempt).where(
                        FixAttempt.repository_id == build.repository_id,
                        FixAttempt.pr_number == build.pr_number,
                    )
                )
            )
    now = utcnow()
    outcome = scan_of(tasks)
    report = outcome.report if outcome is not None else {}
    score = score_of(report)
    runs = shown_runs(trajectories)
    return {
        "build": build,
        "repository": repository.full_name if repository else str(build.repository_id),
        "dag": layout(tasks, now),
        "colours": STATUS_COLOURS,
        "outcome": outcome,
        "score": score,
        "groups": group_findings(report, score),
        "fixes": shown_fixes(fixes),
        "runs": runs,
        "costs": costs_of(build.cost_usd, build.budget_usd, runs),
        "timings": timings_of(build, report, now),
        "finished": build.status in TERMINAL_BUILD,
    }


async def build_page(request: Request) -> Response:
    state, build, link = await _build_access(request)
    async with state.db.session() as session:
        latest = list(
            await session.exec(
                select(BuildEvent)
                .where(BuildEvent.build_id == build.id)
                .order_by(col(BuildEvent.seq).desc())
                .limit(EVENT_LIMIT)
            )
        )
    # Read before the rest: the stream resumes after the last event shown, so none is lost.
    events = [shown_event(event) for event in reversed(latest)]
    last_seq = events[-1].seq if events else 0
    context = await _live(state.db, build)
    context |= {
        "events": events,
        "last_seq": last_seq,
        "event_types": [str(t) for t in EventType],
        "events_url": f"/v1/builds/{build.id}/events?" + urlencode({"cap": link}),
        "sections_url": f"/builds/{build.id}/sections?" + urlencode({"cap": link}),
    }
    return TEMPLATES.TemplateResponse(request, "build.html", context, headers=HEADERS)


async def build_sections(request: Request) -> Response:
    """The page without its event log: what build.js swaps in when the build moves."""
    state, build, _ = await _build_access(request)
    context = await _live(state.db, build)
    return TEMPLATES.TemplateResponse(request, "_live.html", context, headers=HEADERS)


@dataclass(frozen=True, slots=True)
class QuotaUse:
    """One kind of quota this period: the installation's use against its limit."""

    kind: str
    used: float
    limit: float
    per_user: float | None  # the per-user and per-pull-request limits (not for LLM spend)
    per_pull_request: float | None
    resets_at: datetime


async def _quotas(db: Database, pack: Pack, installation_id: int, now: datetime) -> list[QuotaUse]:
    quotas, resets = pack.quotas, quota_period(pack, now)[1]
    shown = []
    for kind in QuotaKind:
        # Only the installation's row is shown; `snapshot` wants a user and a pull request
        # for per-person kinds, and no login or `owner/repo#n` subject is "-".
        used = await snapshot(
            db, pack, kind, installation_id=installation_id, user="-", pull_request="-", now=now
        )
        scoped = kind is not QuotaKind.LLM_COST
        shown.append(
            QuotaUse(
                kind=QUOTA_LABELS[kind],
                used=used.installation,
                limit=getattr(quotas.installation, kind.value),
                per_user=getattr(quotas.per_user, kind.value) if scoped else None,
                per_pull_request=getattr(quotas.per_pull_request, kind.value) if scoped else None,
                resets_at=resets,
            )
        )
    return shown


async def installation_page(request: Request) -> Response:
    """Recent builds, quota usage and fix outcomes per rule: for operator tokens with `read`."""
    grant = await _grant(request)
    installation_id = request.path_params["installation_id"]
    if Scope.READ not in grant.scopes or grant.build_id is not None:
        raise NotAllowed(f"this credential does not allow read on installation {installation_id}")
    state: AppState = request.app.state.clarity
    async with state.db.session() as session:
        installation = await session.get(Installation, installation_id)
        if installation is None:
            raise NotFound(f"installation {installation_id} is not known")
        builds = list(
            await session.exec(
                select(Build, Repository.full_name)
                .join(Repository, col(Repository.id) == Build.repository_id)
                .where(Build.installation_id == installation_id)
                .options(defer(Build.dag_spec))
                .order_by(col(Build.id).desc())
                .limit(RECENT_BUILDS)
            )
        )
        attempts = list(
            await session.exec(
                select(FixAttempt).where(FixAttempt.installation_id == installation_id)
            )
        )
    pack_name = state.settings.policy_pack
    now = utcnow()
    context = {
        "installation": installation,
        "builds": builds,
        "pack": pack_name,
        "quotas": await _quotas(state.db, load_pack(pack_name), installation_id, now),
        "rates": fix_rates(attempts),
        "now": now,
    }
    return TEMPLATES.TemplateResponse(request, "installation.html", context, headers=HEADERS)


routes = [
    Route("/builds/{build_id:int}", build_page, methods=["GET"]),
    Route("/builds/{build_id:int}/sections", build_sections, methods=["GET"]),
    Route("/installations/{installation_id:int}", installation_page, methods=["GET"]),
    Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
]
