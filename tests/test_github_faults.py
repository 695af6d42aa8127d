"""GitHub's faults during a whole pull-request build: 5xx bursts, writes GitHub carried out
but answered 502, rate limits, oversize bodies, expired tokens, and a GitHub that keeps
refusing. Every row ends with one check run per head and at most one comment."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from sqlmodel import select

from bot.models import Build, BuildStatus, Delivery, DeliveryStatus
from localhub import Hub
from orchestrator.dag import Node
from tests import test_pull_request
from tests.test_pull_request import REPO, VULNERABLE, comments

pytestmark = pytest.mark.chaos
loop = test_pull_request.loop  # the live loop: stand-in, intake, worker, LocalSandbox
SECTION = "GitHub faults"


@pytest.fixture
def database_url(postgresql_database: str) -> str:
    """PostgreSQL only: the matrix is about GitHub, not about the database."""
    return postgresql_database


@pytest.fixture
def loop_settings() -> dict:
    return {"github_retry_delay": 0.01}


def open_pull_request(hub: Hub, files: dict | None = None) -> str:
    hub.commit_files(REPO, "feature", files or {"api/main.py": VULNERABLE}, message="Change")
    hub.open_pull_request(REPO, "feature", title="Change")
    return hub.head_sha(hub.pull_request(REPO, 1))


def duplicates(hub: Hub) -> int:
    """Check runs beyond one per head, and comments beyond one."""
    heads = [run.head_sha for run in hub.check_runs(REPO)]
    return len(heads) - len(set(heads)) + max(0, len(comments(hub)) - 1)


def injected(hub: Hub, operation_id: str) -> int:
    return sum(call.injected for call in hub.calls_for(operation_id))


async def build_and_delivery(db) -> tuple[Build, Delivery]:
    async with db.session() as session:
        [build] = (await session.exec(select(Build))).all()
        [delivery] = (
            await session.exec(select(Delivery).where(Delivery.event == "pull_request"))
        ).all()
    return build, delivery


BURSTS = [("checks/create", 502, 2), ("checks/update", 503, 3), ("issues/create-comment", 502, 2)]


async def test_5xx_bursts_are_retried_and_published_once(loop, chaos):
    hub, deliver = loop
    head = open_pull_request(hub)
    for operation_id, status, times in BURSTS:
        hub.inject(operation_id, status=status, times=times)
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    retries = {operation_id: injected(hub, operation_id) for operation_id, _, _ in BURSTS}
    found = duplicates(hub)
    chaos.record(
        SECTION,
        "5xx bursts on create, update, comment: duplicates",
        found,
        target="0",
        ok=not found,
    )
    chaos.record(SECTION, "5xx bursts: retries made", sum(retries.values()), target="7")
    chaos.record(SECTION, "5xx bursts: conclusion", run.conclusion, target="failure")
    assert (run.head_sha, run.conclusion) == (head, "failure")
    assert len(comments(hub)) == 1
    assert retries == {operation_id: times for operation_id, _, times in BURSTS}


@pytest.mark.parametrize("operation_id", ["checks/create", "issues/create-comment"])
async def test_a_creation_github_made_but_answered_502_is_found_not_repeated(
    loop, chaos, operation_id
):
    hub, deliver = loop
    open_pull_request(hub)
    hub.inject(operation_id, status=502, applied=True)
    await deliver(hub.pull_request_event(REPO, 1))
    found = duplicates(hub)
    chaos.record(
        SECTION,
        f"{operation_id} applied, answered 502: duplicates",
        found,
        target="0",
        ok=not found,
    )
    [run] = hub.check_runs(REPO)
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert len(comments(hub)) == 1
    assert len(hub.calls_for(operation_id)) == 1  # found again, not created a second time


async def test_annotations_github_appended_but_answered_502_are_not_appended_again(loop, chaos):
    hub, deliver = loop
    open_pull_request(hub)
    hub.inject("checks/update", status=502, applied=True)
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    notes = [json.dumps(note, sort_keys=True) for note in run.annotations]
    repeated = len(notes) - len(set(notes))
    chaos.record(
        SECTION,
        "annotation batch applied, answered 502: annotations repeated",
        repeated,
        target="0",
        ok=not repeated,
    )
    assert notes and not repeated
    assert (run.status, run.conclusion) == ("completed", "failure")
    # The one update carried the batch and the conclusion; it was found, not sent again.
    assert [call.status for call in hub.calls_for("checks/update")] == [502]


async def test_rate_limits_on_writes_are_waited_out(loop, chaos):
    hub, deliver = loop
    open_pull_request(hub)
    hub.inject_secondary_rate_limit("checks/update", retry_after=1)
    hub.inject_primary_rate_limit("issues/create-comment", reset_in=1)
    started = time.monotonic()
    await deliver(hub.pull_request_event(REPO, 1))
    took = time.monotonic() - started
    [run] = hub.check_runs(REPO)
    chaos.record(
        SECTION,
        "secondary (retry-after 1 s) and primary (reset in 1 s) limits: build seconds",
        took,
    )
    chaos.record(SECTION, "rate limits: conclusion", run.conclusion, target="failure")
    chaos.record(
        SECTION, "rate limits: duplicates", duplicates(hub), target="0", ok=not duplicates(hub)
    )
    assert run.conclusion == "failure" and len(comments(hub)) == 1
    assert [c.status for c in hub.calls_for("checks/update")][:2] == [403, 200]
    assert [c.status for c in hub.calls_for("issues/create-comment")] == [403, 201]
    assert took >= 1.0  # waited as asked


OVERSIZE_FINDINGS = 900


async def test_more_findings_than_github_takes_are_cut_to_fit(loop, chaos):
    hub, deliver = loop
    body = "import subprocess\n\n\ndef run(commands):\n" + "".join(
        f"    subprocess.run(commands[{i}], shell=True)\n" for i in range(OVERSIZE_FINDINGS)
    )
    open_pull_request(hub, {"api/rules.py": body})
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    [comment] = comments(hub)
    refused = [c for c in hub.calls if c.status == 422]
    chaos.record(SECTION, f"{OVERSIZE_FINDINGS} findings: 422 answers", len(refused), target="0")
    chaos.record(SECTION, f"{OVERSIZE_FINDINGS} findings: comment characters", len(comment.body))
    chaos.record(SECTION, f"{OVERSIZE_FINDINGS} findings: conclusion", run.conclusion)
    assert refused == []
    assert run.conclusion == "failure" and len(run.output["summary"]) <= 65_535
    assert len(comment.body) <= 65_536 and "more on the build page" in comment.body


async def test_a_comment_github_refuses_as_too_long_ends_cleanly(loop, db, chaos):
    hub, deliver = loop
    open_pull_request(hub)
    too_long = {
        "message": "Validation Failed",
        "errors": [{"resource": "IssueComment", "code": "unprocessable", "field": "data"}],
        "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
    }
    hub.inject("issues/create-comment", status=422, times=10, body=too_long)
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    build, delivery = await build_and_delivery(db)
    tries = len(hub.calls_for("issues/create-comment"))
    chaos.record(SECTION, "422 on the comment: tries", tries, target="1", ok=tries == 1)
    chaos.record(SECTION, "422 on the comment: conclusion", run.conclusion, target="failure")
    assert tries == 1  # an answer, not a transient failure: never retried
    assert run.conclusion == "failure"  # the verdict stands without its comment
    assert comments(hub) == []
    assert delivery.status is DeliveryStatus.PROCESSED
    assert build.status is BuildStatus.SUCCEEDED


async def test_a_token_that_expires_mid_build_is_refreshed_once(loop, chaos):
    hub, deliver = loop
    open_pull_request(hub)

    def expire_once_the_check_run_exists() -> None:
        assert hub.wait_for(lambda: bool(hub.check_runs(REPO)), 30)
        hub.expire_tokens()

    await asyncio.gather(
        deliver(hub.pull_request_event(REPO, 1)),
        asyncio.to_thread(expire_once_the_check_run_exists),
    )
    [run] = hub.check_runs(REPO)
    rejected = sum(call.status == 401 for call in hub.calls)
    chaos.record(SECTION, "token expired mid-build: requests refused with 401", rejected)
    chaos.record(SECTION, "token expired mid-build: conclusion", run.conclusion, target="failure")
    chaos.record(SECTION, "token expired mid-build: duplicates", duplicates(hub), target="0")
    assert rejected >= 1 and run.conclusion == "failure" and len(comments(hub)) == 1


@pytest.fixture
def quick_node_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Node retries keep their number but wait a moment, not seconds."""
    monkeypatch.setattr(Node, "retry_delay", lambda node, attempt: 0.01)


