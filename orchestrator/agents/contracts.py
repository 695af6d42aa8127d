"""Prompt contracts: what each agent role is given, what it must answer, and how that is checked.

A contract is versioned. Its output is a pydantic model (the JSON schema the agent
is shown); `check` then verifies what a schema cannot: every cited file and line
exists in the workspace, every finding handed in is answered exactly once, plan
steps form a DAG, and a prober's commands really ran with the exit codes it claims.
Output that fails either is sent back once with the problems; then the node fails.
"""

from __future__ import annotations

import graphlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scanner.model import Severity


class Role(StrEnum):
    SCANNER = "scanner"
    PROBER = "prober"
    SECURITY = "security"
    PLANNER = "planner"
    EDUCATOR = "educator"
    BUILDER = "builder"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Evidence(_Out):
    path: str = Field(min_length=1, max_length=500, description="repository-relative path")
    line: int | None = Field(None, ge=1, description="1-based line the claim is about")
    excerpt: str = Field("", max_length=500, description="the code or output that shows it")


Category = Literal["security", "reliability", "scalability", "maintainability"]


class Concern(_Out):
    title: str = Field(min_length=1, max_length=200)
    severity: Severity
    category: Category
    area: Literal["architecture", "auth", "data_access", "other"]
    explanation: str = Field(min_length=1, max_length=2000)
    evidence: list[Evidence] = Field(min_length=1, max_length=10)


class ScannerOutput(_Out):
    summary: str = Field(min_length=1, max_length=2000)
    architecture: str = Field(min_length=1, max_length=4000)
    concerns: list[Concern] = Field(max_length=30)


class ProbeStep(_Out):
    name: Literal["install", "build", "test", "start", "other"]
    command: str = Field(
        max_length=500, description="exactly as run in the terminal; '' if skipped"
    )
    outcome: Literal["passed", "failed", "skipped"]
    exit_code: int | None = None
    detail: str = Field(max_length=2000, description="output excerpt, or why it was skipped")


class ProberOutput(_Out):
    summary: str = Field(min_length=1, max_length=2000)
    runnable: bool
    steps: list[ProbeStep] = Field(min_length=1, max_length=20)


class FindingVerdict(_Out):
    fingerprint: str = Field(min_length=1, max_length=64)
    verdict: Literal["confirmed", "rejected"]
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str = Field(min_length=1, max_length=2000)
    evidence: list[Evidence] = Field(min_length=1, max_length=5)


class SecurityOutput(_Out):
    verdicts: list[FindingVerdict] = Field(max_length=500)


Effort = Literal["xs", "s", "m", "l", "xl"]
EFFORT_HOURS: Mapping[str, float] = {"xs": 0.5, "s": 2, "m": 4, "l": 8, "xl": 16}


class PlanStep(_Out):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    title: str = Field(min_length=1, max_length=200)
    findings: list[str] = Field(default_factory=list, description="fingerprints it resolves")
    files: list[str] = Field(default_factory=list, max_length=30)
    effort: Effort
    depends_on: list[str] = Field(default_factory=list)
    rationale: str = Field(min_length=1, max_length=2000)


class PlannerOutput(_Out):
    summary: str = Field(min_length=1, max_length=2000)
    steps: list[PlanStep] = Field(max_length=40)


class Lesson(_Out):
    fingerprint: str = Field(min_length=1, max_length=64)
    why_it_matters: str = Field(min_length=1, max_length=1500)
    business_impact: str = Field(min_length=1, max_length=1000)


class EducatorOutput(_Out):
    summary: str = Field(min_length=1, max_length=2000)
    lessons: list[Lesson] = Field(max_length=200)


class BuilderOutput(_Out):
    summary: str = Field(min_length=1, max_length=300, description="one line: what was fixed")
    files_changed: list[str] = Field(min_length=1, max_length=30)
    explanation: str = Field(min_length=1, max_length=3000, description="what changed and why")
    verification: str = Field(min_length=1, max_length=2000, description="how a reviewer checks it")


@dataclass(frozen=True, slots=True)
class Facts:
    """What the workspace and the trajectory show, gathered by the runner for `check`."""

    line_counts: Mapping[str, int | None]  # cited path -> lines, None when it does not exist
    commands: Mapping[str, int | None] = field(default_factory=dict)  # ran -> last exit code
    changed: frozenset[str] = frozenset()  # files the workspace's diff touches


class ContractViolation(Exception):
    """The agent's answer broke its contract; `problems` are sent back to it verbatim."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class Contract:
    role: Role
    version: str
    output: type[_Out]
    instructions: str
    evidence: str  # what must back the answer, as the agent is told
    failure: str  # what happens when the answer is not valid, as the agent is told

    def schema(self) -> str:
        return json.dumps(self.output.model_json_schema(), separators=(",", ":"))

    def parse(self, message: str) -> _Out:
        """The output model from the agent's final message, or ContractViolation."""
        text = _json_text(message)
        if text is None:
            raise ContractViolation(["the final message holds no JSON object"])
        try:
            return self.output.model_validate_json(text)
        except ValidationError as error:
            raise ContractViolation(
                [
                    f"{'.'.join(str(p) for p in e['loc']) or 'output'}: {e['msg']}"
                    for e in error.errors(include_url=False)[:20]
                ]
            ) from None

    def citations(self, output: _Out) -> list[Evidence]:
        found: list[Evidence] = []
        _collect(output, found)
        if isinstance(output, PlannerOutput):
            found.extend(Evidence(path=p) for step in output.steps for p in step.files)
        return found

    def check(self, output: _Out, given: Mapping[str, Any], facts: Facts) -> None:
        """Raise ContractViolation listing every problem a schema cannot see."""
        problems = _cited(self.citations(output), facts)
        problems += _ROLE_CHECKS[self.role](output, given, facts)
        if problems:
            raise ContractViolation(problems)


