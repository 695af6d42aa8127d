"""Outbound webhooks: a finished build is POSTed, signed, to each subscriber; failures retry, then die."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.auth import Scope, create_token
from bot.models import (
    Build,
    BuildTier,
    Installation,
    OutboundDelivery,
    OutboundStatus,
    Repository,
    WebhookSubscription,
    utcnow,
)
from bot.outbound import InvalidSignature, sign, verify_signature
from bot.outbound_jobs import MAX_ATTEMPTS, defer_for, reconcile_outbound
from bot.secret_store import MASK, SecretStore, new_key
from bot.worker import create_worker
from localhub import serving
from orchestrator import control
from orchestrator.dag import Node
from orchestrator.executor import run_build
from tests.dag_nodes import chain

SECRET = "subscriber-signing-secret-5c1e9a"


@dataclass
class Receiver:
    """A subscriber's endpoint: answers with the scripted statuses, then 200, and keeps each request."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def receive(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.body()))
        return Response(status_code=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    app = Starlette(routes=[Route("/hook", hook.receive, methods=["POST"])])
    with serving(app) as base_url:
        hook.url = f"{base_url}/hook"
        yield hook


@pytest.fixture
async def ctx(db, queue, make_settings):
    async with db.session() as session:
        session.add(Installation(id=1, account_login="octo-org"))
        await session.flush()
        session.add(Repository(id=10, installation_id=1, full_name="octo-org/app"))
        await session.commit()
    settings = make_settings(
        database_url=db.url, encryption_keys=[new_key()], outbound_retry_base=timedelta(0)
    )
    return {"db": db, "redis": queue, "settings": settings}


async def subscribe(ctx, url: str) -> WebhookSubscription:
    await SecretStore(ctx["db"], ctx["settings"].encryption_keys).put(1, "webhook-test", SECRET)
    subscription = WebhookSubscription(installation_id=1, url=url, secret_name="webhook-test")
    async with ctx["db"].session() as session:
        session.add(subscription)
        await session.commit()
        await session.refresh(subscription)
    return subscription


async def finish_build(ctx, node: str = "noop", *, abort: bool = False) -> Build:
    dag = chain(Node("a", f"tests.dag_nodes:{node}"))
    build = await control.create_build(
        ctx["db"], dag, installation_id=1, repository_id=10, head_sha="a" * 40,
        tier=BuildTier.SCAN, trigger="test", pr_number=7,
    )  # fmt: skip
    if abort:
        await control.abort(ctx["db"], ctx["redis"], ctx["settings"].queue_prefix, build.id)
    await run_build(ctx, build.id)
    return build


async def drain(settings) -> None:
    """A real fast-lane worker in burst mode, until no outbound job is left (retries included)."""
    worker = create_worker(
        settings, burst=True, poll_delay=0.01, handle_signals=False, cron_jobs=[]
    )
    try:
        await worker.main()
    finally:
        await worker.close()


async def deliveries(ctx) -> list[OutboundDelivery]:
    async with ctx["db"].session() as session:
        return list(await session.exec(select(OutboundDelivery)))


@pytest.mark.parametrize(
    ("node", "abort", "status"),
    [
        ("noop", False, "succeeded"),
        ("fail_permanently", False, "failed"),
        ("noop", True, "aborted"),
    ],
)
async def test_a_finished_build_is_posted_signed_to_the_subscriber(
    ctx, receiver, node, abort, status
):
    await subscribe(ctx, receiver.url)
    build = await finish_build(ctx, node, abort=abort)
    await drain(ctx["settings"])

    [(headers, body)] = receiver.requests
    assert headers["x-clarity-event"] == "build.completed"
    verify_signature(
        SECRET, headers["x-clarity-timestamp"], headers["x-clarity-nonce"], body,
        headers["x-clarity-signature"], now=time.time(),
    )  # fmt: skip
    event = json.loads(body)
    assert event["build"]["id"] == build.id
    assert event["build"]["status"] == status
    assert event["repository"]["full_name"] == "octo-org/app"
    assert event["pull_request"] == {"number": 7}
    assert event["build"]["url"].endswith(f"/builds/{build.id}")
    assert SECRET not in body.decode() and "cap=" not in body.decode()
    [delivery] = await deliveries(ctx)
    assert (delivery.status, delivery.attempts) == (OutboundStatus.DELIVERED, 1)


async def test_a_build_without_subscribers_records_nothing(ctx):
    await finish_build(ctx)
    assert await deliveries(ctx) == []


async def test_server_errors_are_retried_until_delivered(ctx, receiver):
    receiver.statuses = [500, 500]
    await subscribe(ctx, receiver.url)
    await finish_build(ctx)
    await drain(ctx["settings"])

    [delivery] = await deliveries(ctx)
    assert (delivery.status, delivery.attempts) == (OutboundStatus.DELIVERED, 3)
    nonces = {headers["x-clarity-nonce"] for headers, _ in receiver.requests}
    assert len(receiver.requests) == 3 and len(nonces) == 3


async def test_a_client_error_is_dead_at_once(ctx, receiver):
    receiver.statuses = [404]
    await subscribe(ctx, receiver.url)
    await finish_build(ctx)
    await drain(ctx["settings"])

    [delivery] = await deliveries(ctx)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        OutboundStatus.DEAD, 1, "HTTP 404",
    )  # fmt: skip


