"""The GitHub App client against the local GitHub stand-in: tokens, narrowing and retries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import gidgethub
import httpx
import pytest

from bot.github import GitHubApp, RateLimited, RetryPolicy, is_answer, retry_delay
from localhub import Hub, running

FAST = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0, max_inline_wait=5.0)
REPO = "octo-org/app"


class Clock:
    """A settable clock, so token expiry is tested without waiting an hour."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def hub_server(app_private_key_module: str) -> Iterator[tuple[Hub, str]]:
    hub = Hub(app_id=4242, client_id="Iv1.testclient", private_key_pem=app_private_key_module)
    with running(hub) as url:
        yield hub, url


@pytest.fixture(scope="module")
def app_private_key_module(app_private_key: str) -> str:
    return app_private_key


@pytest.fixture
def hub(hub_server: tuple[Hub, str]) -> Hub:
    hub, _ = hub_server
    hub.reset()
    installation = hub.add_installation("octo-org", installation_id=77)
    hub.add_repository("octo-org", "app", {"README.md": "# app\n"}, installation_id=installation.id)
    hub.add_repository(
        "octo-org", "other", {"README.md": "# other\n"}, installation_id=installation.id
    )
    return hub


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def github(
    hub: Hub, hub_server: tuple[Hub, str], app_private_key: str, clock: Clock
) -> AsyncIterator[GitHubApp]:
    _, url = hub_server
    async with httpx.AsyncClient() as http:
        yield GitHubApp(
            http,
            issuer="Iv1.testclient",
            private_key=app_private_key,
            base_url=url,
            policy=FAST,
            clock=clock,
        )


def token_requests(hub: Hub) -> list:
    return hub.calls_for("apps/create-installation-access-token")


async def create_check_run(gh, hub: Hub) -> dict:
    return await gh.post(
        "/repos/{owner}/{repo}/check-runs",
        url_vars={"owner": "octo-org", "repo": "app"},
        data={"name": "Clarity Check", "head_sha": hub.ref(REPO, "main"), "status": "in_progress"},
    )


async def test_the_app_authenticates_with_a_jwt(github: GitHubApp):
    app = await github.app.getitem("/app")
    assert app["id"] == 4242


async def test_an_installation_token_is_fetched_once_and_reused(github: GitHubApp, hub: Hub):
    gh = github.for_installation(77)
    await create_check_run(gh, hub)
    await create_check_run(github.for_installation(77), hub)
    assert len(token_requests(hub)) == 1


async def test_no_token_is_fetched_until_a_request_needs_one(github: GitHubApp, hub: Hub):
    github.for_installation(77)
    assert token_requests(hub) == []


async def test_a_token_is_refreshed_shortly_before_it_expires(
    github: GitHubApp, hub: Hub, clock: Clock
):
    gh = github.for_installation(77)
    await create_check_run(gh, hub)
    clock.now += 3600 - github.tokens.REFRESH_MARGIN + 1
    await create_check_run(gh, hub)
    assert len(token_requests(hub)) == 2


async def test_a_token_rejected_by_github_is_replaced_once(github: GitHubApp, hub: Hub):
    gh = github.for_installation(77)
    await create_check_run(gh, hub)
    hub.expire_tokens()  # GitHub now refuses the cached token before our clock says so
    await create_check_run(gh, hub)
    assert len(token_requests(hub)) == 2


async def test_a_narrowed_token_asks_for_one_repository_and_named_permissions(
    github: GitHubApp, hub: Hub
):
    gh = github.for_installation(77, repositories=("app",), permissions={"contents": "read"})
    content = await gh.getitem(
        "/repos/{owner}/{repo}/contents/{path}",
        url_vars={"owner": "octo-org", "repo": "app", "path": "README.md"},
    )
    assert content["name"] == "README.md"
    [request] = token_requests(hub)
    assert request.request_json == {"repositories": ["app"], "permissions": {"contents": "read"}}


async def test_a_read_only_token_cannot_write(github: GitHubApp, hub: Hub):
    gh = github.for_installation(77, repositories=("app",), permissions={"contents": "read"})
    with pytest.raises(gidgethub.BadRequest) as refused:
        await create_check_run(gh, hub)
    assert refused.value.status_code == 403


async def test_a_token_for_one_repository_cannot_read_another(github: GitHubApp):
    gh = github.for_installation(77, repositories=("app",), permissions={"contents": "read"})
    with pytest.raises(gidgethub.HTTPException):
        await gh.getitem(
            "/repos/{owner}/{repo}/contents/{path}",
            url_vars={"owner": "octo-org", "repo": "other", "path": "README.md"},
        )


