"""A deep scan as the pull request shows it: the check run output, the report comment, the score.

Pure: a `DeepReport` in, Markdown out. Every text an agent or the code wrote is masked
with `redact` and escaped with the Tier 1 helpers, so that it can neither leak a secret
nor break a table or a collapsed block; sections are cut by whole rows to stay within
GitHub's limits, and the build page holds the rest.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from orchestrator.agents.contracts import EFFORT_HOURS, Concern, Lesson, PlanStep, ProbeStep
from orchestrator.deep_plan import deep_score, plan_order
from orchestrator.deep_report import DEEP_CHECK_NAME, REPORT_MARKER, DeepReport
from orchestrator.publish_comment import (
    COMMENT_LIMIT,
    MORE,
    TABLE,
    ShownFinding,
    bounded,
    cell,
    clip,
    code,
    link,
    section,
    severity_counts,
    show,
    size,
    verdict_label,
)
from orchestrator.publish_render import OUTPUT_LIMIT, TITLE_LIMIT
from scanner.secrets import redact

CUT = "…(some sections were cut to fit GitHub's size limit: the full report is on the build page)"
PROBE_RESULTS = {"passed": "✅ pass", "failed": "❌ fail", "skipped": "⏭️ skip"}
MAX_USAGE_ROWS = 12
_CLOSE = ("", "</details>")


def usd(amount: float) -> str:
    """Such as `$0.0123` or `$1.50`: two decimals at least, four at most."""
    whole, _, cents = f"{amount:.4f}".rstrip("0").partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def duration(seconds: float) -> str:
    """Such as `45 s`, `3 min 12 s` or `1 h 5 min`."""
    minutes, secs = divmod(round(seconds), 60)
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def hours(value: float) -> str:
    return f"{value:g} h"


def _text(value: str | None, limit: int = 200) -> str:
    """Agent or code text for Markdown: masked, one line, safe in a table cell.

    Never at the start of a line: it may begin with a fence or a list marker.
    """
    return cell(redact(value or ""), limit)


def _code(value: str, limit: int = 120) -> str:
    return code(redact(value), limit)


def _details(summary: str, body: Sequence[str]) -> list[str]:
    """A collapsed block's opening; GitHub reads `summary` as HTML, so every tag is escaped."""
    summary = html.escape(clip(" ".join(redact(summary).split()), 150), quote=False)
    return ["", f"<details><summary>{summary}</summary>", "", *body]


def _table(*columns: str) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]


@dataclass(frozen=True, slots=True)
class _Part:
    """One section: its opening, rows (cut from the end to fit) and closing."""

    opening: Sequence[str]
    rows: Sequence[str]
    closing: Sequence[str] = ()
    more: str = MORE


@dataclass(frozen=True, slots=True)
class _View:
    """The report with its Tier 1 findings shown (masked, ranked, short ids) and scored."""

    report: DeepReport
    shown: dict[str, ShownFinding]  # by fingerprint, worst first
    tier1: int
    deep: int | None  # None without agents
    tier1_categories: dict[str, int]
    deep_categories: dict[str, int]

    @classmethod
    def of(cls, report: DeepReport) -> _View:
        mask = cache(redact)  # titles and fixes repeat: mask each text once
        shown = sorted((show(f, mask) for f in report.findings), key=lambda f: f.order)
        tier1, tier1_categories = deep_score(report.findings, (), ())
        deep, deep_categories = deep_score(report.findings, report.verdicts, report.concerns)
        agents = report.mode == "autonomous"
        return cls(
            report,
            {f.fingerprint: f for f in shown},
            tier1 if report.tier1_score is None else report.tier1_score,
            (deep if report.deep_score is None else report.deep_score) if agents else None,
            tier1_categories,
            (report.categories or deep_categories) if agents else {},
        )

    def finding(self, fingerprint: str) -> ShownFinding:
        known = self.shown.get(fingerprint)
        return known or show({"fingerprint": fingerprint, "title": "(not in the Tier 1 report)"})

    @property
    def health(self) -> str:
        """Such as `62 → 71 (+9)`; the Tier 1 score alone without agents."""
        if self.deep is None:
            return str(self.tier1)
        delta = f"{self.deep - self.tier1:+d}".replace("+0", "±0")
        return f"{self.tier1} → {self.deep} ({delta})"


