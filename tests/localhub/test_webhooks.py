"""localhub webhooks: signed as GitHub signs them, payloads match upstream schemas, deliveries
are recorded and redelivered."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from localhub.clock import iso
from localhub.gitstore import ZERO_SHA
from localhub.payload_schemas import schema_errors
from localhub.server import serving
from localhub.webhooks import build_delivery, load_fixture, send, sign
from tests.localhub.conftest import OWN_FIXTURES, REPO, SECRET, TLS, app_auth, conforms


def test_signature_matches_githubs_published_test_vector():
    assert (
        sign(SECRET, b"Hello, World!")
        == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_delivery_headers_and_signature_cover_the_exact_body():
    headers, body = build_delivery(
        "pull_request/opened", secret=SECRET, overrides={"installation": {"id": 77}}
    )
    assert (
        headers["X-GitHub-Event"] == "pull_request"
        and headers["User-Agent"] == "GitHub-Hookshot/localhub"
    )
    assert uuid.UUID(headers["X-GitHub-Delivery"]).version == 4 and headers["X-GitHub-Hook-ID"]
    assert (
        headers["X-Hub-Signature-256"]
        == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    )
    payload = json.loads(body)
    assert payload["installation"] == {
        "id": 77,
        "node_id": load_fixture("pull_request/opened")["installation"]["node_id"],
    }


def test_overrides_merge_into_nested_objects():
    _, body = build_delivery(
        "pull_request/synchronize",
        secret=SECRET,
        overrides={"pull_request": {"head": {"sha": "a" * 40}}},
    )
    head = json.loads(body)["pull_request"]["head"]
    assert (
        head["sha"] == "a" * 40
        and head["ref"] == load_fixture("pull_request/synchronize")["pull_request"]["head"]["ref"]
    )


NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fixture", "path", "expected"),
    [
        ("pull_request/synchronize", ("pull_request", "updated_at"), iso(NOW)),
        ("issue_comment/created", ("comment", "created_at"), iso(NOW)),
        ("push/branch-created", ("repository", "pushed_at"), int(NOW.timestamp())),
        ("push/branch-created", ("head_commit", "timestamp"), iso(NOW)),
        ("check_suite/requested", ("check_suite", "updated_at"), iso(NOW)),
    ],
)
def test_event_timestamps_are_refreshed(fixture, path, expected):
    _, body = build_delivery(fixture, secret=SECRET, now=NOW)
    payload, original = json.loads(body), load_fixture(fixture)
    assert payload[path[0]][path[1]] == expected
    assert payload["repository"]["created_at"] == original["repository"]["created_at"]


def test_hub_built_events_match_upstream_schemas(hub, world):
    hub.set_permission(REPO, "alice", "write")
    comment = hub.add_comment(REPO, 1, "/clarity deep-scan", user="alice")
    events = [
        hub.pull_request_event(REPO, 1, "opened"),
        hub.pull_request_event(REPO, 1, "synchronize"),
        hub.issue_comment_event(comment),
        hub.installation_event(world.installation_id),
        hub.push_event(REPO, "feature", ZERO_SHA),
    ]
    for event in events:
        assert schema_errors(event.name, event.payload) == [], event.name
    pr_event, comment_event = events[0].payload, events[2].payload
    assert pr_event["pull_request"]["head"]["sha"] == world.head_sha
    assert pr_event["installation"]["id"] == world.installation_id
    assert comment_event["issue"]["pull_request"]["url"].endswith(f"/repos/{REPO}/pulls/1")
    assert comment_event["comment"]["author_association"] == "COLLABORATOR"


@pytest.mark.parametrize("merged", [True, False])
def test_a_closed_pull_request_is_closed_in_the_api_and_its_event(hub, client, world, merged):
    hub.close_pull_request(REPO, 1, merged=merged)
    event = hub.pull_request_event(REPO, 1, "closed")
    assert schema_errors(event.name, event.payload) == []
    pull = event.payload["pull_request"]
    assert (event.payload["action"], pull["state"], pull["merged"]) == ("closed", "closed", merged)
    assert pull["closed_at"] and bool(pull["merged_at"]) is merged
    shown = client.get(f"/repos/{REPO}/pulls/1", headers=world.auth).json()
    assert (shown["state"], shown["merged"]) == ("closed", merged)


def test_own_pull_request_comment_fixture_matches_upstream_schema():
    headers, body = build_delivery(
        "issue_comment/created.on-pull-request", secret=SECRET, search=[OWN_FIXTURES]
    )
    payload = json.loads(body)
    assert headers["X-GitHub-Event"] == "issue_comment"
    assert schema_errors("issue_comment", payload) == []
    assert "pull_request" in payload["issue"]


async def test_delivery_is_recorded_and_redelivered_with_the_same_guid(hub, base_url, world):
    received: list[tuple[dict, bytes]] = []

    async def receive(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        return Response(status_code=202)

    with serving(
        Starlette(routes=[Route("/webhooks/github", receive, methods=["POST"])])
    ) as receiver:
        hub.webhook_url = f"{receiver}/webhooks/github"
        sent = await send(
            hub.webhook_url,
            "issue_comment/created.on-pull-request",
            secret=SECRET,
            search=[OWN_FIXTURES],
        )
        assert (
            sent.status_code == 202
            and json.loads(received.pop()[1])["comment"]["body"] == "/clarity deep-scan"
        )
        delivery = await hub.deliver(hub.pull_request_event(REPO, 1))
        async with httpx.AsyncClient(
            base_url=base_url, event_hooks={"response": [_aconforms]}, verify=TLS
        ) as http:
            listed = (await http.get("/app/hook/deliveries", headers=app_auth(hub))).json()
            detail = (
                await http.get(f"/app/hook/deliveries/{delivery.id}", headers=app_auth(hub))
            ).json()
            accepted = await http.post(
                f"/app/hook/deliveries/{delivery.id}/attempts", headers=app_auth(hub)
            )
        assert accepted.status_code == 202
        assert hub.wait_for(lambda: len(received) == 2 and hub.deliveries[-1].status_code == 202)
    assert [(d["guid"], d["status"]) for d in listed] == [(delivery.guid, "OK")]
    assert detail["request"]["payload"]["pull_request"]["number"] == 1
    (first_headers, first_body), (again_headers, again_body) = received
    assert (
        again_headers["x-github-delivery"] == first_headers["x-github-delivery"]
        and again_body == first_body
    )
    assert sign(SECRET, first_body) == first_headers["x-hub-signature-256"]
    assert hub.deliveries[-1].redelivery is True


async def _aconforms(response: httpx.Response) -> None:
    await response.aread()
    conforms(response)
