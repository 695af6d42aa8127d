"""What a build found and did, as the build page shows it, every text masked. Pure.

Findings grouped by category, the pull request's fix attempts with each gate's
evidence, the agents' runs with their tool calls, the event log and the costs.
Texts go through `redact` here whatever wrote them: masking twice costs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from bot.build_view import Score
from bot.models import BuildEvent, FixAttempt, Trajectory
from orchestrator.publish_comment import ShownFinding, clip, short_id, show
from scanner.secrets import redact

GROUP_LIMIT = 200  # findings shown per category; the rest are counted
TEXT_LIMIT = 4000  # characters of one tool output, argument list or gate record
EVENT_TEXT_LIMIT = 300  # characters of an event's data in the log (build.js clips the same)


def masked_json(value: Any, limit: int = TEXT_LIMIT, *, compact: bool = False) -> str:
    """`value` as JSON text, secrets masked, clipped to `limit` characters."""
    if compact:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    else:
        text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return clip(redact(text), limit)


@dataclass(frozen=True, slots=True)
class FindingGroup:
    category: str
    score: int | None  # the category's score, when the report has one
    findings: tuple[ShownFinding, ...]  # worst first, at most GROUP_LIMIT
    more: int  # how many more the category has


def group_findings(report: Mapping[str, Any], score: Score | None) -> tuple[FindingGroup, ...]:
    """The report's findings by category: the worst-scoring category first."""
    mask = cache(redact)
    groups: dict[str, list[ShownFinding]] = {}
    for finding in report.get("findings") or ():
        category = mask(str(finding.get("category") or "other"))
        groups.setdefault(category, []).append(show(finding, mask))
    scores = {name: value for name, value, _ in score.categories} if score else {}
    order = list(scores)  # the score lists categories worst first
    ranked = sorted(groups, key=lambda c: (order.index(c) if c in order else len(order), c))
    shown = []
    for category in ranked:
        findings = sorted(groups[category], key=lambda f: f.order)
        shown.append(
            FindingGroup(
                category,
                scores.get(category),
                tuple(findings[:GROUP_LIMIT]),
                max(len(findings) - GROUP_LIMIT, 0),
            )
        )
    return tuple(shown)


@dataclass(frozen=True, slots=True)
class ShownGate:
    gate: str
    passed: bool
    reason: str
    evidence: str  # the rest of the gate's record, as masked JSON ("" when there is none)


@dataclass(frozen=True, slots=True)
class ShownTry:
    number: int
    gates: tuple[ShownGate, ...]
    refused_by: str | None  # set when no gate ran (the agent gave no valid answer)
    reason: str


@dataclass(frozen=True, slots=True)
class ShownFix:
    short: str
    rule_id: str
    outcome: str
    build_id: int | None
    fix_pr_number: int | None
    branch: str | None
    reason: str
    approved_by: str | None
    tries: tuple[ShownTry, ...]
    updated_at: datetime


def _gate(record: Mapping[str, Any]) -> ShownGate:
    rest = {k: v for k, v in record.items() if k not in ("gate", "passed", "reason")}
    return ShownGate(
        gate=redact(str(record.get("gate", "?"))),
        passed=bool(record.get("passed")),
        reason=redact(str(record.get("reason") or "")),
        evidence=masked_json(rest) if rest else "",
    )


def _try(number: int, record: Mapping[str, Any]) -> ShownTry:
    refused_by = record.get("refused_by")
    return ShownTry(
        number=int(record.get("attempt") or number),
        gates=tuple(_gate(g) for g in record.get("gates") or ()),
        refused_by=redact(str(refused_by)) if refused_by else None,
        reason=redact(str(record.get("reason") or "")),
    )


def shown_fixes(rows: Iterable[FixAttempt]) -> tuple[ShownFix, ...]:
    """The pull request's fix attempts, latest first, each try with its gates' evidence."""
    return tuple(
        ShownFix(
            short=short_id(row.fingerprint),
            rule_id=redact(row.rule_id),
            outcome=str(row.outcome).replace("_", " "),
            build_id=row.build_id,
            fix_pr_number=row.fix_pr_number,
            branch=redact(row.branch) if row.branch else None,
            reason=redact(row.reason or ""),
            approved_by=row.approved_by,
            tries=tuple(_try(i, r) for i, r in enumerate(row.gate_results, 1)),
            updated_at=row.updated_at,
        )
        for row in sorted(rows, key=lambda r: (r.updated_at, r.id or 0), reverse=True)
    )


@dataclass(frozen=True, slots=True)
class ShownStep:
    kind: str
    tool: str
    arguments: str  # masked JSON, "" for none
    output: str
    message: str
    note: str  # an error code, detail or reason the event carried
    error: bool


@dataclass(frozen=True, slots=True)
class ShownRun:
    id: int
    task_key: str
    role: str
    attempt: int
    model: str
    status: str
    iterations: int
    cost_usd: float
    seconds: float
    error: str
    tool_calls: int
    steps: tuple[ShownStep, ...]


def _text(value: Any) -> str:
    return clip(redact(str(value or "")), TEXT_LIMIT)


def _step(event: Mapping[str, Any]) -> ShownStep:
    notes = [_text(event[k]) for k in ("code", "detail", "reason") if event.get(k)]
    return ShownStep(
        kind=_text(event.get("kind")),
        tool=_text(event.get("tool")),
        arguments=masked_json(event["arguments"]) if event.get("arguments") else "",
        output=_text(event.get("output")),
        message=_text(event.get("message")),
        note=" · ".join(notes),
        error=bool(event.get("error")),
    )


def shown_runs(rows: Iterable[Trajectory]) -> tuple[ShownRun, ...]:
    """The build's agent runs in the order they ran, their steps masked and clipped."""
    runs = []
    for row in rows:
        steps = tuple(_step(event) for event in row.events)
        runs.append(
            ShownRun(
                id=row.id or 0,
                task_key=row.task_key,
                role=row.role,
                attempt=row.attempt,
                model=redact(row.model),
                status=row.status,
                iterations=row.iterations,
                cost_usd=row.cost_usd,
                seconds=row.duration_seconds,
                error=_text(row.error),
                tool_calls=sum(1 for step in steps if step.arguments),
                steps=steps,
            )
        )
    return tuple(runs)


@dataclass(frozen=True, slots=True)
class Costs:
    total_usd: float
    budget_usd: float | None
    by_role: tuple[tuple[str, int, float, float], ...]  # (role, runs, cost, seconds)


def costs_of(total_usd: float, budget_usd: float | None, runs: Sequence[ShownRun]) -> Costs:
    roles: dict[str, list[float]] = {}
    for run in runs:
        spent = roles.setdefault(run.role, [0, 0.0, 0.0])
        spent[0] += 1
        spent[1] += run.cost_usd
        spent[2] += run.seconds
    return Costs(
        total_usd=total_usd,
        budget_usd=budget_usd,
        by_role=tuple((role, int(n), cost, secs) for role, (n, cost, secs) in roles.items()),
    )


@dataclass(frozen=True, slots=True)
class ShownEvent:
    seq: int
    type: str
    task: str
    at: str  # HH:MM:SS, UTC
    data: str  # compact masked JSON, "" for no data


def shown_event(event: BuildEvent) -> ShownEvent:
    return ShownEvent(
        seq=event.seq,
        type=event.type,
        task=event.task_key or "",
        at=event.created_at.strftime("%H:%M:%S"),
        data=masked_json(event.data, EVENT_TEXT_LIMIT, compact=True) if event.data else "",
    )