def _cells(finding: ShownFinding) -> str:
    where, title = code(finding.where), cell(finding.title)
    return f"| {code(finding.short)} | {finding.severity} | {where} | {title} |"


def _verdict_parts(view: _View) -> list[_Part]:
    """Confirmed findings in a table; the rejected and the unreviewed collapsed below it."""
    verdicts = {v.fingerprint: v for v in view.report.verdicts}
    ranked = sorted(((view.finding(p), v) for p, v in verdicts.items()), key=lambda x: x[0].order)
    confirmed, rejected = [], []
    for finding, verdict in ranked:
        reasoning = _text(verdict.reasoning, 400)
        if verdict.verdict == "confirmed":
            confirmed.append(f"{_cells(finding)} {verdict.confidence:.0%} | {reasoning} |")
        else:
            rejected.append(f"{_cells(finding)} {reasoning} |")
    unreviewed = [_cells(f) for p, f in view.shown.items() if p not in verdicts]
    head = _table("id", "severity", "where", "finding", "confidence", "why")
    head = head if confirmed else ["The security agent confirmed none of them."]
    parts = [_Part(["", f"#### Confirmed findings ({len(confirmed)})", "", *head], confirmed)]
    if rejected:
        title = f"{len(rejected)} rejected as false positives by the security agent"
        head = _table("id", "severity", "where", "finding", "why rejected")
        parts.append(_Part(_details(title, head), rejected, _CLOSE))
    if unreviewed:
        title = f"{len(unreviewed)} findings the agents did not review"
        parts.append(_Part(_details(title, TABLE), unreviewed, _CLOSE))
    return parts


def _concerns_part(view: _View) -> _Part:
    def row(concern: Concern) -> str:
        cited = concern.evidence[0]
        where = _code(f"{cited.path}:{cited.line}" if cited.line else cited.path)
        where += f" (+{len(concern.evidence) - 1})" * (len(concern.evidence) > 1)
        return (
            f"| {concern.severity} | {concern.category} | {concern.area.replace('_', ' ')} | "
            f"{_text(concern.title)} | {where} {_code(cited.excerpt, 100)} | "
            f"{_text(concern.explanation, 400)} |"
        )

    concerns = sorted(view.report.concerns, key=lambda c: -c.severity.rank)
    head = _table("severity", "category", "area", "concern", "evidence", "explanation")
    opening = ["", f"#### Concerns raised by the agents ({len(concerns)})", "", *head]
    return _Part(opening, [row(c) for c in concerns])


def _probe_part(view: _View) -> _Part | None:
    if (probe := view.report.probe) is None:
        return None

    def row(step: ProbeStep) -> str:
        result = PROBE_RESULTS[step.outcome]
        result += f" (exit {step.exit_code})" if step.exit_code not in (None, 0) else ""
        return f"| {step.name} | {result} | {_code(step.command)} | {_text(step.detail, 300)} |"

    rows = [row(step) for step in probe.steps]
    runs = "runs" if probe.runnable else "does not run"
    opening = ["", "#### Probe", "", f"The app {runs} in the sandbox: {_text(probe.summary, 600)}"]
    return _Part([*opening, "", *_table("step", "result", "command", "detail")], rows)


