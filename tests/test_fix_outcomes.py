"""Fix pull requests people merge or close, recorded on their fix attempt; fix rates by rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.models import FixAttempt, FixOutcome, Installation, Repository, utcnow
from handlers.fix_outcomes import closed_outcome
from orchestrator.fix_stats import RuleRate, fix_rates, rates_table
from tests.test_pull_request import REPO, VULNERABLE, loop  # noqa: F401  (the loop fixture)

FINGERPRINT = "3f2a9c1b" + "0" * 24
FIX_BRANCH = f"clarity/fix/1-{FINGERPRINT[:8]}"
LONG_AGO = utcnow() - timedelta(days=3)


async def open_fix_pull_request(hub, db, outcome: FixOutcome = FixOutcome.OPENED) -> FixAttempt:
    """Pull request #1 with a finding, and our fix pull request #2 for it, recorded as `outcome`."""
    hub.commit_files(REPO, "feature", {"api/main.py": VULNERABLE}, message="Add task search")
    hub.open_pull_request(REPO, "feature", title="Task search")
    hub.commit_files(REPO, FIX_BRANCH, {"api/main.py": b"# fixed\n"}, base="feature")
    fix = hub.open_pull_request(REPO, FIX_BRANCH, "feature", title="Fix", user="clarity-check[bot]")
    repository = hub.repository(REPO)
    attempt = FixAttempt(
        installation_id=77,
        repository_id=repository.id,
        pr_number=1,
        fingerprint=FINGERPRINT,
        rule_id="py-sql-injection",
        branch=FIX_BRANCH,
        fix_pr_number=fix.number,
        attempts=1,
        outcome=outcome,
        created_at=LONG_AGO,
        updated_at=LONG_AGO,
    )
    async with db.session() as session:
        session.add(Installation(id=77, account_login="octo-org"))
        await session.commit()
        session.add(Repository(id=repository.id, installation_id=77, full_name=REPO))
        await session.commit()
        session.add(attempt)
        await session.commit()
    return attempt


async def stored(db) -> FixAttempt:
    async with db.session() as session:
        return (await session.exec(select(FixAttempt))).one()


@pytest.mark.parametrize(("merged", "outcome"), [(True, "merged"), (False, "ignored")])
async def test_closing_a_fix_pull_request_records_merged_or_ignored(loop, db, merged, outcome):  # noqa: F811
    hub, deliver = loop
    attempt = await open_fix_pull_request(hub, db)
    hub.close_pull_request(REPO, attempt.fix_pr_number, merged=merged)
    await deliver(hub.pull_request_event(REPO, attempt.fix_pr_number, "closed"))
    after = await stored(db)
    assert after.outcome == FixOutcome(outcome)
    assert after.updated_at > LONG_AGO


async def test_a_fix_we_closed_because_the_finding_went_away_stays_resolved(loop, db):  # noqa: F811
    hub, deliver = loop
    attempt = await open_fix_pull_request(hub, db, FixOutcome.RESOLVED)
    hub.close_pull_request(REPO, attempt.fix_pr_number)
    await deliver(hub.pull_request_event(REPO, attempt.fix_pr_number, "closed"))
    after = await stored(db)
    assert (after.outcome, after.updated_at) == (FixOutcome.RESOLVED, LONG_AGO)


async def test_closing_the_fixed_pull_request_leaves_its_fix_attempt_alone(loop, db):  # noqa: F811
    hub, deliver = loop
    await open_fix_pull_request(hub, db)
    hub.close_pull_request(REPO, 1, merged=True)
    await deliver(hub.pull_request_event(REPO, 1, "closed"))
    assert (await stored(db)).outcome is FixOutcome.OPENED


@pytest.mark.parametrize(
    ("current", "merged", "expected"),
    [
        (FixOutcome.OPENED, True, FixOutcome.MERGED),
        (FixOutcome.OPENED, False, FixOutcome.IGNORED),
        (FixOutcome.HUMAN_EDITED, True, FixOutcome.MERGED),
        (FixOutcome.IGNORED, True, FixOutcome.MERGED),  # reopened, then merged
        (FixOutcome.RESOLVED, True, None),
        (FixOutcome.RESOLVED, False, None),
        (FixOutcome.MERGED, True, None),  # a redelivery changes nothing
    ],
)
def test_closed_outcome(current, merged, expected):
    assert closed_outcome(current, merged) is expected


@dataclass
class Attempt:
    rule_id: str
    outcome: FixOutcome


def attempts(rule_id: str, *outcomes: str) -> list[Attempt]:
    return [Attempt(rule_id, FixOutcome(outcome)) for outcome in outcomes]


def test_the_success_rate_is_merged_over_every_finished_attempt():
    [rate] = fix_rates(attempts("py-sql-injection", "merged", "merged", "ignored", "refused"))
    assert rate == RuleRate("py-sql-injection", 4, opened=2, merged=2, ignored=1, refused=1)
    assert rate.success_rate == 0.5


def test_opened_counts_open_and_merged_fix_pull_requests_and_unfinished_ones_count_as_attempts():
    [rate] = fix_rates(attempts("js-eval", "opened", "merged", "working", "resolved"))
    assert (rate.attempts, rate.opened, rate.finished, rate.success_rate) == (4, 2, 1, 1.0)


def test_rules_without_a_finished_attempt_are_left_out():
    rates = fix_rates(
        attempts("py-sql-injection", "refused")
        + attempts("js-eval", "opened", "working", "awaiting_approval", "resolved", "human_edited")
    )
    assert [rate.rule_id for rate in rates] == ["py-sql-injection"]
    assert rates[0].success_rate == 0.0


def test_rates_come_most_attempted_first_and_the_table_shows_ten():
    rules = [f"rule-{n:02d}" for n in range(12)]
    rates = fix_rates([a for n, rule in enumerate(rules) for a in attempts(rule, *["merged"] * n)])
    assert [rate.rule_id for rate in rates][:2] == ["rule-11", "rule-10"]
    table = rates_table(rates)
    assert len(table) == 2 + 10
    assert table[2] == "| `rule-11` | 11 | 11 | 11 | 0 | 0 | 100% |"


def test_no_attempts_no_rates():
    assert fix_rates([]) == []
