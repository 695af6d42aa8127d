"""Check-run output rendered from a scan's JSON report: title, summary, details, annotations.

Pure: data in, data out. Findings are shown through `publish_comment` (masked, ranked,
with short ids) and every output stays within GitHub's documented limits. This is also
the one import place for the pull-request loop: it re-exports the comment's API.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.publish_comment import (
    COMMENT_MARKER,
    CommentMode,
    Comparison,
    Shown,
    ShownFinding,
    bounded,
    cell,
    clip,
    code,
    is_sticky,
    link,
    resolve_short_id,
    score_of,
    section,
    severity_counts,
    short_id,
    should_comment,
    size,
    sticky_comment,
    verdict_label,
)
from scanner.model import Severity
from scanner.secrets import redact

__all__ = [
    "COMMENT_MARKER",
    "CheckRunOutput",
    "CommentMode",
    "Comparison",
    "annotation_batches",
    "changed_lines",
    "check_run_output",
    "is_sticky",
    "neutral_output",
    "resolve_short_id",
    "short_id",
    "should_comment",
    "sticky_comment",
    "superseded_output",
]

TITLE_LIMIT = 255  # output.title and annotation titles
OUTPUT_LIMIT = 65_535  # output.summary and output.text, in characters
ANNOTATION_BYTES = 64 * 1024  # annotation message and raw_details: "64 KB"
ANNOTATIONS_PER_REQUEST = 50
# Every 50 annotations cost an update request against a limit of 80 a minute; past
# a few hundred the diff is noise anyway, so the summary counts the rest.
MAX_ANNOTATIONS = 500
TOP_FINDINGS = 25

_HUNK = re.compile(r"@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")
LEVELS = {
    Severity.CRITICAL: "failure",
    Severity.HIGH: "failure",
    Severity.MEDIUM: "warning",
    Severity.LOW: "notice",
    Severity.INFO: "notice",
}


def _added_lines(patch: str) -> frozenset[int]:
    lines: set[int] = set()
    current: int | None = None
    # "\n" alone: splitlines() would also split at a form feed inside a source line.
    for row in patch.split("\n"):
        if header := _HUNK.match(row):
            current = int(header.group(1))
        elif current is None or row.startswith(("\\", "-")):
            continue  # before a hunk, "\ No newline at end of file", or a removed line
        elif row.startswith("+"):
            lines.add(current)
            current += 1
        else:
            current += 1  # context; a blank context line may have lost its leading space
    return frozenset(lines)


def changed_lines(files: Iterable[Mapping[str, Any]]) -> dict[str, frozenset[int]]:
    """The HEAD-side lines each file adds or changes, from `GET .../pulls/{n}/files` items.

    A renamed file is under its new name; a removed file, or one without a patch
    (binary or too large), has no lines.
    """
    result: dict[str, frozenset[int]] = {}
    for item in files:
        name, patch = item.get("filename"), item.get("patch")
        if name:
            usable = isinstance(patch, str) and item.get("status") != "removed"
            result[name] = _added_lines(patch) if usable else frozenset()
    return dict(sorted(result.items()))


def _clip_bytes(text: str, limit: int = ANNOTATION_BYTES) -> str:
    data = text.encode()
    return text if len(data) <= limit else data[: limit - 3].decode(errors="ignore") + "…"


@dataclass(frozen=True, slots=True)
class CheckRunOutput:
    """A check run's `output`; annotations past the first 50 go in later updates."""

    title: str
    summary: str
    text: str = ""
    annotations: tuple[dict[str, Any], ...] = ()


def annotation(finding: ShownFinding) -> dict[str, Any]:
    """A check-run annotation object for `finding`; its texts are plain, not Markdown."""
    short = finding.short
    message = (
        f"{finding.message or finding.title}\n\nFix: {finding.fix}\n\nFinding {short}: comment "
        f"`/clarity fix {short}` for a fix, or `/clarity ignore {short} <reason>`."
    )
    cwe = f" ({finding.cwe})" if finding.cwe else ""
    note: dict[str, Any] = {
        "path": finding.path,
        "start_line": finding.line,
        "end_line": finding.end_line,
        "annotation_level": LEVELS[finding.severity],
        "title": clip(f"{short} {finding.title}", TITLE_LIMIT),
        "message": _clip_bytes(message),
        "raw_details": _clip_bytes(f"{finding.rule_id}{cwe}\n{finding.evidence}".strip()),
    }
    # GitHub takes columns only for an annotation on a single line.
    if finding.line == finding.end_line and 0 < finding.column <= finding.end_column:
        note["start_column"], note["end_column"] = finding.column, finding.end_column
    return note


