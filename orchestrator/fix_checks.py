"""The gates one fix attempt must pass, with their evidence: policy, tests, security.

Each returns a JSON-ready dict (`gate`, `passed`, `reason`, evidence) for the
attempt's record, the next attempt's prompt and the fix pull request's body.
Undecided is refused: tests that could not run, a scan that gave no report.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.models import utcnow
from orchestrator.sandbox.base import Sandbox
from orchestrator.scan_bundle import BUNDLE_FILE, bundle_tarball, run_command
from orchestrator.test_runs import (
    Outcome,
    Runner,
    TestCommand,
    TestRun,
    compare,
    gate_decision,
    run_tests,
    test_evidence,
)
from orchestrator.tier1 import CONFIG_FILE, SCAN_TIMEOUT, ScanOutcome
from policies import ChangedFile, Pack, RepoConfigError, check_patch, load_repo_config
from policies.gates import security_gate
from scanner.rules import catalogue
from scanner.sandboxed import options_to_json
from scanner.secrets import redact

_HEADER = re.compile(r"^diff --git a/(.+?) b/(.+)$")


def changed_of(patch: str) -> list[ChangedFile]:
    """Each file a git patch changes, with its added and removed line counts."""
    files: list[ChangedFile] = []
    path, added, removed, binary = None, 0, 0, False
    for line in patch.splitlines():
        header = _HEADER.match(line)
        if header:
            if path is not None:
                files.append(ChangedFile(path, added, removed, binary))
            path, added, removed, binary = header.group(2), 0, 0, False
        elif line.startswith("GIT binary patch") or line.startswith("Binary files "):
            binary = True
        elif line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    if path is not None:
        files.append(ChangedFile(path, added, removed, binary))
    return files


def policy_check(pack: Pack, patch: str) -> dict[str, Any]:
    """Paths, size, binaries (the pack's `fixes`), and no secret among the added lines."""
    decision = check_patch(pack, changed_of(patch), patch)
    problems = [f"{v.path or 'the patch'}: {v.reason} ({v.rule})" for v in decision.violations]
    added = "\n".join(
        line[1:]
        for line in patch.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    )
    if redact(added) != added:
        problems.append("the patch adds what looks like a secret (secret)")
    return {
        "gate": "policy",
        "passed": not problems,
        "reason": "; ".join(problems) if problems else "within the pack's limits for fixes",
        "files": [c.path for c in changed_of(patch)],
    }


def run_json(run: TestRun) -> dict[str, Any]:
    """A test run as JSON, for a node's result (and back with `run_from`)."""
    command = run.command
    return {
        "command": {
            "runner": command.runner.value,
            "argv": list(command.argv),
            "timeout": command.timeout,
        },
        "ran": run.ran,
        "exit_code": run.exit_code,
        "outcomes": {test: outcome.value for test, outcome in run.outcomes.items()},
        "output_tail": run.output_tail,
        "timed_out": run.timed_out,
        "problem": run.problem,
    }


def run_from(data: dict[str, Any]) -> TestRun:
    command = TestCommand(
        Runner(data["command"]["runner"]),
        tuple(data["command"]["argv"]),
        data["command"]["timeout"],
    )
    return TestRun(
        command,
        data["ran"],
        data["exit_code"],
        {test: Outcome(value) for test, value in data["outcomes"].items()},
        data["output_tail"],
        data["timed_out"],
        data["problem"],
    )


async def tests_check(
    pack: Pack, sandbox: Sandbox, before: dict[str, Any] | None
) -> dict[str, Any]:
    """No test that passed at the head fails with the fix (`before` None: it has no tests)."""
    baseline = run_from(before) if before is not None else None
    after = await run_tests(sandbox, baseline.command) if baseline is not None else None
    comparison = compare(baseline, after)
    decision = gate_decision(pack, comparison)
    return {
        "gate": "tests",
        "passed": decision.passed,
        "reason": decision.reason,
        "evidence": test_evidence(baseline, after),
    }


async def security_check(
    pack: Pack, sandbox: Sandbox, head: ScanOutcome, finding: dict[str, Any]
) -> dict[str, Any]:
    """Tier 1 on the patched tree: the finding is gone and nothing at or above the bar is new."""
    report = await scan_tree(sandbox)
    if report is None:
        return {"gate": "security", "passed": False, "reason": "the scan of the fix gave no report"}
    before = {f["fingerprint"] for f in head.findings}
    after = report.get("findings", [])
    still = any(f["fingerprint"] == finding["fingerprint"] for f in after)
    new = [f for f in after if f["fingerprint"] not in before]
    decision = security_gate(pack, [f["severity"] for f in new])
    reasons = [] if decision.passed else [decision.reason]
    if still:
        reasons.insert(0, f"the finding ({finding['rule_id']}) is still there")
    return {
        "gate": "security",
        "passed": not reasons,
        "reason": "; ".join(reasons) or f"the finding is gone; {decision.reason}",
        "new_findings": [
            {k: f.get(k) for k in ("rule_id", "severity", "path", "line", "title")} for f in new
        ],
        "score_after": report.get("score", {}).get("overall"),
    }


async def scan_tree(sandbox: Sandbox) -> dict[str, Any] | None:
    """The Tier 1 JSON report of the sandbox's workspace, with the head's own `.clarity.yml`."""
    shown = await sandbox.exec(["git", "show", f"HEAD:{CONFIG_FILE}"])
    try:
        config = load_repo_config(shown.stdout if shown.ok else "", known_rules=set(catalogue()))
    except RepoConfigError:
        config = load_repo_config("", known_rules=set(catalogue()))
    options = config.scan_options(jobs=1, today=utcnow().date())
    await sandbox.write_file(BUNDLE_FILE, bundle_tarball())
    result = await sandbox.exec(
        run_command(sandbox.workspace, options_to_json(options)), timeout=SCAN_TIMEOUT
    )
    if not result.ok:
        return None
    try:
        return json.loads(result.stdout)
    except ValueError:
        return None
