"""The pull-request loop end to end: signed delivery → intake → worker → sandbox → scanner → check run and comment."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

from bot.worker import create_worker
from localhub import Event, Hub, running, serving
from orchestrator.publish_render import COMMENT_MARKER
from orchestrator.sandbox.local import LocalSandboxProvider
from tests.conftest import WEBHOOK_SECRET
from tests.webhook_fixtures import fixture

REPO = "octo-org/app"
BASE = {
    "README.md": b"# app\n",
    "api/main.py": b'from fastapi import FastAPI\n\napp = FastAPI()\n\n\n@app.get("/health")\ndef health() -> dict:\n    return {"ok": True}\n',
}
VULNERABLE = (
    BASE["api/main.py"]
    + b'\n\n@app.get("/tasks")\ndef tasks(q: str):\n    import sqlite3\n\n'
    + b"    return sqlite3.connect('app.db').execute(f\"SELECT * FROM tasks WHERE title = '{q}'\").fetchall()\n"
)
FIXED = (
    BASE["api/main.py"]
    + b'\n\n@app.get("/tasks")\ndef tasks(q: str):\n    import sqlite3\n\n'
    + b'    return sqlite3.connect("app.db").execute("SELECT * FROM tasks WHERE title = ?", (q,)).fetchall()\n'
)


@pytest.fixture
async def loop(db, make_settings, app_private_key, loop_settings):
    hub = Hub(
        app_id=4242,
        client_id="Iv1.testclient",
        private_key_pem=app_private_key,
        webhook_secret=WEBHOOK_SECRET,
    )
    installation = hub.add_installation("octo-org", installation_id=77)
    hub.add_repository("octo-org", "app", BASE, installation_id=installation.id)
    root = Path(tempfile.mkdtemp(prefix="clarity-pr-test-"))
    with running(hub) as github_url:
        settings = make_settings(
            database_url=db.url, github_api_url=github_url, sandbox_root=root, **loop_settings
        )
        from bot.app import create_app

        with serving(create_app(settings)) as service_url:
            hub.webhook_url = f"{service_url}/webhooks/github"

            async def deliver(event) -> None:
                delivery = await hub.deliver(event)
                assert delivery.status_code == 202, delivery.status_code
                worker = create_worker(settings, burst=True, poll_delay=0.01, handle_signals=False)
                try:
                    await worker.main()
                finally:
                    await worker.close()

            yield hub, deliver
    await LocalSandboxProvider(root).reap(older_than=timedelta(0))


def comments(hub: Hub) -> list:
    return [c for c in hub.comments(REPO, 1) if COMMENT_MARKER in c.body]


async def test_a_new_finding_fails_the_check_with_an_annotation_and_one_comment(loop):
    hub, deliver = loop
    hub.commit_files(REPO, "feature", {"api/main.py": VULNERABLE}, message="Add task search")
    hub.open_pull_request(REPO, "feature", title="Task search")
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert run.head_sha == hub.head_sha(hub.pull_request(REPO, 1))
    assert any(
        a["path"] == "api/main.py" and a["annotation_level"] == "failure" for a in run.annotations
    )
    assert "/builds/" in run.details_url and "/v1/" not in run.details_url
    assert len(comments(hub)) == 1


async def test_a_push_that_fixes_it_passes_and_updates_the_same_comment(loop):
    hub, deliver = loop
    hub.commit_files(REPO, "feature", {"api/main.py": VULNERABLE}, message="Add task search")
    hub.open_pull_request(REPO, "feature", title="Task search")
    await deliver(hub.pull_request_event(REPO, 1))
    [first_comment] = comments(hub)
    before = hub.head_sha(hub.pull_request(REPO, 1))
    hub.commit_files(REPO, "feature", {"api/main.py": FIXED}, message="Bind the parameter")
    await deliver(hub.pull_request_event(REPO, 1, "synchronize", before=before))
    runs = {run.head_sha: run for run in hub.check_runs(REPO)}
    assert runs[before].conclusion == "failure"
    assert runs[hub.head_sha(hub.pull_request(REPO, 1))].conclusion == "success"
    [comment] = comments(hub)
    assert comment.id == first_comment.id
    assert (
        f"Since `{before[:7]}`" in comment.body and "**1 fixed**" in comment.body
    )  # what the push fixed


async def test_the_same_delivery_twice_makes_one_check_run_and_one_comment(loop):
    hub, deliver = loop
    hub.commit_files(REPO, "feature", {"api/main.py": VULNERABLE}, message="Add task search")
    hub.open_pull_request(REPO, "feature", title="Task search")
    event = hub.pull_request_event(REPO, 1)
    await deliver(event)
    again = await hub.deliver(event)  # GitHub's redelivery: same body
    assert again.status_code == 200
    assert len(hub.check_runs(REPO)) == 1
    assert len(comments(hub)) == 1


def check_run_rerequested(hub: Hub, sha: str) -> Event:
    """GitHub's example payload, pointed at the stand-in's repository, pull request and commit."""
    pr_event = hub.pull_request_event(REPO, 1)
    payload = copy.deepcopy(fixture("check_run/rerequested"))
    payload["repository"] = pr_event.payload["repository"]
    payload["installation"] = pr_event.payload["installation"]
    payload["check_run"]["head_sha"] = sha
    payload["check_run"]["pull_requests"] = [
        {
            "number": 1,
            "id": 1,
            "url": "",
            "head": {"ref": "feature", "sha": sha, "repo": {}},
            "base": {"ref": "main", "sha": sha, "repo": {}},
        }
    ]
    return Event("check_run", payload)


async def test_a_rerequested_check_scans_again_into_the_same_check_run(loop):
    hub, deliver = loop
    hub.commit_files(REPO, "feature", {"api/main.py": VULNERABLE}, message="Add task search")
    hub.open_pull_request(REPO, "feature", title="Task search")
    await deliver(hub.pull_request_event(REPO, 1))
    sha = hub.head_sha(hub.pull_request(REPO, 1))
    await deliver(check_run_rerequested(hub, sha))
    [run] = hub.check_runs(REPO)
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert len(hub.calls_for("checks/create")) == 1
    assert len(hub.calls_for("apps/create-installation-access-token")) >= 2  # really ran twice
    assert len(comments(hub)) == 1


async def test_a_check_run_made_by_an_attempt_that_died_is_taken_over_not_made_again(loop, db):
    """GitHub created the check run, then the worker died before recording its id: the
    next attempt finds it on GitHub instead of creating a second one."""
    from sqlmodel import select

    from bot.models import CheckRun

    hub, deliver = loop
    hub.commit_files(REPO, "feature", {"api/main.py": VULNERABLE}, message="Add task search")
    hub.open_pull_request(REPO, "feature", title="Task search")
    await deliver(hub.pull_request_event(REPO, 1))
    async with db.session() as session:
        [row] = list(await session.exec(select(CheckRun)))
        row.github_id = None
        session.add(row)
        await session.commit()
    await deliver(check_run_rerequested(hub, hub.head_sha(hub.pull_request(REPO, 1))))
    [run] = hub.check_runs(REPO)
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert len(hub.calls_for("checks/create")) == 1


async def test_an_invalid_clarity_yml_gives_a_neutral_check_run_saying_where(loop):
    hub, deliver = loop
    hub.commit_files(
        REPO,
        "feature",
        {"api/main.py": VULNERABLE, ".clarity.yml": "version: 1\nrules: [oops\n"},
        message="Config",
    )
    hub.open_pull_request(REPO, "feature", title="Config")
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    assert run.conclusion == "neutral"
    assert ".clarity.yml" in run.output["title"]
    assert "line" in run.output["summary"]


async def test_findings_already_on_the_default_branch_do_not_fail_a_pull_request(loop):
    hub, deliver = loop
    before = hub.ref(REPO, "main")
    hub.commit_files(REPO, "main", {"api/main.py": VULNERABLE}, message="Old debt")
    await deliver(hub.push_event(REPO, "main", before))  # the baseline: no check run of its own
    assert hub.check_runs(REPO) == []
    hub.commit_files(
        REPO, "feature", {"README.md": b"# app\n\nDocs.\n"}, message="Docs", base="main"
    )
    hub.open_pull_request(REPO, "feature", title="Docs")
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    assert run.conclusion == "success"
    assert "persisting" in run.output["summary"]


async def test_github_502s_while_publishing_are_retried_without_duplicates(loop):
    hub, deliver = loop
    hub.commit_files(REPO, "feature", {"api/main.py": VULNERABLE}, message="Add task search")
    hub.open_pull_request(REPO, "feature", title="Task search")
    hub.inject("checks/update", status=502, times=2)
    hub.inject_secondary_rate_limit("issues/create-comment", retry_after=0)
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    assert run.conclusion == "failure"
    paths = [(a["path"], a["start_line"], a["title"]) for a in run.annotations]
    assert len(paths) == len(set(paths))  # no annotation sent twice
    assert len(comments(hub)) == 1


async def test_120_findings_on_changed_lines_are_annotated_in_three_requests(loop):
    hub, deliver = loop
    body = "import subprocess\n\n\ndef run(commands):\n" + "".join(
        f"    subprocess.run(commands[{i}], shell=True)\n" for i in range(120)
    )
    hub.commit_files(REPO, "feature", {"api/rules.py": body}, message="Rule engine")
    hub.open_pull_request(REPO, "feature", title="Rule engine")
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    batches = [
        len(call.request_json["output"].get("annotations", []))
        for call in hub.calls_for("checks/update")
    ]
    assert batches == [50, 50, 20]
    assert len(run.annotations) == 120


async def test_concurrent_deliveries_for_one_head_make_one_check_run_and_one_comment(loop):
    hub, deliver = loop
    hub.commit_files(REPO, "feature", {"api/main.py": VULNERABLE}, message="Add task search")
    hub.open_pull_request(REPO, "feature", title="Task search")
    opened, reopened = hub.pull_request_event(REPO, 1), hub.pull_request_event(REPO, 1, "reopened")
    first, second = await asyncio.gather(hub.deliver(opened), hub.deliver(reopened))
    assert (first.status_code, second.status_code) == (202, 202)
    await deliver(hub.pull_request_event(REPO, 1, "ready_for_review"))
    assert len(hub.check_runs(REPO)) == 1
    assert len(comments(hub)) == 1


TURN_OFF_SQL_RULE = "version: 1\nrules:\n  py-sql-injection: off\n"


async def test_a_same_repository_pull_request_uses_its_own_clarity_yml(loop):
    hub, deliver = loop
    hub.commit_files(
        REPO, "feature", {"api/main.py": VULNERABLE, ".clarity.yml": TURN_OFF_SQL_RULE}, message="x"
    )
    hub.open_pull_request(REPO, "feature", title="x")
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    assert run.conclusion == "success"


async def test_a_fork_pull_request_is_judged_by_the_base_branchs_clarity_yml(loop):
    hub, deliver = loop
    hub.add_repository("mallory", "app", fork_of=REPO)
    hub.commit_files(
        "mallory/app",
        "feature",
        {"api/main.py": VULNERABLE, ".clarity.yml": TURN_OFF_SQL_RULE},
        message="x",
    )
    hub.open_pull_request(REPO, "feature", title="x", head_repo="mallory/app", user="mallory")
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    assert run.conclusion == "failure"  # the fork cannot switch the rule off for itself


async def test_drafts_are_skipped_when_the_repository_says_so(loop):
    hub, deliver = loop
    hub.commit_files(REPO, "main", {".clarity.yml": "version: 1\ndrafts: skip\n"}, message="Config")
    hub.commit_files(REPO, "feature", {"api/main.py": VULNERABLE}, message="x", base="main")
    hub.open_pull_request(REPO, "feature", title="x", draft=True)
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    assert run.conclusion == "neutral" and "draft" in run.output["summary"]
    assert comments(hub) == []


async def test_comment_never_keeps_the_pull_request_quiet(loop):
    hub, deliver = loop
    hub.commit_files(
        REPO,
        "feature",
        {"api/main.py": VULNERABLE, ".clarity.yml": "version: 1\ncomment: never\n"},
        message="x",
    )
    hub.open_pull_request(REPO, "feature", title="x")
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    assert run.conclusion == "failure"
    assert comments(hub) == []


async def test_a_build_that_fails_on_our_side_ends_its_check_run_neutral_with_the_reason(loop):
    hub, deliver = loop
    hub.commit_files(REPO, "feature", {"api/main.py": VULNERABLE}, message="x")
    hub.open_pull_request(REPO, "feature", title="x")
    hub.inject("repos/download-tarball-archive", status=404, times=10)
    await deliver(hub.pull_request_event(REPO, 1))
    [run] = hub.check_runs(REPO)
    assert (run.status, run.conclusion) == ("completed", "neutral")
    assert "could not finish" in run.output["title"] and "404" in run.output["summary"]


@contextlib.asynccontextmanager
async def background_worker(hub: Hub, db, make_settings):
    """A real worker running while the test delivers events (instead of draining in bursts)."""
    settings = make_settings(
        database_url=db.url, github_api_url=hub.base_url, sandbox_root=Path(tempfile.mkdtemp())
    )
    worker = create_worker(settings, poll_delay=0.01, handle_signals=False)
    running_worker = asyncio.create_task(worker.main())
    try:
        yield
    finally:
        # Stopping a worker mid-job: the job's cancellation may surface here; it is the point.
        running_worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running_worker
        with contextlib.suppress(asyncio.CancelledError):
            await worker.close()


async def open_held_pull_request(hub: Hub) -> str:
    """Opens PR 1 whose first build is held in flight (one 502 on its archive: a 2 s backoff)."""
    hub.commit_files(REPO, "feature", {"api/main.py": VULNERABLE}, message="Add task search")
    hub.open_pull_request(REPO, "feature", title="Task search")
    hub.inject("repos/download-tarball-archive", status=502)
    await hub.deliver(hub.pull_request_event(REPO, 1))
    assert await asyncio.to_thread(hub.wait_for, lambda: bool(hub.check_runs(REPO)), 30)
    return hub.head_sha(hub.pull_request(REPO, 1))


async def test_a_newer_push_supersedes_the_build_in_flight(loop, db, make_settings):
    hub, _ = loop
    async with background_worker(hub, db, make_settings):
        first = await open_held_pull_request(hub)
        hub.commit_files(REPO, "feature", {"api/main.py": FIXED}, message="Bind the parameter")
        second = hub.head_sha(hub.pull_request(REPO, 1))
        await hub.deliver(hub.pull_request_event(REPO, 1, "synchronize", before=first))

        def both_done() -> bool:
            runs = {run.head_sha: run for run in hub.check_runs(REPO)}
            return len(runs) == 2 and all(run.status == "completed" for run in runs.values())

        assert await asyncio.to_thread(hub.wait_for, both_done, 60)
    runs = {run.head_sha: run for run in hub.check_runs(REPO)}
    assert runs[first].conclusion == "neutral"
    assert (
        "superseded" in runs[first].output["title"].lower()
        and second[:12] in runs[first].output["summary"]
    )
    assert runs[second].conclusion == "success"


async def test_closing_the_pull_request_stops_its_build_and_says_so(loop, db, make_settings):
    hub, _ = loop
    async with background_worker(hub, db, make_settings):
        await open_held_pull_request(hub)
        await hub.deliver(hub.pull_request_event(REPO, 1, "closed"))
        assert await asyncio.to_thread(
            hub.wait_for, lambda: hub.check_runs(REPO)[0].status == "completed", 30
        )
    [run] = hub.check_runs(REPO)
    assert run.conclusion == "neutral" and "closed" in run.output["title"]
    assert comments(hub) == []


async def test_a_superseded_build_that_finished_meanwhile_is_left_as_it_is(
    db, make_settings, queue, monkeypatch
):
    """In-flight builds are listed, then aborted: one may finish in between (seen under load)."""
    from bot.models import Build, BuildStatus, BuildTier, Installation, Repository
    from handlers import pull_request
    from handlers.context import HandlerContext
    from orchestrator import control
    from orchestrator.pr_scan import PR_SCAN_DAG

    async with db.session() as session:
        session.add(Installation(id=1, account_login="octo-org"))
        await session.flush()
        session.add(Repository(id=10, installation_id=1, full_name=REPO))
        await session.commit()
    heads = dict(installation_id=1, repository_id=10, tier=BuildTier.SCAN, pr_number=7)
    old = await control.create_build(db, PR_SCAN_DAG, head_sha="a" * 40, trigger="t", **heads)
    async with db.session() as session:
        (await session.get(Build, old.id)).status = BuildStatus.SUCCEEDED
        await session.commit()
    listed_while_running = [old.id]

    async def in_flight(*args, **kwargs):
        return listed_while_running

    monkeypatch.setattr(pull_request, "in_flight", in_flight)
    ctx = HandlerContext(db=db, queue=queue, delivery_id="d1", settings=make_settings())
    new = await pull_request.scan_commit(
        ctx,
        installation_id=1,
        repository_id=10,
        head_sha="b" * 40,
        pr_number=7,
        trigger="pull_request.synchronize",
        requester=None,
        gh=object(),  # its check run is finished: nothing may be published about it
    )

    assert new is not None and new != old.id
    async with db.session() as session:
        assert (await session.get(Build, old.id)).status is BuildStatus.SUCCEEDED
