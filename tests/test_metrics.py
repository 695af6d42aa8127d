"""Prometheus metrics: counted where things happen, exposed by the web process and by a worker."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import gidgethub
import httpx
import pytest
from arq.constants import in_progress_key_prefix
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot import metrics
from bot.github import GitHubClient, RateLimited
from bot.models import BuildTier, Installation, Repository
from bot.queue import fast_queue, slow_queue
from bot.queue_stats import read_queue
from localhub import serving
from orchestrator import control
from orchestrator.executor import run_build
from orchestrator.sandbox.base import open_sandbox
from orchestrator.sandbox.local import LocalSandboxProvider
from tests.dag_nodes import chain
from tests.sandbox_contract import SPEC, archive
from tests.services import free_port
from tests.test_executor import n
from tests.webhook_fixtures import fixture, fresh, headers, post


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """`GET /metrics`, parsed: (sample name, labels) -> value."""
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def pull_request_body() -> bytes:
    return json.dumps(fresh(fixture("pull_request/opened"), "pull_request")).encode()


async def test_an_accepted_delivery_is_counted_and_its_acknowledgement_timed(intake):
    url, _ = intake()
    accepted = dict(event="pull_request", outcome="accepted")
    before = sample("clarity_webhook_deliveries_total", **accepted)
    timed = sample("clarity_webhook_ack_seconds_count", outcome="accepted")
    body = pull_request_body()
    assert (await post(url, body, headers(body, "pull_request"))).status_code == 202
    assert sample("clarity_webhook_deliveries_total", **accepted) == before + 1
    assert sample("clarity_webhook_ack_seconds_count", outcome="accepted") == timed + 1


@pytest.mark.parametrize(
    ("tamper", "event", "outcome"),
    [
        pytest.param(
            lambda h: h.update({"X-Hub-Signature-256": "sha256=" + "0" * 64}),
            "unverified",
            "bad_signature",
            id="bad-signature",
        ),
        pytest.param(
            lambda h: h.pop("X-GitHub-Delivery"), "unverified", "bad_request", id="no-guid"
        ),
        pytest.param(lambda h: None, "pull_request", "duplicate", id="duplicate"),
    ],
)
async def test_a_refused_or_repeated_delivery_is_counted_by_its_outcome(
    intake, tamper, event, outcome
):
    url, _ = intake()
    body = pull_request_body()
    assert (await post(url, body, headers(body, "pull_request"))).status_code == 202
    before = sample("clarity_webhook_deliveries_total", event=event, outcome=outcome)
    again = headers(body, "pull_request")
    tamper(again)
    await post(url, body, again)
    assert sample("clarity_webhook_deliveries_total", event=event, outcome=outcome) == before + 1


async def test_metrics_exposes_the_delivery_counter_and_latency_histogram(intake):
    url, _ = intake()
    body = pull_request_body()
    await post(url, body, headers(body, "pull_request"))
    scraped = await scrape(url)
    accepted = frozenset({"event": "pull_request", "outcome": "accepted"}.items())
    assert scraped[("clarity_webhook_deliveries_total", accepted)] >= 1
    ack = frozenset({"outcome": "accepted"}.items())
    assert scraped[("clarity_webhook_ack_seconds_count", ack)] >= 1
    assert ("clarity_webhook_ack_seconds_bucket", ack | {("le", "+Inf")}) in scraped


async def enqueue(queue, name: str, **options) -> str:
    job_id = f"job-{uuid.uuid4().hex}"
    await queue.enqueue_job("process_delivery", job_id, _job_id=job_id, _queue_name=name, **options)
    return job_id


async def test_queue_depth_and_oldest_waiting_age_are_read_from_redis(queue, make_settings):
    name = fast_queue(make_settings().queue_prefix)
    running, waiting, _ = [await enqueue(queue, name) for _ in range(3)]
    await enqueue(queue, name, _defer_by=3600)  # a retry due in an hour waits for nothing yet
    await queue.set(in_progress_key_prefix + running, b"1", px=60_000)
    now = int(await queue.zscore(name, waiting)) + 30_000
    try:
        stats = await read_queue(queue, name, now_ms=now)
    finally:
        await queue.delete(in_progress_key_prefix + running)
    assert (stats.depth, stats.oldest_age) == (4, 30.0)


async def test_an_empty_queue_has_no_waiting_age(queue, make_settings):
    stats = await read_queue(queue, slow_queue(make_settings().queue_prefix))
    assert (stats.depth, stats.oldest_age) == (0, None)


async def test_metrics_reads_the_queues_at_scrape_time(intake, queue):
    url, settings = intake()
    fast, slow = fast_queue(settings.queue_prefix), slow_queue(settings.queue_prefix)
    for _ in range(3):
        await enqueue(queue, fast)
    scraped = await scrape(url)
    assert scraped[("clarity_queue_depth", frozenset({("queue", fast)}))] == 3
    assert scraped[("clarity_queue_depth", frozenset({("queue", slow)}))] == 0
    assert scraped[("clarity_queue_oldest_job_age_seconds", frozenset({("queue", fast)}))] >= 0


async def test_a_build_counts_its_outcome_and_times_its_nodes(db, queue, make_settings):
    async with db.session() as session:
        session.add(Installation(id=1, account_login="octo-org"))
        await session.flush()
        session.add(Repository(id=10, installation_id=1, full_name="octo-org/app"))
        await session.commit()
    dag = chain(n("a"), n("gate", "gate_block", "a", gate=True), name="metrics-test")
    labels = dict(tier="scan", dag="metrics-test")
    builds = sample("clarity_builds_total", **labels, outcome="failed")
    nodes = sample("clarity_node_duration_seconds_count", **labels, node="a", outcome="succeeded")
    refusals = sample("clarity_gate_failures_total", gate="gate")
    build = await control.create_build(
        db,
        dag,
        installation_id=1,
        repository_id=10,
        tier=BuildTier.SCAN,
        head_sha="a" * 40,
        trigger="test",
    )
    ctx = {"db": db, "redis": queue, "settings": make_settings(database_url=db.url)}
    assert await run_build(ctx, build.id) == "failed"
    assert sample("clarity_builds_total", **labels, outcome="failed") == builds + 1
    assert sample("clarity_build_duration_seconds_count", **labels, outcome="failed") >= 1
    after = sample("clarity_node_duration_seconds_count", **labels, node="a", outcome="succeeded")
    assert after == nodes + 1
    assert sample("clarity_gate_failures_total", gate="gate") == refusals + 1


def github_standin(status: int, headers: dict[str, str] | None = None) -> Starlette:
    async def answer(request):
        return JSONResponse({"message": "as asked"}, status_code=status, headers=headers)

    return Starlette(routes=[Route("/repos/octo-org/app", answer, methods=["GET"])])


@pytest.mark.parametrize(
    ("status", "answer"),
    [(200, contextlib.nullcontext()), (404, pytest.raises(gidgethub.BadRequest))],
)
async def test_github_responses_are_counted_by_method_and_status(status, answer):
    before = sample("clarity_github_requests_total", method="GET", status=str(status))
    with serving(github_standin(status)) as url:
        async with httpx.AsyncClient() as http:
            with answer:
                await GitHubClient(http, base_url=url).getitem("/repos/octo-org/app")
    assert sample("clarity_github_requests_total", method="GET", status=str(status)) == before + 1


async def test_a_rate_limit_longer_than_a_job_should_wait_is_counted_as_deferred():
    before = sample("clarity_github_rate_limit_waits_total", how="deferred")
    seconds = sample("clarity_github_rate_limit_wait_seconds_total")
    with serving(github_standin(429, {"retry-after": "600"})) as url:
        async with httpx.AsyncClient() as http:
            with pytest.raises(RateLimited):
                await GitHubClient(http, base_url=url).getitem("/repos/octo-org/app")
    assert sample("clarity_github_rate_limit_waits_total", how="deferred") == before + 1
    assert sample("clarity_github_rate_limit_wait_seconds_total") == seconds + 600


async def test_a_sandbox_lifetime_is_observed_by_backend_when_it_is_destroyed():
    before = sample("clarity_sandbox_lifetime_seconds_count", backend="local")
    root = Path(tempfile.mkdtemp(prefix="clarity-metrics-test-"))
    provider = LocalSandboxProvider(root)
    try:
        async with open_sandbox(provider, SPEC, archive()):
            assert sample("clarity_sandbox_lifetime_seconds_count", backend="local") == before
    finally:
        await provider.reap(older_than=timedelta(0))
        shutil.rmtree(root, ignore_errors=True)
    assert sample("clarity_sandbox_lifetime_seconds_count", backend="local") == before + 1


def test_a_fix_attempts_refused_gates_are_counted_by_gate():
    before = {g: sample("clarity_gate_failures_total", gate=g) for g in ("policy", "tests")}
    metrics.gates_refused([{"gate": "policy", "passed": True}, {"gate": "tests", "passed": False}])
    assert sample("clarity_gate_failures_total", gate="policy") == before["policy"]
    assert sample("clarity_gate_failures_total", gate="tests") == before["tests"] + 1


def test_llm_cost_is_added_by_role_and_model():
    before = sample("clarity_llm_cost_usd_total", role="planner", model="test/model")
    metrics.llm_cost("planner", "test/model", 0.25)
    metrics.llm_cost("planner", "test/model", 0.0)
    assert sample("clarity_llm_cost_usd_total", role="planner", model="test/model") == before + 0.25


async def test_a_worker_serves_its_own_metrics_on_its_port():
    port = free_port()
    server = metrics.serve(port, addr="127.0.0.1")
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 200
    assert "# TYPE clarity_builds_total counter" in response.text


async def test_an_urgent_job_has_waited_since_it_was_enqueued_not_since_its_head_start(
    queue, make_settings
):
    from bot.queue import enqueue_many

    name = fast_queue(make_settings().queue_prefix)
    job_id = f"urgent-{uuid.uuid4().hex}"
    await enqueue_many(queue, "process_delivery", [job_id], name, urgent={job_id})
    stats = await read_queue(queue, name)
    assert stats.oldest_age is not None and stats.oldest_age < 5
