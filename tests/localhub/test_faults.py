"""localhub faults, rate limits and call records, seen directly and through gidgethub."""

from __future__ import annotations

from datetime import UTC, datetime

import gidgethub
import gidgethub.apps
import httpx
import pytest
from gidgethub.httpx import GitHubAPI

from localhub.models import AuthKind
from tests.localhub.conftest import REPO, TLS, new_token


# faults, rate limits, call records ----------------------------------------------------
def test_injected_502_burst_then_success(hub, client, world):
    hub.inject("pulls/get", status=502, times=2)
    statuses = [
        client.get(f"/repos/{REPO}/pulls/1", headers=world.auth).status_code for _ in range(3)
    ]
    assert statuses == [502, 502, 200]
    assert [c.injected for c in hub.calls_for("pulls/get")] == [True, True, False]


def test_an_applied_fault_carries_the_request_out_then_answers_502(hub, client, world):
    hub.inject("issues/create-comment", status=502, applied=True)
    statuses = [
        client.post(
            f"/repos/{REPO}/issues/1/comments", headers=world.auth, json={"body": "x"}
        ).status_code
        for _ in range(2)
    ]
    assert statuses == [502, 201]
    assert [c.body for c in hub.comments(REPO, 1)] == ["x", "x"]  # the 502 made one too


def test_secondary_rate_limit_carries_retry_after_and_quota(hub, client, world):
    hub.inject_secondary_rate_limit("issues/create-comment", retry_after=0)
    response = client.post(
        f"/repos/{REPO}/issues/1/comments", headers=world.auth, json={"body": "x"}
    )
    assert response.status_code == 403 and response.headers["retry-after"] == "0"
    assert "secondary rate limit" in response.json()["message"]
    assert hub.comments(REPO, 1) == []


def test_faults_for_any_operation_are_consumed_in_order(hub, client, world):
    hub.inject(status=503)
    hub.inject(status=500)
    statuses = [
        client.get(f"/repos/{REPO}/pulls/1", headers=world.auth).status_code for _ in range(3)
    ]
    assert statuses == [503, 500, 200]


def test_rate_limit_headers_count_per_token(hub, client, world):
    other = new_token(client, hub, world.installation_id)
    for _ in range(3):
        client.get(f"/repos/{REPO}/pulls/1", headers=world.auth)
    mine = client.get(f"/repos/{REPO}/pulls/1", headers=world.auth).headers
    theirs = client.get(
        f"/repos/{REPO}/pulls/1", headers={"Authorization": f"token {other}"}
    ).headers
    assert (mine["x-ratelimit-used"], theirs["x-ratelimit-used"]) == ("4", "1")
    assert mine["x-ratelimit-remaining"] == "4996" and mine["x-ratelimit-resource"] == "core"
    assert int(mine["x-ratelimit-reset"]) > datetime.now(UTC).timestamp()


def test_calls_are_recorded_with_operation_and_auth(hub, client, world):
    client.post(f"/repos/{REPO}/issues/1/comments", headers=world.auth, json={"body": "hello"})
    call = hub.calls[-1]
    assert (call.method, call.path, call.operation_id, call.status) == (
        "POST",
        f"/repos/{REPO}/issues/1/comments",
        "issues/create-comment",
        201,
    )
    assert (call.request_json, call.auth_kind) == ({"body": "hello"}, AuthKind.TOKEN)


# a real client ------------------------------------------------------------------------
async def test_gidgethub_gets_a_token_comments_and_pages(hub, base_url, world):
    async with httpx.AsyncClient(verify=TLS) as http:
        app = GitHubAPI(http, "clarity-check-tests", base_url=base_url)
        issued = await gidgethub.apps.get_installation_access_token(
            app,
            installation_id=str(world.installation_id),
            app_id=str(hub.app.id),
            private_key=hub.private_key_pem,
        )
        gh = GitHubAPI(http, "clarity-check-tests", oauth_token=issued["token"], base_url=base_url)
        for n in range(3):
            await gh.post(f"/repos/{REPO}/issues/1/comments", data={"body": f"comment {n}"})
        bodies = [
            c["body"] async for c in gh.getiter(f"/repos/{REPO}/issues/1/comments?per_page=2")
        ]
    assert bodies == ["comment 0", "comment 1", "comment 2"]


async def test_gidgethub_raises_its_own_errors(hub, base_url, world):
    hub.inject_primary_rate_limit("pulls/get")
    async with httpx.AsyncClient(verify=TLS) as http:
        gh = GitHubAPI(http, "clarity-check-tests", oauth_token=world.token, base_url=base_url)
        with pytest.raises(gidgethub.RateLimitExceeded):
            await gh.getitem(f"/repos/{REPO}/pulls/1")
        with pytest.raises(gidgethub.BadRequest):
            await gh.post(f"/repos/{REPO}/issues/1/comments", data={"body": "x" * 65_537})
