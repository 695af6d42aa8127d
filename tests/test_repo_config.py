"""`.clarity.yml`: the schema, errors that name key and line, and the scan options it yields."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import jsonschema
import pytest
import yaml

from policies.repo_config import (
    RepoConfig,
    RepoConfigError,
    load_repo_config,
    schema_text,
    write_schema,
)
from scanner.model import Severity
from scanner.options import Ignore, ScanOptions
from scanner.rules import catalogue

FULL = """\
version: 1
exclude:
  - "docs/**"
  - "*.generated.ts"
rules:
  py-print-in-production: off
  py-sql-injection: critical
fail_on: medium
comment: always
tiers:
  scan: true
  deep_scan: false
  fix: false
drafts: skip
"""


def test_full_file_loads():
    config = load_repo_config(FULL, known_rules=catalogue())
    assert config.exclude == ["docs/**", "*.generated.ts"]
    assert config.rules == {"py-print-in-production": "off", "py-sql-injection": "critical"}
    assert (config.fail_on, config.comment, config.drafts) == (Severity.MEDIUM, "always", "skip")
    assert (config.tiers.scan, config.tiers.deep_scan, config.tiers.fix) == (True, False, False)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "version: 1\n"])
def test_empty_file_means_defaults(text):
    assert load_repo_config(text) == RepoConfig()


def test_scan_options_carry_excludes_overrides_and_threshold():
    options = load_repo_config(FULL).scan_options(jobs=3)
    assert options == ScanOptions(
        excludes=("docs/**", "*.generated.ts"),
        rule_overrides={"py-print-in-production": "off", "py-sql-injection": Severity.CRITICAL},
        fail_on=Severity.MEDIUM,
        jobs=3,
    )


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("version: 1\ntiers:\n  scan: true\n  deepscan: false\n", "tiers.deepscan", 4),
        ("version: 1\nfail_on: urgent\n", "fail_on", 2),
        ("version: 2\n", "version", 1),
        ("rules:\n  py-sql-injection: sometimes\n", "rules.py-sql-injection", 2),
        ("exclude:\n  - ok\n  - [nested]\n", "exclude.1", 3),
        ("comment: maybe\n", "comment", 1),
        ("drafts: ignore\n", "drafts", 1),
        ("\n\nunknown_key: 1\n", "unknown_key", 3),
        ("rules:\n  py-sqli: off\n", "rules.py-sqli", 2),
    ],
)
def test_errors_name_key_and_line(text, key, line):
    with pytest.raises(RepoConfigError) as raised:
        load_repo_config(text, known_rules=catalogue())
    assert (raised.value.key, raised.value.line) == (key, line)
    assert key in str(raised.value) and f"line {line}" in str(raised.value)


def test_unknown_rule_id_is_named():
    with pytest.raises(RepoConfigError, match="py-sqli"):
        load_repo_config("rules:\n  py-sqli: off\n", known_rules={"py-sql-injection"})


@pytest.mark.parametrize("text", ["rules: [\n", "- a list\n", "version: 1\n  bad indent: x\n"])
def test_broken_yaml_is_a_config_error(text):
    with pytest.raises(RepoConfigError) as raised:
        load_repo_config(text)
    assert raised.value.line >= 1


def test_yaml_off_means_rule_off_not_false():
    assert load_repo_config("rules:\n  py-xss: off\n").rules == {"py-xss": "off"}


POLICY = """\
policy:
  fail_on: medium
  commands: {deny: ["npx", "git push --force"]}
  limits:
    fix: {memory: 1GiB, wall_seconds: 300}
  access: {fix: admin}
  budgets: {deep_scan: {confirm_over_usd: 0.5, agent: {wall_seconds: 300}}}
