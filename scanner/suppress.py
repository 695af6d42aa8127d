"""Suppressions: inline ignore comments, `.clarity.yml` rule toggles and severities, and
`.clarity.yml` `ignore:` entries (one finding each, by fingerprint, maybe until a date).

Inline forms, on the flagged line or on a comment line directly above it:

    query = build(q)  # clarity: ignore[py-sql-injection] ids are validated upstream
    // clarity-ignore js-eval reason
    # clarity: ignore[rule-a,rule-b] reason

Without a rule id the comment silences every rule on that line. Suppressed findings
are kept (with where the suppression came from), never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from scanner.model import Finding
from scanner.options import OFF, Ignore, ScanOptions

_MARK = re.compile(
    r"clarity(?::\s*|-)ignore(?:\[(?P<bracket>[^\]]*)\]|[ \t]+(?P<bare>[a-z0-9][a-z0-9-]*(?:,[a-z0-9-]+)*))?"
    r"[ \t]*(?P<reason>.*)$",
    re.IGNORECASE,
)
_COMMENT_ONLY = re.compile(r"^\s*(#|//|/\*|\*|\{/\*|<!--|--)")
_RULE_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")


class SuppressedBy(StrEnum):
    INLINE = "inline"
    CONFIG = "config"


@dataclass(frozen=True, slots=True)
class Suppression:
    rules: frozenset[str] | None  # None: every rule
    reason: str

    def covers(self, rule_id: str) -> bool:
        return self.rules is None or rule_id in self.rules


@dataclass(frozen=True, slots=True)
class SuppressedFinding:
    """A finding that would have been reported, and why it was not."""

    finding: Finding
    by: SuppressedBy
    reason: str


def inline_suppressions(lines: Sequence[str]) -> dict[int, Suppression]:
    """The suppression that applies to each 1-based line, from ignore comments."""
    table: dict[int, Suppression] = {}
    for number, text in enumerate(lines, start=1):
        if "clarity" not in text:
            continue
        match = _MARK.search(text)
        if match is None:
            continue
        suppression = _parse(match)
        table[number] = suppression
        if _COMMENT_ONLY.match(text):
            table.setdefault(number + 1, suppression)
    return table


def _parse(match: re.Match[str]) -> Suppression:
    ids = match.group("bracket") or match.group("bare")
    reason = match.group("reason").strip().removesuffix("*/").removesuffix("-->").strip()
    if ids is None or not ids.strip() or ids.strip() == "*":
        return Suppression(None, reason)
    rules = frozenset(part.strip().lower() for part in ids.split(",") if part.strip())
    if match.group("bare") is not None and not all(_RULE_ID.match(rule) for rule in rules):
        # "// clarity-ignore because ..." names no rule: it covers the whole line.
        return Suppression(None, (ids + " " + reason).strip())
    return Suppression(rules, reason)


def live_ignores(
    ignores: Iterable[Ignore], today: date | None
) -> tuple[dict[str, Ignore], list[Ignore]]:
    """The entries still in force on `today`, by fingerprint, and the expired ones."""
    live: dict[str, Ignore] = {}
    expired: list[Ignore] = []
    for entry in ignores:
        if entry.expired(today):
            expired.append(entry)
        else:
            live.setdefault(entry.fingerprint, entry)
    return live, expired


def expiry_note(entry: Ignore, today: date | None) -> str:
    """What the scan's notes say about an `ignore:` entry that no longer applies."""
    until = entry.until.isoformat() if entry.until else "?"
    if today is None:
        return (
            f"ignore: the entry for {entry.fingerprint} has an until date ({until}) "
            "but the scan has no date; it does not apply"
        )
    return f"ignore: the entry for {entry.fingerprint} expired on {until}; it no longer applies"


def apply_options(
    findings: Iterable[Finding], options: ScanOptions
) -> tuple[list[Finding], list[SuppressedFinding]]:
    """Findings after `.clarity.yml`: findings ignored by fingerprint (until their entry
    expires on `options.today`), rules turned off, severities changed."""
    live, _ = live_ignores(options.ignores, options.today)
    active: list[Finding] = []
    suppressed: list[SuppressedFinding] = []
    for finding in findings:
        override = options.override_for(finding.rule_id)
        if (entry := live.get(finding.fingerprint)) is not None:
            suppressed.append(SuppressedFinding(finding, SuppressedBy.CONFIG, entry.reason))
        elif override is None:
            active.append(finding)
        elif override == OFF:
            suppressed.append(SuppressedFinding(finding, SuppressedBy.CONFIG, "rule turned off"))
        else:
            active.append(replace(finding, severity=override))
    return active, suppressed
