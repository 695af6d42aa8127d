"""`.clarity.yml` tightens the installation's pack; loosening is refused, naming key and line."""

from __future__ import annotations

import pytest

from orchestrator.sandbox.base import NetworkMode
from policies import (
    ChangedFile,
    EffectivePack,
    Permission,
    RepoConfig,
    RepoConfigError,
    authorize,
    check_command,
    check_patch,
    effective_pack,
    limits_for,
    load_pack,
    load_repo_config,
    network_for,
)
from policies.pack import CommandMode
from scanner.model import Severity

DEFAULT, STRICT = load_pack("default"), load_pack("strict")

TIGHTENING = """\
version: 1
tiers:
  fix: false
policy:
  fail_on: medium
  commands:
    mode: allowlist
    deny: ["npx", "git commit"]
    allow: [node-package-manager, pytest, files-and-text]
  network: {deep_scan: none, allow_hosts: [pypi.org]}
  limits:
    fix: {memory: 1GiB, wall_seconds: 300}
  access: {fix: admin, deep-scan: maintain}
  gates:
    security: {new_findings_at_or_above: low}
    checkpoint: {always: true, files_changed_over: 2, paths: ["src/payments/**"]}
  fixes: {deny_paths: ["src/legacy/**"], allow_paths: ["src/**"], max_files: 3, max_lines: 80}
  quotas: {per_pull_request: {fixes: 2}, per_user: {deep_scans: 1}, llm_cost_usd: 10}
  budgets:
    deep_scan: {max_cost_usd: 2, confirm_over_usd: 0.25, agent: {max_iterations: 20}}
"""


@pytest.fixture(scope="module")
def tightened() -> EffectivePack:
    return effective_pack(DEFAULT, load_repo_config(TIGHTENING))


def test_no_policy_section_keeps_the_pack():
    effective = effective_pack(DEFAULT, RepoConfig())
    assert effective.tightened == ()
    assert effective.model_dump(exclude={"tightened"}) == DEFAULT.model_dump()


def test_tightening_applies_each_value(tightened):
    assert tightened.gates.fail_on is Severity.MEDIUM
    assert tightened.commands.mode is CommandMode.ALLOWLIST
    assert [rule.id for rule in tightened.commands.allow] == [
        "node-package-manager", "pytest", "files-and-text"
    ]  # fmt: skip
    assert network_for(tightened, "deep_scan").mode is NetworkMode.NONE
    assert network_for(tightened, "fix").allow_hosts == ("pypi.org",)
    assert limits_for(tightened, "fix").memory_bytes == 1024**3
    assert limits_for(tightened, "fix").cpu_seconds == limits_for(DEFAULT, "fix").cpu_seconds
    assert (
        tightened.access.fix is Permission.ADMIN
        and tightened.access.deep_scan is Permission.MAINTAIN
    )
    assert tightened.gates.security.new_findings_at_or_above is Severity.LOW
    assert (
        tightened.gates.checkpoint.always and "src/payments/**" in tightened.gates.checkpoint.paths
    )
    assert tightened.fixes.deny_paths[-1] == "src/legacy/**" and tightened.fixes.max_files == 3
    assert (
        tightened.quotas.per_pull_request.fixes == 2
        and tightened.quotas.installation.llm_cost_usd == 10
    )
    deep_scan = tightened.budgets.deep_scan
    assert (deep_scan.max_cost_usd, deep_scan.confirm_over_usd) == (2, 0.25)
    assert deep_scan.agent.max_iterations == 20
    assert deep_scan.agent.wall_seconds == DEFAULT.budgets.deep_scan.agent.wall_seconds
    assert tightened.budgets.fix == DEFAULT.budgets.fix
    assert not tightened.tiers.fix
    assert "policy.limits.fix.memory" in tightened.tightened and "tiers.fix" in tightened.tightened