def _plan_part(view: _View) -> _Part | None:
    if (plan := view.report.plan) is None:
        return None
    steps = plan_order(plan.steps, {p: f.severity for p, f in view.shown.items()})
    number = {step.id: n for n, step in enumerate(steps, 1)}
    total = hours(sum(EFFORT_HOURS[s.effort] for s in steps))

    def row(n: int, step: PlanStep) -> str:
        notes = [f"effort {step.effort} ({hours(EFFORT_HOURS[step.effort])})"]
        if step.findings:
            notes.append(
                "resolves " + ", ".join(code(view.finding(f).short) for f in step.findings)
            )
        if after := [str(number[d]) for d in step.depends_on if d in number]:
            notes.append("after step " + ", ".join(after))
        why = _text(step.rationale, 500)
        return f"{n}. **{_text(step.title)}** · {' · '.join(notes)}\n   Why: {why}"

    opening = ["", f"#### Remediation plan ({len(steps)} steps, about {total} in total)", ""]
    opening += [f"Plan: {_text(plan.summary, 600)}", ""]
    return _Part(opening, [row(n, s) for n, s in enumerate(steps, 1)])


def _education_part(view: _View) -> _Part | None:
    if (education := view.report.education) is None:
        return None

    def row(lesson: Lesson) -> str:
        finding = view.finding(lesson.fingerprint)
        why = f"**Why it matters:** {_text(lesson.why_it_matters, 1500)}"
        impact = f"**Business impact:** {_text(lesson.business_impact, 1000)}"
        label = f"{finding.short} · {finding.severity} · {finding.title}"
        return "\n".join([*_details(label, [why, "", impact]), *_CLOSE])

    lessons = sorted(education.lessons, key=lambda lesson: view.finding(lesson.fingerprint).order)
    summary = _text(education.summary, 600)
    opening = ["", "#### Why these findings matter", "", f"In short: {summary}"]
    return _Part(opening, [row(lesson) for lesson in lessons])


def _parts(view: _View) -> list[_Part]:
    """The sections of the body, in reading order; without agents the Tier 1 findings only."""
    if view.report.mode == "deterministic":
        rows = [_cells(f) for f in view.shown.values()]
        return [_Part(["", f"#### Tier 1 findings ({len(rows)})", "", *TABLE * bool(rows)], rows)]
    parts = [*_verdict_parts(view), _concerns_part(view) if view.report.concerns else None]
    parts += [_probe_part(view), _plan_part(view), _education_part(view)]
    if architecture := view.report.architecture:
        opening = _details("Architecture, as the scanner agent read it", [])
        parts.append(_Part(opening, [f"Architecture: {_text(architecture, 4000)}"], _CLOSE))
    return [part for part in parts if part is not None]