@pytest.mark.parametrize("answer", [503, 429, "unreachable"])
async def test_exhausted_retries_leave_a_dead_letter_with_the_last_error(ctx, receiver, answer):
    if answer == "unreachable":
        await subscribe(ctx, "http://127.0.0.1:9/hook")  # nothing listens on the discard port
    else:
        receiver.statuses = [answer] * MAX_ATTEMPTS
        await subscribe(ctx, receiver.url)
    await finish_build(ctx)
    await drain(ctx["settings"])

    [delivery] = await deliveries(ctx)
    assert (delivery.status, delivery.attempts) == (OutboundStatus.DEAD, MAX_ATTEMPTS)
    assert delivery.last_error == ("ConnectError" if answer == "unreachable" else f"HTTP {answer}")
    assert delivery.delivered_at is None


async def test_a_pending_delivery_whose_job_was_lost_is_sent_by_the_reconciler(ctx, receiver):
    subscription = await subscribe(ctx, receiver.url)
    build = await finish_build(ctx)
    async with ctx["db"].session() as session:  # as if Redis had lost the job: a second, unsent row
        session.add(
            OutboundDelivery(
                subscription_id=subscription.id, build_id=build.id, event="build.retried",
                body={"event": "build.retried"}, next_attempt_at=utcnow() - timedelta(hours=1),
            )
        )  # fmt: skip
        await session.commit()

    assert await reconcile_outbound(ctx) == 1
    await drain(ctx["settings"])
    assert {d.status for d in await deliveries(ctx)} == {OutboundStatus.DELIVERED}
    assert len(receiver.requests) == 2


def test_the_backoff_doubles_and_is_capped_near_an_hour_in_all():
    waits = [defer_for(attempt, 120) for attempt in range(1, MAX_ATTEMPTS)]
    assert waits == [120, 240, 480, 960, 1800]
    assert 3000 < sum(waits) < 4000


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"body": b'{"x":2}'}, "does not match"),
        ({"nonce": "other"}, "does not match"),
        ({"now": 10_000.0}, "tolerance"),
        ({"secret": ""}, "required"),
        ({"signature": ""}, "required"),
        ({"timestamp": "soon"}, "not a number"),
    ],
)
def test_the_verifier_refuses_anything_but_a_fresh_exact_signature(change, message):
    args = dict(secret=SECRET, timestamp="1000", nonce="n-1", body=b'{"x":1}', now=1010.0)
    args["signature"] = sign(SECRET, "1000", "n-1", b'{"x":1}')
    verify_signature(**args)
    with pytest.raises(InvalidSignature, match=message):
        verify_signature(**{**args, **change})


@pytest.fixture
async def api(intake, db):
    async with db.session() as session:
        session.add(Installation(id=1, account_login="octo-org"))
        await session.commit()
    url, _ = intake(encryption_keys=[new_key()])
    token = await create_token(db, "ops", [Scope.CONTROL])
    async with httpx.AsyncClient(
        base_url=f"{url}/v1/installations/1",
        headers={"authorization": f"Bearer {token}"},
    ) as client:
        yield client


async def test_a_subscription_secret_is_shown_once_then_masked(api):
    created = await api.post("/webhooks", json={"url": "https://hooks.example.com/clarity"})
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert len(secret) >= 32

    listed = await api.get("/webhooks")
    assert listed.json()["webhooks"] == [{**created.json(), "secret": MASK}]
    assert secret not in listed.text


async def test_a_given_secret_is_kept_and_signs(api, db):
    created = await api.post("/webhooks", json={"url": "http://127.0.0.1:9/hook", "secret": SECRET})
    assert created.json()["secret"] == SECRET
    async with db.session() as session:
        subscription = await session.get(WebhookSubscription, created.json()["id"])
    assert subscription.url == "http://127.0.0.1:9/hook"


async def test_a_deleted_subscription_is_gone_with_its_secret(api, db):
    created = (await api.post("/webhooks", json={"url": "https://hooks.example.com/x"})).json()
    assert (await api.delete(f"/webhooks/{created['id']}")).status_code == 204
    assert (await api.get("/webhooks")).json() == {"webhooks": []}
    assert (await api.delete(f"/webhooks/{created['id']}")).status_code == 404
    assert await SecretStore(db, [new_key()]).list_masked(1) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/clarity",
        "https://user:pass@hooks.example.com/clarity",
        "ftp://hooks.example.com/",
        "https:///no-host",
        "not a url",
    ],
)
async def test_only_https_urls_without_credentials_are_accepted(api, url):
    response = await api.post("/webhooks", json={"url": url})
    assert response.status_code == 400


async def test_a_short_secret_is_refused(api):
    assert (
        await api.post("/webhooks", json={"url": "https://h.example.com", "secret": "short"})
    ).status_code == 400


@pytest.mark.parametrize(("scopes", "status"), [(None, 401), ([Scope.READ], 403)])
async def test_subscribing_needs_an_operator_token_with_control(api, db, scopes, status):
    token = await create_token(db, "reader", scopes) if scopes else "clarity_unknown"
    response = await api.post(
        "/webhooks",
        json={"url": "https://hooks.example.com/x"},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == status


async def test_an_unknown_installation_is_404(api):
    response = await api.get(
        str(api.base_url).replace("/installations/1", "/installations/2") + "/webhooks"
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/v1/installations/{2**63}/webhooks"),
        ("DELETE", f"/v1/installations/1/webhooks/{2**31}"),
    ],
)
async def test_an_id_too_large_for_its_column_is_404_not_a_database_error(api, method, path):
    response = await api.request(method, str(api.base_url.join(path)))
    assert response.status_code == 404