def annotations_for(
    findings: Iterable[ShownFinding], changed: Mapping[str, frozenset[int]]
) -> list[dict[str, Any]]:
    """Annotations for the `findings` on lines the pull request changed, worst first."""

    def on_diff(finding: ShownFinding) -> bool:
        lines = changed.get(finding.path, frozenset())
        return not lines.isdisjoint(range(finding.line, finding.end_line + 1))

    hits = [f for f in findings if f.line > 0 and on_diff(f)]
    return [annotation(f) for f in sorted(hits, key=lambda f: f.order)]


def annotation_batches(
    annotations: Sequence[dict[str, Any]], size: int = ANNOTATIONS_PER_REQUEST
) -> list[tuple[dict[str, Any], ...]]:
    """`annotations` in chunks of at most `size`, no more than GitHub takes in one request."""
    if not 1 <= size <= ANNOTATIONS_PER_REQUEST:
        raise ValueError(f"batch size must be between 1 and {ANNOTATIONS_PER_REQUEST}")
    return [tuple(annotations[i : i + size]) for i in range(0, len(annotations), size)]


def _row(finding: ShownFinding, status: str = "") -> str:
    cells = (code(finding.short), status + finding.severity, code(finding.where))
    return "| " + " | ".join((*cells, cell(finding.title), cell(finding.fix, 160))) + " |"


def _detail(finding: ShownFinding) -> str:
    cwe = f" ({cell(finding.cwe, 40)})" if finding.cwe else ""
    evidence = f"\n\nEvidence: {code(finding.evidence, 300)}" if finding.evidence else ""
    return (
        f"#### {code(finding.short)} {finding.severity}: {cell(finding.title)}\n"
        f"{code(finding.where)} · {code(finding.rule_id, 80)}{cwe}\n\n"
        f"{cell(finding.message, 1_000)}{evidence}\n\nFix: {cell(finding.fix, 1_000)}\n"
    )


def _overview(report: Mapping[str, Any], shown: Shown) -> list[str]:
    categories = sorted(((report.get("score") or {}).get("categories") or {}).items())
    table = ["| category | score |", "| --- | ---: |"]
    table += [f"| {cell(str(c), 40)} | {cell(str(v), 10)} |" for c, v in categories]
    if shown.compared:
        tally = f"**{len(shown.new)} new**, **{len(shown.fixed)} fixed**, "
        tally += f"{len(shown.persisting)} persisting."
    else:
        tally = f"**{len(shown.persisting)} findings**"
        tally += f": {severity_counts(shown.persisting)}." if shown.persisting else "."
    return [*table, "", tally]


def _coverage(report: Mapping[str, Any], build_url: str) -> list[str]:
    coverage = report.get("coverage") or {}
    reasons = sorted((coverage.get("skipped_by_reason") or {}).items())
    why = ": " + ", ".join(f"{cell(str(r), 60)} {n}" for r, n in reasons) if reasons else ""
    scanned = f"{coverage.get('files_scanned', 0)} files ({coverage.get('lines_scanned', 0)} lines)"
    ruleset = code(str(report.get("ruleset_version") or "unknown"), 60)
    receipt = code(str(report.get("receipt") or "")[:16])
    return [
        "### Coverage",
        "",
        f"Scanned {scanned}; skipped {sum(n for _, n in reasons)}{why}.",
        f"Ruleset {ruleset}, receipt {receipt}.",
        "",
        link(build_url),
    ]


def _title(report: Mapping[str, Any], shown: Shown) -> str:
    if shown.compared:
        counts = severity_counts(shown.new, "new ") or "no new findings"
        counts += f", {len(shown.fixed)} fixed" if shown.fixed else ""
    else:
        counts = severity_counts(shown.persisting) or "no findings"
    return clip(f"Health {score_of(report)} · {counts}", TITLE_LIMIT)


