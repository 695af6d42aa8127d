"""Policy packs: an installation's rules for sandboxes, access, quotas, gates, fixes, budgets.

A pack is YAML data (`policies/packs/<name>.yml`) validated into the frozen models
below; every key is checked (`extra="forbid"`) and an error names the key and line.
The decision functions (`commands`, `network`, `limits`, `access`, `quotas`, `gates`,
`fixes`) read a `Pack`, and `quote` its `budgets`; `merge.effective_pack` tightens one
with `.clarity.yml`.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

import pathspec
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
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from orchestrator.sandbox.base import NetworkMode
from policies.source import PolicySourceError, load_yaml, validation_problem
from scanner.model import Severity

# Rule ids the command policy itself decides with; a pack's rules may not take them.
RESERVED_RULE_IDS = frozenset(
    {
        "unparsable",
        "unsafe-characters",
        "dynamic-command",
        "unusual-command-name",
        "not-allowlisted",
        "empty-command",
        "too-long",
    }
)


class PackError(PolicySourceError):
    """An invalid or unknown policy pack; `key` and `line` say where."""


class Tier(StrEnum):
    SCAN = "scan"
    DEEP_SCAN = "deep_scan"
    FIX = "fix"


class Permission(StrEnum):
    """A repository permission, weakest first (GitHub's order)."""

    NONE = "none"
    READ = "read"
    TRIAGE = "triage"
    WRITE = "write"
    MAINTAIN = "maintain"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _PERMISSION_RANK[self]

    def at_least(self, other: Permission) -> bool:
        return self.rank >= other.rank


_PERMISSION_RANK = {p: i for i, p in enumerate(Permission)}


class CommandMode(StrEnum):
    DENYLIST = "denylist"  # anything not denied may run
    ALLOWLIST = "allowlist"  # only what an allow rule names, and nothing denied


def _regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"not a valid regular expression: {error}") from None
    return pattern


def _glob(pattern: str) -> str:
    if not pattern.strip():
        raise ValueError("an empty path pattern")
    if pattern.startswith("!"):
        # In gitignore syntax `!` re-includes paths; in a deny list that would un-deny them.
        raise ValueError("negated patterns (`!…`) are not allowed")
    glob_spec(pattern)
    return pattern


def _host(host: str) -> str:
    if not _HOST.fullmatch(host):
        raise ValueError("a lower-case host name such as registry.npmjs.org (or *.example.com)")
    return host


