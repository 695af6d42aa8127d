"""Ordering the remediation plan, and scoring after validation: rejected out, concerns in."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from orchestrator.agents.contracts import EFFORT_HOURS, Concern, FindingVerdict, PlanStep
from scanner.model import Category, Finding, Severity
from scanner.score import score


def deep_score(
    findings: Iterable[Mapping[str, Any]],
    verdicts: Iterable[FindingVerdict],
    concerns: Iterable[Concern],
) -> tuple[int, dict[str, int]]:
    """The scanner's health score after the agents: rejected findings out, concerns in.

    Returns the overall score and the score of each category, as `scanner.score` does.
    """
    rejected = {v.fingerprint for v in verdicts if v.verdict == "rejected"}
    kept = [(f["severity"], f["category"]) for f in findings if f["fingerprint"] not in rejected]
    kept += [(c.severity, c.category) for c in concerns]
    scores = score(_scored(severity, category) for severity, category in kept)
    return scores.overall, {str(c): value for c, value in scores.categories.items()}


def _scored(severity: str, category: str) -> Finding:
    """A finding as `score` reads it: only its severity and category count."""
    return Finding("", "", Severity(severity), Category(category), "", 0, 0, 0, 0, "", "", "", "")


def plan_order(steps: Sequence[PlanStep], severities: Mapping[str, Severity]) -> list[PlanStep]:
    """The steps in the order to do them: each after what it depends on, then worst first.

    Of the steps that are ready, the one resolving the worst finding (`severities` by
    fingerprint) goes first, then the smaller effort, then the planner's own order.
    """
    by_id = {step.id: step for step in steps}

    def priority(step: PlanStep) -> tuple[int, float, int]:
        worst = max((severities[f].rank for f in step.findings if f in severities), default=-1)
        return (-worst, EFFORT_HOURS[step.effort], steps.index(step))

    graph = graphlib.TopologicalSorter({s.id: set(s.depends_on) & by_id.keys() for s in steps})
    try:
        graph.prepare()
    except graphlib.CycleError:  # the planner's contract forbids cycles: show the steps anyway
        return sorted(by_id.values(), key=priority)
    ready: list[PlanStep] = []
    order: list[PlanStep] = []
    while graph.is_active():
        ready = sorted([*ready, *(by_id[i] for i in graph.get_ready())], key=priority)
        order.append(ready.pop(0))
        graph.done(order[-1].id)
    return order