async def test_a_502_is_retried_until_it_succeeds(github: GitHubApp, hub: Hub):
    gh = github.for_installation(77)
    await create_check_run(gh, hub)  # token fetched outside the fault window
    hub.inject("checks/create", status=502, times=2)
    run = await create_check_run(gh, hub)
    assert run["name"] == "Clarity Check"
    statuses = [call.status for call in hub.calls_for("checks/create")]
    assert statuses == [201, 502, 502, 201]
    assert len(hub.check_runs(REPO)) == 2


async def test_persistent_5xx_gives_up_after_the_attempt_budget(github: GitHubApp, hub: Hub):
    gh = github.for_installation(77)
    await create_check_run(gh, hub)
    hub.inject("checks/create", status=503, times=10)
    with pytest.raises(gidgethub.GitHubBroken):
        await create_check_run(gh, hub)
    assert len(hub.calls_for("checks/create")) == 1 + FAST.max_attempts


async def test_a_secondary_rate_limit_is_waited_out_then_retried(github: GitHubApp, hub: Hub):
    gh = github.for_installation(77)
    await create_check_run(gh, hub)
    hub.inject_secondary_rate_limit("checks/create", retry_after=0)
    await create_check_run(gh, hub)
    assert [call.status for call in hub.calls_for("checks/create")] == [201, 403, 201]


async def test_a_long_rate_limit_wait_is_handed_back_to_the_job(
    github: GitHubApp, hub: Hub, clock: Clock
):
    gh = github.for_installation(77)
    await create_check_run(gh, hub)
    hub.inject_primary_rate_limit("checks/create", reset_in=3600)
    with pytest.raises(RateLimited) as limited:
        await create_check_run(gh, hub)
    assert limited.value.retry_at > clock.now + 60


async def test_a_permission_403_is_an_answer_not_retried(github: GitHubApp, hub: Hub):
    gh = github.for_installation(77)
    await create_check_run(gh, hub)
    hub.inject(
        "checks/create", status=403, body={"message": "Resource not accessible by integration"}
    )
    with pytest.raises(gidgethub.BadRequest):
        await create_check_run(gh, hub)
    assert [call.status for call in hub.calls_for("checks/create")] == [201, 403]


@pytest.mark.parametrize(
    ("status", "headers", "message", "attempt", "expected"),
    [
        (502, {}, None, 1, 1.0),
        (502, {}, None, 3, 4.0),
        (503, {}, None, 5, None),
        (403, {"Retry-After": "7"}, None, 1, 7.0),
        (429, {"retry-after": "bogus"}, None, 1, 60.0),
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1100"}, None, 1, 101.0),
        (403, {}, "You have exceeded a secondary rate limit", 2, 120.0),
        (429, {}, None, 1, 60.0),
        (403, {}, "Resource not accessible by integration", 1, None),
        (404, {}, None, 1, None),
        (422, {}, None, 1, None),
    ],
)
def test_retry_delay_follows_githubs_guidance(status, headers, message, attempt, expected):
    assert retry_delay(status, headers, message, attempt, RetryPolicy(), now=1000.0) == expected


async def test_a_create_github_made_but_answered_502_is_found_not_repeated(
    github: GitHubApp, hub: Hub
):
    gh = github.for_installation(77)
    hub.inject("checks/create", status=502, applied=True)

    async def made() -> dict | None:
        runs = hub.check_runs(REPO)
        return {"id": runs[0].id} if runs else None

    created = await gh.create(
        "/repos/{owner}/{repo}/check-runs",
        {"owner": "octo-org", "repo": "app"},
        data={"name": "Clarity Check", "head_sha": hub.ref(REPO, "main")},
        existing=made,
    )
    [run] = hub.check_runs(REPO)
    assert created["id"] == run.id and len(hub.calls_for("checks/create")) == 1


@pytest.mark.parametrize(
    ("status", "headers", "message", "answer"),
    [
        (422, {}, "Validation Failed", True),
        (403, {}, "This installation has been suspended", True),
        (403, {"retry-after": "1"}, "You have exceeded a secondary rate limit.", False),
        (404, {}, "Not Found", False),
        (502, {}, "Server Error", False),
    ],
)
def test_a_refusal_github_would_repeat_is_an_answer(status, headers, message, answer):
    import http

    error = (gidgethub.GitHubBroken if status >= 500 else gidgethub.BadRequest)(
        http.HTTPStatus(status), message
    )
    error.headers = headers
    assert is_answer(error) is answer
