"""How well fixes do, rule by rule, and the tables `/clarity status` shows of them. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.models import FixOutcome
from orchestrator.publish_comment import code, link, short_id

SHOWN_RULES = 10  # the rules with the most attempts; the rest are left out of the table
FINISHED = (FixOutcome.MERGED, FixOutcome.IGNORED, FixOutcome.REFUSED)


class Attempt(Protocol):
    """What the rates need of a fix attempt (a `FixAttempt` row, or a row of its columns)."""

    rule_id: str
    outcome: FixOutcome


class ShownAttempt(Attempt, Protocol):
    fingerprint: str
    fix_pr_number: int | None


@dataclass(frozen=True, slots=True)
class RuleRate:
    """One rule's fix attempts by outcome; a fix succeeds when its pull request is merged."""

    rule_id: str
    attempts: int  # every attempt, finished or not
    opened: int  # a fix pull request was opened, merged or not
    merged: int
    ignored: int  # the fix pull request was closed unmerged
    refused: int  # no attempt passed the gates

    @property
    def finished(self) -> int:
        return self.merged + self.ignored + self.refused

    @property
    def success_rate(self) -> float:
        """merged / (merged + ignored + refused); only rates with a finished attempt exist."""
        return self.merged / self.finished


def fix_rates(attempts: Iterable[Attempt]) -> list[RuleRate]:
    """Each rule's rate, most attempted first, for the rules with at least one finished attempt."""
    counts: dict[str, dict[FixOutcome, int]] = {}
    for attempt in attempts:
        by_outcome = counts.setdefault(attempt.rule_id, {})
        outcome = FixOutcome(attempt.outcome)
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
    rates = [
        RuleRate(
            rule_id=rule_id,
            attempts=sum(by_outcome.values()),
            opened=by_outcome.get(FixOutcome.OPENED, 0) + by_outcome.get(FixOutcome.MERGED, 0),
            merged=by_outcome.get(FixOutcome.MERGED, 0),
            ignored=by_outcome.get(FixOutcome.IGNORED, 0),
            refused=by_outcome.get(FixOutcome.REFUSED, 0),
        )
        for rule_id, by_outcome in counts.items()
    ]
    rates = [rate for rate in rates if rate.finished]
    return sorted(rates, key=lambda rate: (-rate.attempts, rate.rule_id))


def rates_table(rates: Sequence[RuleRate], limit: int = SHOWN_RULES) -> list[str]:
    """Markdown lines: the `limit` most attempted rules and how their fixes did."""
    lines = [
        "| rule | attempts | opened | merged | ignored | refused | success |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rate in rates[:limit]:
        lines.append(
            f"| {code(rate.rule_id)} | {rate.attempts} | {rate.opened} | {rate.merged} "
            f"| {rate.ignored} | {rate.refused} | {rate.success_rate:.0%} |"
        )
    return lines


def attempts_table(attempts: Sequence[ShownAttempt], repository_url: str) -> list[str]:
    """Markdown lines: one pull request's fix attempts, their outcome and fix pull request."""
    lines = ["| finding | rule | outcome | fix pull request |", "| --- | --- | --- | --- |"]
    for attempt in attempts:
        number = attempt.fix_pr_number
        shown = link(f"{repository_url}/pull/{number}", f"#{number}") if number else ""
        outcome = FixOutcome(attempt.outcome).value.replace("_", " ")
        lines.append(
            f"| `{short_id(attempt.fingerprint)}` | {code(attempt.rule_id)} | {outcome} "
            f"| {shown or '—'} |"
        )
    return lines