_HOST = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_DECIMAL = {"kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}


def parse_size(value: Any) -> Any:
    """Bytes from an int or a string such as `512MiB`, `2GiB`, `1.5G`, `100MB`."""
    if isinstance(value, bool):
        # pydantic reports ValueError as a validation error naming the key; TypeError escapes.
        raise ValueError("a size in bytes or with a unit, such as 512MiB")  # noqa: TRY004
    if not isinstance(value, str):
        return value
    match = _SIZE.fullmatch(value.strip())
    if not match:
        raise ValueError("a size in bytes or with a unit, such as 512MiB")
    number, unit = float(match[1]), (match[2] or "").lower()
    factor = _DECIMAL.get(unit) or _UNITS[unit[:1]]
    return int(number * factor)


RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]
Pattern = Annotated[str, AfterValidator(_regex)]
Glob = Annotated[str, AfterValidator(_glob)]
Host = Annotated[str, AfterValidator(_host)]
Size = Annotated[
    PositiveInt,
    BeforeValidator(parse_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {
                    "type": "string",
                    "pattern": r"^\s*\d+(\.\d+)?\s*([kKmMgGtT][iI]?[bB]?|[bB])?\s*$",
                },
            ],
            "description": "bytes, or a number with a unit: 512MiB, 2GiB, 100MB",
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Tiers(_Model):
    scan: bool = True
    deep_scan: bool = True
    fix: bool = True


class Matcher(_Model):
    """A program (regex, full match on its base name) and argument regexes all to be found."""

    program: Pattern = ".*"
    args: tuple[Pattern, ...] = ()


class Pipe(_Model):
    """A pipeline in which a command matching `from` feeds, directly or later, one matching `to`."""

    from_: Matcher = Field(default_factory=Matcher, alias="from")
    to: Matcher


class CommandRule(_Model):
    """A deny rule: exactly one of `text` (the raw line), `program` (+ `args`), or `pipe`."""

    id: RuleId
    reason: str = Field(min_length=1)
    text: Pattern | None = None
    program: Pattern | None = None
    args: tuple[Pattern, ...] = ()
    # "deny": a command of this program whose arguments are computed at run time
    # (`$VAR`, `$(…)`, `xargs`) might match, so it is refused; "match": only the text counts.
    unknown_args: Literal["deny", "match"] = "deny"
    pipe: Pipe | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CommandRule:
        kinds = [k for k in ("text", "program", "pipe") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a rule needs exactly one of text, program or pipe")
        if self.args and self.program is None:
            raise ValueError("args only go with program")
        if self.id in RESERVED_RULE_IDS:
            raise ValueError(f"rule id {self.id!r} is reserved")
        return self


class AllowRule(Matcher):
    id: RuleId


class CommandPolicy(_Model):
    mode: CommandMode = CommandMode.DENYLIST
    deny: tuple[CommandRule, ...] = ()
    allow: tuple[AllowRule, ...] = ()  # used in allowlist mode (and when a repository asks for it)

    @model_validator(mode="after")
    def _unique_ids(self) -> CommandPolicy:
        for rules in (self.deny, self.allow):
            ids = [rule.id for rule in rules]
            if len(ids) != len(set(ids)):
                raise ValueError(
                    f"duplicate rule ids: {sorted({i for i in ids if ids.count(i) > 1})}"
                )
        return self


class NetworkPolicy(_Model):
    scan: Literal[NetworkMode.NONE] = NetworkMode.NONE  # Tier 1 never reaches the network
    deep_scan: NetworkMode = NetworkMode.NONE
    fix: NetworkMode = NetworkMode.NONE
    allow_hosts: tuple[Host, ...] = ()

    @model_validator(mode="after")
    def _hosts_for_allowlist(self) -> NetworkPolicy:
        if NetworkMode.ALLOWLIST in (self.deep_scan, self.fix) and not self.allow_hosts:
            raise ValueError("an allowlist network needs allow_hosts")
        return self


class TierLimits(_Model):
    cpu_seconds: PositiveInt
    memory: Size
    processes: PositiveInt
    file_size: Size
    wall_seconds: PositiveFloat


class LimitsPolicy(_Model):
    scan: TierLimits
    deep_scan: TierLimits
    fix: TierLimits


class PerTier(_Model):
    scan: NonNegativeInt
    deep_scan: NonNegativeInt
    fix: NonNegativeInt


class ConcurrencyPolicy(_Model):
    per_installation: PerTier  # running builds of one tier for one installation
    per_repository: PerTier  # running builds of one tier for one repository
    build_nodes: PerTier  # DAG nodes of one build that run at once
    retry_after_seconds: PositiveInt = 30


class AccessPolicy(_Model):
    """The weakest repository permission that may use each slash command."""

    deep_scan: Permission = Field(alias="deep-scan")
    fix: Permission
    approve: Permission
    ignore: Permission
    abort: Permission
    retry: Permission
    status: Permission
    help: Permission


class QuotaLimits(_Model):
    deep_scans: NonNegativeInt
    fixes: NonNegativeInt
    llm_cost_usd: NonNegativeFloat


class ScopedLimits(_Model):
    deep_scans: NonNegativeInt
    fixes: NonNegativeInt


class QuotaPolicy(_Model):
    period: Literal["day", "month"] = "month"  # UTC calendar periods
    installation: QuotaLimits  # per period
    per_pull_request: ScopedLimits  # over the pull request's life
    per_user: ScopedLimits  # per period, for the user who asks


class SecurityGate(_Model):
    new_findings_at_or_above: Severity = Severity.MEDIUM


class TestGate(_Model):
    no_new_failures: bool = True


class Checkpoint(_Model):
    """When a fix waits for a human's `/clarity approve` before it is committed."""

    always: bool = False
    files_changed_over: NonNegativeInt = 5
    paths: tuple[Glob, ...] = ()


class GatesPolicy(_Model):
    fail_on: Severity = Severity.HIGH  # the Tier 1 check fails on findings at or above this
    security: SecurityGate = Field(default_factory=SecurityGate)
    tests: TestGate = Field(default_factory=TestGate)
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)


class FixesPolicy(_Model):
    allow_paths: tuple[Glob, ...] = ("**",)
    deny_paths: tuple[Glob, ...] = ()
    binary: Literal["deny", "allow"] = "deny"
    max_files: PositiveInt
    max_lines: PositiveInt  # added + removed


class AgentBudget(_Model):
    """What one agent of a build may spend before it is stopped."""

    max_iterations: PositiveInt
    max_cost_usd: PositiveFloat
    wall_seconds: PositiveFloat


class BuildBudget(_Model):
    """What one agent build may spend, all agents together, and when a quote needs a confirm."""

    max_cost_usd: PositiveFloat
    confirm_over_usd: NonNegativeFloat  # a quote above this waits for `/clarity <command> confirm`
    agent: AgentBudget

    @model_validator(mode="after")
    def _agent_within_build(self) -> BuildBudget:
        if self.agent.max_cost_usd > self.max_cost_usd:
            raise ValueError("an agent's max_cost_usd is more than the build's")
        return self


class BudgetsPolicy(_Model):
    """Spending limits of the agent tiers; a pack without this section gets these."""

    deep_scan: BuildBudget = BuildBudget(
        max_cost_usd=5.0,
        confirm_over_usd=1.0,
        agent=AgentBudget(max_iterations=40, max_cost_usd=1.5, wall_seconds=600),
    )
    fix: BuildBudget = BuildBudget(
        max_cost_usd=5.0,
        confirm_over_usd=2.0,
        agent=AgentBudget(max_iterations=60, max_cost_usd=2.0, wall_seconds=900),
    )


class Pack(_Model):
    """A validated policy pack."""

    name: RuleId
    description: str = ""
    tiers: Tiers = Field(default_factory=Tiers)
    commands: CommandPolicy
    network: NetworkPolicy
    limits: LimitsPolicy
    concurrency: ConcurrencyPolicy
    access: AccessPolicy
    quotas: QuotaPolicy
    gates: GatesPolicy
    fixes: FixesPolicy
    budgets: BudgetsPolicy = Field(default_factory=BudgetsPolicy)


class EffectivePack(Pack):
    """A pack after a repository's `.clarity.yml` tightened it; `tightened` lists the keys."""

    tightened: tuple[str, ...] = ()


def parse_pack(text: str) -> Pack:
    """Validate pack YAML; raises PackError naming the key and line."""
    data, lines = load_yaml(text, PackError)
    if not isinstance(data, dict):
        raise PackError("a pack is a mapping of sections (commands, network, limits, ...)", line=1)
    try:
        return Pack.model_validate(data)
    except ValidationError as error:
        raise PackError(*validation_problem(error, lines)) from None


_PACK_NAME = re.compile(r"[a-z][a-z0-9-]{0,63}")


@functools.cache
def load_pack(name: str = "default") -> Pack:
    """The packaged pack `name` (`default`, `strict`), validated once and cached."""
    resource = importlib.resources.files("policies") / "packs" / f"{name}.yml"
    if not _PACK_NAME.fullmatch(name) or not resource.is_file():
        raise PackError(f"no policy pack named {name!r}; packs: {', '.join(pack_names())}")
    return parse_pack(resource.read_text(encoding="utf-8"))


def pack_names() -> tuple[str, ...]:
    """Names of the packaged packs."""
    folder = importlib.resources.files("policies") / "packs"
    return tuple(sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".yml")))


@functools.lru_cache(maxsize=4096)
def compiled(pattern: str) -> re.Pattern[str]:
    """A pack's regex, compiled once."""
    return re.compile(pattern)


@functools.lru_cache(maxsize=4096)
def glob_spec(pattern: str) -> pathspec.GitIgnoreSpec:
    """One gitignore-style path pattern, compiled once (each is matched on its own)."""
    return pathspec.GitIgnoreSpec.from_lines([pattern])


def glob_matches(pattern: str, path: str) -> bool:
    return glob_spec(pattern).match_file(path)


def as_tier(tier: Tier | str) -> Tier:
    """A Tier from itself or its value (the build model's tier enum has the same values)."""
    try:
        return Tier(str(tier))
    except ValueError:
        raise ValueError(f"unknown tier {tier!r}; tiers: scan, deep_scan, fix") from None
