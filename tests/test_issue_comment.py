"""Slash commands on pull requests: help, status, abort, retry, ignore; who may; what is ignored."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.models import FixAttempt, FixOutcome
from handlers.ignore import BadUntil, snippet, valid_until
from orchestrator.publish_comment import short_id
from policies.repo_config import load_repo_config
from tests.test_pull_request import REPO, VULNERABLE, loop  # noqa: F401  (the loop fixture)


def replies(hub) -> list[str]:
    """What this App answered (its own bot user), without its sticky scan comment."""
    ours = hub.app.bot_login
    return [
        c.body
        for c in hub.comments(REPO, 1)
        if c.user == ours and "clarity-check:sticky" not in c.body
    ]


async def open_scanned_pull_request(hub, deliver) -> None:
    hub.commit_files(REPO, "feature", {"api/main.py": VULNERABLE}, message="Add task search")
    hub.open_pull_request(REPO, "feature", title="Task search")
    await deliver(hub.pull_request_event(REPO, 1))


async def command(
    hub, deliver, body: str, *, user: str = "maintainer", user_type: str = "User"
) -> None:
    comment = hub.add_comment(REPO, 1, body, user=user, user_type=user_type)
    await deliver(hub.issue_comment_event(comment))


async def test_help_lists_the_commands(loop):  # noqa: F811
    hub, deliver = loop
    await open_scanned_pull_request(hub, deliver)
    await command(hub, deliver, "/clarity help")
    [reply] = replies(hub)
    assert "/clarity deep-scan" in reply and "/clarity fix" in reply


async def test_an_unknown_command_gets_the_help_naming_it(loop):  # noqa: F811
    hub, deliver = loop
    await open_scanned_pull_request(hub, deliver)
    await command(hub, deliver, "/clarity frobnicate")
    [reply] = replies(hub)
    assert "frobnicate" in reply and "/clarity status" in reply


async def test_status_is_acknowledged_and_lists_the_builds(loop):  # noqa: F811
    hub, deliver = loop
    await open_scanned_pull_request(hub, deliver)
    hub.set_permission(REPO, "maintainer", "write")
    comment = hub.add_comment(REPO, 1, "Looks odd.\n/clarity status", user="maintainer")
    await deliver(hub.issue_comment_event(comment))
    assert [r.content for r in hub.reactions(comment.id)] == ["eyes"]
    [reply] = replies(hub)
    assert "succeeded" in reply and "/builds/" in reply


async def test_abort_from_a_reader_is_refused_with_the_reason(loop):  # noqa: F811
    hub, deliver = loop
    await open_scanned_pull_request(hub, deliver)
    hub.set_permission(REPO, "visitor", "read")
    await command(hub, deliver, "/clarity abort", user="visitor")
    [reply] = replies(hub)
    assert "@visitor cannot run `/clarity abort`" in reply


async def test_comments_from_bots_and_commands_in_code_blocks_are_ignored(loop):  # noqa: F811
    hub, deliver = loop
    await open_scanned_pull_request(hub, deliver)
    await command(hub, deliver, "/clarity help", user="other-app[bot]", user_type="Bot")
    await command(hub, deliver, "Try this:\n```\n/clarity help\n```\n> /clarity help")
    assert replies(hub) == []


async def test_an_edited_comment_does_not_run_again(loop):  # noqa: F811
    hub, deliver = loop
    await open_scanned_pull_request(hub, deliver)
    comment = hub.add_comment(REPO, 1, "/clarity help", user="maintainer")
    await deliver(hub.issue_comment_event(comment, "edited"))
    assert replies(hub) == []


def finding_id(hub) -> str:
    """The first finding's short id, as people read it in the sticky comment."""
    [sticky] = [c.body for c in hub.comments(REPO, 1) if "clarity-check:sticky" in c.body]
    return re.search(r"CC-[0-9A-Z]{6}", sticky)[0]


def yaml_block(reply: str) -> str:
    return re.search(r"```yaml\n(.*?)\n```", reply, re.DOTALL)[1]


