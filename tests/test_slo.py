"""`GET /v1/slo`: time to first check run, build completion and fix success over a window."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from bot.app import create_app
from bot.auth import Scope, capability, create_token
from bot.models import (
    Build,
    BuildStatus,
    BuildTier,
    FixAttempt,
    FixOutcome,
    Installation,
    Repository,
    Task,
    TaskStatus,
    utcnow,
)
from bot.slo import BadWindow, parse_window, percentile
from localhub import serving


@pytest.fixture
async def service(db, make_settings):
    async with db.session() as session:
        session.add(Installation(id=1, account_login="octo-org"))
        await session.flush()
        session.add(Repository(id=10, installation_id=1, full_name="octo-org/app"))
        await session.commit()
    settings = make_settings(database_url=db.url)
    with serving(create_app(settings, db=db)) as url:
        yield {"url": url, "db": db, "settings": settings}


async def slo(service, *scopes: Scope, window: str | None = None) -> httpx.Response:
    headers = {}
    if scopes:
        token = await create_token(service["db"], "ops", list(scopes))
        headers["Authorization"] = f"Bearer {token}"
    params = {"window": window} if window else None
    async with httpx.AsyncClient(base_url=service["url"]) as client:
        return await client.get("/v1/slo", headers=headers, params=params)


async def add_build(
    db,
    *,
    age: timedelta,
    tier: BuildTier = BuildTier.SCAN,
    status: BuildStatus = BuildStatus.SUCCEEDED,
    check_run_after: float | None = None,
    check_run_status: TaskStatus = TaskStatus.SUCCEEDED,
) -> None:
    """A build created `age` ago whose `check_run` node finished `check_run_after` seconds later."""
    created = utcnow() - age
    async with db.session() as session:
        build = Build(
            installation_id=1,
            repository_id=10,
            tier=tier,
            status=status,
            head_sha="c" * 40,
            trigger="test",
            created_at=created,
        )
        session.add(build)
        await session.flush()
        if check_run_after is not None:
            finished = created + timedelta(seconds=check_run_after)
            session.add(
                Task(
                    build_id=build.id,
                    key="check_run",
                    status=check_run_status,
                    started_at=created,
                    finished_at=finished,
                )
            )
        await session.commit()


async def add_fix(db, outcome: FixOutcome, *, age: timedelta = timedelta(hours=1)) -> None:
    async with db.session() as session:
        session.add(
            FixAttempt(
                installation_id=1,
                repository_id=10,
                pr_number=7,
                fingerprint=uuid.uuid4().hex,
                rule_id="js/sql-injection",
                outcome=outcome,
                created_at=utcnow() - age,
            )
        )
        await session.commit()


async def test_time_to_first_check_run_has_exact_nearest_rank_percentiles(service):
    db = service["db"]
    for seconds in range(1, 21):  # 1 s … 20 s, created over the last few hours
        await add_build(db, age=timedelta(hours=1, minutes=seconds), check_run_after=seconds)
    # None of these count: too old, not Tier 1, no check run opened, no check_run node.
    await add_build(db, age=timedelta(days=2), check_run_after=500)
    await add_build(db, age=timedelta(hours=1), tier=BuildTier.DEEP_SCAN, check_run_after=500)
    await add_build(
        db, age=timedelta(hours=1), check_run_after=500, check_run_status=TaskStatus.FAILED
    )
    await add_build(db, age=timedelta(hours=1))
    response = await slo(service, Scope.READ, window="24h")
    assert response.status_code == 200
    assert response.json()["time_to_first_check_run"] == {
        "builds": 20,
        "truncated": False,
        "p50_seconds": 10.0,
        "p95_seconds": 19.0,
    }


async def test_build_completion_is_succeeded_over_succeeded_and_failed_by_tier(service):
    db = service["db"]
    hour = timedelta(hours=1)
    for status in [BuildStatus.SUCCEEDED] * 3 + [BuildStatus.FAILED, BuildStatus.ABORTED]:
        await add_build(db, age=hour, status=status)
    await add_build(db, age=hour, status=BuildStatus.RUNNING)  # not finished: not counted
    await add_build(db, age=timedelta(days=3), status=BuildStatus.FAILED)  # outside the window
    await add_build(db, age=hour, tier=BuildTier.FIX, status=BuildStatus.SUCCEEDED)
    await add_build(db, age=hour, tier=BuildTier.FIX, status=BuildStatus.FAILED)
    response = await slo(service, Scope.READ)
    assert response.json()["build_completion"] == {
        "scan": {"succeeded": 3, "failed": 1, "aborted": 1, "rate": 0.75},
        "fix": {"succeeded": 1, "failed": 1, "aborted": 0, "rate": 0.5},
    }


async def test_fix_success_is_opened_and_merged_over_those_and_refused(service):
    db = service["db"]
    for outcome in (
        FixOutcome.OPENED,
        FixOutcome.OPENED,
        FixOutcome.MERGED,
        FixOutcome.REFUSED,
        FixOutcome.WORKING,
    ):
        await add_fix(db, outcome)
    await add_fix(db, FixOutcome.REFUSED, age=timedelta(days=3))  # outside the window
    response = await slo(service, Scope.READ)
    assert response.json()["fix_success"] == {
        "outcomes": {"opened": 2, "merged": 1, "refused": 1, "working": 1},
        "rate": 0.75,
    }


async def test_an_empty_window_has_no_rates_rather_than_zero(service):
    body = (await slo(service, Scope.READ, window="30m")).json()
    assert body["window"] == "30m"
    assert body["time_to_first_check_run"]["p50_seconds"] is None
    assert body["build_completion"] == {}
    assert body["fix_success"] == {"outcomes": {}, "rate": None}


async def test_slo_needs_an_operator_token_with_read(service):
    assert (await slo(service)).status_code == 401
    assert (await slo(service, Scope.CONTROL)).status_code == 403
    link = capability(1, service["settings"].link_key())
    async with httpx.AsyncClient(base_url=service["url"]) as client:
        assert (await client.get("/v1/slo", params={"cap": link})).status_code == 401
        bogus = {"Authorization": "Bearer clarity_not-a-token"}
        assert (await client.get("/v1/slo", headers=bogus)).status_code == 401


@pytest.mark.parametrize("window", ["24", "1w", "0s", "91d", "-1h", "1.5h"])
async def test_a_window_that_is_not_a_duration_is_a_bad_request(service, window):
    response = await slo(service, Scope.READ, window=window)
    assert (response.status_code, response.json()["error"]) == (400, "bad_request")


@pytest.mark.parametrize(
    ("text", "window"),
    [("90s", timedelta(seconds=90)), ("15m", timedelta(minutes=15)), ("7d", timedelta(days=7))],
)
def test_windows_are_a_number_and_a_unit(text, window):
    assert parse_window(text) == window


def test_a_window_longer_than_ninety_days_is_refused():
    with pytest.raises(BadWindow):
        parse_window("2200h")


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [([], 50, None), ([4.0], 95, 4.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.0), ([1.0, 2.0, 3.0], 95, 3.0)],
)
def test_percentiles_are_nearest_rank(values, p, expected):
    assert percentile(values, p) == expected
