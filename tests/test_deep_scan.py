"""`/clarity deep-scan` end to end: comment → quote → agents in sandboxes → check run and report.

The real OpenHands loop runs in the slow lane's worker, driven by a scripted model
over HTTP; its tools run in real bubblewrap sandboxes of the pull request's head.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time

import httpx
import pytest
from sqlmodel import select

from bot.auth import capability
from bot.models import Build, BuildEvent, BuildMode, Quote, Trajectory, Usage
from bot.worker import create_worker
from localhub import Hub
from orchestrator.deep_report import DEEP_CHECK_NAME, REPORT_MARKER
from orchestrator.events import EventType
from tests.agent_loop import agent_loop
from tests.daytona_standin import running_daytona
from tests.llm_standin import Fail, Hold, ScriptedModel, finish, terminal
from tests.test_pull_request import BASE, REPO, VULNERABLE

KEY = "sk-deep-" + "d" * 30


def given(body: dict) -> dict:
    """The input block of the role's task message (what the agent was handed)."""
    first = next(m for m in body["messages"] if m["role"] == "user")
    text = first["content"] if isinstance(first["content"], str) else first["content"][0]["text"]
    return json.loads(re.search(r"Input:\n```json\n(.*?)\n```", text, re.DOTALL).group(1))


def evidence(line: int = 1) -> list[dict]:
    return [{"path": "api/main.py", "line": line, "excerpt": "app = FastAPI()"}]


def security_answer(body: dict):
    findings = given(body)["findings"]
    verdicts = [
        {
            "fingerprint": f["fingerprint"],
            "verdict": "confirmed" if "sql" in f["rule_id"] else "rejected",
            "confidence": 0.8,
            "reasoning": "read the code",
            "evidence": evidence(),
        }
        for f in findings
    ]
    return finish({"verdicts": verdicts})


def planner_answer(body: dict):
    prints = given(body)["findings"]
    step = {
        "id": "bind-parameters",
        "title": "Bind the query parameters",
        "findings": prints,
        "files": ["api/main.py"],
        "effort": "s",
        "depends_on": [],
        "rationale": "user input reaches SQL",
    }
    return finish({"summary": "One step.", "steps": [step]})


def educator_answer(body: dict):
    lessons = [
        {"fingerprint": p, "why_it_matters": "attackers read the data", "business_impact": "a leak"}
        for p in given(body)["findings"]
    ]
    return finish({"summary": "Why it matters.", "lessons": lessons})


SCANNER_OUT = {
    "summary": "A FastAPI app.",
    "architecture": "One FastAPI module.",
    "concerns": [
        {
            "title": "No authentication on task search",
            "severity": "medium",
            "category": "security",
            "area": "auth",
            "explanation": "Anyone can search every task.",
            "evidence": evidence(9),
        }
    ],
}
PROBER_OUT = {
    "summary": "Lists the project.",
    "runnable": False,
    "steps": [
        {
            "name": "other",
            "command": "ls api",
            "outcome": "passed",
            "exit_code": 0,
            "detail": "main.py",
        }
    ],
}


def script_all(model: ScriptedModel) -> None:
    model.script("scanner", terminal("grep -n route api/main.py"), finish(SCANNER_OUT))
    model.script("prober", terminal("ls api"), finish(PROBER_OUT))
    model.script("security", terminal("grep -n SELECT api/main.py"), security_answer)
    model.script("planner", planner_answer)
    model.script("educator", educator_answer)


@pytest.fixture
async def deep(db, make_settings, app_private_key, model):
    """The App with a pull request adding a SQL injection, already scanned by Tier 1."""
    prices = {"llm_input_cost_per_token": 1e-6, "llm_output_cost_per_token": 2e-6}
    async with agent_loop(
        db, make_settings, app_private_key, model, BASE, llm_api_key=KEY, **prices
    ) as loop:
        hub = loop.hub
        hub.commit_files(REPO, "feature", {"api/main.py": VULNERABLE}, message="Task search")
        hub.open_pull_request(REPO, "feature", title="Task search")
        await loop.deliver(hub.pull_request_event(REPO, 1))
        yield loop


def replies(hub: Hub) -> list[str]:
    ours = hub.app.bot_login
    return [
        c.body for c in hub.comments(REPO, 1) if c.user == ours and "clarity-check:" not in c.body
    ]


def report(hub: Hub) -> list:
    return [c for c in hub.comments(REPO, 1) if REPORT_MARKER in c.body]


def deep_run(hub: Hub):
    [run] = [r for r in hub.check_runs(REPO) if r.name == DEEP_CHECK_NAME]
    return run


