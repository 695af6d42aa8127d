"""Policy packs: loading, validation, strict against default, sandbox and access decisions."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from orchestrator.sandbox.base import Limits, NetworkMode, SandboxSpec
from policies import (
    PackError,
    Permission,
    QuotaKind,
    Tier,
    UsageSnapshot,
    admit_build,
    authorize,
    check_quota,
    limits_for,
    load_pack,
    network_for,
    node_concurrency_for,
    pack_names,
    parse_pack,
    quota_period,
    sandbox_spec_for,
)
from policies.pack import CommandMode, parse_size

PACKS_DIR = Path(__file__).resolve().parent.parent / "policies" / "packs"
DEFAULT, STRICT = load_pack("default"), load_pack("strict")


def test_packaged_packs_load_and_are_cached():
    assert pack_names() == ("default", "strict")
    assert load_pack("default") is DEFAULT
    assert (DEFAULT.name, STRICT.name) == ("default", "strict")


@pytest.mark.parametrize("name", ["nope", "../default", "Default"])
def test_unknown_pack_is_an_error(name):
    with pytest.raises(PackError, match="no policy pack"):
        load_pack(name)


def _default_text() -> str:
    return (PACKS_DIR / "default.yml").read_text()


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("  mode: denylist", "  mode: maybe", "commands.mode"),
        ("  deep_scan: allowlist ", "  deep_scan: sometimes ", "network.deep_scan"),
        ("  scan: none", "  scan: allowlist", "network.scan"),
        ("    - pypi.org", "    - https://pypi.org/", "network.allow_hosts.2"),
        ("memory: 2GiB", "memory: lots", "limits.scan.memory"),
        ("cpu_seconds: 300,", "cpu_seconds: -1,", "limits.scan.cpu_seconds"),
        ("  fix: write", "  fix: owner", "access.fix"),
        ("  fail_on: high", "  fail_on: urgent", "gates.fail_on"),
        ("  max_files: 10", "  max_files: 0", "fixes.max_files"),
        ('    - "*.pem"', '    - "!*.pem"', "fixes.deny_paths.12"),
        (
            "      reason: a fork bomb",
            "      reason: a fork bomb\n      colour: red",
            "commands.deny.0.colour",
        ),
        ("    - id: delete-root", "    - id: unparsable", "commands.deny.1"),
        ("'rm|rmdir|unlink|shred'", "'rm|(unclosed'", "commands.deny.1.program"),
        ("description: >-", "colour: red\ndescription: >-", "colour"),
        ("confirm_over_usd: 1.0", "confirm_over_usd: -1", "budgets.deep_scan.confirm_over_usd"),
        ("max_iterations: 60,", "max_iterations: 0,", "budgets.fix.agent.max_iterations"),
        ("    max_cost_usd: 5.0 ", "    max_cost_usd: lots ", "budgets.deep_scan.max_cost_usd"),
    ],
)
def test_invalid_packs_name_key_and_line(old, new, key):
    text = _default_text()
    assert old in text
    mutated = text.replace(old, new, 1)
    with pytest.raises(PackError) as raised:
        parse_pack(mutated)
    assert raised.value.key == key
    assert raised.value.line > 0 and f"line {raised.value.line}" in str(raised.value)
    written = mutated.splitlines()[raised.value.line - 1]
    last = key.rsplit(".", 1)[-1]
    assert (new.strip().splitlines()[0] if last.isdigit() else last) in written


def test_a_missing_section_is_named():
    with pytest.raises(PackError, match="quotas") as raised:
        parse_pack(_default_text().replace("quotas:", "quota:", 1))
    assert raised.value.key == "quotas"


def test_a_pack_without_budgets_gets_the_default_budgets():
    data = yaml.safe_load(_default_text())
    del data["budgets"]
    assert parse_pack(yaml.safe_dump(data)).budgets == DEFAULT.budgets


def test_an_agent_may_not_spend_more_than_its_build():
    data = yaml.safe_load(_default_text())
    data["budgets"]["fix"]["agent"]["max_cost_usd"] = 6.0
    with pytest.raises(PackError, match="agent's max_cost_usd is more than the build's") as raised:
        parse_pack(yaml.safe_dump(data))
    assert raised.value.key == "budgets.fix"


def test_a_rule_needs_exactly_one_kind():
    data = yaml.safe_load(_default_text())
    data["commands"]["deny"][0]["program"] = "x"  # beside its `text`
    with pytest.raises(PackError, match="exactly one of text, program or pipe") as raised:
        parse_pack(yaml.safe_dump(data))
    assert raised.value.key == "commands.deny.0"


def test_an_allowlist_network_needs_hosts():
    data = yaml.safe_load(_default_text())
    data["network"]["allow_hosts"] = []
    with pytest.raises(PackError, match="allowlist network needs allow_hosts") as raised:
        parse_pack(yaml.safe_dump(data))
    assert raised.value.key == "network"


@pytest.mark.parametrize(
    ("value", "size"),
    [(512, 512), ("512MiB", 512 * 1024**2), ("2GiB", 2 * 1024**3), ("1.5G", int(1.5 * 1024**3)),
     ("100MB", 100 * 1000**2), ("64k", 64 * 1024)],
)  # fmt: skip
def test_sizes_read_units(value, size):
    assert parse_size(value) == size


_RANKS = {
    "network": [NetworkMode.NONE, NetworkMode.ALLOWLIST],
    "mode": [CommandMode.ALLOWLIST, CommandMode.DENYLIST],
    "binary": ["deny", "allow"],
}


def _at_most(strict, default):
    return strict <= default


def _rank_at_most(kind):
    return lambda strict, default: _RANKS[kind].index(strict) <= _RANKS[kind].index(default)


# How each leaf of a pack orders "tighter": every leaf must be listed here.
TIGHTER = {
    "tiers.*": lambda s, d: s <= d,
    "commands.mode": _rank_at_most("mode"),
    "commands.deny": lambda s, d: set(d) <= set(s),
    "commands.allow": lambda s, d: {r.id for r in s} <= {r.id for r in d},
    "network.scan": _rank_at_most("network"),
    "network.deep_scan": _rank_at_most("network"),
    "network.fix": _rank_at_most("network"),
    "network.allow_hosts": lambda s, d: set(s) <= set(d),
    "limits.*": _at_most,
    "concurrency.per_installation.*": _at_most,
    "concurrency.per_repository.*": _at_most,
    "concurrency.build_nodes.*": _at_most,
    "concurrency.retry_after_seconds": lambda s, d: s == d,
    "access.*": lambda s, d: s.at_least(d),
    "quotas.period": lambda s, d: s == d,
    "quotas.*": _at_most,
    "gates.fail_on": lambda s, d: s.rank <= d.rank,
    "gates.security.new_findings_at_or_above": lambda s, d: s.rank <= d.rank,
    "gates.tests.no_new_failures": lambda s, d: s >= d,
    "gates.checkpoint.always": lambda s, d: s >= d,
    "gates.checkpoint.files_changed_over": _at_most,
    "gates.checkpoint.paths": lambda s, d: set(d) <= set(s),
    "fixes.allow_paths": lambda s, d: set(s) <= set(d),
    "fixes.deny_paths": lambda s, d: set(d) <= set(s),
    "fixes.binary": _rank_at_most("binary"),
    "fixes.max_files": _at_most,
    "fixes.max_lines": _at_most,
    "budgets.*": _at_most,  # a lower confirm_over_usd is tighter too: more builds wait
}
NOT_COMPARABLE = {"name", "description"}


def _leaves(model: BaseModel, prefix: str = ""):
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield from _leaves(value, path + ".")
        else:
            yield path, value


def _comparator(path: str):
    if path in TIGHTER:
        return TIGHTER[path]
    for prefix in (path.rsplit(".", n)[0] + ".*" for n in range(1, path.count(".") + 1)):
        if prefix in TIGHTER:
            return TIGHTER[prefix]
    return None


@pytest.mark.parametrize("path", [p for p, _ in _leaves(DEFAULT) if p not in NOT_COMPARABLE])
def test_strict_is_at_least_as_tight_as_default(path):
    compare = _comparator(path)
    assert compare is not None, f"say how {path} orders tighter in TIGHTER"
    strict, default = dict(_leaves(STRICT))[path], dict(_leaves(DEFAULT))[path]
    assert compare(strict, default), (path, strict, default)


def test_strict_is_tighter_where_it_says_so():
    assert STRICT.commands.mode is CommandMode.ALLOWLIST
    assert STRICT.network.deep_scan is NetworkMode.NONE
    assert STRICT.access.fix is Permission.MAINTAIN and DEFAULT.access.fix is Permission.WRITE
    assert STRICT.gates.checkpoint.always
    for tier in (STRICT.budgets.deep_scan, STRICT.budgets.fix):
        assert tier.max_cost_usd < DEFAULT.budgets.deep_scan.max_cost_usd


def test_packs_budget_both_agent_tiers():
    budget = DEFAULT.budgets.deep_scan
    assert (budget.max_cost_usd, budget.confirm_over_usd) == (5.0, 1.0)
    assert (budget.agent.max_iterations, budget.agent.max_cost_usd) == (40, 1.5)
    assert DEFAULT.budgets.fix.agent.wall_seconds == 900
    assert STRICT.budgets.deep_scan.confirm_over_usd < budget.confirm_over_usd
    assert STRICT.fixes.max_lines < DEFAULT.fixes.max_lines
    assert limits_for(STRICT, Tier.FIX).memory_bytes < limits_for(DEFAULT, Tier.FIX).memory_bytes


@pytest.mark.parametrize(
    ("pack", "tier", "mode"),
    [(DEFAULT, "scan", "none"), (DEFAULT, "deep_scan", "allowlist"), (DEFAULT, "fix", "allowlist"),
     (STRICT, "scan", "none"), (STRICT, "deep_scan", "none"), (STRICT, Tier.FIX, "allowlist")],
)  # fmt: skip
def test_network_per_tier(pack, tier, mode):
    decision = network_for(pack, tier)
    assert decision.mode is NetworkMode(mode)
    if mode == "none":
        assert decision.allow_hosts == ()
    else:
        assert "registry.npmjs.org" in decision.allow_hosts and "pypi.org" in decision.allow_hosts


def test_unknown_tier_is_an_error():
    with pytest.raises(ValueError, match="unknown tier"):
        network_for(DEFAULT, "turbo")


def test_limits_per_tier():
    assert limits_for(DEFAULT, "scan") == Limits(
        cpu_seconds=300, memory_bytes=2 * 1024**3, processes=256, file_size_bytes=512 * 1024**2,
        wall_seconds=600.0,
    )  # fmt: skip
    assert limits_for(STRICT, "deep_scan").wall_seconds == 600.0


def test_sandbox_spec_carries_network_and_limits():
    spec = sandbox_spec_for(
        STRICT, "fix", build_id=7, installation_id=9, lifetime=timedelta(minutes=5)
    )
    assert isinstance(spec, SandboxSpec)
    assert (spec.build_id, spec.installation_id, spec.network) == (7, 9, NetworkMode.ALLOWLIST)
    assert spec.limits == limits_for(STRICT, "fix") and spec.env == {}


def test_node_concurrency_per_tier():
    assert (node_concurrency_for(DEFAULT, "scan"), node_concurrency_for(STRICT, "fix")) == (4, 1)


@pytest.mark.parametrize(
    ("tier", "installation", "repository", "admitted", "retry"),
    [
        ("fix", 0, 0, True, None),
        ("fix", 2, 1, True, None),
        ("fix", 3, 0, False, 30),
        ("fix", 0, 2, False, 30),
        ("deep_scan", 0, 1, False, 30),
        ("scan", 19, 4, True, None),
    ],
)
def test_admit_build(tier, installation, repository, admitted, retry):
    decision = admit_build(DEFAULT, tier, installation, repository)
    assert (decision.admitted, decision.retry_after_seconds) == (admitted, retry)
    assert decision.reason


def test_admission_refuses_a_tier_that_is_off():
    pack = DEFAULT.model_copy(update={"tiers": DEFAULT.tiers.model_copy(update={"fix": False})})
    decision = admit_build(pack, "fix", 0, 0)
    assert (decision.admitted, decision.retry_after_seconds) == (False, None)


def test_negative_counts_are_a_caller_error():
    with pytest.raises(ValueError):
        admit_build(DEFAULT, "fix", -1, 0)


@pytest.mark.parametrize(
    ("pack", "command", "permission", "allowed", "required"),
    [
        (DEFAULT, "deep-scan", "write", True, "write"),
        (DEFAULT, "deep-scan", "triage", False, "write"),
        (DEFAULT, "fix", "admin", True, "write"),
        (DEFAULT, "fix", "push", True, "write"),  # the permissions object's name for write
        (DEFAULT, "fix", "pull", False, "write"),
        (DEFAULT, "help", "none", True, "none"),
        (DEFAULT, "status", None, False, "read"),
        (DEFAULT, "status", "weird", False, "read"),
        (STRICT, "fix", "write", False, "maintain"),
        (STRICT, "fix", "maintain", True, "maintain"),
        (STRICT, "approve", "maintain", False, "admin"),
        (STRICT, "approve", Permission.ADMIN, True, "admin"),
        (STRICT, "help", "read", True, "read"),
    ],
)
def test_authorize(pack, command, permission, allowed, required):
    decision = authorize(pack, command, permission)
    assert (decision.allowed, decision.required) == (allowed, Permission(required))
    assert required in decision.reason


def test_unknown_command_is_refused():
    decision = authorize(DEFAULT, "deploy", "admin")
    assert (decision.allowed, decision.required) == (False, None)
    assert "deep-scan" in decision.reason


def test_commands_of_a_tier_that_is_off_are_refused():
    pack = DEFAULT.model_copy(update={"tiers": DEFAULT.tiers.model_copy(update={"fix": False})})
    assert not authorize(pack, "approve", "admin").allowed
    assert authorize(pack, "deep-scan", "admin").allowed


NOW = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "usage", "allowed", "scope", "limit"),
    [
        (QuotaKind.FIX, UsageSnapshot(NOW), True, "pull_request", 20),
        (QuotaKind.FIX, UsageSnapshot(NOW, installation=499), True, "installation", 500),
        (QuotaKind.FIX, UsageSnapshot(NOW, installation=500), False, "installation", 500),
        (QuotaKind.FIX, UsageSnapshot(NOW, user=100), False, "user", 100),
        (QuotaKind.FIX, UsageSnapshot(NOW, pull_request=20), False, "pull_request", 20),
        ("deep_scans", UsageSnapshot(NOW, pull_request=5), False, "pull_request", 5),
        (QuotaKind.LLM_COST, UsageSnapshot(NOW, installation=199.5), True, "installation", 200),
        (QuotaKind.LLM_COST, UsageSnapshot(NOW, installation=200.01), False, "installation", 200),
    ],
)
def test_check_quota(kind, usage, allowed, scope, limit):
    decision = check_quota(DEFAULT, kind, usage)
    assert (decision.allowed, decision.scope, decision.limit) == (allowed, scope, limit)


def test_quota_resets_at_the_next_period():
    used_up = check_quota(DEFAULT, QuotaKind.FIX, UsageSnapshot(NOW, installation=500))
    assert used_up.resets_at == datetime(2026, 1, 1, tzinfo=UTC)
    per_pr = check_quota(DEFAULT, QuotaKind.FIX, UsageSnapshot(NOW, pull_request=20))
    assert per_pr.resets_at is None


def test_daily_period():
    pack = DEFAULT.model_copy(
        update={"quotas": DEFAULT.quotas.model_copy(update={"period": "day"})}
    )
    start, end = quota_period(pack, datetime(2025, 3, 1, 0, 30, tzinfo=UTC) + timedelta(hours=-1))
    assert (start, end) == (datetime(2025, 2, 28, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC))


def test_quota_needs_an_aware_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        check_quota(DEFAULT, QuotaKind.FIX, UsageSnapshot(datetime(2025, 1, 1)))


def test_policies_import_no_service_code():
    # A pure library: nothing of the edges (bot, handlers) or of the orchestrator's
    # machinery, only the sandbox's plain types and the scanner's model.
    allowed = {"orchestrator.sandbox.base", "scanner.model"}
    for module in sorted((PACKS_DIR.parent).glob("*.py")):
        for node in ast.parse(module.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] in ("bot", "handlers", "orchestrator", "scanner"):
                    assert name in allowed, (module.name, name)