async def test_persistent_5xx_past_the_budget_ends_neutral_saying_why(
    loop, db, chaos, quick_node_retries
):
    hub, deliver = loop
    open_pull_request(hub)
    # Every publish attempt (5 requests each, 4 attempts) fails; the neutral ending then gets through.
    hub.inject("checks/update", status=502, times=20)
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    build, delivery = await build_and_delivery(db)
    tokens = [token for token in hub.tokens]
    leaked = [token for token in tokens if token in str(run.output)]
    chaos.record(SECTION, "persistent 502: conclusion", run.conclusion, target="neutral")
    chaos.record(SECTION, "persistent 502: requests tried", injected(hub, "checks/update"))
    chaos.record(SECTION, "persistent 502: tokens in the output", len(leaked), target="0")
    assert (run.status, run.conclusion) == ("completed", "neutral")
    assert "could not finish" in run.output["title"] and "502" in run.output["summary"]
    assert tokens and not leaked
    assert build.status is BuildStatus.FAILED
    assert delivery.status is DeliveryStatus.PROCESSED
    assert comments(hub) == []


async def test_an_installation_suspended_mid_build_gives_up_without_retrying(loop, db, chaos):
    hub, deliver = loop
    open_pull_request(hub)
    installation = next(iter(hub.installations))

    def suspend_once_the_check_run_exists() -> None:
        assert hub.wait_for(lambda: bool(hub.check_runs(REPO)), 30)
        hub.suspend(installation)

    await asyncio.gather(
        deliver(hub.pull_request_event(REPO, 1)),
        asyncio.to_thread(suspend_once_the_check_run_exists),
    )
    build, delivery = await build_and_delivery(db)
    refused = sum(call.status == 403 for call in hub.calls)
    chaos.record(SECTION, "installation suspended mid-build: requests refused", refused)
    chaos.record(SECTION, "installation suspended mid-build: build", build.status.value)
    assert build.status is BuildStatus.FAILED
    assert delivery.status is DeliveryStatus.PROCESSED
    assert len(hub.check_runs(REPO)) == 1 and comments(hub) == []
    assert refused <= 3  # refusals are answers: no retry storm

    # Unsuspended: the scan the suspension cut off runs again and completes its check run.
    hub.suspend(installation, suspended=False)
    await deliver(hub.installation_event(installation, "unsuspend"))
    [run] = hub.check_runs(REPO)
    chaos.record(
        SECTION,
        "installation unsuspended: the check run left in progress",
        f"{run.status}, {run.conclusion}",
        target="completed",
        ok=run.status == "completed",
    )
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert len(comments(hub)) == 1