def test_tightened_pack_drives_the_decisions(tightened):
    assert check_command(tightened, "npx create-thing").rule == "repo-npx"
    assert check_command(tightened, "git commit -m x").rule == "repo-git-commit"
    assert check_command(tightened, "node x.js").rule == "not-allowlisted"
    assert check_command(tightened, "npm test && ls").allowed
    assert not authorize(tightened, "fix", "admin").allowed  # fixes are off for this repository
    assert authorize(tightened, "deep-scan", "maintain").allowed
    assert not authorize(tightened, "deep-scan", "write").allowed
    outside = check_patch(tightened, [ChangedFile("docs/a.md", 1, 1)], _diff("docs/a.md"))
    assert [v.rule for v in outside.violations] == ["path-not-allowed"]
    legacy = check_patch(
        tightened, [ChangedFile("src/legacy/a.ts", 1, 1)], _diff("src/legacy/a.ts")
    )
    assert [v.rule for v in legacy.violations] == ["path-denied"]


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("policy:\n  limits:\n    fix:\n      memory: 64GiB\n", "policy.limits.fix.memory", 4),
        ("policy:\n  limits:\n    scan: {cpu_seconds: 301}\n", "policy.limits.scan.cpu_seconds", 3),
        ("policy:\n  access:\n    fix: read\n", "policy.access.fix", 3),
        ("policy:\n  access:\n    deep-scan: triage\n", "policy.access.deep-scan", 3),
        ("\npolicy:\n  fail_on: critical\n", "policy.fail_on", 3),
        ("fail_on: critical\n", "fail_on", 1),
        ("policy:\n  network:\n    allow_hosts: [x.org]\n", "policy.network.allow_hosts.0", 3),
        ("policy:\n  commands:\n    allow: [pytest, curl]\n", "policy.commands.allow.1", 3),
        ("policy:\n  commands:\n    deny: [x, '!git-push']\n", "policy.commands.deny.1", 3),
        ("policy:\n  commands:\n    deny:\n      - x\n      - x\n", "policy.commands.deny.1", 5),
        ("policy:\n  commands:\n    deny:\n      - {id: x, program: '(a+)+$', reason: y}\n",
         "policy.commands.deny.0", 4),
        ("policy:\n  fixes:\n    deny_paths: ['!yarn.lock']\n", "policy.fixes.deny_paths.0", 3),
        ("policy:\n  fixes:\n    binary: allow\n", "policy.fixes.binary", 3),
        ("policy:\n  fixes: {max_files: 11}\n", "policy.fixes.max_files", 2),
        ("policy:\n  gates:\n    tests:\n      no_new_failures: false\n",
         "policy.gates.tests.no_new_failures", 4),
        ("policy:\n  gates:\n    security:\n      new_findings_at_or_above: high\n",
         "policy.gates.security.new_findings_at_or_above", 4),
        ("policy:\n  gates:\n    checkpoint: {files_changed_over: 50}\n",
         "policy.gates.checkpoint.files_changed_over", 3),
        ("policy:\n  quotas:\n    per_user: {fixes: 1000}\n", "policy.quotas.per_user.fixes", 3),
        ("policy:\n  quotas:\n    llm_cost_usd: 1000\n", "policy.quotas.llm_cost_usd", 3),
        ("policy:\n  budgets:\n    deep_scan: {max_cost_usd: 50}\n",
         "policy.budgets.deep_scan.max_cost_usd", 3),
        ("policy:\n  budgets:\n    fix:\n      confirm_over_usd: 2.5\n",
         "policy.budgets.fix.confirm_over_usd", 4),
        ("policy:\n  budgets:\n    fix:\n      agent: {max_iterations: 10, wall_seconds: 3600}\n",
         "policy.budgets.fix.agent.wall_seconds", 4),
    ],
)  # fmt: skip
def test_loosening_is_refused_with_key_and_line(text, key, line):
    with pytest.raises(RepoConfigError) as raised:
        effective_pack(DEFAULT, load_repo_config(text))
    assert (raised.value.key, raised.value.line) == (key, line)
    assert key in str(raised.value) and f"line {line}" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("policy:\n  network:\n    deep_scan: allowlist\n", "policy.network.deep_scan", 3),
        ("policy:\n  commands:\n    mode: denylist\n", "policy.commands.mode", 3),
        (
            "policy:\n  gates:\n    checkpoint:\n      always: false\n",
            "policy.gates.checkpoint.always",
            4,
        ),
        ("policy:\n  access:\n    fix: write\n", "policy.access.fix", 3),
        ("policy:\n  budgets:\n    deep_scan: {confirm_over_usd: 1}\n",
         "policy.budgets.deep_scan.confirm_over_usd", 3),
    ],
)  # fmt: skip
def test_loosening_strict_is_refused(text, key, line):
    with pytest.raises(RepoConfigError, match="not loosen") as raised:
        effective_pack(STRICT, load_repo_config(text))
    assert (raised.value.key, raised.value.line) == (key, line)


def test_a_tier_off_in_the_pack_cannot_be_turned_on():
    pack = DEFAULT.model_copy(update={"tiers": DEFAULT.tiers.model_copy(update={"fix": False})})
    with pytest.raises(RepoConfigError) as raised:
        effective_pack(pack, load_repo_config("tiers:\n  scan: true\n  fix: true\n"))
    assert (raised.value.key, raised.value.line) == ("tiers.fix", 3)
    assert not effective_pack(pack, load_repo_config("tiers: {scan: true}\n")).tiers.fix


@pytest.mark.parametrize(
    "text",
    [
        "policy:\n  limits:\n    fix: {memory: 4GiB}\n",  # equal is not looser
        "policy:\n  access: {fix: write}\n",
        "policy:\n  network: {fix: allowlist}\n",
        "fail_on: high\n",
        "policy:\n  budgets: {fix: {max_cost_usd: 5, agent: {max_iterations: 60}}}\n",
    ],
)
def test_restating_the_pack_is_accepted_and_changes_nothing(text):
    effective = effective_pack(DEFAULT, load_repo_config(text))
    assert effective.model_dump(exclude={"tightened"}) == DEFAULT.model_dump()
    assert effective.tightened == ()


def test_a_lower_build_cap_lowers_the_agents_caps_above_it():
    config = load_repo_config("policy:\n  budgets:\n    fix: {max_cost_usd: 1.25}\n")
    effective = effective_pack(DEFAULT, config)
    assert effective.budgets.fix.agent.max_cost_usd == 1.25
    assert effective.tightened == (
        "policy.budgets.fix.max_cost_usd",
        "policy.budgets.fix.agent.max_cost_usd",
    )


def test_an_empty_host_list_means_no_network():
    effective = effective_pack(DEFAULT, load_repo_config("policy:\n  network: {allow_hosts: []}\n"))
    assert network_for(effective, "fix").mode is NetworkMode.NONE


def test_a_config_built_in_code_has_no_lines():
    config = RepoConfig.model_validate({"policy": {"access": {"fix": "read"}}})
    with pytest.raises(RepoConfigError) as raised:
        effective_pack(DEFAULT, config)
    assert (raised.value.key, raised.value.line) == ("policy.access.fix", 0)


def _diff(path: str) -> str:
    head = f"diff --git a/{path} b/{path}\nindex 1..2 100644\n--- a/{path}\n+++ b/{path}\n"
    return head + "@@ -1 +1 @@\n-a\n+b\n"
