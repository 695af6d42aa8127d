"""`/v1/builds`: state, the live SSE event stream, control actions, and who may see them."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from bot.app import create_app
from bot.auth import Scope, capability, create_token, hash_token, revoke_token
from bot.models import ApiToken, BuildStatus, BuildTier, Installation, Repository
from localhub import serving
from orchestrator import control
from orchestrator.events import EventType
from orchestrator.executor import run_build
from orchestrator.transitions import Change, transition
from tests import dag_nodes
from tests.dag_nodes import chain
from tests.test_executor import n


@pytest.fixture
async def api(db, queue, make_settings):
    async with db.session() as session:
        session.add(Installation(id=1, account_login="octo-org"))
        await session.flush()
        session.add(Repository(id=10, installation_id=1, full_name="octo-org/app"))
        await session.commit()
    settings = make_settings(database_url=db.url)
    dag_nodes.releases.clear()
    with serving(create_app(settings)) as url:
        yield {"url": url, "db": db, "redis": queue, "settings": settings}


async def new_build(api, dag=None):
    dag = dag or chain(n("a"), n("b", "noop", "a"))
    return await control.create_build(
        api["db"],
        dag,
        installation_id=1,
        repository_id=10,
        tier=BuildTier.SCAN,
        head_sha="b" * 40,
        trigger="test",
    )


async def token(api, *scopes: Scope) -> dict[str, str]:
    return {"Authorization": f"Bearer {await create_token(api['db'], 'ops', list(scopes))}"}


async def get(api, path: str, headers=None, params=None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=api["url"]) as client:
        return await client.get(path, headers=headers, params=params)


def parse_sse(text: str) -> list[dict]:
    events = []
    for block in text.split("\n\n"):
        data = [line[6:] for line in block.splitlines() if line.startswith("data: ")]
        if data:
            events.append(json.loads("".join(data)))
    return events


async def test_a_build_is_shown_with_its_tasks_to_a_read_token(api):
    build = await new_build(api)
    response = await get(api, f"/v1/builds/{build.id}", await token(api, Scope.READ))
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["tier"]) == (build.id, "queued", "scan")
    assert [t["key"] for t in body["tasks"]] == ["a", "b"]
    assert "fencing_token" not in body


async def test_a_capability_link_shows_its_own_build_only(api):
    build, other = await new_build(api), await new_build(api)
    link = capability(build.id, api["settings"].link_key())
    assert (await get(api, f"/v1/builds/{build.id}", params={"cap": link})).status_code == 200
    assert (await get(api, f"/v1/builds/{other.id}", params={"cap": link})).status_code == 403


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param(
            lambda api, b: {
                "params": {
                    "cap": capability(b, api["settings"].link_key(), now=time.time() - 10**8)
                }
            },
            id="expired-link",
        ),
        pytest.param(
            lambda api, b: {"params": {"cap": capability(b, b"another key")}}, id="forged-link"
        ),
        pytest.param(lambda api, b: {"params": {"cap": "garbage"}}, id="malformed-link"),
        pytest.param(
            lambda api, b: {"headers": {"Authorization": "Bearer clarity_unknown"}},
            id="unknown-token",
        ),
        pytest.param(lambda api, b: {}, id="nothing"),
    ],
)
async def test_no_valid_credential_is_401(api, credential):
    build = await new_build(api)
    response = await get(api, f"/v1/builds/{build.id}", **credential(api, build.id))
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"


async def test_a_revoked_token_is_refused(api):
    headers = await token(api, Scope.READ)
    await revoke_token(api["db"], "ops")
    build = await new_build(api)
    assert (await get(api, f"/v1/builds/{build.id}", headers)).status_code == 401


async def test_a_scope_this_version_does_not_know_is_ignored(api):
    # A newer version may have written it; the token keeps the scopes known here.
    async with api["db"].session() as session:
        session.add(
            ApiToken(name="newer", token_hash=hash_token("clarity_newer"), scopes=["read", "x:y"])
        )
        await session.commit()
    build = await new_build(api)
    headers = {"Authorization": "Bearer clarity_newer"}
    assert (await get(api, f"/v1/builds/{build.id}", headers)).status_code == 200
    async with httpx.AsyncClient(base_url=api["url"]) as client:
        refused = await client.post(f"/v1/builds/{build.id}/abort", headers=headers)
    assert refused.status_code == 403


async def test_the_event_stream_replays_a_finished_build_and_ends(api):
    build = await new_build(api)
    await run_build({"db": api["db"], "redis": api["redis"], "settings": api["settings"]}, build.id)
    response = await get(api, f"/v1/builds/{build.id}/events", await token(api, Scope.READ))
    events = parse_sse(response.text)
    assert events[0]["type"] == EventType.BUILD_QUEUED
    assert events[-1]["type"] == EventType.BUILD_SUCCEEDED
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


async def test_the_stream_resumes_after_last_event_id(api):
    build = await new_build(api)
    await run_build({"db": api["db"], "redis": api["redis"], "settings": api["settings"]}, build.id)
    headers = await token(api, Scope.READ) | {"Last-Event-ID": "3"}
    events = parse_sse((await get(api, f"/v1/builds/{build.id}/events", headers)).text)
    assert events[0]["seq"] == 4


async def test_the_stream_delivers_events_live_while_the_build_runs(api):
    build = await new_build(api, chain(n("a"), n("wait", "wait_for_release", "a")))
    ctx = {"db": api["db"], "redis": api["redis"], "settings": api["settings"]}
    runner = asyncio.create_task(run_build(ctx, build.id))
    seen: list[str] = []
    async with httpx.AsyncClient(base_url=api["url"], timeout=30) as client:
        async with client.stream(
            "GET", f"/v1/builds/{build.id}/events", headers=await token(api, Scope.READ)
        ) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    seen.append(line[7:])
                    if line[7:] == EventType.NODE_PROGRESS:  # the build is now waiting on us
                        dag_nodes.releases[(build.id, "wait")].set()
    await runner
    assert seen[-1] == EventType.BUILD_SUCCEEDED
    assert EventType.NODE_PROGRESS in seen


async def test_abort_needs_the_control_scope(api):
    build = await new_build(api)
    async with httpx.AsyncClient(base_url=api["url"]) as client:
        refused = await client.post(
            f"/v1/builds/{build.id}/abort", headers=await token(api, Scope.READ)
        )
        link = capability(build.id, api["settings"].link_key())
        by_link = await client.post(f"/v1/builds/{build.id}/abort", params={"cap": link})
        accepted = await client.post(
            f"/v1/builds/{build.id}/abort", headers=await token(api, Scope.CONTROL)
        )
    assert (refused.status_code, by_link.status_code, accepted.status_code) == (403, 403, 202)
    body = (await get(api, f"/v1/builds/{build.id}", await token(api, Scope.READ))).json()
    assert body["status"] == BuildStatus.ABORTED


async def test_retry_of_a_build_that_did_not_fail_is_a_conflict(api):
    build = await new_build(api)
    await transition(
        api["db"], build.id, None, Change(EventType.BUILD_STARTED, build=BuildStatus.RUNNING)
    )
    async with httpx.AsyncClient(base_url=api["url"]) as client:
        response = await client.post(
            f"/v1/builds/{build.id}/retry", headers=await token(api, Scope.CONTROL)
        )
    assert response.status_code == 409


async def test_an_unknown_build_is_404(api):
    assert (await get(api, "/v1/builds/999999", await token(api, Scope.READ))).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/v1/builds/2147483648", Scope.READ),
        ("GET", f"/v1/builds/{10**30}/events", Scope.READ),
        ("GET", "/v1/builds/2147483648/trajectories", Scope.READ),
        ("POST", "/v1/builds/2147483648/abort", Scope.CONTROL),
        ("GET", f"/v1/installations/{2**63}/secrets", Scope.SECRETS_READ),
        ("PUT", f"/v1/installations/{2**63}/secrets/TOKEN", Scope.SECRETS_WRITE),
    ],
)
async def test_an_id_too_large_for_its_column_is_404_not_a_database_error(api, method, path, scope):
    async with httpx.AsyncClient(base_url=api["url"]) as client:
        response = await client.request(
            method, path, headers=await token(api, scope), json={"value": "x"}
        )
    assert (response.status_code, response.json()["error"]) == (404, "not_found")


@pytest.mark.parametrize("last", ["-1", "2147483648", "seven", ""])
async def test_a_resume_point_that_is_not_an_event_number_is_400(api, last):
    build = await new_build(api)
    headers = await token(api, Scope.READ) | {"Last-Event-ID": last}
    response = await get(api, f"/v1/builds/{build.id}/events", headers)
    assert response.status_code == 400


def test_clarity_token_and_link_commands(sqlite_database, make_settings):
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    settings = make_settings(database_url=sqlite_database)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": sqlite_database,
        "CLARITY_APP_ID": "1",
        "CLARITY_PRIVATE_KEY": settings.app_private_key(),
        "CLARITY_WEBHOOK_SECRETS": "cli-test-secret",
        "CLARITY_PUBLIC_URL": "https://clarity.example.com",
    }

    def clarity(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            timeout=60,
        )

    created = clarity("token", "create", "cli-ops", "--scope", "control")
    assert created.returncode == 0 and created.stdout.startswith("clarity_")
    secrets = clarity("token", "create", "cli-secrets", "--scope", "secrets:read")
    assert secrets.returncode == 0 and secrets.stdout.startswith("clarity_")
    assert clarity("token", "create", "cli-bad", "--scope", "admin").returncode == 2
    assert clarity("token", "revoke", "cli-ops").returncode == 0
    link = clarity("link", "42", "--days", "1")
    assert link.stdout.startswith("https://clarity.example.com/v1/builds/42?cap=42.")
