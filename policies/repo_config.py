"""The repository's `.clarity.yml`: schema, loading with line-accurate errors, scan options.

    version: 1
    exclude: ["docs/**", "*.generated.ts"]
    rules: {py-print-in-production: off, js-console-log: info}
    fail_on: high
    comment: on-findings          # always | on-findings | never
    tiers: {scan: true, deep_scan: true, fix: false}
    drafts: scan                  # scan | skip
    ignore:                       # single findings, by fingerprint (`/clarity ignore` writes these)
      - {fingerprint: <32 hex>, reason: "ids are validated upstream", until: 2026-06-30}
    policy:                       # tighten the installation's policy pack (never loosen it)
      fail_on: medium
      commands: {deny: ["npx", "git commit"]}
      network: {deep_scan: none}
      limits: {fix: {memory: 1GiB, wall_seconds: 300}}
      access: {fix: admin}
      fixes: {deny_paths: ["src/legacy/**"], max_files: 3}
      budgets: {deep_scan: {max_cost_usd: 2, confirm_over_usd: 0.5}}

Errors name the key and the line, e.g. `rules.py-sqli (line 4): unknown rule id`.
`policies.merge.effective_pack` applies `policy:` and refuses, the same way, a value
that would loosen the pack.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Collection
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
)

from orchestrator.sandbox.base import NetworkMode
from policies.pack import CommandMode, CommandRule, Host, Permission, RuleId, Size, Tiers, glob_spec
from policies.source import PolicySourceError, line_of, load_yaml, validation_problem
from scanner.model import Severity

if TYPE_CHECKING:
    from scanner.options import ScanOptions

RuleSetting = Literal["off", "info", "low", "medium", "high", "critical"]


class RepoConfigError(PolicySourceError):
    """An invalid `.clarity.yml`; `key` is the dotted key path and `line` 1-based (0 if unknown)."""


def _deny_entry(value: Any) -> Any:
    """`"git push"` in `policy.commands.deny` is a rule denying that command prefix.

    Only command prefixes, not regexes: a pattern from a repository could be written to
    backtrack for ever on the commands it is matched against.
    """
    if not isinstance(value, str):
        raise ValueError("a command to deny, such as `npx` or `git push`")  # noqa: TRY004
    if value.startswith("!"):
        raise ValueError("`!` would remove a deny rule; .clarity.yml can only add them")
    try:
        words = shlex.split(value)
    except ValueError as error:
        raise ValueError(f"not a command: {error}") from None
    if not words or not re.fullmatch(r"[A-Za-z0-9_.+-]+", words[0]):
        raise ValueError("a command such as `npx` or `git push`")
    slug = re.sub(r"[^a-z0-9]+", "-", " ".join(words).lower()).strip("-")[:50]
    rule: dict[str, Any] = {
        "id": f"repo-{slug}",
        "program": re.escape(words[0]),
        "reason": f"`{value}` is denied by .clarity.yml",
        "unknown_args": "match",
    }
    if words[1:]:
        rule["args"] = ["^" + r"\s+".join(map(re.escape, words[1:])) + r"(\s|$)"]
    return rule


def _deny_glob(pattern: str) -> str:
    if pattern.startswith("!"):
        raise ValueError("`!` would remove a deny pattern; .clarity.yml can only add them")
    if not pattern.strip():
        raise ValueError("an empty path pattern")
    glob_spec(pattern)
    return pattern


DenyRule = Annotated[CommandRule, BeforeValidator(_deny_entry, json_schema_input_type=str)]
DenyGlob = Annotated[str, AfterValidator(_deny_glob)]
FINGERPRINT = r"^[0-9a-fA-F]{32}$"


def _fingerprint(value: str) -> str:
    if not re.fullmatch(FINGERPRINT, value):
        raise ValueError("a finding's fingerprint: 32 hexadecimal characters")
    return value.lower()


Fingerprint = Annotated[
    str, AfterValidator(_fingerprint), Field(json_schema_extra={"pattern": FINGERPRINT})
]
IgnoreReason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CommandOverrides(_Section):
    mode: CommandMode | None = None
    deny: tuple[DenyRule, ...] = ()  # command prefixes added to the pack's deny rules
    allow: tuple[RuleId, ...] | None = None  # narrows the pack's allow rules to these ids


class NetworkOverrides(_Section):
    deep_scan: NetworkMode | None = None
    fix: NetworkMode | None = None
    allow_hosts: tuple[Host, ...] | None = None  # a subset of the pack's


class TierLimitOverrides(_Section):
    cpu_seconds: PositiveInt | None = None
    memory: Size | None = None
    processes: PositiveInt | None = None
    file_size: Size | None = None
    wall_seconds: PositiveFloat | None = None


class LimitOverrides(_Section):
    scan: TierLimitOverrides | None = None
    deep_scan: TierLimitOverrides | None = None
    fix: TierLimitOverrides | None = None


class AccessOverrides(_Section):
    deep_scan: Permission | None = Field(default=None, alias="deep-scan")
    fix: Permission | None = None
    approve: Permission | None = None
    ignore: Permission | None = None
    abort: Permission | None = None
    retry: Permission | None = None
    status: Permission | None = None
    help: Permission | None = None


class SecurityGateOverrides(_Section):
    new_findings_at_or_above: Severity | None = None


class TestGateOverrides(_Section):
    no_new_failures: bool | None = None


class CheckpointOverrides(_Section):
    always: bool | None = None
    files_changed_over: NonNegativeInt | None = None
    paths: tuple[DenyGlob, ...] = ()  # added to the pack's sensitive paths


class GateOverrides(_Section):
    security: SecurityGateOverrides | None = None
    tests: TestGateOverrides | None = None
    checkpoint: CheckpointOverrides | None = None


class FixOverrides(_Section):
    allow_paths: tuple[DenyGlob, ...] | None = None  # a fix must match the pack's and these
    deny_paths: tuple[DenyGlob, ...] = ()  # added to the pack's
    binary: Literal["deny", "allow"] | None = None
    max_files: PositiveInt | None = None
    max_lines: PositiveInt | None = None


class ScopedQuotaOverrides(_Section):
    deep_scans: NonNegativeInt | None = None
    fixes: NonNegativeInt | None = None


class QuotaOverrides(_Section):
    per_pull_request: ScopedQuotaOverrides | None = None
    per_user: ScopedQuotaOverrides | None = None
    llm_cost_usd: NonNegativeFloat | None = None  # this repository's share of the period's budget


class AgentBudgetOverrides(_Section):
    max_iterations: PositiveInt | None = None
    max_cost_usd: PositiveFloat | None = None
    wall_seconds: PositiveFloat | None = None


class BuildBudgetOverrides(_Section):
    max_cost_usd: PositiveFloat | None = None
    confirm_over_usd: NonNegativeFloat | None = None  # lower: more builds wait for a confirm
    agent: AgentBudgetOverrides | None = None


class BudgetOverrides(_Section):
    deep_scan: BuildBudgetOverrides | None = None
    fix: BuildBudgetOverrides | None = None


class PolicyOverrides(_Section):
    """`policy:` — values that tighten the installation's pack; each must be at least as strict."""

    fail_on: Severity | None = None
    commands: CommandOverrides | None = None
    network: NetworkOverrides | None = None
    limits: LimitOverrides | None = None
    access: AccessOverrides | None = None
    gates: GateOverrides | None = None
    fixes: FixOverrides | None = None
    quotas: QuotaOverrides | None = None
    budgets: BudgetOverrides | None = None