def _json_text(message: str) -> str | None:
    fenced = re.findall(r"```(?:json)?\s*(\{.*?\})\s*```", message, re.DOTALL)
    if fenced:
        return fenced[-1]
    start, end = message.find("{"), message.rfind("}")
    return message[start : end + 1] if 0 <= start < end else None


def _collect(value: Any, found: list[Evidence]) -> None:
    if isinstance(value, Evidence):
        found.append(value)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _collect(getattr(value, name), found)
    elif isinstance(value, list):
        for item in value:
            _collect(item, found)


def normalise(path: str, workspace: str = "") -> str:
    """A cited path relative to the repository root (agents cite absolute paths too)."""
    if workspace and path.startswith(workspace.rstrip("/") + "/"):
        path = path[len(workspace.rstrip("/")) + 1 :]
    return path.removeprefix("./").lstrip("/")


def _cited(citations: list[Evidence], facts: Facts) -> list[str]:
    problems = []
    for cite in citations:
        lines = facts.line_counts.get(cite.path)
        if lines is None:
            problems.append(f"cites {cite.path}, which does not exist in the repository")
        elif cite.line is not None and cite.line > lines:
            problems.append(f"cites {cite.path}:{cite.line}, but the file has {lines} lines")
    return problems


def _no_checks(output: Any, given: Mapping[str, Any], facts: Facts) -> list[str]:
    return []


def _prober(output: Any, given: Mapping[str, Any], facts: Facts) -> list[str]:
    problems = []
    for step in output.steps:
        if step.outcome == "skipped":
            continue
        if step.command not in facts.commands:
            problems.append(f"step {step.name!r} claims {step.command!r} ran, but it never did")
        elif facts.commands[step.command] != step.exit_code:
            ran = facts.commands[step.command]
            problems.append(f"{step.command!r} exited with {ran}, not {step.exit_code}")
        elif (step.outcome == "passed") != (step.exit_code == 0):
            problems.append(
                f"step {step.name!r} says {step.outcome} with exit code {step.exit_code}"
            )
    return problems


def _security(output: Any, given: Mapping[str, Any], facts: Facts) -> list[str]:
    expected = [f["fingerprint"] for f in given.get("findings", [])]
    answered = [v.fingerprint for v in output.verdicts]
    problems = [f"no verdict for finding {p}" for p in expected if p not in answered]
    problems += [f"verdict for unknown finding {p}" for p in answered if p not in expected]
    problems += [f"more than one verdict for {p}" for p in set(answered) if answered.count(p) > 1]
    return problems


def _planner(output: Any, given: Mapping[str, Any], facts: Facts) -> list[str]:
    ids = [step.id for step in output.steps]
    problems = [f"step id {i!r} is used twice" for i in set(ids) if ids.count(i) > 1]
    known = set(given.get("findings", ()))
    for step in output.steps:
        problems += [
            f"step {step.id!r} depends on unknown step {d!r}"
            for d in step.depends_on
            if d not in ids
        ]
        problems += [
            f"step {step.id!r} names unknown finding {f}" for f in step.findings if f not in known
        ]
    if not problems:
        graph = graphlib.TopologicalSorter({s.id: s.depends_on for s in output.steps})
        try:
            graph.prepare()
        except graphlib.CycleError as error:
            problems.append("steps depend on each other in a cycle: " + " -> ".join(error.args[1]))
    return problems


def _educator(output: Any, given: Mapping[str, Any], facts: Facts) -> list[str]:
    known = set(given.get("findings", ()))
    explained = [lesson.fingerprint for lesson in output.lessons]
    problems = [f"lesson for unknown finding {f}" for f in explained if f not in known]
    problems += [f"no lesson for finding {f}" for f in sorted(known) if f not in explained]
    return problems


def _builder(output: Any, given: Mapping[str, Any], facts: Facts) -> list[str]:
    if not facts.changed:
        return ["the repository is unchanged: no fix was made"]
    claimed = {normalise(path) for path in output.files_changed}
    problems = [
        f"files_changed names {p}, which the change does not touch"
        for p in sorted(claimed - facts.changed)
    ]
    problems += [
        f"the change touches {p}, which files_changed leaves out"
        for p in sorted(facts.changed - claimed)
    ]
    return problems


_ROLE_CHECKS = {
    Role.SCANNER: _no_checks,
    Role.PROBER: _prober,
    Role.SECURITY: _security,
    Role.PLANNER: _planner,
    Role.EDUCATOR: _educator,
    Role.BUILDER: _builder,
}
