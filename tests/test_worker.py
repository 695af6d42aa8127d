"""The arq worker: deliveries go from the inbox through the router to the database."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from datetime import timedelta

import pytest
from arq.worker import func
from sqlmodel import select

from bot.db import Database
from bot.models import DeliveryStatus, Installation, Repository
from bot.settings import Settings
from bot.worker import create_worker, process_delivery
from tests.conftest import REPO_ROOT
from tests.services import PrivateRedis
from tests.webhook_fixtures import (
    FIXTURES,
    all_fixtures,
    deliver,
    fixture,
    stored_deliveries,
)


async def drain(settings: Settings) -> None:
    """Run a real worker in burst mode until its queue is empty.

    It processes deliveries only: builds the handlers start are other tests' business
    (here they would wait on a GitHub that is not there).
    """
    worker = create_worker(
        settings,
        burst=True,
        poll_delay=0.01,
        handle_signals=False,
        functions=[func(process_delivery, name="process_delivery")],
    )
    try:
        await worker.main()
    finally:
        await worker.close()


async def installations(db: Database) -> list[Installation]:
    async with db.session() as session:
        return list(await session.exec(select(Installation)))


async def repositories(db: Database) -> list[Repository]:
    async with db.session() as session:
        return list(await session.exec(select(Repository).order_by(Repository.full_name)))


async def test_installation_lifecycle_end_to_end(intake, db):
    url, settings = intake()
    created = fixture("installation/created")
    assert (await deliver(url, "installation", created)).status_code == 202
    await drain(settings)
    [installation] = await installations(db)
    assert (installation.id, installation.account_login) == (
        created["installation"]["id"],
        "Codertocat",
    )
    assert [r.full_name for r in await repositories(db)] == sorted(
        r["full_name"] for r in created["repositories"]
    )

    added = fixture("installation_repositories/added")
    added["installation"]["id"] = installation.id
    assert (await deliver(url, "installation_repositories", added)).status_code == 202
    await drain(settings)
    names = {r.full_name for r in await repositories(db)}
    assert {r["full_name"] for r in added["repositories_added"]} <= names

    removed = copy.deepcopy(added)
    removed["action"] = "removed"
    removed["repositories_removed"], removed["repositories_added"] = added["repositories_added"], []
    assert (await deliver(url, "installation_repositories", removed)).status_code == 202
    await drain(settings)
    assert not {r["full_name"] for r in added["repositories_added"]} & {
        r.full_name for r in await repositories(db)
    }

    suspend = copy.deepcopy(created)
    suspend["action"] = "suspend"
    suspend["installation"]["suspended_at"] = "2026-01-01T00:00:00Z"
    assert (await deliver(url, "installation", suspend)).status_code == 202
    await drain(settings)
    assert (await installations(db))[0].suspended_at is not None

    unsuspend = copy.deepcopy(created)
    unsuspend["action"] = "unsuspend"
    unsuspend["installation"]["suspended_at"] = None
    assert (await deliver(url, "installation", unsuspend)).status_code == 202
    await drain(settings)
    assert (await installations(db))[0].suspended_at is None

    deleted = fixture("installation/deleted")
    deleted["installation"]["id"] = installation.id
    assert (await deliver(url, "installation", deleted)).status_code == 202
    await drain(settings)
    assert await installations(db) == []
    assert await repositories(db) == []
    assert {d.status for d in await stored_deliveries(db)} == {DeliveryStatus.PROCESSED}


@pytest.mark.parametrize(("name", "event"), all_fixtures())
async def test_every_fixture_payload_is_accepted_and_processed(intake, db, name, event):
    # Example payloads are years old: widen the window rather than rewrite GitHub's data.
    url, settings = intake(
        freshness_window=timedelta(days=365 * 30), nonce_retention=timedelta(days=365 * 31)
    )
    response = await deliver(url, event, fixture(name))
    if event == "ping":
        assert response.status_code == 200
        return
    assert response.status_code == 202
    await drain(settings)
    [delivery] = await stored_deliveries(db)
    assert delivery.status is DeliveryStatus.PROCESSED, delivery.error


async def test_delivery_accepted_while_redis_is_down_is_processed_after_it_returns(intake, db):
    redis = PrivateRedis().start()
    url, settings = intake(redis_url=redis.url, reconcile_grace=timedelta(0))
    redis.stop()
    assert (await deliver(url, "installation", fixture("installation/created"))).status_code == 202
    [delivery] = await stored_deliveries(db)
    assert delivery.status is DeliveryStatus.RECEIVED

    PrivateRedis(port=redis.port).start()  # back, and empty
    await drain(settings)  # the reconciler re-enqueues the stranded delivery, the worker runs it
    [delivery] = await stored_deliveries(db)
    assert delivery.status is DeliveryStatus.PROCESSED
    assert len(await installations(db)) == 1


async def test_a_handler_error_is_recorded_on_the_delivery(intake, db):
    url, settings = intake()
    broken = fixture("installation/created")
    del broken["installation"]["account"]
    assert (await deliver(url, "installation", broken)).status_code == 202
    await drain(settings)
    [delivery] = await stored_deliveries(db)
    assert delivery.status is DeliveryStatus.FAILED
    assert "KeyError" in delivery.error and "account" in delivery.error


async def test_an_event_nobody_handles_is_marked_processed(intake, db):
    url, settings = intake()
    star = {
        "action": "created",
        "starred_at": None,
        "repository": {"id": 1},
        "sender": {"login": "x"},
    }
    assert (await deliver(url, "star", star)).status_code == 202
    await drain(settings)
    [delivery] = await stored_deliveries(db)
    assert delivery.status is DeliveryStatus.PROCESSED


async def test_a_finished_delivery_is_not_processed_twice(intake, db):
    url, settings = intake()
    assert (await deliver(url, "installation", fixture("installation/created"))).status_code == 202
    await drain(settings)
    from bot.worker import process_delivery, shutdown, startup

    [delivery] = await stored_deliveries(db)
    ctx = {"settings": settings}
    await startup(ctx)
    try:
        assert await process_delivery(ctx, delivery.id) == "skipped"
    finally:
        await shutdown(ctx)
    [again] = await stored_deliveries(db)
    assert again.attempts == 1


def test_clarity_receive_replays_a_payload_without_http(database_url, make_settings, tmp_path):
    settings = make_settings(database_url=database_url)
    env = {
        "PATH": "/usr/bin:/bin",
        "CLARITY_APP_ID": str(settings.app_id),
        "CLARITY_PRIVATE_KEY": settings.app_private_key(),
        "CLARITY_WEBHOOK_SECRETS": "receive-test-secret",
        "DATABASE_URL": database_url,
    }
    payload = FIXTURES / "installation" / "created.json"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "receive", "-e", "installation", "-p", str(payload)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "handler: handlers.installation.record_installation" in result.stdout
    assert "result: ok" in result.stdout
    assert settings.app_private_key() not in result.stdout + result.stderr
    assert json.loads(payload.read_text())["installation"]["account"]["login"] == "Codertocat"


async def test_the_reaper_destroys_sandboxes_a_crash_left_behind(make_settings, monkeypatch):
    import tempfile
    from pathlib import Path

    from bot import worker as worker_module
    from bot.worker import reap_sandboxes, shutdown, startup
    from tests.sandbox_contract import SPEC, archive

    # Not under pytest's tmp_path: its parent is private to root, and sandboxes run unprivileged.
    settings = make_settings(sandbox_root=Path(tempfile.mkdtemp(prefix="clarity-reaper-test-")))
    ctx = {"settings": settings}
    await startup(ctx)
    try:
        await ctx["sandboxes"].create(SPEC, archive())  # never destroyed: as if its worker died
        assert await reap_sandboxes(ctx) == 0  # young sandboxes may belong to live builds
        monkeypatch.setattr(worker_module, "SANDBOX_MAX_AGE", timedelta(0))
        assert await reap_sandboxes(ctx) == 1
    finally:
        await shutdown(ctx)


async def test_a_delivery_whose_worker_died_mid_processing_runs_again(intake, db, queue):
    """arq keeps a dead worker's job "in progress" for hours; the reconciler sees that nobody
    holds the delivery's claim and lifts the mark, and a live worker processes it."""
    from arq.constants import in_progress_key_prefix

    from bot import claims
    from bot.worker import reconcile

    url, settings = intake(reconcile_grace=timedelta(0), build_lease_ttl=timedelta(seconds=1))
    assert (await deliver(url, "installation", fixture("installation/created"))).status_code == 202
    [delivery] = await stored_deliveries(db)
    mark = in_progress_key_prefix + delivery.id
    lifetime = create_worker(settings).ctx["in_progress_ms"]
    ctx = {"settings": settings, "db": db, "redis": queue, "in_progress_ms": lifetime}

    # Started 5 s ago by a worker that still holds the claim: alive, left alone.
    await queue.psetex(mark, lifetime - 5000, b"1")
    claim = claims.claim_key(settings.queue_prefix, delivery.id)
    await queue.set(claim, "host:1:live", px=1000)
    assert await reconcile(ctx) == 0
    assert await queue.exists(mark)

    # Its worker died: the claim expired with it.
    await queue.delete(claim)
    assert await reconcile(ctx) == 1
    assert not await queue.exists(mark)
    await drain(settings)
    [delivery] = await stored_deliveries(db)
    assert delivery.status is DeliveryStatus.PROCESSED
    assert len(await installations(db)) == 1