class IgnoreEntry(_Section):
    """One finding ignored by its fingerprint, for a reason, through `until` (inclusive)."""

    fingerprint: Fingerprint
    reason: IgnoreReason
    until: date | None = None


class _Lines(dict):
    """Where each key was written: not part of a configuration's value, so always equal."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Lines)

    __hash__ = None  # type: ignore[assignment]


class RepoConfig(BaseModel):
    """A validated `.clarity.yml`; every key is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    exclude: list[str] = Field(default_factory=list)
    rules: dict[str, RuleSetting] = Field(default_factory=dict)
    fail_on: Severity = Severity.HIGH
    comment: Literal["always", "on-findings", "never"] = "on-findings"
    tiers: Tiers = Field(default_factory=Tiers)
    drafts: Literal["scan", "skip"] = "scan"
    policy: PolicyOverrides = Field(default_factory=PolicyOverrides)
    ignore: tuple[IgnoreEntry, ...] = ()

    _lines: _Lines = PrivateAttr(default_factory=_Lines)

    def key_line(self, *path: str | int) -> int:
        """The line of key `path` (or of its nearest written parent) in the file; 0 if unknown."""
        return line_of(tuple(path), self._lines) if self._lines else 0

    # The schema also admits `false`: that is how YAML 1.1 loaders, ours included, read `off`.
    @field_validator(
        "rules", mode="before", json_schema_input_type=dict[str, RuleSetting | Literal[False]]
    )
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `off` as false; in this file it can only mean "off".
        if isinstance(value, dict):
            return {k: "off" if v is False else v for k, v in value.items()}
        return value

    def scan_options(
        self, jobs: int | None = None, fail_on: Severity | None = None, today: date | None = None
    ) -> ScanOptions:
        """The scan options this configuration asks for.

        `fail_on` overrides the file's own: pass `effective_pack(...).gates.fail_on`, which
        also holds the installation's policy. `today` is the date `ignore:` entries expire
        against (the caller's clock); without it the scanner's entry point uses its own.
        """
        from scanner.options import Ignore, ScanOptions

        overrides = {
            rule: setting if setting == "off" else Severity(setting)
            for rule, setting in self.rules.items()
        }
        return ScanOptions(
            excludes=tuple(self.exclude),
            rule_overrides=overrides,
            fail_on=fail_on or self.fail_on,
            jobs=jobs,
            ignores=tuple(Ignore(e.fingerprint, e.reason, e.until) for e in self.ignore),
            today=today,
        )


