"""The versioned prompt contract of each agent role, and the task message built from it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from orchestrator.agents.contracts import (
    BuilderOutput,
    Contract,
    EducatorOutput,
    PlannerOutput,
    ProberOutput,
    Role,
    ScannerOutput,
    SecurityOutput,
)

_CITE = (
    "Every claim cites evidence: a repository-relative path that exists and, where it is "
    "about code, the 1-based line. Citations are verified against the repository."
)
_FAIL = (
    "An answer that is not valid JSON for the schema, or whose citations or references "
    "do not check out, is returned to you once with the problems; a second invalid "
    "answer fails this step. Never guess: leave out what you could not verify."
)

CONTRACTS: Mapping[Role, Contract] = {
    Role.SCANNER: Contract(
        Role.SCANNER,
        "scanner/1",
        ScannerOutput,
        "You audit an application, mostly generated with AI tools, for production readiness. "
        "Read the code and describe its architecture, its authentication and authorisation "
        "flows and how it accesses data. Report concerns a static scanner misses: missing "
        "authorisation checks, trust in client input, data exposed across tenants, secrets "
        "handling, fragile error handling.",
        _CITE,
        _FAIL,
    ),
    Role.PROBER: Contract(
        Role.PROBER,
        "prober/1",
        ProberOutput,
        "You find out whether the application can be installed, built, tested and started. "
        "Detect its stack from its manifests, then run its install, build and test commands "
        "in the terminal (the network is limited by policy; some commands are refused). "
        "Report each step with the command exactly as you ran it and its exit code.",
        "Each step that is not skipped names a command you ran in the terminal and the exit "
        "code it really had; the terminal's history is checked.",
        _FAIL,
    ),
    Role.SECURITY: Contract(
        Role.SECURITY,
        "security/1",
        SecurityOutput,
        "You validate the findings of a static scanner. For each finding given, read the "
        "code and decide whether it is real and reachable (confirmed) or a false positive "
        "(rejected), with your confidence from 0 to 1 and the evidence.",
        _CITE + " Answer every finding given exactly once, by its fingerprint.",
        _FAIL,
    ),
    Role.PLANNER: Contract(
        Role.PLANNER,
        "planner/1",
        PlannerOutput,
        "You write a prioritised remediation plan for the confirmed findings and concerns: "
        "ordered steps with the files each touches, the effort (xs, s, m, l, xl) and which "
        "steps must come first. Most severe and cheapest first, unless a dependency says "
        "otherwise.",
        "Step ids are unique; depends_on names only steps of the plan and forms no cycle; "
        "findings are fingerprints given to you; files exist in the repository.",
        _FAIL,
    ),
    Role.EDUCATOR: Contract(
        Role.EDUCATOR,
        "educator/1",
        EducatorOutput,
        "You explain each confirmed finding to the person who built the application, who "
        "may not be a security engineer: why it matters and what it means for the business "
        "(data loss, downtime, cost, trust), in plain words.",
        "One lesson for every fingerprint given, and no other.",
        _FAIL,
    ),
    Role.BUILDER: Contract(
        Role.BUILDER,
        "builder/1",
        BuilderOutput,
        "You fix one finding in this repository with the smallest change that removes it "
        "without changing behaviour anyone relies on. Edit the files with file_editor; run "
        "the repository's tests in the terminal if you can. Do not touch CI workflows, lock "
        "files or secrets, and do not add dependencies. After you finish, the tests, the "
        "scanner and the policy check the change; if any refuses it you get its evidence.",
        "files_changed lists exactly the files your change touches; the repository's diff is "
        "compared with it.",
        _FAIL,
    ),
}


def task_message(contract: Contract, given: Mapping[str, Any], workspace: str) -> str:
    """The first user message of a role's conversation."""
    return "\n\n".join(
        [
            f"Clarity role: {contract.role.value} (contract {contract.version})",
            contract.instructions,
            f"The repository is checked out at {workspace}. Use the terminal and file_editor "
            "tools there; change nothing unless your role says so.",
            "Input:\n```json\n" + json.dumps(given, indent=1, sort_keys=True) + "\n```",
            "Evidence required: " + contract.evidence,
            "When done, call the finish tool with a message that is only a JSON object "
            "matching this JSON schema:\n```json\n" + contract.schema() + "\n```",
            contract.failure,
        ]
    )


def retry_message(problems: list[str]) -> str:
    """What the agent is told when its answer broke the contract."""
    listed = "\n".join(f"- {problem}" for problem in problems)
    return (
        "Your answer was not accepted:\n"
        f"{listed}\n"
        "Correct it and call finish again with only the JSON object. This is the last attempt."
    )