FIX_ACTION = "fix-new-critical"  # GitHub: identifier ≤ 20, label ≤ 20, description ≤ 40 characters


def fix_actions(comparison: Comparison | None) -> list[dict[str, str]]:
    """The check run's button, offered when the pull request adds critical findings."""
    if comparison is None or not any(f["severity"] == "critical" for f in comparison.new):
        return []
    return [
        {
            "label": "Fix new criticals",
            "description": "Fix PRs for the new critical findings",
            "identifier": FIX_ACTION,
        }
    ]


def check_run_output(
    report: Mapping[str, Any],
    comparison: Comparison | None,
    *,
    conclusion: str,
    verdict_reason: str,
    build_url: str,
    changed: Mapping[str, frozenset[int]] | None,
    max_annotations: int = MAX_ANNOTATIONS,
) -> CheckRunOutput:
    """The check run's output for a scan of the head, against its base when there is one.

    Annotations mark the findings (new and persisting) on lines the pull request
    changed, none without `changed` (a push); past `max_annotations` the worst are kept.
    """
    shown = Shown.of(report, comparison)
    found = [*shown.new, *shown.persisting]
    notes = annotations_for(found, changed) if changed is not None else []
    kept = sorted(notes[:max_annotations], key=lambda a: (a["path"], a["start_line"], a["title"]))
    head = [f"## Health {score_of(report)}", ""]
    head += [f"**{verdict_label(conclusion)}**: {cell(redact(verdict_reason), 1_000)}", ""]
    head += _overview(report, shown)
    if changed is not None:
        left = f" ({len(notes) - len(kept)} more are not)" if len(notes) > len(kept) else ""
        head.append(f"{len(kept)} findings on changed lines are annotated in the diff{left}.")
    tail = _coverage(report, build_url)
    rows = [_row(f, "new ") for f in shown.new] + [_row(f) for f in shown.persisting]
    opening = ["", "### Top findings", "", "| id | severity | where | finding | fix |"]
    top = section(
        ([*opening, "| --- | --- | --- | --- | --- |"], [""]),
        rows,
        OUTPUT_LIMIT - size(head) - size(tail),
        "…and {n} more in the details below.",
        most=TOP_FINDINGS,
    )
    text: list[str] = []
    groups = [("New", shown.new), ("Persisting", shown.persisting), ("Fixed", shown.fixed)]
    for name, group in groups if shown.compared else [("All", shown.persisting)]:
        if group:
            text += section(
                ([f"### {name} findings ({len(group)})", ""], [""]),
                [_detail(f) for f in group],
                OUTPUT_LIMIT - size(text),
                "…and {n} more on the build page.",
            )
    return CheckRunOutput(
        title=_title(report, shown),
        summary=bounded("\n".join([*head, *top, *tail]) + "\n", OUTPUT_LIMIT),
        text=bounded("\n".join(text), OUTPUT_LIMIT),
        annotations=tuple(kept),
    )


def neutral_output(title: str, reason: str, build_url: str) -> CheckRunOutput:
    """Output for a problem on our side or in `.clarity.yml`: publish it `neutral`, never red."""
    summary = (
        f"{cell(redact(reason), 10_000)}\n\nNothing in the code was judged: the check stays "
        f"neutral so that it does not block merging.\n\n{link(build_url)}\n"
    )
    return CheckRunOutput(title=clip(" ".join(redact(title).split()), TITLE_LIMIT), summary=summary)


def superseded_output(new_sha: str, build_url: str) -> CheckRunOutput:
    """Output for a scan overtaken by a newer push to the pull request."""
    sha = code(new_sha[:12]) if re.fullmatch(r"[0-9a-fA-F]{7,64}", new_sha) else "a newer commit"
    summary = (
        f"A newer push ({sha}) replaced this commit before its scan finished; the results are "
        f"on that commit's check run.\n\n{link(build_url)}\n"
    )
    return CheckRunOutput(title="Superseded by a newer push", summary=summary)
