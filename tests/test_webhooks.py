"""`POST /webhooks/github`: every row of the intake table, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.app import create_app
from bot.models import DeliveryStatus
from bot.queue import fast_queue
from bot.signature import sign
from localhub import serving
from tests.conftest import WEBHOOK_SECRET
from tests.services import free_port
from tests.webhook_fixtures import FIXTURES, fixture, fresh, headers, post, stored_deliveries


async def queued(queue, settings) -> list[str]:
    return [
        member.decode() for member in await queue.zrange(fast_queue(settings.queue_prefix), 0, -1)
    ]


async def test_valid_delivery_is_stored_then_enqueued_and_answered_202(intake, db, queue):
    url, settings = intake()
    body = json.dumps(fresh(fixture("pull_request/opened"), "pull_request")).encode()
    guid = str(uuid.uuid4())
    response = await post(url, body, headers(body, "pull_request", guid=guid))
    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "delivery": guid}
    [row] = await stored_deliveries(db)
    assert (row.id, row.event, row.action, row.status) == (
        guid,
        "pull_request",
        "opened",
        DeliveryStatus.RECEIVED,
    )
    assert row.body == body and row.installation_id == 1
    assert await queued(queue, settings) == [guid]


async def test_a_delivery_no_handler_acts_on_is_stored_finished_and_not_queued(intake, db, queue):
    """A label added to a pull request: kept for its nonce, but no worker spends a job on it."""
    url, settings = intake()
    payload = fresh(fixture("pull_request/opened"), "pull_request") | {"action": "labeled"}
    body = json.dumps(payload).encode()
    guid = str(uuid.uuid4())
    response = await post(url, body, headers(body, "pull_request", guid=guid))
    assert response.status_code == 202
    [row] = await stored_deliveries(db)
    assert (row.id, row.status) == (guid, DeliveryStatus.PROCESSED)
    assert row.processed_at is not None
    assert await queued(queue, settings) == []
    again = await post(url, body, headers(body, "pull_request", guid=str(uuid.uuid4())))
    assert again.json() == {"status": "duplicate"}  # still a replay, by its nonce


def _working(event: str) -> dict:
    """A delivery of `event` that a handler acts on: a push to the default branch, a command."""
    if event == "push":
        return fresh(fixture("push/branch-created"), "push")  # to `master`, the default branch
    payload = fresh(fixture("issue_comment/created"), "issue_comment")
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/1"}
    payload["comment"]["body"] = "Thanks!\n\n/Clarity status"
    return payload


@pytest.mark.parametrize(
    ("event", "change"),
    [
        ("push", lambda p: p.update(ref="refs/heads/feature")),
        ("push", lambda p: p.update(deleted=True, after="0" * 40)),
        ("issue_comment", lambda p: p["comment"].update(body="Looks good to me")),
        ("issue_comment", lambda p: p["sender"].update(type="Bot")),
        ("issue_comment", lambda p: p["issue"].pop("pull_request")),
    ],
    ids=["push-to-a-branch", "branch-deleted", "no-command", "by-a-bot", "on-an-issue"],
)
async def test_a_payload_that_gives_no_work_is_stored_finished_and_not_queued(
    intake, db, queue, event, change
):
    url, settings = intake()
    working = json.dumps(_working(event)).encode()
    guid = str(uuid.uuid4())
    assert (await post(url, working, headers(working, event, guid=guid))).status_code == 202
    payload = _working(event)
    change(payload)
    body = json.dumps(payload).encode()
    assert (await post(url, body, headers(body, event))).status_code == 202
    statuses = {row.id: row.status for row in await stored_deliveries(db)}
    assert sorted(status.value for status in statuses.values()) == ["processed", "received"]
    assert statuses[guid] is DeliveryStatus.RECEIVED
    assert await queued(queue, settings) == [guid]


@pytest.mark.parametrize("same_guid", [True, False])
async def test_same_body_again_is_a_duplicate_and_enqueues_nothing(intake, db, queue, same_guid):
    url, settings = intake()
    body = json.dumps(fresh(fixture("pull_request/opened"), "pull_request")).encode()
    guid = str(uuid.uuid4())
    assert (await post(url, body, headers(body, "pull_request", guid=guid))).status_code == 202
    again = await post(url, body, headers(body, "pull_request", guid=guid if same_guid else None))
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate"}
    assert len(await stored_deliveries(db)) == 1
    assert await queued(queue, settings) == [guid]


def _only_sha1(body: bytes) -> dict[str, str]:
    import hashlib
    import hmac

    hdrs = headers(body, "push")
    del hdrs["X-Hub-Signature-256"]
    hdrs["X-Hub-Signature"] = (
        "sha1=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha1).hexdigest()
    )
    return hdrs


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda body, h: h.pop("X-Hub-Signature-256"), id="missing"),
        pytest.param(
            lambda body, h: h.update({"X-Hub-Signature-256": "sha256=zz"}), id="malformed"
        ),
        pytest.param(
            lambda body, h: h.update({"X-Hub-Signature-256": sign(body, "another-secret")}),
            id="wrong-secret",
        ),
        pytest.param(
            lambda body, h: h.update({"X-Hub-Signature-256": sign(body + b" ", WEBHOOK_SECRET)}),
            id="other-body",
        ),
        pytest.param(
            lambda body, h: h.update({"X-Hub-Signature-256": sign(body, WEBHOOK_SECRET)[7:]}),
            id="no-prefix",
        ),
    ],
)
async def test_bad_signature_is_refused_with_401_and_nothing_stored(intake, db, tamper):
    url, _ = intake()
    body = json.dumps(fresh(fixture("push/branch-created"), "push")).encode()
    hdrs = headers(body, "push")
    tamper(body, hdrs)
    response = await post(url, body, hdrs)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert await stored_deliveries(db) == []


async def test_sha1_signature_alone_is_refused(intake, db):
    url, _ = intake()
    body = json.dumps(fresh(fixture("push/branch-created"), "push")).encode()
    response = await post(url, body, _only_sha1(body))
    assert response.status_code == 401
    assert await stored_deliveries(db) == []


async def test_any_configured_secret_is_accepted_during_rotation(intake, db):
    url, _ = intake(webhook_secrets=["old-secret-value-1", WEBHOOK_SECRET])
    body = json.dumps(fresh(fixture("push/branch-created"), "push")).encode()
    old = await post(url, body, headers(body, "push", secret="old-secret-value-1"))
    assert old.status_code == 202


async def test_body_over_the_limit_is_refused_with_413(intake, db):
    url, _ = intake(max_body_bytes=2048)
    body = json.dumps({"action": "opened", "padding": "x" * 4096}).encode()
    response = await post(url, body, headers(body, "pull_request"))
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert await stored_deliveries(db) == []


async def test_chunked_body_over_the_limit_is_refused_without_a_length_header(intake, db):
    url, _ = intake(max_body_bytes=2048)
    body = b"{" + b" " * 5000 + b"}"

    async def chunks():
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            "/webhooks/github", content=chunks(), headers=headers(body, "push")
        )
    assert response.status_code == 413
    assert await stored_deliveries(db) == []


@pytest.mark.parametrize(
    ("body", "event", "reason"),
    [
        (b"not json", "push", "not a JSON"),
        (b"[1, 2, 3]", "push", "not a JSON object"),
        (b'"text"', "push", "not a JSON object"),
        (b"\xff\xfe", "push", "not a JSON"),
        (b'{"action": "opened"}', None, "X-GitHub-Event"),
    ],
)
async def test_malformed_delivery_is_refused_with_400_and_a_reason(intake, db, body, event, reason):
    url, _ = intake()
    hdrs = headers(body, event or "push")
    if event is None:
        del hdrs["X-GitHub-Event"]
    response = await post(url, body, hdrs)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert reason in response.json()["detail"]
    assert await stored_deliveries(db) == []


async def test_form_encoded_delivery_is_accepted(intake, db):
    from urllib.parse import urlencode

    url, _ = intake()
    payload = json.dumps(fresh(fixture("push/branch-created"), "push"))
    body = urlencode({"payload": payload}).encode()
    hdrs = headers(body, "push") | {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await post(url, body, hdrs)).status_code == 202


@pytest.mark.parametrize(
    ("name", "event", "age_field"),
    [
        ("issue_comment/created", "issue_comment", ("comment", "created_at")),
        ("pull_request/synchronize", "pull_request", ("pull_request", "updated_at")),
        ("push/branch-created", "push", ("repository", "pushed_at")),
    ],
)
async def test_signed_body_older_than_the_window_is_stale(intake, db, name, event, age_field):
    url, _ = intake(freshness_window=timedelta(hours=1))
    payload = fresh(fixture(name), event)
    old = datetime.now(UTC) - timedelta(hours=2)
    payload[age_field[0]][age_field[1]] = (
        int(old.timestamp()) if event == "push" else old.isoformat()
    )
    if event == "issue_comment":
        payload["comment"]["updated_at"] = old.isoformat()
    body = json.dumps(payload).encode()
    response = await post(url, body, headers(body, event))
    assert response.status_code == 409
    assert response.json()["error"] == "stale"
    assert await stored_deliveries(db) == []


async def test_ping_is_answered_200_and_not_stored(intake, db):
    url, _ = intake()
    body = (FIXTURES / "ping" / "ping.json").read_bytes()
    response = await post(url, body, headers(body, "ping"))
    assert response.status_code == 200
    assert await stored_deliveries(db) == []


async def test_delivery_is_accepted_when_redis_is_down(intake, db):
    url, _ = intake(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    body = json.dumps(fresh(fixture("pull_request/opened"), "pull_request")).encode()
    response = await post(url, body, headers(body, "pull_request"))
    assert response.status_code == 202
    [row] = await stored_deliveries(db)
    assert row.status is DeliveryStatus.RECEIVED


async def test_database_down_answers_503_and_stores_nothing(make_settings, db):
    settings = make_settings(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    body = json.dumps(fresh(fixture("pull_request/opened"), "pull_request")).encode()
    with serving(create_app(settings)) as url:
        response = await post(url, body, headers(body, "pull_request"))
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"


async def test_concurrent_identical_deliveries_make_exactly_one_job(intake, db, queue):
    url, settings = intake()
    body = json.dumps(fresh(fixture("pull_request/opened"), "pull_request")).encode()
    guid = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=url) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/webhooks/github",
                    content=body,
                    headers=headers(body, "pull_request", guid=guid),
                )
                for _ in range(12)
            )
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 11 + [202]
    assert len(await stored_deliveries(db)) == 1
    assert await queued(queue, settings) == [guid]


async def test_every_error_answer_is_json_with_code_and_detail(intake):
    url, _ = intake()
    response = await post(url, b"{}", {"X-GitHub-Event": "push"})
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()) == {"error", "detail"}


def test_fixture_folder_is_present():
    assert FIXTURES.is_dir(), f"vendored webhook fixtures missing at {Path(FIXTURES).name}"


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/webhooks/github", 405), ("POST", "/nowhere", 404)]
)
async def test_routing_errors_are_json_too(intake, method, path, status):
    url, _ = intake()
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.request(method, path)
    assert response.status_code == status
    assert set(response.json()) == {"error", "detail"}


async def test_a_delivery_that_starts_a_check_run_is_queued_ahead_of_cheap_ones(intake, db, queue):
    url, settings = intake()
    for _ in range(3):
        comment = fresh(fixture("issue_comment/created"), "issue_comment")
        comment["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/1"}
        comment["comment"]["body"] = f"/clarity status\n\n({uuid.uuid4()})"
        body = json.dumps(comment).encode()
        assert (await post(url, body, headers(body, "issue_comment"))).status_code == 202
    body = json.dumps(fresh(fixture("pull_request/opened"), "pull_request")).encode()
    guid = str(uuid.uuid4())
    assert (await post(url, body, headers(body, "pull_request", guid=guid))).status_code == 202

    first, *rest = await queued(queue, settings)
    assert first == guid
    assert len(rest) == 3
