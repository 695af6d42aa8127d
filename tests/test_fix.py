"""`/clarity fix` end to end: a builder agent's patch, the gates with a real test run, the fix PR.

The real OpenHands loop (scripted model) edits a sandbox of the pull request's head;
the repository's own pytest suite runs before and after inside bubblewrap; the
control plane commits through the stand-in's Git Data API, which validates each call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import select

from bot.models import Build, FixAttempt, FixOutcome, Task
from localhub import Hub
from orchestrator.publish_comment import short_id
from tests.agent_loop import Loop, agent_loop
from tests.llm_standin import Call, finish, terminal
from tests.test_pull_request import check_run_rerequested
from tests.test_test_runs import pytest_toolchain  # noqa: F401  (the fixture)

REPO = "octo-org/app"
SAFE = (
    b"import sqlite3\n\n\ndef search(conn: sqlite3.Connection, title: str) -> list:\n"
    b'    return conn.execute("SELECT id, title FROM tasks WHERE title = ?", (title,)).fetchall()\n'
)
VULNERABLE = (
    b"import sqlite3\n\n\ndef search(conn: sqlite3.Connection, title: str) -> list:\n"
    b"    return conn.execute(f\"SELECT id, title FROM tasks WHERE title = '{title}'\").fetchall()\n"
)
TESTS = b"""import sqlite3

from api.tasks import search


def db():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT)")
    conn.executemany("INSERT INTO tasks (title) VALUES (?)", [("write docs",), ("ship",)])
    return conn


def test_search_finds_a_task_by_title():
    assert search(db(), "ship") == [(2, "ship")]


def test_search_finds_nothing_for_an_unknown_title():
    assert search(db(), "nope") == []