async def builds(db) -> list[Build]:
    async with db.session() as session:
        return list(await session.exec(select(Build).where(Build.tier == "deep_scan")))


async def test_deep_scan_runs_every_agent_and_publishes_a_validated_report(deep, model, db):
    hub, comment, configure = deep
    script_all(model)
    await comment("/clarity deep-scan")
    run = deep_run(hub)
    assert (run.status, run.conclusion) == ("completed", "failure")  # the SQL injection stands
    [body] = [c.body for c in report(hub)]
    assert "Bind the query parameters" in body
    assert "No authentication on task search" in body
    [build] = await builds(db)
    assert build.mode is BuildMode.AUTONOMOUS and build.status == "succeeded"
    assert build.cost_usd > 0
    async with db.session() as session:
        trajectories = list(await session.exec(select(Trajectory)))
        usage = list(await session.exec(select(Usage).where(Usage.kind == "deep_scans")))
    assert {t.role for t in trajectories} == {
        "scanner",
        "prober",
        "security",
        "planner",
        "educator",
    }
    assert all(t.status == "finished" for t in trajectories)
    assert {u.scope: u.amount for u in usage} == {"installation": 1, "user": 1, "pull_request": 1}
    assert "Deep scan of" in replies(hub)[-1] and "Cost estimate" in replies(hub)[-1]
    assert KEY not in str([t.events for t in trajectories]) + body
    cap = capability(build.id, configure().link_key())
    async with httpx.AsyncClient() as client:  # what the build page reads, with the build's link
        url = f"{deep.service_url}/v1/builds/{build.id}/trajectories?cap={cap}"
        shown = (await client.get(url)).json()
    security = next(t for t in shown["trajectories"] if t["role"] == "security")
    assert any(
        e.get("tool") == "terminal" and "SELECT" in e.get("output", "") for e in security["events"]
    )


async def test_a_second_deep_scan_updates_the_same_report_comment(deep, model):
    hub, comment, _ = deep
    script_all(model)
    await comment("/clarity deep-scan")
    script_all(model)
    await comment("/clarity deep-scan")
    assert len(report(hub)) == 1
    assert len([r for r in hub.check_runs(REPO) if r.name == DEEP_CHECK_NAME]) == 1


async def test_without_a_model_the_deep_scan_falls_back_and_says_why(deep, db):
    hub, comment, configure = deep
    configure(llm_model=None)
    await comment("/clarity deep-scan")
    [build] = await builds(db)
    assert build.mode is BuildMode.DETERMINISTIC
    async with db.session() as session:
        switched = (
            await session.exec(
                select(BuildEvent).where(BuildEvent.type == EventType.FALLBACK_MODE_SWITCHED)
            )
        ).all()
    assert len(switched) == 1
    [body] = [c.body for c in report(hub)]
    assert "no model is configured" in body
    assert deep_run(hub).conclusion == "failure"  # Tier 1's answer still stands


async def test_a_model_that_keeps_failing_falls_back_to_the_deterministic_report(deep, model, db):
    hub, comment, _ = deep
    for role in ("scanner", "prober", "security", "planner", "educator"):
        model.always_fail(role, Fail(500))
    await comment("/clarity deep-scan")
    [build] = await builds(db)
    assert build.mode is BuildMode.DETERMINISTIC and build.status == "succeeded"
    [body] = [c.body for c in report(hub)]
    assert "the model failed" in body


async def test_the_fallback_model_takes_over_when_the_first_fails(deep, model, db):
    hub, comment, configure = deep
    configure(llm_model="openai/broken", llm_fallback_model="openai/scripted")
    script_all(model)
    model.scripts["scanner"].insert(0, Fail(500))  # the first model's one call fails
    await comment("/clarity deep-scan")
    [build] = await builds(db)
    assert build.mode is BuildMode.AUTONOMOUS and build.status == "succeeded"
    async with db.session() as session:
        scanner = list(await session.exec(select(Trajectory).where(Trajectory.role == "scanner")))
    assert [(t.model, t.status) for t in scanner] == [
        ("openai/broken", "model_error"),
        ("openai/scripted", "finished"),
    ]


async def test_a_reader_may_not_start_a_deep_scan(deep, db):
    hub, comment, _ = deep
    hub.set_permission(REPO, "visitor", "read")
    await comment("/clarity deep-scan", user="visitor")
    assert "@visitor cannot run `/clarity deep-scan`" in replies(hub)[-1]
    assert await builds(db) == []


