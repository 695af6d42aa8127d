"""Losing Redis, and PostgreSQL stopped, while deliveries keep arriving.

`clarity serve` and a `clarity worker` run on private servers the test can stop.
A worker that exits when its Redis or database vanishes is started again, as a
supervisor (compose's `restart: unless-stopped`) would; the figures count it.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from bot.db import Database
from bot.migrate import upgrade
from bot.models import BuildStatus
from tests.chaos_cluster import REPO, Cluster, checked_for_secrets, running_cluster
from tests.chaos_report import sized
from tests.services import PrivatePostgres, PrivateRedis
from tests.test_fix import VULNERABLE

pytestmark = pytest.mark.chaos
FILES = {
    "README.md": b"# app\n",
    "src/db.ts": b"export const url = 'postgres://admin:hunter2hunter2@db.example.com/app'\n",
}


@pytest.fixture
def database_url(postgresql_database: str) -> str:
    """PostgreSQL, as production runs it (several processes share the database)."""
    return postgresql_database


def change(n: int) -> dict[str, bytes]:
    """A pull request adding a finding (a SQL injection), so it gets its comment."""
    return {f"api/feature_{n}.py": VULNERABLE}


async def settled(cluster: Cluster, count: int) -> bool:
    """Every delivery processed and `count` builds finished (restarting dead workers)."""
    cluster.respawn()
    builds = await cluster.builds_since(1)
    finished = [b for b in builds if b.status not in (BuildStatus.QUEUED, BuildStatus.RUNNING)]
    return len(finished) >= count and not await cluster.unfinished_deliveries()


def published_once(cluster: Cluster) -> dict[str, int]:
    hub = cluster.hub
    runs = Counter(r.head_sha for r in hub.check_runs(REPO))
    ours = hub.app.bot_login
    comments = Counter(
        pr.number
        for pr in hub.pull_requests(REPO)
        for c in hub.comments(REPO, pr.number)
        if c.user == ours and "clarity-check:sticky" in c.body
    )
    prs = [pr.number for pr in hub.pull_requests(REPO)]
    return {
        "pull requests without a check run": sum(
            1 for pr in hub.pull_requests(REPO) if hub.head_sha(pr) not in runs
        ),
        "duplicate check runs": sum(n - 1 for n in runs.values()),
        "pull requests without their comment": sum(1 for n in prs if comments[n] == 0),
        "duplicate comments": sum(n - 1 for n in comments.values()),
    }


@pytest.mark.timeout(sized(ci=300, full=900))
async def test_redis_lost_and_restarted_empty_while_deliveries_arrive(
    db, make_settings, app_private_key, tmp_path, chaos
):
    section = "Redis loss"
    redis = PrivateRedis().start()
    per_phase = int(sized(ci=1, full=5))
    async with running_cluster(
        db, make_settings, app_private_key, FILES, tmp_path, redis_url=redis.url
    ) as cluster:
        cluster.start_worker()
        answers = []
        for n in range(per_phase):
            answers.append(
                (await cluster.hub.deliver(cluster.open_pull_request(n, change(n)))).status_code
            )
        redis.stop()  # everything it held is gone: queued jobs, leases, in-progress marks
        for n in range(per_phase, 2 * per_phase):
            answers.append(
                (await cluster.hub.deliver(cluster.open_pull_request(n, change(n)))).status_code
            )
        PrivateRedis(port=redis.port).start()  # back, and empty
        for n in range(2 * per_phase, 3 * per_phase):
            answers.append(
                (await cluster.hub.deliver(cluster.open_pull_request(n, change(n)))).status_code
            )
        await cluster.until(lambda: settled(cluster, 3 * per_phase), "every build after the loss")
        builds = await cluster.builds_since(1)
        outcome = published_once(cluster)
        leaks = checked_for_secrets(
            chaos, "Redis loss", cluster.planted, await cluster.everything()
        )
        lost = await cluster.unfinished_deliveries()
    redis.stop()

    succeeded = sum(1 for b in builds if b.status is BuildStatus.SUCCEEDED)
    chaos.record(
        section,
        "deliveries (before, during, after the loss)",
        f"{per_phase} + {per_phase} + {per_phase}",
    )
    chaos.record(
        section,
        "answered 202",
        f"{answers.count(202)}/{len(answers)}",
        target="all",
        ok=answers.count(202) == len(answers),
    )
    chaos.record(section, "deliveries lost", lost, target="0", ok=lost == 0)
    chaos.record(
        section,
        "builds completed",
        f"{succeeded}/{len(builds)}",
        target="all",
        ok=succeeded == len(builds),
    )
    for what, count in outcome.items():
        chaos.record(section, what, count, target="0", ok=count == 0)
    chaos.record(section, "worker restarts by the supervisor", cluster.respawned)
    assert answers == [202] * len(answers)
    assert lost == 0 and succeeded == len(builds) == 3 * per_phase
    assert all(count == 0 for count in outcome.values()), outcome
    assert not leaks, leaks


@pytest.mark.timeout(sized(ci=300, full=900))
async def test_postgresql_stopped_intake_answers_503_and_redeliveries_complete(
    make_settings, app_private_key, tmp_path, chaos
):
    section = "Database outage"
    outage = float(sized(ci=3, full=30))
    server = PrivatePostgres().start()
    upgrade(server.url)
    db = Database(server.url)
    try:
        async with running_cluster(db, make_settings, app_private_key, FILES, tmp_path) as cluster:
            cluster.start_worker()
            before = [cluster.open_pull_request(n, change(n)) for n in range(2)]
            for event in before:
                assert (await cluster.hub.deliver(event)).status_code == 202
            server.stop()
            stopped = time.monotonic()
            refused, during = [], []
            n = 2
            while (
                time.monotonic() - stopped < outage
            ):  # deliveries keep arriving for the whole outage
                event = cluster.open_pull_request(n, change(n))
                answer = await cluster.hub.deliver(event)
                refused.append(answer.status_code)
                during.append(event)
                n += 1
                await _pause(0.5)
            server.start()
            recovered = time.monotonic() - stopped
            for event in during:  # GitHub's redelivery of what was refused
                await cluster.hub.deliver(event)
            await cluster.until(lambda: settled(cluster, n), "every build after the outage")
            builds = await cluster.builds_since(1)
            outcome = published_once(cluster)
            leaks = checked_for_secrets(
                chaos, "database outage", cluster.planted, await cluster.everything()
            )
            lost = await cluster.unfinished_deliveries()
            rows = await _delivery_count(cluster)
    finally:
        await db.dispose()
        server.remove()

    succeeded = sum(1 for b in builds if b.status is BuildStatus.SUCCEEDED)
    answered_503 = refused.count(503)
    chaos.record(section, "outage (s)", round(recovered, 1), target=f"≥ {outage:.0f}")
    chaos.record(
        section,
        "deliveries during the outage answered 503",
        f"{answered_503}/{len(refused)}",
        target="all",
        ok=answered_503 == len(refused),
    )
    chaos.record(
        section,
        "delivery rows (one per pull request, none partial)",
        f"{rows}/{n}",
        target=str(n),
        ok=rows == n,
    )
    chaos.record(
        section,
        "redelivered and completed builds",
        f"{succeeded}/{n}",
        target="all",
        ok=succeeded == n,
    )
    chaos.record(section, "deliveries lost", lost, target="0", ok=lost == 0)
    for what, count in outcome.items():
        chaos.record(section, what, count, target="0", ok=count == 0)
    chaos.record(section, "worker restarts by the supervisor", cluster.respawned)
    assert refused and answered_503 == len(refused)
    assert rows == n and succeeded == n and lost == 0
    assert all(count == 0 for count in outcome.values()), outcome
    assert not leaks, leaks


async def _pause(seconds: float) -> None:
    """The pace of arriving deliveries (the load itself, not a wait for a result)."""
    import asyncio

    await asyncio.sleep(seconds)


async def _delivery_count(cluster: Cluster) -> int:
    from sqlmodel import func, select

    from bot.models import Delivery

    async with cluster.db.session() as session:
        query = select(func.count()).select_from(Delivery).where(Delivery.event == "pull_request")
        return (await session.exec(query)).one()