async def test_a_worker_builds_the_scanner_bundle_before_it_takes_jobs(make_settings):
    """Built by the first scan instead, it held the event loop, and every job, for seconds."""
    import tempfile
    from pathlib import Path

    from bot.worker import shutdown, startup
    from orchestrator.scan_bundle import bundle_tarball

    bundle_tarball.cache_clear()
    settings = make_settings(sandbox_root=Path(tempfile.mkdtemp(prefix="clarity-startup-test-")))
    ctx = {"settings": settings}
    await startup(ctx)
    try:
        assert bundle_tarball.cache_info().currsize == 1
    finally:
        await shutdown(ctx)


def test_the_fast_lane_looks_for_work_often(make_settings):
    """A pull request's delivery, then its build, each wait for a poll: arq's default 0.5 s,
    twice, would spend most of the one second the check run has to appear."""
    assert create_worker(make_settings(), "fast").poll_delay_s <= 0.1


def test_clarity_worker_stops_cleanly_on_sigterm(make_settings, tmp_path):
    """A deployment stops workers with SIGTERM: both lanes stop, exit 0, no traceback."""
    import os
    import signal

    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'clarity.db'}")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CLARITY_APP_ID": str(settings.app_id),
        "CLARITY_PRIVATE_KEY": settings.app_private_key(),
        "CLARITY_WEBHOOK_SECRETS": "sigterm-test-secret",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "CLARITY_QUEUE_PREFIX": settings.queue_prefix,
    }
    subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=REPO_ROOT, env=env, check=True)
    worker = subprocess.Popen(
        [sys.executable, "-m", "bot", "worker"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in worker.stdout:  # until both lanes have started
        lines.append(line)
        if sum("Starting worker" in seen for seen in lines) == 2:
            break
    worker.send_signal(signal.SIGTERM)
    rest, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, rest
    assert "Traceback" not in rest
    assert rest.count("shutdown on SIGTERM") == 2


async def test_a_delivery_met_by_an_unreachable_database_is_tried_again(make_settings, queue):
    from arq import Retry

    from bot.worker import process_delivery

    settings = make_settings(database_url="postgresql://postgres@127.0.0.1:9/nowhere")
    db = Database(settings.database_url)
    try:
        with pytest.raises(Retry):
            await process_delivery({"settings": settings, "db": db, "redis": queue}, "some-guid")
    finally:
        await db.dispose()


async def test_a_delivery_whose_job_ran_out_of_tries_is_queued_again(intake, db, queue):
    """arq keeps a finished job's result for an hour and refuses its id meanwhile; a delivery
    its job could not finish (the database was down for every try) is queued again at once."""
    from arq.constants import result_key_prefix

    from bot.queue import fast_queue
    from bot.worker import reconcile

    url, settings = intake(reconcile_grace=timedelta(0))
    assert (await deliver(url, "installation", fixture("installation/created"))).status_code == 202
    [delivery] = await stored_deliveries(db)
    waiting = fast_queue(settings.queue_prefix)
    # Its job ended (definition gone, off the queue) and its result is kept.
    await queue.delete(f"arq:job:{delivery.id}")
    await queue.zrem(waiting, delivery.id)
    await queue.set(result_key_prefix + delivery.id, b"failed")
    ctx = {"settings": settings, "db": db, "redis": queue, "in_progress_ms": 10_000}
    assert await reconcile(ctx) == 1
    assert await queue.zrange(waiting, 0, -1) == [delivery.id.encode()]