async def test_over_quota_says_when_it_resets_and_starts_nothing(deep, db):
    hub, comment, configure = deep
    configure(policy_pack="strict")
    strict_limit = 2  # the strict pack's per-PR deep scans (asserted below from the pack)
    from policies import load_pack

    assert load_pack("strict").quotas.per_pull_request.deep_scans == strict_limit
    async with db.session() as session:
        from bot.models import utcnow

        session.add(
            Usage(
                installation_id=77,
                scope="pull_request",
                subject=f"{REPO}#1",
                kind="deep_scans",
                period_start=utcnow().replace(
                    year=1970, month=1, day=1, hour=0, minute=0, second=0, microsecond=0
                ),
                amount=strict_limit,
            )
        )
        await session.commit()
    await comment("/clarity deep-scan")
    assert "no deep scan was started" in replies(hub)[-1]
    assert "pull request quota" in replies(hub)[-1]
    assert await builds(db) == []


async def test_an_expensive_quote_waits_for_a_confirmation(deep, model, db):
    hub, comment, configure = deep
    configure(llm_input_cost_per_token=3e-5, llm_output_cost_per_token=3e-5)
    await comment("/clarity deep-scan")
    assert "reply `/clarity deep-scan confirm`" in replies(hub)[-1]
    assert await builds(db) == []
    script_all(model)
    await comment("/clarity deep-scan confirm")
    [build] = await builds(db)
    assert build.status == "succeeded"
    async with db.session() as session:
        [quote] = list(await session.exec(select(Quote)))
    assert quote.status == "confirmed" and quote.build_id == build.id


async def test_a_confirm_without_a_quote_is_answered(deep, db):
    hub, comment, _ = deep
    await comment("/clarity deep-scan confirm")
    assert "No deep scan is waiting" in replies(hub)[-1]


async def test_the_same_comment_delivered_twice_starts_one_build(deep, model, db):
    hub, comment, configure = deep
    script_all(model)
    made = await comment("/clarity deep-scan")
    # A second delivery of the same comment whose body differs (so intake's replay check
    # passes it on): the handler must still start nothing new.
    event = hub.issue_comment_event(made)
    event.payload["delivered_again"] = True
    again = await hub.deliver(event)
    assert again.status_code == 202
    worker = create_worker(configure(), "fast", burst=True, poll_delay=0.01, handle_signals=False)
    try:
        await worker.main()
    finally:
        await worker.close()
    assert len(await builds(db)) == 1
    assert sum("started" in r for r in replies(hub)) == 1


async def test_abort_mid_run_stops_the_agents_and_ends_the_check_run_neutral(deep, model, db):
    hub, _, configure = deep
    script_all(model)
    held = Hold(then=finish(SCANNER_OUT))
    model.script("scanner", held)
    settings = configure()
    started = hub.add_comment(REPO, 1, "/clarity deep-scan", user="maintainer")
    await hub.deliver(hub.issue_comment_event(started))
    await deep.burst("fast")
    slow = create_worker(settings, "slow", poll_delay=0.01, handle_signals=False)
    running = asyncio.create_task(slow.main())
    try:
        assert await asyncio.to_thread(held.reached.wait, 60)  # the scanner agent is thinking
        stop = hub.add_comment(REPO, 1, "/clarity abort", user="maintainer")
        await hub.deliver(hub.issue_comment_event(stop))
        await deep.burst("fast")
        deadline = time.monotonic() + 60
        while slow.jobs_complete + slow.jobs_failed < 1:  # the build's job has ended
            assert time.monotonic() < deadline, "the aborted build's job did not end"
            await asyncio.sleep(0.05)
    finally:
        held.release.set()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        with contextlib.suppress(asyncio.CancelledError):
            await slow.close()
    [build] = await builds(db)
    assert build.status == "aborted"
    run = deep_run(hub)
    assert (run.status, run.conclusion) == ("completed", "neutral")
    assert "Aborted by @maintainer" in run.output["summary"]
    assert report(hub) == []
    assert [p for p in deep.root.iterdir() if p.name.startswith("sbx-")] == []  # sandboxes gone


async def test_the_deep_scan_runs_its_agents_in_daytona_sandboxes(deep, model, db):
    hub, comment, configure = deep
    with running_daytona() as (api_url, api_key, state):
        configure(sandbox_backend="daytona", daytona_api_url=api_url, daytona_api_key=api_key)
        script_all(model)
        await comment("/clarity deep-scan")
        created = len(state.creates)
    [build] = await builds(db)
    assert build.mode is BuildMode.AUTONOMOUS and build.status == "succeeded"
    assert deep_run(hub).conclusion == "failure"
    assert "Bind the query parameters" in report(hub)[0].body
    assert created == 6  # the baseline and five agents, each in a sandbox of its own