"""


def test_policy_section_loads():
    policy = load_repo_config(POLICY).policy
    assert policy.fail_on is Severity.MEDIUM
    assert [rule.id for rule in policy.commands.deny] == ["repo-npx", "repo-git-push-force"]
    assert (policy.limits.fix.memory, policy.limits.fix.wall_seconds) == (1024**3, 300)
    assert policy.limits.scan is None and policy.network is None
    assert policy.budgets.deep_scan.confirm_over_usd == 0.5
    assert policy.budgets.deep_scan.agent.wall_seconds == 300
    assert policy.budgets.deep_scan.max_cost_usd is None and policy.budgets.fix is None


def test_key_line_finds_policy_keys():
    config = load_repo_config(POLICY)
    assert config.key_line("policy", "limits", "fix", "memory") == 5
    assert config.key_line("policy", "access", "fix") == 6
    assert config.key_line("policy", "budgets", "deep_scan", "agent", "wall_seconds") == 7
    assert RepoConfig().key_line("policy") == 0


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("policy:\n  limits:\n    fix:\n      memory: lots\n", "policy.limits.fix.memory", 4),
        ("policy:\n  access:\n    fix: owner\n", "policy.access.fix", 3),
        ("policy:\n  network:\n    deep_scan: sometimes\n", "policy.network.deep_scan", 3),
        ("policy:\n  commands:\n    deny: ['$(x)']\n", "policy.commands.deny.0", 3),
        ("policy:\n  fixes:\n    deny_paths: ['!a']\n", "policy.fixes.deny_paths.0", 3),
        ("policy:\n  colour: red\n", "policy.colour", 2),
        ("policy:\n  budgets:\n    deep_scan: {max_cost_usd: 0}\n",
         "policy.budgets.deep_scan.max_cost_usd", 3),
        ("policy:\n  budgets:\n    fix:\n      confirm_over_usd: -1\n",
         "policy.budgets.fix.confirm_over_usd", 4),
        ("policy:\n  budgets:\n    scan: {max_cost_usd: 1}\n", "policy.budgets.scan", 3),
        ("policy:\n  budgets:\n    fix:\n      agent: {turns: 3}\n",
         "policy.budgets.fix.agent.turns", 4),
    ],
)  # fmt: skip
def test_policy_errors_name_key_and_line(text, key, line):
    with pytest.raises(RepoConfigError) as raised:
        load_repo_config(text)
    assert (raised.value.key, raised.value.line) == (key, line)


def test_nested_aliases_do_not_blow_up():
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(8):
        previous = "a" if level == 0 else f"l{level - 1}"
        text += f"l{level}: &l{level} [{', '.join(['*' + previous] * 10)}]\n"
    with pytest.raises(RepoConfigError):  # promptly: each aliased node is walked once
        load_repo_config(text + "exclude: *l7\n")


def test_committed_schema_is_the_generated_one():
    committed = (
        Path(__file__).resolve().parent.parent / "docs" / "clarity-yml.schema.json"
    ).read_text()
    assert committed == schema_text(), (
        "docs/clarity-yml.schema.json is stale; regenerate it with "
        "policies.repo_config.write_schema('docs/clarity-yml.schema.json')"
    )


def test_write_schema_writes_the_schema(tmp_path):
    write_schema(tmp_path / "schema.json")
    assert (tmp_path / "schema.json").read_text() == schema_text()


@pytest.mark.parametrize("text", [FULL, POLICY])
def test_schema_accepts_valid_files(text):
    validator = jsonschema.Draft202012Validator(json.loads(schema_text()))
    assert list(validator.iter_errors(yaml.safe_load(text))) == []


@pytest.mark.parametrize(
    "text",
    [
        "comment: maybe\n",
        "policy:\n  access: {fix: owner}\n",
        "tiers: {deepscan: false}\n",
        "policy:\n  budgets: {deep_scan: {max_cost_usd: 0}}\n",
        "policy:\n  budgets: {fix: {agent: {max_iterations: 2.5}}}\n",
        "policy:\n  budgets: {scan: {max_cost_usd: 1}}\n",
    ],
)
def test_schema_rejects_what_the_loader_rejects(text):
    validator = jsonschema.Draft202012Validator(json.loads(schema_text()))
    assert list(validator.iter_errors(yaml.safe_load(text)))
    with pytest.raises(RepoConfigError):
        load_repo_config(text)


FINGERPRINT = "3F2A9C1B" + "0" * 24
IGNORES = f"""\
ignore:
  - fingerprint: {FINGERPRINT}
    reason: "  ids are validated upstream  "
    until: 2026-06-30
  - {{fingerprint: {"b" * 32}, reason: generated code}}
"""


def test_ignore_entries_load_with_their_reason_and_date():
    first, second = load_repo_config(IGNORES).ignore
    assert (first.fingerprint, first.reason, first.until) == (
        FINGERPRINT.lower(),
        "ids are validated upstream",
        date(2026, 6, 30),
    )
    assert (second.reason, second.until) == ("generated code", None)


def test_scan_options_carry_the_ignores_and_the_callers_date():
    options = load_repo_config(IGNORES).scan_options(today=date(2026, 7, 1))
    assert options.ignores == (
        Ignore(FINGERPRINT.lower(), "ids are validated upstream", date(2026, 6, 30)),
        Ignore("b" * 32, "generated code"),
    )
    assert options.today == date(2026, 7, 1)


@pytest.mark.parametrize(
    ("text", "key", "line", "problem"),
    [
        ("ignore:\n  - {fingerprint: abc, reason: x}\n", "ignore.0.fingerprint", 2, "32 hex"),
        (f"ignore:\n  - fingerprint: {'a' * 32}\n", "ignore.0.reason", 2, "required"),
        (f"ignore:\n  - {{fingerprint: {'a' * 32}, reason: ' '}}\n", "ignore.0.reason", 2, ""),
        (f"ignore:\n  - {{fingerprint: {'a' * 32}, reason: x, until: soon}}\n",
         "ignore.0.until", 2, "date"),
        (f"ignore:\n  - {{fingerprint: {'a' * 32}, reason: x, rule: y}}\n",
         "ignore.0.rule", 2, "unknown key"),
        (f"ignore:\n  - {{fingerprint: {'a' * 32}, reason: x}}\n"
         f"  - {{fingerprint: {'A' * 32}, reason: y}}\n",
         "ignore.1.fingerprint", 3, "already ignored by ignore.0"),
    ],
)  # fmt: skip
def test_ignore_errors_name_key_and_line(text, key, line, problem):
    with pytest.raises(RepoConfigError) as raised:
        load_repo_config(text)
    assert (raised.value.key, raised.value.line) == (key, line)
    assert problem in str(raised.value)


def test_schema_accepts_ignore_entries_and_requires_a_reason():
    validator = jsonschema.Draft202012Validator(json.loads(schema_text()))
    # As editors read YAML 1.2: the date is a string there.
    data = json.loads(json.dumps(yaml.safe_load(IGNORES), default=str))
    assert list(validator.iter_errors(data)) == []
    del data["ignore"][1]["reason"]
    assert list(validator.iter_errors(data))
