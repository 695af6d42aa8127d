"""`GET /v1/slo?window=24h`: the service-level indicators an operator watches, over a window.

- **Time to first check run** (p50, p95): from a Tier 1 build's creation to
  the finish of its `check_run` node, for builds created in the window whose
  check run was opened. Percentiles are nearest-rank over at most `MAX_ROWS`
  of the newest builds, so each is a duration that really happened.
- **Build completion**, by tier: succeeded / (succeeded + failed) of the builds
  created in the window that have ended. Aborted builds (superseded by a newer
  push, stopped by someone) are counted apart and not held against the rate.
- **Fix success**: fix attempts created in the window that were opened or
  merged / those plus the refused ones; other outcomes are counted apart.

Counting is SQL (the same on SQLite and PostgreSQL); percentiles are computed
here over the fetched durations.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.auth import AuthError, Scope, token_grant
from bot.db import Database
from bot.errors import BadRequest, NotAllowed, Unauthenticated
from bot.models import (
    Build,
    BuildStatus,
    BuildTier,
    FixAttempt,
    FixOutcome,
    Task,
    TaskStatus,
    utcnow,
)
from bot.state import AppState

DEFAULT_WINDOW = "24h"
MAX_WINDOW = timedelta(days=90)
MAX_ROWS = 10_000  # durations fetched for the percentiles: the newest builds first
CHECK_RUN_NODE = "check_run"
_WINDOW = re.compile(r"(\d{1,6})([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_FIX_SUCCEEDED = (FixOutcome.OPENED, FixOutcome.MERGED)


class BadWindow(ValueError):
    """A window that is not `<number><s|m|h|d>` between one second and `MAX_WINDOW`."""


def parse_window(text: str) -> timedelta:
    """`30m`, `24h`, `7d`, … as a timedelta."""
    match = _WINDOW.fullmatch(text.strip())
    if match is None:
        raise BadWindow(f"window {text!r} is not a number followed by s, m, h or d (e.g. 24h)")
    window = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if not timedelta(seconds=1) <= window <= MAX_WINDOW:
        raise BadWindow(f"window must be between 1s and {MAX_WINDOW.days}d")
    return window


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The nearest-rank `p`th percentile of ascending `ordered` values; None when empty."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def rate(good: int, total: int) -> float | None:
    return round(good / total, 4) if total else None


async def time_to_first_check_run(db: Database, since: datetime) -> dict[str, Any]:
    query = (
        select(Build.created_at, Task.finished_at)
        .join(Task, col(Task.build_id) == col(Build.id))
        .where(
            Build.tier == BuildTier.SCAN,
            col(Build.created_at) >= since,
            Task.key == CHECK_RUN_NODE,
            Task.status == TaskStatus.SUCCEEDED,
            col(Task.finished_at).is_not(None),
        )
        .order_by(col(Build.created_at).desc())
        .limit(MAX_ROWS)
    )
    async with db.session() as session:
        rows = list(await session.exec(query))
    durations = sorted(max(0.0, (done - created).total_seconds()) for created, done in rows)
    return {
        "builds": len(durations),
        "truncated": len(durations) == MAX_ROWS,
        "p50_seconds": percentile(durations, 50),
        "p95_seconds": percentile(durations, 95),
    }


async def build_completion(db: Database, since: datetime) -> dict[str, Any]:
    ended = (BuildStatus.SUCCEEDED, BuildStatus.FAILED, BuildStatus.ABORTED)
    query = (
        select(Build.tier, Build.status, func.count())
        .where(col(Build.created_at) >= since, col(Build.status).in_(ended))
        .group_by(Build.tier, Build.status)
    )
    async with db.session() as session:
        rows = list(await session.exec(query))
    tiers: dict[str, dict[str, Any]] = {}
    for tier, status, count in rows:
        counts = tiers.setdefault(BuildTier(tier).value, {s.value: 0 for s in ended})
        counts[BuildStatus(status).value] = count
    for counts in tiers.values():
        finished = counts["succeeded"] + counts["failed"]
        counts["rate"] = rate(counts["succeeded"], finished)
    return tiers


async def fix_success(db: Database, since: datetime) -> dict[str, Any]:
    query = (
        select(FixAttempt.outcome, func.count())
        .where(col(FixAttempt.created_at) >= since)
        .group_by(FixAttempt.outcome)
    )
    async with db.session() as session:
        counts = {FixOutcome(outcome).value: count for outcome, count in await session.exec(query)}
    succeeded = sum(counts.get(o.value, 0) for o in _FIX_SUCCEEDED)
    refused = counts.get(FixOutcome.REFUSED.value, 0)
    return {"outcomes": counts, "rate": rate(succeeded, succeeded + refused)}


async def _require_read(request: Request) -> None:
    """An operator token with `read`; a build's link opens one build, not the service's numbers."""
    state: AppState = request.app.state.clarity
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise Unauthenticated("send an operator token (Authorization: Bearer …)")
    try:
        grant = await token_grant(state.db, header[7:].strip())
    except AuthError as error:
        raise Unauthenticated(str(error)) from None
    if Scope.READ not in grant.scopes:
        raise NotAllowed("this credential does not allow read")


async def get_slo(request: Request) -> JSONResponse:
    await _require_read(request)
    state: AppState = request.app.state.clarity
    text = request.query_params.get("window", DEFAULT_WINDOW)
    try:
        window = parse_window(text)
    except BadWindow as error:
        raise BadRequest(str(error)) from None
    now = utcnow()
    since = now - window
    return JSONResponse(
        {
            "window": text,
            "since": since.isoformat(),
            "until": now.isoformat(),
            "time_to_first_check_run": await time_to_first_check_run(state.db, since),
            "build_completion": await build_completion(state.db, since),
            "fix_success": await fix_success(state.db, since),
        }
    )


routes = [Route("/v1/slo", get_slo, methods=["GET"])]
