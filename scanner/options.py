"""What a caller may tune about a scan; `.clarity.yml` is turned into one of these."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from scanner.model import Severity

OFF: Literal["off"] = "off"
DEFAULT_MAX_FILE_SIZE = 1024 * 1024

RuleOverride = Severity | Literal["off"]


@dataclass(frozen=True, slots=True)
class Ignore:
    """One finding ignored by its fingerprint (`.clarity.yml` `ignore:`), maybe until a date."""

    fingerprint: str
    reason: str
    until: date | None = None  # the last day it is ignored; None: no end

    def expired(self, today: date | None) -> bool:
        """Has its `until` passed? Without a date to compare with, an `until` counts as passed."""
        return self.until is not None and (today is None or self.until < today)


@dataclass(frozen=True)
class ScanOptions:
    """Scan settings. Frozen; `rule_overrides` maps a rule id to "off" or a Severity.

    `today` is the date `ignores` expire against: the caller's clock, never the scanner's.
    """

    excludes: tuple[str, ...] = ()  # gitignore-style patterns, relative to the scan root
    rule_overrides: Mapping[str, RuleOverride] = field(default_factory=dict)
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    fail_on: Severity = Severity.HIGH
    jobs: int | None = None  # worker processes; None means every core
    ignores: tuple[Ignore, ...] = ()
    today: date | None = None

    def __post_init__(self) -> None:
        # Accept any iterable of patterns and plain strings for severities, but store
        # canonical values so equal options compare (and hash into receipts) equal.
        object.__setattr__(self, "excludes", tuple(self.excludes))
        overrides = {
            rule: OFF if value == OFF else Severity(value)
            for rule, value in sorted(dict(self.rule_overrides).items())
        }
        object.__setattr__(self, "rule_overrides", overrides)
        object.__setattr__(self, "fail_on", Severity(self.fail_on))
        object.__setattr__(self, "ignores", tuple(self.ignores))

    def override_for(self, rule_id: str) -> RuleOverride | None:
        """The configured override of `rule_id`, or None."""
        return self.rule_overrides.get(rule_id)

    def canonical(self) -> str:
        """The options that change a verdict, as canonical JSON (jobs and reasons do not)."""
        document: dict = {
            "excludes": list(self.excludes),
            "rules": {rule: str(value) for rule, value in self.rule_overrides.items()},
            "max_file_size": self.max_file_size,
            "fail_on": str(self.fail_on),
        }
        # Only when present, so that receipts of scans without them stay as they were.
        if self.ignores:
            document["ignores"] = [
                [i.fingerprint, i.until.isoformat() if i.until else None]
                for i in sorted(self.ignores, key=lambda i: (i.fingerprint, i.until or date.min))
            ]
        if any(i.until is not None for i in self.ignores):
            document["today"] = self.today.isoformat() if self.today else None
        return json.dumps(document, sort_keys=True, separators=(",", ":"))
