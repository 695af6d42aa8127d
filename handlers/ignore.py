"""`/clarity ignore <finding-id> <reason…> [until YYYY-MM-DD]`: the `.clarity.yml` entry to commit.

The App cannot write to the default branch's configuration, so it proposes the entry
and a maintainer commits it; the scan then counts the finding as suppressed, with the
reason, until the date passes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import yaml
from sqlmodel import col, select

from bot.db import Database
from bot.models import Build, BuildStatus, BuildTier, Task
from orchestrator.publish_comment import code, resolve_short_id, show
from orchestrator.tier1 import ScanOutcome

USAGE = (
    "Usage: `/clarity ignore <finding-id> <reason…> [until YYYY-MM-DD]`, for example "
    "`/clarity ignore CC-7K2M9Q ids are validated upstream until 2026-06-30`."
)
MAX_REASON = 500  # characters, as `.clarity.yml` allows
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class IgnoreRefused(Exception):
    """A `/clarity ignore` that gets no snippet; the message is the reply."""


class IgnoreUsage(IgnoreRefused):
    """The command's words do not make a request: no id, or no reason."""


class UnknownFinding(IgnoreRefused):
    """The id names no finding of the pull request's latest scan."""


class BadUntil(IgnoreRefused):
    """The `until` date is not a date, not in the future, or more than a year ahead."""


@dataclass(frozen=True, slots=True)
class IgnoreRequest:
    finding_id: str
    reason: str
    until: str | None  # as typed; `valid_until` checks it


def parse_ignore(args: Sequence[str]) -> IgnoreRequest:
    """The request in the command's words: an id, a reason, and maybe `until <date>` at the end."""
    words = list(args)
    until = None
    if len(words) >= 2 and words[-2].lower() == "until":
        until = words[-1]
        words = words[:-2]
    if not words:
        raise IgnoreUsage(f"Which finding? {USAGE}")
    reason = " ".join(" ".join(words[1:]).split())
    if not reason:
        raise IgnoreUsage(f"An ignored finding needs a reason. {USAGE}")
    if len(reason) > MAX_REASON:
        raise IgnoreUsage(f"Please keep the reason under {MAX_REASON} characters.")
    return IgnoreRequest(words[0], reason, until)


def valid_until(text: str, today: date) -> date:
    """The `until` date: YYYY-MM-DD, after `today`, at most a year after it."""
    try:
        until = date.fromisoformat(text) if _DATE.fullmatch(text) else None
    except ValueError:
        until = None
    if until is None:
        raise BadUntil(f"{code(text, 20)} is not a date: write it as YYYY-MM-DD.")
    if until <= today:
        raise BadUntil(f"`until {until}` is not in the future (today is {today}).")
    if until > a_year_after(today):
        raise BadUntil(
            f"`until {until}` is more than a year ahead; the latest is {a_year_after(today)}."
        )
    return until


def a_year_after(today: date) -> date:
    """The same day a year on (28 February for 29 February): the latest `until` allowed."""
    try:
        return today.replace(year=today.year + 1)
    except ValueError:  # 29 February
        return today.replace(year=today.year + 1, day=28)


def find(outcome: ScanOutcome | None, finding_id: str) -> Mapping[str, Any]:
    """The finding `finding_id` names in the scan `outcome`."""
    findings = outcome.findings if outcome is not None else []
    fingerprint = resolve_short_id(finding_id, (f["fingerprint"] for f in findings))
    if fingerprint is None:
        scanned = f" (of `{outcome.head_sha[:7]}`)" if outcome is not None else ""
        raise UnknownFinding(
            f"{code(finding_id, 60)} is not a finding of this pull request's latest scan"
            f"{scanned}. The ids are in the Clarity Check comment."
        )
    return next(f for f in findings if f["fingerprint"] == fingerprint)


def snippet(fingerprint: str, reason: str, until: date | None) -> str:
    """The `.clarity.yml` text that ignores one finding."""
    entry: dict[str, Any] = {"fingerprint": fingerprint, "reason": reason}
    if until is not None:
        entry["until"] = until
    return yaml.safe_dump({"ignore": [entry]}, sort_keys=False, allow_unicode=True, width=10_000)


def snippet_reply(finding: Mapping[str, Any], reason: str, until: date | None) -> str:
    """The reply: which finding, the snippet, and who commits it."""
    shown = show(finding)
    text = snippet(shown.fingerprint, reason, until)
    fence = "`" * max([3, *(len(run) + 1 for run in re.findall("`+", text))])
    how_long = f"until {until}" if until else "with no end date"
    return "\n".join(
        [
            (
                f"To ignore `{shown.short}` ({code(shown.rule_id)} at {code(shown.where)}) "
                f"{how_long}, add this to `.clarity.yml` (into its `ignore:` list if it has one):"
            ),
            "",
            f"{fence}yaml",
            text.rstrip("\n"),
            fence,
            "",
            (
                "A maintainer commits it: Clarity Check has no write access to the default "
                "branch's configuration."
            ),
        ]
    )


async def latest_scan(db: Database, repository_id: int, number: int) -> ScanOutcome | None:
    """The Tier 1 result of the pull request's latest succeeded scan build."""
    async with db.session() as session:
        row = (
            await session.exec(
                select(Task)
                .join(Build, col(Build.id) == Task.build_id)
                .where(
                    Build.repository_id == repository_id,
                    Build.pr_number == number,
                    Build.tier == BuildTier.SCAN,
                    Build.status == BuildStatus.SUCCEEDED,
                    Task.key == "scan",
                )
                .order_by(col(Build.id).desc())
            )
        ).first()
    if row is None or not row.result:
        return None
    return ScanOutcome.model_validate(row.result)


async def ignore_finding(
    db: Database, repository_id: int, number: int, args: Sequence[str], *, today: date
) -> str:
    """The reply to `/clarity ignore`: the snippet to commit, or why there is none."""
    try:
        request = parse_ignore(args)
        finding = find(await latest_scan(db, repository_id, number), request.finding_id)
        until = valid_until(request.until, today) if request.until is not None else None
    except IgnoreRefused as refused:
        return str(refused)
    return snippet_reply(finding, request.reason, until)
