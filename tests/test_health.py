"""`/healthz` and `/readyz`: up, and ready only while the database, Redis and the fast queue are."""

from __future__ import annotations

import httpx
import pytest
from arq.utils import timestamp_ms

from bot.app import create_app
from bot.db import Database
from bot.queue import fast_queue
from localhub import serving

# A dead address with a credential in it: neither may appear in an answer.
DEAD_DATABASE = "postgresql://clarity:db-hunter2-pass@127.0.0.1:9/clarity"
DEAD_REDIS = "redis://:redis-hunter2-pass@127.0.0.1:9/0"


async def readyz(url: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await client.get("/readyz")


async def test_healthz_says_the_process_is_up(intake):
    url, _ = intake()
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_when_the_database_redis_and_the_fast_queue_answer(intake):
    url, _ = intake()
    response = await readyz(url)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["failed"]) == ("ready", [])
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "redis": True,
        "fast_queue": True,
    }


async def test_not_ready_when_the_database_does_not_answer(make_settings):
    dead = Database(DEAD_DATABASE)
    try:
        with serving(create_app(make_settings(database_url=DEAD_DATABASE), db=dead)) as url:
            response = await readyz(url)
    finally:
        await dead.dispose()
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["failed"]) == ("not_ready", ["database"])
    assert body["checks"]["redis"]["ok"] is True
    for leaked in ("hunter2", "127.0.0.1", ":9", "postgresql", "clarity:"):
        assert leaked not in response.text


async def test_not_ready_when_redis_does_not_answer(db, make_settings):
    settings = make_settings(database_url=db.url, redis_url=DEAD_REDIS)
    with serving(create_app(settings, db=db)) as url:
        response = await readyz(url)
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis", "fast_queue"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["fast_queue"]["detail"] == "not checked: Redis is unavailable"
    for leaked in ("hunter2", "127.0.0.1", "redis://"):
        assert leaked not in response.text


@pytest.mark.parametrize(("waited", "ready"), [(5, True), (120, False)])
async def test_a_fast_queue_job_waiting_past_the_limit_makes_the_service_unready(
    intake, queue, waited, ready
):
    url, settings = intake(readiness_max_queue_age=60)
    await queue.zadd(
        fast_queue(settings.queue_prefix), {"waiting-job": timestamp_ms() - waited * 1000}
    )
    response = await readyz(url)
    assert response.status_code == (200 if ready else 503)
    assert response.json()["failed"] == ([] if ready else ["fast_queue"])
    if not ready:
        assert "limit 60 s" in response.json()["checks"]["fast_queue"]["detail"]