def load_repo_config(text: str, known_rules: Collection[str] | None = None) -> RepoConfig:
    """Parse and validate `.clarity.yml` text; raises RepoConfigError naming key and line.

    With `known_rules`, a rule id under `rules:` that is not among them is an error too.
    """
    data, lines = load_yaml(text, RepoConfigError)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RepoConfigError(
            "the file must be a mapping of keys (version, exclude, rules, ...)", line=1
        )
    try:
        config = RepoConfig.model_validate(data)
    except ValidationError as error:
        raise RepoConfigError(*validation_problem(error, lines)) from None
    if known_rules is not None:
        for rule_id in config.rules:
            if rule_id not in known_rules:
                raise RepoConfigError(
                    f"unknown rule id {rule_id!r}",
                    f"rules.{rule_id}",
                    lines.get(("rules", rule_id), 0),
                )
    seen: dict[str, int] = {}
    for index, entry in enumerate(config.ignore):
        if entry.fingerprint in seen:
            raise RepoConfigError(
                f"fingerprint already ignored by ignore.{seen[entry.fingerprint]}",
                f"ignore.{index}.fingerprint",
                line_of(("ignore", index, "fingerprint"), lines),
            )
        seen[entry.fingerprint] = index
    config._lines = _Lines(lines)
    return config


SCHEMA_ID = "https://json-schema.org/draft/2020-12/schema"


def schema_text() -> str:
    """The JSON Schema of `.clarity.yml`, generated from `RepoConfig`, as committed in docs/."""
    schema = {"$schema": SCHEMA_ID, **RepoConfig.model_json_schema()}
    schema["title"] = "Clarity Check repository configuration (.clarity.yml)"
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schema(path: str | Path) -> None:
    """Write the `.clarity.yml` JSON Schema to `path` (docs/clarity-yml.schema.json)."""
    Path(path).write_text(schema_text(), encoding="utf-8")