"""
BASE = {
    "README.md": b"# app\n",
    "api/__init__.py": b"",
    "api/tasks.py": SAFE,
    "tests/__init__.py": b"",
    "tests/test_tasks.py": TESTS,
}
OLD = "conn.execute(f\"SELECT id, title FROM tasks WHERE title = '{title}'\")"
NEW = 'conn.execute("SELECT id, title FROM tasks WHERE title = ?", (title,))'
BROKEN = 'conn.execute("SELECT id, title FROM tasks WHERE 1 = 0")'
PATH = "/workspace/api/tasks.py"


def edit(new: str = NEW, path: str = PATH, old: str = OLD) -> Call:
    return Call(
        "file_editor", {"command": "str_replace", "path": path, "old_str": old, "new_str": new}
    )


def answer(*files: str) -> Call:
    return finish(
        {
            "summary": "Bind the title as a query parameter",
            "files_changed": list(files or ["api/tasks.py"]),
            "explanation": "The title was formatted into the SQL text; it is now a bound parameter.",
            "verification": "Run pytest; search for a title containing a quote.",
        }
    )


@pytest.fixture
def database_url(postgresql_database: str) -> str:
    """PostgreSQL only: each fix runs a repository's tests several times, and the data layer
    under it is exercised on both backends by the scan and deep-scan suites."""
    return postgresql_database


@dataclass
class Fixing:
    loop: Loop
    ident: str  # the SQL injection's short id

    @property
    def hub(self) -> Hub:
        return self.loop.hub

    def __getattr__(self, name: str) -> Any:  # comment, deliver, configure
        return getattr(self.loop, name)


@pytest.fixture
async def fixing(db, make_settings, app_private_key, model, pytest_toolchain):  # noqa: F811
    """The App with a pull request adding a SQL injection, scanned; pytest in the sandboxes."""
    async with agent_loop(
        db, make_settings, app_private_key, model, BASE, sandbox_toolchains=[str(pytest_toolchain)]
    ) as loop:
        hub = loop.hub
        hub.commit_files(REPO, "feature", {"api/tasks.py": VULNERABLE}, message="Search")
        hub.open_pull_request(REPO, "feature", title="Search tasks")
        await loop.deliver(hub.pull_request_event(REPO, 1))
        async with db.session() as session:
            scans = list(await session.exec(select(Task).where(Task.key == "scan")))
        findings = scans[-1].result["report"]["findings"]
        [injection] = [f for f in findings if f["rule_id"] == "py-sql-injection"]
        yield Fixing(loop, short_id(injection["fingerprint"]))


def replies(hub: Hub, number: int = 1) -> list[str]:
    ours = hub.app.bot_login
    return [
        c.body
        for c in hub.comments(REPO, number)
        if c.user == ours and "clarity-check:" not in c.body
    ]


def fix_pulls(hub: Hub) -> list:
    return [p for p in hub.pull_requests(REPO) if p.number != 1]


async def attempts(db) -> list[FixAttempt]:
    async with db.session() as session:
        return list(await session.exec(select(FixAttempt)))


async def test_a_planted_sql_injection_is_fixed_in_a_checked_pull_request(fixing, model, db):
    model.script("builder", edit(), terminal("python3 -m pytest -q"), answer())
    await fixing.comment(f"/clarity fix {fixing.ident}")
    [pull] = fix_pulls(fixing.hub)
    [attempt] = await attempts(db)
    assert (pull.head_ref, pull.base_ref) == (f"clarity/fix/1-{attempt.fingerprint[:8]}", "feature")
    files = fixing.hub.files(REPO, fixing.hub.ref(REPO, pull.head_ref))
    assert b"WHERE title = ?" in files["api/tasks.py"]
    assert attempt.outcome is FixOutcome.OPENED and attempt.fix_pr_number == pull.number
    gates = {g["gate"]: g for g in attempt.gate_results[-1]["gates"]}
    assert gates["tests"]["passed"] and gates["tests"]["evidence"]["verdict"] == "compared"
    assert gates["security"]["passed"] and "gone" in gates["security"]["reason"]
    assert any(f"#{pull.number}" in r for r in replies(fixing.hub))


async def test_a_fix_that_breaks_a_test_is_retried_then_refused(fixing, model, db):
    model.script(
        "builder",
        *[step for _ in range(3) for step in (edit(BROKEN), answer())],
    )
    await fixing.comment(f"/clarity fix {fixing.ident}")
    assert fix_pulls(fixing.hub) == []
    [attempt] = await attempts(db)
    assert attempt.outcome is FixOutcome.REFUSED
    assert "attempt 3: tests gate" in attempt.reason
    assert f"No fix pull request for **{fixing.ident}**" in replies(fixing.hub)[-1]


async def test_a_fix_that_touches_a_workflow_is_blocked_by_policy(fixing, model, db):
    workflow = Call(
        "file_editor",
        {
            "command": "create",
            "path": "/workspace/.github/workflows/ci.yml",
            "file_text": "on: push\n",
        },
    )
    model.script(
        "builder",
        *[
            s
            for _ in range(3)
            for s in (edit(), workflow, answer("api/tasks.py", ".github/workflows/ci.yml"))
        ],
    )
    await fixing.comment(f"/clarity fix {fixing.ident}")
    assert fix_pulls(fixing.hub) == []
    [attempt] = await attempts(db)
    assert attempt.outcome is FixOutcome.REFUSED and ".github/workflows/ci.yml" in attempt.reason


async def test_a_fix_that_adds_a_secret_is_blocked(fixing, model, db):
    key = 'AWS_KEY = "AKIA' + "Z7QW3RTY5UIOPLKJ" + '"\n'
    secret = edit(NEW + "\n" + key.strip(), PATH)
    model.script("builder", *[s for _ in range(3) for s in (secret, answer())])
    await fixing.comment(f"/clarity fix {fixing.ident}")
    assert fix_pulls(fixing.hub) == []
    [attempt] = await attempts(db)
    assert "secret" in attempt.reason
    assert "AKIAZ7QW3RTY5UIOPLKJ" not in " ".join(replies(fixing.hub))


async def test_a_second_request_updates_the_same_fix_pull_request(fixing, model, db):
    model.script("builder", edit(), answer())
    await fixing.comment(f"/clarity fix {fixing.ident}")
    model.script("builder", edit(), answer())
    await fixing.comment(f"/clarity fix {fixing.ident}")
    assert len(fix_pulls(fixing.hub)) == 1
    assert "Updated #" in replies(fixing.hub)[-1]
    async with db.session() as session:
        assert len(list(await session.exec(select(Build).where(Build.tier == "fix")))) == 2


async def test_an_unknown_finding_id_is_answered(fixing):
    await fixing.comment("/clarity fix CC-000000")
    assert "No finding `CC-000000`" in replies(fixing.hub)[-1]


async def test_a_human_checkpoint_waits_for_a_maintainer_and_refuses_a_reader(fixing, model, db):
    fixing.configure(policy_pack="strict")  # strict: every fix waits for a human
    fixing.hub.set_permission(REPO, "maintainer", "maintain")  # strict: maintainers start fixes
    fixing.hub.set_permission(REPO, "visitor", "read")
    model.script("builder", edit(), answer())
    await fixing.comment(f"/clarity fix {fixing.ident}")
    assert fix_pulls(fixing.hub) == []
    [attempt] = await attempts(db)
    assert attempt.outcome is FixOutcome.AWAITING_APPROVAL
    assert f"/clarity approve {fixing.ident}" in replies(fixing.hub)[-1]
    await fixing.comment(f"/clarity approve {fixing.ident}", user="visitor")
    assert "@visitor cannot run `/clarity approve`" in replies(fixing.hub)[-1]
    assert fix_pulls(fixing.hub) == []
    fixing.hub.set_permission(REPO, "maintainer", "admin")  # strict: only admins approve
    await fixing.comment(f"/clarity approve {fixing.ident}")
    [pull] = fix_pulls(fixing.hub)
    [attempt] = await attempts(db)
    assert attempt.outcome is FixOutcome.OPENED and attempt.approved_by == "maintainer"
    assert len(model.requests_for("builder")) == 2  # approving re-ran no agent


async def test_a_fork_pull_request_gets_the_fix_as_suggested_changes(fixing, model, db):
    hub = fixing.hub
    hub.add_repository("someone", "app", BASE, fork_of=REPO)
    hub.commit_files("someone/app", "patch-1", {"api/tasks.py": VULNERABLE}, message="Search")
    pull = hub.open_pull_request(REPO, "patch-1", title="From a fork", head_repo="someone/app")
    await fixing.deliver(hub.pull_request_event(REPO, pull.number))
    model.script("builder", edit(), answer())
    await fixing.comment(f"/clarity fix {fixing.ident}", number=pull.number)
    assert [p.number for p in fix_pulls(hub)] == [pull.number]  # no new PR
    assert not any("clarity/fix/" in ref for ref in hub.repository(REPO).git.refs)
    assert hub.calls_for("git/create-ref") == []  # no branch of ours
    [review] = hub.reviews(REPO, pull.number)
    assert review.event == "COMMENT" and fixing.ident in review.body
    [comment] = review.comments
    assert (comment.path, comment.line, comment.side) == ("api/tasks.py", 5, "RIGHT")
    assert comment.start_line is None
    assert comment.body.startswith("```suggestion\n") and "WHERE title = ?" in comment.body
    assert not any("```diff" in r for r in replies(hub, pull.number))


async def test_the_fix_button_fixes_the_new_critical_findings(fixing, model, db):
    hub = fixing.hub
    auth = b'import jwt\n\n\ndef user_of(token: str) -> dict:\n    return jwt.decode(token, options={"verify_signature": False})\n'
    before = hub.head_sha(hub.pull_request(REPO, 1))
    hub.commit_files(REPO, "feature", {"api/auth.py": auth}, message="Auth")
    await fixing.deliver(hub.pull_request_event(REPO, 1, "synchronize", before=before))
    sha = hub.head_sha(hub.pull_request(REPO, 1))
    run = next(r for r in hub.check_runs(REPO) if r.head_sha == sha and r.name == "Clarity Check")
    assert [a["identifier"] for a in run.actions] == ["fix-new-critical"]
    old = 'def user_of(token: str) -> dict:\n    return jwt.decode(token, options={"verify_signature": False})'
    new = 'def user_of(token: str, key: str) -> dict:\n    return jwt.decode(token, key, algorithms=["HS256"])'
    model.script("builder", edit(new, "/workspace/api/auth.py", old), answer("api/auth.py"))
    event = check_run_rerequested(hub, sha)
    event.payload["action"] = "requested_action"
    event.payload["requested_action"] = {"identifier": "fix-new-critical"}
    event.payload["check_run"]["id"] = run.id
    event.payload["sender"]["login"] = "maintainer"
    await fixing.deliver(event)
    assert "waits for a maintainer" in replies(hub)[-1]  # auth code: a human checkpoint
    [attempt] = [a for a in await attempts(db) if a.rule_id == "py-jwt-no-verify"]
    await fixing.comment(f"/clarity approve {short_id(attempt.fingerprint)}")
    [pull] = fix_pulls(hub)
    assert pull.title.startswith("Fix CC-") and "JWT" in pull.title


async def test_the_same_fix_comment_delivered_twice_opens_one_pull_request(fixing, model, db):
    model.script("builder", edit(), answer())
    made = await fixing.comment(f"/clarity fix {fixing.ident}")
    again = fixing.hub.issue_comment_event(made)
    again.payload["delivered_again"] = True  # a new body, so intake's replay check passes it on
    await fixing.deliver(again)
    assert len(fix_pulls(fixing.hub)) == 1
    async with db.session() as session:
        assert len(list(await session.exec(select(Build).where(Build.tier == "fix")))) == 1


async def test_a_fix_pull_request_closes_itself_when_its_finding_goes_away(fixing, model, db):
    hub = fixing.hub
    model.script("builder", edit(), answer())
    await fixing.comment(f"/clarity fix {fixing.ident}")
    [pull] = fix_pulls(hub)
    before = hub.head_sha(hub.pull_request(REPO, 1))
    hub.commit_files(REPO, "feature", {"api/tasks.py": SAFE}, message="Fix it by hand")
    await fixing.deliver(hub.pull_request_event(REPO, 1, "synchronize", before=before))
    assert hub.pull_request(REPO, pull.number).closed_at is not None
    [attempt] = await attempts(db)
    assert attempt.outcome is FixOutcome.RESOLVED


async def test_a_human_commit_on_the_fix_branch_stops_automatic_updates(fixing, model, db):
    hub = fixing.hub
    model.script("builder", edit(), answer())
    await fixing.comment(f"/clarity fix {fixing.ident}")
    [pull] = fix_pulls(hub)
    hub.commit_files(REPO, pull.head_ref, {"NOTES.md": b"reviewed\n"}, message="Review")
    mine = hub.ref(REPO, pull.head_ref)
    model.script("builder", edit(), answer())
    await fixing.comment(f"/clarity fix {fixing.ident}")
    assert hub.ref(REPO, pull.head_ref) == mine  # not moved
    [attempt] = await attempts(db)
    assert attempt.outcome is FixOutcome.HUMAN_EDITED
    assert "no longer updated automatically" in replies(hub)[-1]