def _fit(parts: Sequence[_Part], budget: int) -> list[str]:
    """The parts in `budget` characters, each cut by whole rows to its fair share.

    Shares are filled smallest part first: a small part is shown whole and what it
    leaves goes to the large ones, so that one long table cannot crowd out the rest.
    """
    budget -= size(["", CUT])
    needs = [size([*p.opening, *p.rows, *p.closing, "", p.more.format(n=0)]) for p in parts]
    shares = dict.fromkeys(range(len(parts)), 0)
    for done, index in enumerate(sorted(shares, key=lambda i: needs[i])):
        shares[index] = min(needs[index], budget // (len(parts) - done))
        budget -= shares[index]
    kept = [section((p.opening, p.closing), p.rows, shares[i], p.more) for i, p in enumerate(parts)]
    return [line for lines in kept for line in lines] + ["", CUT] * (not all(kept))


def _verdict(report: DeepReport) -> list[str]:
    """The conclusion and why; without agents, a notice saying so and why."""
    label, reason = verdict_label(report.conclusion), _text(report.reason, 1000)
    lines = [f"**{label}**: {_text(report.title)}. {reason}"]
    if report.mode == "deterministic":
        why = _text(report.fallback_reason or "no reason was given", 500)
        lines += [
            "",
            f"> ⚠️ Ran without agents: {why}",
            ">",
            "> Only the Tier 1 findings are shown.",
        ]
    return lines


def _cost(report: DeepReport) -> str:
    return f"Cost {usd(report.cost_usd)} · took {duration(report.duration_seconds)}."


def _usage(report: DeepReport) -> list[str]:
    """Each agent's run in a small table; nothing when no agent ran."""
    lines = _table("agent", "model", "status", "iterations", "cost", "time") * bool(report.usage)
    for use in report.usage[:MAX_USAGE_ROWS]:
        status = _text(use.status + f": {use.error}" * bool(use.error), 160)
        lines.append(
            f"| {_text(use.role, 40)} | {_code(use.model, 60)} | {status} | {use.iterations} | "
            f"{usd(use.cost_usd)} | {duration(use.duration_seconds)} |"
        )
    return lines


def _pointer(url: str) -> str:
    return f"Full report, logs and agent trajectories: {link(url) or 'on the build page'}"


def report_comment(report: DeepReport) -> str:
    """The deep scan's comment on the pull request, edited in place on each deep scan."""
    view = _View.of(report)
    sha = report.head_sha
    commit = f" · commit {code(sha[:7])}" if re.fullmatch(r"[0-9a-f]{7,64}", sha) else ""
    head = [REPORT_MARKER, f"### {DEEP_CHECK_NAME}: {verdict_label(report.conclusion).lower()}"]
    head += ["", f"**Health {view.health}**{commit}", "", *_verdict(report)]
    usage = _usage(report)
    footer = ["", "#### Cost", "", _cost(report), *[""] * bool(usage), *usage, "", "---"]
    footer += ["<sub>Comment `/clarity fix <id>` for a fix of a finding.</sub>", ""]
    footer.append(_pointer(report.build_url))
    body = _fit(_parts(view), COMMENT_LIMIT - size(head) - size(footer))
    return bounded("\n".join([*head, *body, *footer]) + "\n", COMMENT_LIMIT)


def _title(view: _View) -> str:
    report = view.report
    if report.mode == "deterministic":
        found = severity_counts(list(view.shown.values())) or "no findings"
        return clip(f"Health {view.health} · {found} · ran without agents", TITLE_LIMIT)
    counts = f"{len(report.confirmed)} confirmed, {len(report.rejected)} rejected"
    return clip(f"Health {view.tier1} → {view.deep} · {counts}", TITLE_LIMIT)


def _overview(view: _View) -> list[str]:
    """Category scores, Tier 1 beside deep, and what the agents found and planned."""
    deep, report = view.deep_categories, view.report
    lines = _table("category", "Tier 1", *["deep"] * bool(deep))
    for category, value in sorted(view.tier1_categories.items()):
        lines.append(f"| {category} | {value} |" + f" {deep.get(category, '')} |" * bool(deep))
    if report.mode == "autonomous":
        steps = report.plan.steps if report.plan else []
        effort = hours(sum(EFFORT_HOURS[s.effort] for s in steps))
        counts = f"**{len(report.confirmed)} confirmed**, **{len(report.rejected)} rejected**"
        concerns = f"{len(report.concerns)} concern" + "s" * (len(report.concerns) != 1)
        lines += ["", f"{counts}, {concerns}; a plan of {len(steps)} steps, about {effort}."]
    return lines


def check_run_output(report: DeepReport) -> dict[str, str]:
    """The deep scan check run's `output`: a short title, an overview, the details."""
    view = _View.of(report)
    summary = [f"## Health {view.health}", "", *_verdict(report), "", *_overview(view), ""]
    summary += [_cost(report), "", _pointer(report.build_url)]
    usage = _usage(report)
    tail = ["", "#### Agents", "", *usage] * bool(usage)
    text = _fit(_parts(view), OUTPUT_LIMIT - size(tail)) + tail
    return {
        "title": _title(view),
        "summary": bounded("\n".join(summary) + "\n", OUTPUT_LIMIT),
        "text": bounded("\n".join(text).lstrip("\n") + "\n", OUTPUT_LIMIT),
    }