async def test_status_shows_fix_attempts_and_fix_rates_by_rule(loop, db):  # noqa: F811
    hub, deliver = loop
    await open_scanned_pull_request(hub, deliver)
    repository = hub.repository(REPO)
    outcomes = [(1, "merged", 5), (2, "ignored", 6), (3, "merged", 7), (4, "opened", 8)]
    async with db.session() as session:
        session.add_all(
            [
                FixAttempt(
                    installation_id=77,
                    repository_id=repository.id,
                    pr_number=pr,
                    fingerprint=f"{pr:032x}",
                    rule_id="py-sql-injection",
                    fix_pr_number=fix_pr,
                    outcome=FixOutcome(outcome),
                )
                for pr, outcome, fix_pr in outcomes
            ]
            + [
                FixAttempt(
                    installation_id=77,
                    repository_id=repository.id,
                    pr_number=9,
                    fingerprint="f" * 32,
                    rule_id="js-eval",
                    outcome=FixOutcome.REFUSED,
                )
            ]
        )
        await session.commit()
    hub.set_permission(REPO, "maintainer", "read")
    await command(hub, deliver, "/clarity status")
    [reply] = replies(hub)
    assert "Fixes on this installation by rule:" in reply
    assert "| `py-sql-injection` | 4 | 3 | 2 | 1 | 0 | 67% |" in reply
    assert "| `js-eval` | 1 | 0 | 0 | 0 | 1 | 0% |" in reply
    assert "Fix attempts on this pull request:" in reply
    assert f"| `{short_id(f'{1:032x}')}` | `py-sql-injection` | merged | [#5](" in reply
    assert f"{repository.full_name}/pull/5)" in reply


async def test_ignore_replies_with_the_clarity_yml_entry_that_then_suppresses_it(loop):  # noqa: F811
    hub, deliver = loop
    await open_scanned_pull_request(hub, deliver)
    hub.set_permission(REPO, "maintainer", "write")
    until = datetime.now(UTC).date() + timedelta(days=30)
    short = finding_id(hub)
    await command(hub, deliver, f"/clarity ignore {short} titles are validated until {until}")
    [reply] = replies(hub)
    assert short in reply and "A maintainer commits it" in reply
    [entry] = load_repo_config(yaml_block(reply)).ignore
    assert (entry.reason, entry.until) == ("titles are validated", until)
    assert short_id(entry.fingerprint) == short
    before = hub.head_sha(hub.pull_request(REPO, 1))
    hub.commit_files(REPO, "feature", {".clarity.yml": yaml_block(reply)}, message="Ignore it")
    await deliver(hub.pull_request_event(REPO, 1, "synchronize", before=before))
    runs = {run.head_sha: run for run in hub.check_runs(REPO)}
    assert runs[hub.head_sha(hub.pull_request(REPO, 1))].conclusion == "success"


@pytest.mark.parametrize(
    ("words", "answer"),
    [
        ("CC-000000 not ours", "is not a finding of this pull request's latest scan"),
        ("{id} old code until 2020-01-01", "`until 2020-01-01` is not in the future"),
        ("{id} old code until 2099-01-01", "is more than a year ahead"),
        ("{id} old code until next-week", "is not a date: write it as YYYY-MM-DD"),
        ("{id}", "needs a reason"),
    ],
)
async def test_ignore_explains_what_it_cannot_do(loop, words, answer):  # noqa: F811
    hub, deliver = loop
    await open_scanned_pull_request(hub, deliver)
    hub.set_permission(REPO, "maintainer", "write")
    await command(hub, deliver, "/clarity ignore " + words.format(id=finding_id(hub)))
    [reply] = replies(hub)
    assert answer in reply and "```" not in reply


async def test_ignore_from_a_reader_is_refused(loop):  # noqa: F811
    hub, deliver = loop
    await open_scanned_pull_request(hub, deliver)
    hub.set_permission(REPO, "visitor", "read")
    await command(hub, deliver, f"/clarity ignore {finding_id(hub)} not a bug", user="visitor")
    [reply] = replies(hub)
    assert "@visitor cannot run `/clarity ignore`" in reply and "```" not in reply


@pytest.mark.parametrize(
    ("today", "until", "ok"),
    [
        (date(2026, 5, 1), "2026-05-02", True),
        (date(2026, 5, 1), "2026-05-01", False),  # today is not in the future
        (date(2026, 5, 1), "2027-05-01", True),  # a year ahead, to the day
        (date(2026, 5, 1), "2027-05-02", False),
        (date(2028, 2, 29), "2029-02-28", True),
        (date(2028, 2, 29), "2029-03-01", False),
        (date(2026, 5, 1), "2026-02-30", False),
        (date(2026, 5, 1), "20260502", False),
    ],
)
def test_until_must_be_a_date_in_the_coming_year(today, until, ok):
    if ok:
        assert valid_until(until, today) == date.fromisoformat(until)
    else:
        with pytest.raises(BadUntil):
            valid_until(until, today)


def test_the_snippet_round_trips_through_the_config_loader():
    reason = '`quoted` "input" ```fenced``` — été: ok\ttab'
    text = snippet("ab" * 16, reason, date(2026, 6, 30))
    [entry] = load_repo_config(text).ignore
    assert (entry.fingerprint, entry.reason, entry.until) == ("ab" * 16, reason, date(2026, 6, 30))
